/**
 * The `ctfs` command on real data directories, as a user runs it (`node dist/cli/main.js`, built
 * by the threads project's setup): `node` runs a replicating node from a config until SIGTERM and
 * refuses a bad config naming the field, `inspect` reports what a directory holds, `verify`
 * passes a sound one and fails a damaged one with the position of the first fault, and usage
 * errors exit non-zero with the usage.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DurableKernel, GCounterInvariant, factId, u64le } from './helpers/lib.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function ctfs(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A closed log of 100 facts in two fsynced batches of 50. */
async function logDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ctfs-cli-'));
  dirs.push(dir);
  const k = await DurableKernel.open(dir, new GCounterInvariant());
  for (let batch = 0; batch < 2; batch++) {
    for (let i = 0; i < 50; i++) {
      const p = u64le(BigInt(batch * 50 + i + 1));
      expect(k.tryAdmitRaw(factId([], p), [], p)).toBe(0);
    }
    await k.flush();
  }
  await k.close();
  return dir;
}

describe('ctfs inspect and verify', () => {
  it('inspect reports segments, checkpoints, the manifest and the sequences; --json gives the same as data', async () => {
    const dir = await logDir();
    const text = ctfs('inspect', dir);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/100 fact\(s\); last sequence 100; durable through 100/);
    expect(text.stdout).toMatch(/closed cleanly/);
    expect(text.stdout).toMatch(/wal-0000000000000001\.log/);
    expect(text.stdout).toMatch(/backend: not recorded \(both write the same bytes\); a kernel opened here writes with (io_uring|portable)/);
    const json = ctfs('inspect', '--json', dir);
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as { lastSequence: number; records: number; payloadBytes: number; segments: unknown[]; manifest: { closed: boolean } };
    expect(report).toMatchObject({ lastSequence: 100, records: 100, facts: 100, payloadBytes: 800, manifest: { closed: true }, backend: { recorded: false } });
    const forced = spawnSync(process.execPath, [CLI, 'inspect', '--json', dir], { encoding: 'utf8', env: { ...process.env, CTFS_IO: 'portable' } });
    expect(JSON.parse(forced.stdout)).toMatchObject({ backend: { here: 'portable', reason: 'CTFS_IO=portable' } });
    expect(report.segments).toHaveLength(1);
  });

  it('verify passes a sound directory and fails a damaged one, naming the first fault', async () => {
    const dir = await logDir();
    const ok = ctfs('verify', dir);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^ok: .* would open — 100 record\(s\)/);
    // Damage one byte inside the first batch: fsynced (a later batch follows), so corruption.
    const segment = join(dir, readdirSync(dir).find((f) => f.startsWith('wal-'))!);
    const fd = openSync(segment, 'r+');
    const at = 512 + 64 * 3 + 70; // past the segment header, inside an early record
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
    closeSync(fd);
    const bad = ctfs('verify', dir);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^WalCorrupted: /);
    expect(bad.stderr).toMatch(/first fault: .*wal-0000000000000001\.log at byte \d+, sequence \d+/);
    const inspect = ctfs('inspect', dir);
    expect(inspect.status).toBe(1);
    expect(inspect.stderr).toMatch(/^WalCorrupted: /);
  });

  it('usage errors exit non-zero with the usage', () => {
    const missing = ctfs('verify', join(tmpdir(), 'no-such-ctfs-dir'));
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toMatch(/is not a directory/);
    expect(missing.stderr).toMatch(/Usage: ctfs verify/);
    const unknown = ctfs('bogus');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown command 'bogus'/);
    const help = ctfs('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/inspect .*<dir>/);
    expect(help.stdout).toMatch(/verify <dir>/);
  });
});

