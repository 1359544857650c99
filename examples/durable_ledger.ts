// The main demo (`npm start`): a durable treasury ledger. A child process admits a million
// content-addressed transfers into a DurableKernel and reports what is durable; part-way through
// this process kills it with SIGKILL. Then it recovers the data directory, checks that every
// transfer acknowledged durable survived (and nothing else appeared), finishes the million,
// checkpoints, reopens once more and prints throughput, latency percentiles and recovery speed.
//
//   node build/examples/durable_ledger.js [data dir]        (default: ./.ctfs-demo, wiped first)
//   CTFS_DEMO_FACTS=200000 npm start                          (fewer transfers)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdmitCode,
  ConservationState,
  DurableKernel,
  TotalSupplyInvariant,
  admitCodeName,
  factId,
  u64le,
  type FactId,
} from 'ctfs';

const FACTS = Number(process.env.CTFS_DEMO_FACTS ?? 1_000_000);
/** Each transfer depends on one of the 64 before it. */
const WINDOW = 64;
/** 16-byte amount + a 184-byte memo (the nonce and padding): 200-byte payloads. */
const MEMO_BYTES = 184;
/** The child reports the durable watermark every 5% of the run; progress lines use the same step. */
const PROGRESS_EVERY = Math.max(1000, Math.round(FACTS / 20));
const initial = new ConservationState(0n, -(1n << 100n), 1n << 100n).toCell();

interface Transfer {
  id: FactId;
  deps: FactId[];
  payload: Uint8Array;
  delta: bigint;
}

/** The same transfers in every process: a seeded generator, BLAKE3 ids over (deps, payload). */
function transfers(n: number): Transfer[] {
  let seed = 0x2545f491;
  const random = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const out: Transfer[] = [];
  for (let i = 0; i < n; i++) {
    const delta = BigInt(Math.floor(random() * 200) - 50);
    const deps = i === 0 ? [] : [out[Math.max(0, i - 1 - Math.floor(random() * WINDOW))]!.id];
    const memo = new Uint8Array(MEMO_BYTES);
    memo.set(u64le(i));
    const payload = TotalSupplyInvariant.payload(delta, memo);
    out.push({ id: factId(deps, payload), deps, payload, delta });
  }
  return out;
}

const percentile = (sorted: Float64Array, p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
const us = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`;
const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000).toLocaleString()}/s`;

/**
 * Admits transfers[from..to) with admitRawWithHandle, waiting for the next batch when the WAL arena is
 * full; samples stage→durable latency on every 16th transfer; calls `onDurable` as the durable
 * watermark passes each PROGRESS_EVERY. Returns the latencies (ms) and the elapsed time.
 */
async function admitAll(
  kernel: DurableKernel,
  all: Transfer[],
  from: number,
  to: number,
  onDurable: (durable: number) => void,
): Promise<{ latencies: Float64Array; ms: number; arenaWaits: number }> {
  const SAMPLE = 16;
  const base = kernel.lastSequence;
  const staged = new Float64Array(Math.ceil((to - from) / SAMPLE));
  const latencies = new Float64Array(staged.length);
  let sampled = 0;
  let settled = 0;
  let reported = Math.floor(kernel.durableSequence / PROGRESS_EVERY);
  let arenaWaits = 0;
  const observe = (): void => {
    const durable = kernel.durableSequence;
    const now = performance.now();
    // The transfer sampled as #s has sequence base + s * SAMPLE + 1.
    while (settled < sampled && base + settled * SAMPLE + 1 <= durable) {
      latencies[settled] = now - staged[settled]!;
      settled++;
    }
    if (Math.floor(durable / PROGRESS_EVERY) > reported) {
      reported = Math.floor(durable / PROGRESS_EVERY);
      onDurable(durable);
    }
  };
  const started = performance.now();
  for (let i = from; i < to; i++) {
    const t = all[i]!;
    let code = kernel.tryAdmitRaw(t.id, t.deps, t.payload);
    while (code === AdmitCode.ArenaFull) {
      arenaWaits++;
      await kernel.whenDurable(kernel.durableSequence + 1);
      observe();
      code = kernel.tryAdmitRaw(t.id, t.deps, t.payload);
    }
    if (code !== AdmitCode.Ok) throw new Error(`transfer ${i} refused: ${admitCodeName(code)}`);
    if ((i - from) % SAMPLE === 0) staged[sampled++] = performance.now();
    observe();
  }
  while (settled < sampled) {
    await kernel.whenDurable(Math.min(kernel.lastSequence, base + settled * SAMPLE + 1));
    observe();
  }
  return { latencies: latencies.sort(), ms: performance.now() - started, arenaWaits };
}

/**
 * Child: admit everything, printing `D <durable sequence>` lines, until killed. If it gets through
 * every transfer before the kill arrives it waits to be killed: the crash is the parent's to make.
 */
async function child(dir: string): Promise<void> {
  const all = transfers(FACTS);
  const kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), { indexCapacity: FACTS, initialState: initial, announce: false, prefault: true });
  fs.writeSync(1, `READY ${kernel.backend}\n`);
  await admitAll(kernel, all, 0, FACTS, (durable) => fs.writeSync(1, `D ${durable}\n`));
  await kernel.flush();
  fs.writeSync(1, `D ${kernel.durableSequence}\n`);
  setInterval(() => undefined, 1000);
}

