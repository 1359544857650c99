/**
 * The examples, the README quick start and the benchmark harness are code users run: they are
 * run here too, from the compiled build/ tree (`npm test` builds first).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DIST_INDEX } from './helpers/dist.js';

const root = join(import.meta.dirname, '..');

function runNode(file: string, args: string[] = [], env: Record<string, string> = {}): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(root, file), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  if (!existsSync(join(root, 'build/examples/quick_start.js')) || !existsSync(DIST_INDEX)) {
    const r = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  }
});

describe('README quick start', () => {
  it('is exactly examples/quick_start.ts', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /## Quick start\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    expect(block).toBe(readFileSync(join(root, 'examples/quick_start.ts'), 'utf8'));
  });

  it('runs and prints the balance it promises', () => {
    const r = runNode('build/examples/quick_start.js');
    expect(r.status, r.out).toBe(0);
    expect(r.out.trim()).toBe('70n');
  });
});

describe('README worker pool snippet', () => {
  it('is exactly examples/pool_quick_start.ts', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /## Worker pool\n\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    expect(block).toBe(readFileSync(join(root, 'examples/pool_quick_start.ts'), 'utf8'));
  });

  it('runs on real pool threads and prints what it admitted', () => {
    const r = runNode('build/examples/pool_quick_start.js');
    expect(r.status, r.out).toBe(0);
    expect(r.out.trim()).toBe('0 1');
  });
});

describe('README escrow snippet', () => {
  it('is exactly examples/escrow_quick_start.ts', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const block = /## Escrow\n\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    expect(block).toBe(readFileSync(join(root, 'examples/escrow_quick_start.ts'), 'utf8'));
  });

  it('runs on one node and prints its rights', () => {
    const r = runNode('build/examples/escrow_quick_start.js');
    expect(r.status, r.out).toBe(0);
    expect(r.out.trim()).toBe('246n');
  });
});

describe('examples', () => {
  const expectations: Record<string, RegExp> = {
    basic_kernel: /overdraft -> InvariantViolation \(Underflow\)/,
    multi_tenant: /alice 175, bob 601/,
    two_lane_kernel: /the exact lane rejected all of them/,
    escalating_kernel: /escalated to Precise after \d+ facts/,
    custom_invariant: /labelled Lattice it would be caught/,
    graph_invariant: /a degree-limited state under the lattice flavour is refused/,
    escrow_inventory: /sold 1000 of 1000; one more is refused \(InsufficientEscrow\)/,
    replication: /every node holds 600 facts, counts 600 views/,
    escrow_cluster: /sold 900 of 900 on every node; the next sale is refused \(EscrowExhausted\); ledgers equal/,
  };
  for (const [name, expected] of Object.entries(expectations)) {
    it(`${name} runs and checks itself`, () => {
      const r = runNode(`build/examples/${name}.js`);
      expect(r.status, r.out).toBe(0);
      expect(r.out).toMatch(expected);
    });
  }

  it('durable_ledger (npm run demo:ledger) survives a SIGKILL and verifies every acknowledged transfer', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ctfs-demo-'));
    try {
      const r = runNode('build/examples/durable_ledger.js', [dir], { CTFS_DEMO_FACTS: '30000' });
      expect(r.status, r.out).toBe(0);
      expect(r.out).toMatch(/killed with SIGKILL; [\d,]+ transfers had been acknowledged durable/);
      expect(r.out).toMatch(/every acknowledged transfer present exactly once/);
      expect(r.out).toMatch(/final balance -?\d+ over 30,000 transfers: verified after a crash, a recovery and a reopen/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('worker_pool admits in parallel, matches a single-threaded replay and names a cross-shard dep', () => {
    const r = runNode('build/examples/worker_pool.js', [], { CTFS_DEMO_FACTS: '20000' });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/20,000 transfers over 8 shards on 2 pool threads/);
    expect(r.out).toMatch(/outcomes: Ok [\d,]+, InvariantViolation [\d,]+/);
    expect(r.out).toMatch(/digests of all 8 shards equal a single-threaded replay: yes/);
    expect(r.out).toMatch(/a dependency across shards is refused: CrossShardDependency/);
  });

  it('ledger_demo converges on both replicas', () => {
    const r = runNode('build/examples/ledger_demo.js', [], { CTFS_DEMO_FACTS: '20000' });
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/identical state bytes on both replicas: yes/);
    expect(r.out).toMatch(/hostile input: DuplicateFact 10000, CausalityViolation 10000, MalformedFact 10000/);
  });
});

describe('benchmark harness', () => {
  it('runs every suite in --quick mode and every loop sees the outcome it claims to measure', () => {
    const r = runNode('build/bench/run.js', ['--quick']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toMatch(/INVALID/);
    expect(r.out).toMatch(/Kernel: no deps, small index .* \[Ok [\d,]+\]/);
    expect(r.out).toMatch(/rejection: DuplicateFact .* \[DuplicateFact [\d,]+\]/);
  });

  it('runs the pool suite in --quick mode, every round admitting every fact and the lock exclusive', () => {
    const r = runNode('build/bench/pool.js', ['--quick']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toMatch(/INVALID/);
    expect(r.out).toMatch(/\| 4096 \| [\d.]+ M .*× \/ [\d.]+× \|/);
    expect(r.out).toMatch(/lock: [\d.]+ ns uncontended/);
    expect(r.out).toMatch(/checkpoint busies the main thread [\d.]+ ms inline/);
  });

  it('runs the durable suite in --quick mode with both backends, every loop on its success path', () => {
    const r = runNode('build/bench/durable.js', ['--quick']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).not.toMatch(/INVALID/);
    expect(r.out).toMatch(/uring: staging, admitRawWithHandle \(handle\) .* \[Ok [\d,]+\]/);
    expect(r.out).toMatch(/portable: durable throughput [\d,]+ facts\/s .*ratio/);
    expect(r.out).toMatch(/portable: stage→durable at 100,000 facts\/s: p50 \d+ µs, p99 \d+ µs/);
  });
});