/** Starts `ctfs node …args` and resolves with the process and its first line ("… listening on …"). */
async function startNode(...args: string[]): Promise<{ child: ReturnType<typeof spawn>; line: string; out: () => string }> {
  const child = spawn(process.execPath, [CLI, 'node', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!out.includes('\n')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`ctfs node did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, line: out.split('\n')[0]!, out: () => out };
}

const scrape = async (line: string): Promise<string> => {
  const url = /metrics on (http:\/\/\S+\/metrics)/.exec(line)![1]!;
  return (await fetch(url)).text();
};

describe('ctfs node', () => {
  it('runs two escrowed nodes, one from a config and one from flags alone, serves /metrics, and closes the log cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctfs-cli-node-'));
    dirs.push(dir);
    const config = (id: string, peers: string[]) => {
      const file = join(dir, `${id}.json`);
      writeFileSync(file, JSON.stringify({ nodeId: id, dir: `data-${id}`, plaintext: true, metrics: '127.0.0.1:0', peers, invariant: { type: 'bounded-gcounter', capacity: '900' }, escrow: { members: ['a', 'b'] } }));
      return file;
    };
    const a = await startNode('--config', config('a', []));
    const address = /listening on (\S+)/.exec(a.line)![1]!;
    // The same configuration as flags (the escrow genesis must match: same members and bound).
    const b = await startNode(
      ...['--node-id', 'b', '--dir', join(dir, 'data-b'), '--plaintext', '--metrics', '127.0.0.1:0', '--peer', address],
      ...['--invariant', 'bounded-gcounter', '--capacity', '900', '--escrow-member', 'a', '--escrow-member', 'b'],
    );
    // Each sees the other (a ready link), and exports its escrow rights: half of 900.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [ma, mb] = [await scrape(a.line), await scrape(b.line)];
      if (/ctfs_replication_peers\{node="a",state="ready"\} 1/.test(ma) && /ctfs_replication_peers\{node="b",state="ready"\} 1/.test(mb)) {
        expect(ma).toMatch(/ctfs_escrow_available\{node="a",resource="up"\} 450/);
        break;
      }
      if (Date.now() > deadline) throw new Error('the nodes never linked');
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const n of [a, b]) n.child.kill('SIGTERM');
    const codes = await Promise.all([a, b].map((n) => new Promise<number | null>((resolve) => n.child.once('exit', (code) => resolve(code)))));
    expect(codes).toEqual([0, 0]);
    expect(a.out()).toMatch(/stopped; the log is closed cleanly/);
    for (const id of ['a', 'b']) {
      const report = JSON.parse(ctfs('inspect', '--json', join(dir, `data-${id}`)).stdout) as { manifest: { closed: boolean }; lastSequence: number };
      expect(report.manifest.closed).toBe(true);
      expect(report.lastSequence).toBeGreaterThanOrEqual(1); // the escrow genesis, at least
    }
  }, 90_000);

  it('refuses a bad config with exit code 2, naming the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctfs-cli-config-'));
    dirs.push(dir);
    const cases: [unknown, RegExp][] = [
      [{ dir: 'd', plaintext: true }, /config: nodeId: must be a non-empty string/],
      [{ nodeId: 'a', dir: 'd', plaintext: true, invariant: { type: 'lww' } }, /config: invariant\.type: must be one of/],
      [{ nodeId: 'a', dir: 'd', plaintext: true, invariant: { type: 'bounded-gcounter', capacity: 'x' } }, /config: invariant\.capacity: must be an integer/],
      [{ nodeId: 'a', dir: 'd', plaintext: true, invariant: { type: 'bounded-gcounter' } }, /config: escrow\.members: a bounded invariant needs escrow/],
      [{ nodeId: 'a', dir: 'd', plaintext: true, escrow: { members: ['a'] } }, /config: escrow: only for a bounded invariant/],
      [{ nodeId: 'a', dir: 'd', plaintext: true, peers: 'x' }, /config: peers: must be an array/],
      [{ nodeId: 'a', dir: 'd', plaintext: true, colour: 'blue' }, /config: colour: is not a field/],
      [{ nodeId: 'a', dir: 'd' }, /config: secretFile: no cluster secret/],
      [{ nodeId: 'a', dir: 'd', secretFile: 'missing-secret' }, /config: secretFile: cannot read missing-secret/],
      [{ nodeId: 'a', dir: 'd', plaintext: true, invariant: { type: 'gcounter', capacity: 5 } }, /config: invariant\.capacity: is not a parameter of gcounter/],
    ];
    for (const [i, [config, message]] of cases.entries()) {
      const file = join(dir, `c${i}.json`);
      writeFileSync(file, JSON.stringify(config));
      const r = spawnSync(process.execPath, [CLI, 'node', '--config', file], { encoding: 'utf8', env: { ...process.env, CTFS_CLUSTER_SECRET: '' } });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ not json');
    expect(spawnSync(process.execPath, [CLI, 'node', '--config', file], { encoding: 'utf8' }).stderr).toMatch(/config: \(file\): cannot read .* as JSON/);
    // Flags alone are checked the same way, and a flag wins over the file's field.
    const flags: [string[], RegExp][] = [
      [['--dir', 'd', '--plaintext'], /config: nodeId: must be a non-empty string/],
      [['--node-id', 'a', '--dir', 'd', '--plaintext', '--capacity', '5'], /config: invariant\.type: --capacity, --balance, --min and --max need --invariant/],
      [['--node-id', 'a', '--dir', 'd', '--plaintext', '--invariant', 'total-supply', '--min', 'low'], /config: invariant\.min: must be an integer/],
      [['--node-id', 'a', '--dir', 'd', '--plaintext', '--invariant', 'max', '--escrow-member', 'a'], /config: escrow: only for a bounded invariant/],
      [['--config', join(dir, 'c0.json'), '--node-id', 'a', '--invariant', 'lww'], /config: invariant\.type: must be one of/],
    ];
    for (const [args, message] of flags) {
      const r = spawnSync(process.execPath, [CLI, 'node', ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, CTFS_CLUSTER_SECRET: '' } });
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it('an occupied port is a clear error and exit code 1; every subcommand has help', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctfs-cli-port-'));
    dirs.push(dir);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    try {
      const file = join(dir, 'n.json');
      writeFileSync(file, JSON.stringify({ nodeId: 'a', dir: 'data', plaintext: true, listen: `127.0.0.1:${port}` }));
      const r = spawnSync(process.execPath, [CLI, 'node', '--config', file], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/ReplicationStartFailed: .*EADDRINUSE/);
    } finally {
      server.close();
    }
    for (const command of ['cluster', 'node', 'inspect', 'verify']) {
      const help = ctfs(command, '--help');
      expect(help.status).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: ctfs ${command} `));
    }
  });
});

