/**
 * The side-by-side benchmark's harness (bench/peers.mjs) measures what it says: run briefly, every
 * configuration — ctfs, a real redis-server, SQLite, Automerge, Yjs — passes its checks and lands
 * in the table and both charts of the same run; a Redis without the floor check is caught; the
 * workload's expectation is a central store's.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const HARNESS = join(ROOT, 'bench', 'peers.mjs');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function harness(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; out: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ctfs-bench-peers-test-'));
  dirs.push(dir);
  const r = spawnSync(process.execPath, [HARNESS, '--seconds', '0.2', '--rounds', '1', '--clients', '8', '--out', dir, ...args], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, ...env } });
  return { status: r.status, out: r.stdout + r.stderr, dir };
}

interface Workload {
  START: number;
  amounts(seed?: number): Int32Array;
  expected(deltas: Int32Array, n: number): { balance: number; accepted: number; refused: number };
}

describe('bench:peers', () => {
  it('the expected outcome is a central store applying the operations in order', async () => {
    const w = (await import(join(ROOT, 'bench', 'peers-workload.mjs'))) as Workload;
    const deltas = w.amounts(7);
    let balance = w.START;
    let refused = 0;
    let lowest = balance;
    for (let i = 0; i < 50_000; i++) {
      if (balance + deltas[i]! < 0) refused++;
      else balance += deltas[i]!;
      lowest = Math.min(lowest, balance);
    }
    expect(w.expected(deltas, 50_000)).toEqual({ balance, accepted: 50_000 - refused, refused });
    expect(lowest).toBeGreaterThanOrEqual(0);
    // The floor is reached and defended: a real share of operations is refused.
    expect(refused).toBeGreaterThan(2_000);
  });

  it('every configuration runs, passes its checks, and appears in the table and both charts', () => {
    const r = harness([]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toMatch(/FAIL|skipped/);
    const table = readFileSync(join(r.dir, 'peers.md'), 'utf8');
    const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| system'));
    expect(rows).toHaveLength(15);
    for (const system of ['ctfs', 'Redis 7', 'SQLite 3', 'Automerge 3', 'Yjs']) expect(table).toContain(`| ${system}`);
    expect(rows.every((l) => l.includes('| ✔ '))).toBe(true);
    // Where the floor cannot hold across replicas, the breaches are counted, not hidden.
    expect(table).toMatch(/Yjs \| 3 replicas.*the floor is not enforceable: \d+ of \d+ merges ended below 0/);
    const throughput = readFileSync(join(r.dir, 'peers-throughput.svg'), 'utf8');
    const latency = readFileSync(join(r.dir, 'peers-latency.svg'), 'utf8');
    expect(throughput).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    // One bar per configuration; two (p50, p99) per configuration for latency.
    const bars = /<rect x="\d+" y="[\d.]+" width="[\d.]+" height="8"/g;
    expect(throughput.match(bars)).toHaveLength(15);
    expect(latency.match(bars)).toHaveLength(30);
    // The chart's labels are the table's figures (same run).
    const json = JSON.parse(readFileSync(join(r.dir, 'peers.json'), 'utf8')) as { results: { system: string; mode: string; opsPerSecond: number }[] };
    expect(json.results).toHaveLength(15);
  }, 300_000);

  it('a Redis that does not check the floor fails the run', () => {
    // A second at everysec is ~2,000 operations or more: past the point where the floor is reached.
    const r = harness(['--only', 'Redis.*everysec, 1 client', '--seconds', '1'], { PEERS_BENCH_BREAK_FLOOR: '1' });
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/round 1 FAIL balance -?\d+ \(expected \d+\)/);
  }, 120_000);
});
