/**
 * The `ctfs` command on real data directories, as a user runs it (`node dist/cli/main.js`, built
 * by the threads project's setup): `inspect` reports what a directory holds, `verify` passes a
 * sound one and fails a damaged one with the position of the first fault, and usage errors exit
 * non-zero with the usage.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync, readdirSync } from 'node:fs';
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
    expect(text.stdout).toMatch(/last sequence 100; durable through 100/);
    expect(text.stdout).toMatch(/closed cleanly/);
    expect(text.stdout).toMatch(/wal-0000000000000001\.log/);
    const json = ctfs('inspect', '--json', dir);
    expect(json.status).toBe(0);
    const report = JSON.parse(json.stdout) as { lastSequence: number; records: number; payloadBytes: number; segments: unknown[]; manifest: { closed: boolean } };
    expect(report).toMatchObject({ lastSequence: 100, records: 100, payloadBytes: 800, manifest: { closed: true } });
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
