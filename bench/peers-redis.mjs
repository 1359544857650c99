/**
 * A real redis-server for the side-by-side benchmark: started on a free loopback port with its own
 * temporary directory and the append-only file on, stopped (and the directory removed) after.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The floor check, atomically on the server: refuse a fact seen before (-2) or a decrement below
 * zero (-1); else apply the amount, keep the 200-byte fact under its key and return the balance.
 */
export const FLOOR_SCRIPT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return -2 end
local b = tonumber(redis.call('GET', KEYS[1]))
local d = tonumber(ARGV[1])
if b + d < 0 then return -1 end
redis.call('SET', KEYS[1], b + d)
redis.call('SET', KEYS[2], ARGV[2])
return b + d
`;

/** The redis-server on PATH and its version, or undefined. */
export function redisVersion() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return /v=(\S+)/.exec(r.stdout)?.[1];
}

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class RedisServer {
  #child;
  #dir;

  constructor(child, dir, port) {
    this.#child = child;
    this.#dir = dir;
    this.port = port;
  }

  /** Starts a server with `appendfsync` = `always` or `everysec` and waits until it takes clients. */
  static async start(appendfsync) {
    const dir = mkdtempSync(join(tmpdir(), 'ctfs-bench-redis-'));
    const port = await freePort();
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', appendfsync, '--save', '', '--daemonize', 'no', '--logfile', ''];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const deadline = Date.now() + 10_000;
    while (!/Ready to accept connections/.test(log)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`redis-server did not start: ${log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return new RedisServer(child, dir, port);
  }

  async stop() {
    if (this.#child.exitCode === null) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve));
      this.#child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