describe('ctfs cluster (the demo)', () => {
  it('runs three node processes through a SIGKILL and a partition, reports, and passes its checks', () => {
    const r = spawnSync(process.execPath, [CLI, 'cluster', '--nodes', '3', '--seconds', '5', '--rate', '500', '--stock', '600'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // No terminal here: plain progress lines, the faults, the report and the checks.
    expect(r.stdout).toMatch(/t=\d+\.\ds n0 facts \d+ lag [\d.]+ ms quota \d+/);
    expect(r.stdout).toMatch(/SIGKILL n2/);
    expect(r.stdout).toMatch(/partition: n1 cut off from the others/);
    expect(r.stdout).toMatch(/heal: n1 rejoins, n2 restarts from its directory/);
    expect(r.stdout).toMatch(/replication lag .*: p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms over \d+ deliveries/);
    expect(r.stdout).toMatch(/≥ 1000 ms .* \d+/); // the histogram's last bucket
    expect(r.stdout).toMatch(/durability \(each node's events log, (io_uring|portable)(, (io_uring|portable))?\): \d+ fsyncs per node, \d+ records each; write\+fdatasync per batch p50 \d+ µs, p99 \d+ µs/);
    expect(r.stdout).toMatch(/stock: \d+ of 600 sold on every node/);
    expect(r.stdout).toMatch(/ok {3}never above the stock \(600\) on any node/);
    expect(r.stdout).not.toMatch(/FAIL/);
  }, 180_000);
});


describe('ctfs cluster on a terminal', () => {
  // `script` (util-linux; Debian marks it essential, so it is on every machine) gives the command a pseudo-terminal.
  it('draws live bars on a TTY, then the same report and checks', () => {
    const command = [process.execPath, CLI, 'cluster', '--nodes', '3', '--seconds', '3', '--rate', '300', '--stock', '300'].join(' ');
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 170_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\x1b\[\?25l/); // the cursor hidden while bars redraw
    expect(r.stdout).toMatch(/ n0 \|[█░]+\| \d+\/3 s {2}facts \d+ {2}lag [\d.]+ ms {2}quota \d+ {2}sold \d+/);
    expect(r.stdout).not.toMatch(/t=\d+\.\ds n0 facts/); // no plain lines on a terminal
    expect(r.stdout).toMatch(/ok {3}never above the stock \(300\) on any node/);
    expect(r.stdout).not.toMatch(/FAIL/);
  }, 180_000);
});

describe('npx ctfs from a fresh install', () => {
  it('the packed package installs (from the npm cache, no network) and `npx ctfs` runs its subcommands', async () => {
    const root = join(import.meta.dirname, '..');
    const dir = mkdtempSync(join(tmpdir(), 'ctfs-cli-npx-'));
    dirs.push(dir);
    // npm passes its own settings to scripts as npm_* variables; the install must not inherit them.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    const npm = (cwd: string, ...args: string[]) => {
      const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: 240_000 });
      expect(r.status, `npm ${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
      return r.stdout;
    };
    // dist/ is already built by the suite's setup; prepack would only rebuild it.
    const tarball = npm(root, 'pack', '--ignore-scripts', '--pack-destination', dir).trim().split('\n').pop()!;
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'ctfs-user', version: '1.0.0', private: true }));
    npm(dir, 'install', '--offline', '--no-audit', '--no-fund', `./${tarball}`);
    const help = spawnSync('npx', ['--no-install', 'ctfs', '--help'], { cwd: dir, env, encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: ctfs /);
    const data = await logDir();
    const verify = spawnSync('npx', ['--no-install', 'ctfs', 'verify', data], { cwd: dir, env, encoding: 'utf8' });
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^ok: .* would open — 100 record\(s\)/);
  }, 300_000);
});