async function main(dir: string): Promise<void> {
  console.log(`ctfs durable ledger: ${FACTS.toLocaleString()} transfers of 200-byte payloads, each depending on a recent one`);
  console.log(`data directory: ${dir} (wiped)\n`);
  fs.rmSync(dir, { recursive: true, force: true });
  let t0 = performance.now();
  const all = transfers(FACTS);
  console.log(`generated and content-addressed the transfers in ${(performance.now() - t0).toFixed(0)} ms`);

  // 1. A child admits; we kill it with SIGKILL once 30–50% is durable.
  const crashAt = Math.floor(FACTS * (0.3 + Math.random() * 0.2));
  console.log(`\n1. child process admitting; it will be killed with SIGKILL after ~${crashAt.toLocaleString()} durable transfers`);
  const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let acked = 0;
  let childStart = 0;
  let killedAt = 0;
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const [kind, value] = buffered.slice(0, nl).split(' ');
        buffered = buffered.slice(nl + 1);
        if (kind === 'READY') {
          childStart = performance.now();
          console.log(`   child ready (${value} backend)`);
        } else if (kind === 'D') {
          acked = Number(value);
          const ms = performance.now() - childStart;
          console.log(`   ${acked.toLocaleString()} durable (${rate(acked, ms)})`);
          if (acked >= crashAt && killedAt === 0) {
            killedAt = acked;
            proc.kill('SIGKILL');
          }
        }
      }
    });
    proc.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code ?? signal} before the crash`))));
  });
  console.log(`   killed with SIGKILL; ${acked.toLocaleString()} transfers had been acknowledged durable`);

  // 2. Recover and verify.
  console.log('\n2. recovery');
  t0 = performance.now();
  const kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), { indexCapacity: FACTS, initialState: initial, prefault: true });
  const report = kernel.recovery;
  const recovered = report.lastSequence;
  console.log(`   replayed ${report.replayed.toLocaleString()} WAL records in ${report.durationMs.toFixed(0)} ms (${rate(report.replayed, report.durationMs)}), open ${(performance.now() - t0).toFixed(0)} ms`);
  console.log(`   torn tail: ${report.tornTail === undefined ? 'none' : `${report.tornTail.bytes} bytes of an unacknowledged batch dropped`}`);
  assert.ok(recovered >= acked, `lost acknowledged transfers: ${recovered} recovered < ${acked} acknowledged`);
  let expected = 0n;
  for (let i = 0; i < recovered; i++) {
    assert.ok(kernel.contains(all[i]!.id), `transfer ${i} missing`);
    expected += all[i]!.delta;
  }
  for (let i = recovered; i < Math.min(FACTS, recovered + 10_000); i++) assert.ok(!kernel.contains(all[i]!.id), `transfer ${i} appeared`);
  assert.equal(ConservationState.fromCell(kernel.state).balance, expected);
  assert.equal(kernel.size, recovered);
  console.log(`   every acknowledged transfer present exactly once (${recovered.toLocaleString()} recovered ≥ ${acked.toLocaleString()} acknowledged); balance ${expected} matches a replay`);

  // 3. Finish the million in this process.
  console.log(`\n3. admitting the remaining ${(FACTS - recovered).toLocaleString()} transfers (${kernel.backend} backend)`);
  const run = await admitAll(kernel, all, recovered, FACTS, (durable) => console.log(`   ${durable.toLocaleString()} durable`));
  const done = FACTS - recovered;
  const stats = kernel.logStats;
  const checkpoint = await kernel.checkpoint();
  await kernel.close();
  console.log(`   checkpoint of ${checkpoint.facts.toLocaleString()} facts (${(checkpoint.bytes / 2 ** 20).toFixed(1)} MiB) in ${checkpoint.durationMs.toFixed(0)} ms`);

  // 4. Reopen from the checkpoint and verify the end state.
  t0 = performance.now();
  const again = await DurableKernel.open(dir, new TotalSupplyInvariant(), { indexCapacity: FACTS, initialState: initial, announce: false, prefault: true });
  const reopenMs = performance.now() - t0;
  const total = all.reduce((sum, t) => sum + t.delta, 0n);
  assert.equal(again.size, FACTS);
  assert.equal(ConservationState.fromCell(again.state).balance, total);
  await again.close();

  console.log('\nresults');
  console.log(`   durable throughput      ${rate(done, run.ms)} (${done.toLocaleString()} transfers, ${stats.fsyncs.toLocaleString()} fdatasyncs, ${Math.round(stats.records / Math.max(1, stats.fsyncs))} records per batch)`);
  console.log(`   stage → durable latency p50 ${us(percentile(run.latencies, 0.5))}, p90 ${us(percentile(run.latencies, 0.9))}, p99 ${us(percentile(run.latencies, 0.99))} (full speed: latency ≈ arena ÷ disk rate)`);
  console.log(`   reopen from checkpoint  ${reopenMs.toFixed(0)} ms for ${FACTS.toLocaleString()} facts`);
  console.log(`   final balance ${total} over ${FACTS.toLocaleString()} transfers: verified after a crash, a recovery and a reopen`);
}

const args = process.argv.slice(2);
if (args[0] === '--child') await child(args[1]!);
else await main(path.resolve(args[0] ?? process.env.CTFS_DEMO_DIR ?? '.ctfs-demo'));
