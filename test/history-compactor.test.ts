/**
 * The history compactor thread, with the compiled library: a kernel's frozen hot tables become
 * runs off the admitting thread (an admission that freezes does not compact), the writer installs
 * them, and a reader attached in another thread finds every published id throughout — while
 * tables freeze, runs are built and merged, and freed memory is reused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AdmitCode, Kernel, TwoLaneKernel, factId, i128le } from './helpers/lib.js';
import { firstMessage, startWorker, terminateWorkers } from './helpers/workers.js';

afterEach(terminateWorkers);

const READER = new URL('./fixtures/history-reader.mjs', import.meta.url);

function payloadOf(n: number): Uint8Array {
  const payload = new Uint8Array(20);
  payload.set(i128le(1n));
  new DataView(payload.buffer).setUint32(16, n, true);
  return payload;
}

/** Polls `done` (publishing, which installs finished compaction) until it holds or `ms` pass. */
async function until(kernel: Kernel | TwoLaneKernel, done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('compaction did not finish in time');
    kernel.publish();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the history compactor thread', () => {
  it('compacts off the admitting thread: the freezing admission leaves a frozen table, the compactor turns it into a run', async () => {
    const kernel = new TwoLaneKernel(new (await import('./helpers/lib.js')).TotalSupplyInvariant(), { historyHotCapacity: 1024 });
    let prev: Uint8Array[] = [];
    const ids: Uint8Array[] = [];
    for (let i = 0; i < 1025; i++) {
      const payload = payloadOf(i);
      const id = factId(prev, payload);
      expect(kernel.tryAdmitRaw(id, prev, payload)).toBe(AdmitCode.Ok);
      ids.push(id);
      prev = [id];
    }
    // The 1,025th admission froze the first table, and left it to the compactor.
    expect(kernel.historyMemory().frozen.tables).toBe(1);
    await until(kernel, () => kernel.historyMemory().runs.count === 1, 10_000);
    const m = kernel.historyMemory();
    expect([m.frozen.tables, m.runs.ids, m.hot.ids]).toEqual([0, 1024, 1]);
    for (const id of ids) expect(kernel.contains(id)).toBe(true);
    expect(kernel.tryAdmitRaw(ids[5]!, [ids[4]!], payloadOf(5))).toBe(AdmitCode.DuplicateFact);

    // Many more: runs merge in the background, nothing is missed.
    for (let i = 1025; i < 40_000; i++) {
      const payload = payloadOf(i);
      const id = factId(prev, payload);
      expect(kernel.tryAdmitRaw(id, prev, payload)).toBe(AdmitCode.Ok);
      ids.push(id);
      prev = [id];
    }
    await until(kernel, () => kernel.historyMemory().frozen.tables === 0 && kernel.historyMemory().runs.count <= 12, 20_000);
    expect(kernel.size).toBe(40_000);
    for (const id of ids) expect(kernel.contains(id)).toBe(true);
  }, 60_000);

  it('a reader in another thread finds every published id while the writer freezes, compacts and merges', async () => {
    const { TotalSupplyInvariant } = await import('./helpers/lib.js');
    const kernel = new Kernel(new TotalSupplyInvariant(), { historyHotCapacity: 512 });
    const N = 60_000;
    const idBuffer = new SharedArrayBuffer(32 * N);
    const idBytes = new Uint8Array(idBuffer);
    const control = new SharedArrayBuffer(8);
    const words = new Int32Array(control);
    const reader = startWorker(READER, { shared: kernel.shared, ids: idBuffer, control });
    const report = firstMessage<{ checks: number; missed: number; phantoms: number; size: number }>(reader, { timeoutMs: 60_000, what: 'history reader' });
    let prev: Uint8Array[] = [];
    for (let i = 0; i < N; i++) {
      const payload = payloadOf(i);
      const id = factId(prev, payload);
      expect(kernel.tryAdmitRaw(id, prev, payload)).toBe(AdmitCode.Ok);
      idBytes.set(id, 32 * i);
      prev = [id];
      if (i % 500 === 499) {
        kernel.publish();
        Atomics.store(words, 0, i + 1);
        // Let the compactor and the reader run (two cores, three threads).
        if (i % 5_000 === 4_999) await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
    await until(kernel, () => kernel.historyMemory().frozen.tables === 0, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    Atomics.store(words, 1, 1);
    const r = await report;
    expect(r.missed).toBe(0);
    expect(r.phantoms).toBe(0);
    expect(r.checks).toBeGreaterThan(1_000);
    expect(r.size).toBe(N);
    expect(kernel.historyMemory().runs.ids).toBeGreaterThan(N - 1_024);
  }, 90_000);
});
