/**
 * Crash safety proven with real processes: a child process (test/fixtures/crash-child.mjs, the
 * compiled library in dist/) admits facts into a DurableKernel — admitAsync with durable() or
 * isDurable() polling, blocking AckMode.Durable admissions, checkpoints — and is SIGKILLed at a
 * random moment. The directory is then checked against everything the child printed (the harness
 * in test/harness/crash-loop.ts: acknowledged facts recovered exactly once, nothing unsubmitted,
 * the state equal to a fresh kernel fed the recovered facts, sequences without gaps), and the next
 * child recovers the same directory and goes on, so later cycles crash logs that already hold
 * several segments, checkpoints and torn tails. On the portable backend each kill is also a
 * simulated power loss: whatever the child never fdatasynced is dropped from the segments (the
 * child reports its syncs through a preload), so an ack given before the sync is caught too.
 * `npm run test:crash` runs the long version.
 *
 * CTFS_CRASH_SEED=<n> replays a run's random choices (the kill moments still depend on timing).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrashHarness, probeUring, type Backend, type CycleResult, type UringProbe } from './harness/crash-loop.js';
import * as lib from './helpers/lib.js';

const SEED = Number(process.env['CTFS_CRASH_SEED'] ?? Date.now()) >>> 0;
const CYCLES = 4;
/** Extra cycles allowed while no fact has been acknowledged yet (so no test passes vacuously). */
const MAX_EXTRA_CYCLES = 8;

let uring: UringProbe;
const dirs: string[] = [];

function tempDir(tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ctfs-crash-${tag}-`));
  dirs.push(dir);
  return join(dir, 'data');
}

/** The evidence for a failed cycle: its violations, then the child's last words. */
function evidence(r: CycleResult): string {
  return `seed ${SEED}, cycle ${r.cycle}: ${r.violations.join('\n')}\n--- stderr:\n${r.stderr}\n--- last lines:\n${r.lines.slice(-10).join('\n')}`;
}

beforeAll(async () => {
  uring = await probeUring(lib);
}, 240_000);

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs `CYCLES` crash cycles (more while nothing was acknowledged) on one directory. */
async function crashCycles(backend: Backend, seed: number): Promise<CycleResult[]> {
  const h = new CrashHarness({ lib, dir: tempDir(backend), backend, seed });
  const results: CycleResult[] = [];
  for (let i = 0; i < CYCLES || (h.history.acked.size === 0 && i < CYCLES + MAX_EXTRA_CYCLES); i++) {
    const r = await h.cycle();
    expect(r.violations, evidence(r)).toEqual([]);
    expect(r.backend, evidence(r)).toBe(backend === 'uring' ? 'io_uring' : 'portable');
    results.push(r);
  }
  // Not vacuous: something was acknowledged, survived and was checked.
  expect(h.history.acked.size, `seed ${seed}`).toBeGreaterThan(0);
  expect(results.at(-1)!.recovered).toBeGreaterThanOrEqual(h.history.acked.size);
  return results;
}

describe('SIGKILL crash cycles: acknowledged facts survive exactly once, nothing else appears, the state is a replay', () => {
  it(`portable backend: ${CYCLES} cycles on one directory`, async () => {
    await crashCycles('portable', SEED);
  });

  it(`io_uring backend: ${CYCLES} cycles on one directory (required when CI is set)`, async (ctx) => {
    if (!uring.available) {
      if (process.env['CI']) throw new Error(`CI is set but io_uring is unavailable: ${uring.reason}`);
      ctx.skip();
    }
    await crashCycles('uring', SEED + 1);
  });
});

describe('a kill while blocked in an AckMode.Durable admission', () => {
  it.for(['portable', 'uring'] as const)('%s: the fact being waited for is lost, the one before it is kept, neither was acknowledged', async (backend, ctx) => {
    if (backend === 'uring' && !uring.available) {
      if (process.env['CI']) throw new Error(`CI is set but io_uring is unavailable: ${uring.reason}`);
      ctx.skip();
    }
    const h = new CrashHarness({ lib, dir: tempDir(`block-${backend}`), backend, seed: SEED + 2 });
    // Some history first, so the blocked run starts from a recovered log.
    const before = await h.cycle();
    expect(before.violations, evidence(before)).toEqual([]);
    const recoveredBefore = before.recovered;

    // The child admits F1 and waits until the worker has written it; the worker then syncs and
    // (fault hook) pauses before advancing the durable watermark. The child stages F2 and blocks
    // in tryAdmitRaw(…, AckMode.Durable) on it; it is killed 300 ms later.
    const blocked = await h.cycle({ mode: 'block' });
    expect(blocked.violations, evidence(blocked)).toEqual([]);
    const submitted = blocked.lines.filter((l) => l.startsWith('S ')).map((l) => l.split(' ')[1]!);
    expect(submitted).toHaveLength(2);
    const [f1, f2] = submitted as [string, string];
    expect(blocked.lines).toContain(`BLOCK ${f2}`);
    // F2 depends on F1.
    expect(blocked.lines.find((l) => l.startsWith(`S ${f2} `))!.split(' ').slice(3)).toContain(f1);
    // Neither was acknowledged: the watermark never passed F1's batch.
    expect(blocked.lines.filter((l) => l.startsWith('A ') || l.startsWith('F '))).toEqual([]);
    // F1 was written before the kill, so it survives a process crash; F2 never reached the file.
    const order = h.history.order!;
    expect(blocked.recovered).toBe(recoveredBefore + 1);
    expect(order.at(-1)).toBe(f1);
    expect(order).not.toContain(f2);

    // The next run recovers exactly that and goes on.
    const after = await h.cycle();
    expect(after.violations, evidence(after)).toEqual([]);
    expect(after.lines.find((l) => l.startsWith('READY '))).toMatch(new RegExp(`^READY ${recoveredBefore + 1} `));
  });
});
