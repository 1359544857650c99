/**
 * Crash safety with real processes: a child (test/fixtures/crash-child.mjs) admits facts into a
 * DurableKernel and is SIGKILLed at a random moment; the directory is then checked against
 * everything the child printed, and the next child recovers the same directory and goes on.
 * Used by test/crash.test.ts (a few cycles) and by scripts/crash-loop.mjs (`npm run test:crash`,
 * many cycles, from the compiled build/ tree).
 *
 * The library the checker runs in this process is passed in (`CrashLibrary`): the test passes
 * test/helpers/lib.ts, the CLI the compiled dist/ (or $CTFS_CRASH_DIST). The children always load
 * dist/ (or $CTFS_CRASH_DIST) themselves; only text crosses between them and the checker.
 *
 * A SIGKILL loses nothing the kernel wrote (the page cache survives), so on top of it:
 *  - power loss, simulated on portable-backend cycles: the child runs with a preload that prints
 *    `D <segment> <size>` after each fdatasync/fsync of a segment, and after the kill every
 *    segment loses what was never synced (all of it, or all but a random part) — this is what
 *    catches a durable watermark that advances before the fdatasync;
 *  - torn tails cut on purpose now and then (injectTornTail), after every record that must stay.
 *
 * What is checked after each kill (verifyDirectory):
 *  (a) every fact acknowledged durable (an `A` line) in any run so far is recovered
 *      (kernel.contains), and exactly once: the recovery order has no repeated id, no id occurs in
 *      two WAL records (scanned independently of the library, wal-scan.ts), the checkpoints form
 *      one lineage (each one's ids a prefix of the next one's, no repeats) and agree with the WAL;
 *  (b) nothing was recovered that was never submitted (every recovered id has an `S` line, and
 *      the kernel holds exactly the facts of the recovery order, no others);
 *  (c) the recovered state cell is byte-identical to a fresh in-memory TwoLaneKernel fed the
 *      recovered facts (rebuilt from the `S` lines: delta, deps, nonce) in recovery order;
 *  (d) recovery.lastSequence equals the number of recovered facts, and the WAL's readable records
 *      end exactly where recovery says (no valid record dropped, no sequence gap).
 *  Plus: the previous cycle's recovery order is a prefix of this one's (history never changes),
 *  the next child recovers exactly as many facts as the checker did, no checkpoint is rejected,
 *  no admission is refused or ack failed for a reason other than back-pressure.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Lib from '../helpers/lib.js';
import { prng } from '../helpers/random.mjs';
import { LAYOUT, scanCheckpoints, scanSegments, type ScannedSegment } from './wal-scan.js';

/** What the harness uses of the library: public API only, so any compiled copy will do. */
export type CrashLibrary = Pick<
  typeof Lib,
  | 'ConservationState'
  | 'DurableKernel'
  | 'I128_MAX'
  | 'NativeUnavailableError'
  | 'TotalSupplyInvariant'
  | 'TwoLaneKernel'
  | 'admitCodeName'
  | 'crc32c'
  | 'factId'
  | 'fromHex'
  | 'toHex'
>;

export type Backend = 'portable' | 'uring' | 'auto';
export type Mode = 'random' | 'block';

/** The project root: the first directory above this module with a package.json (this file also runs compiled, from build/). */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('no package.json above the crash harness');
    dir = up;
  }
  return dir;
}

export const CHILD = path.join(projectRoot(), 'test', 'fixtures', 'crash-child.mjs');
const encoder = new TextEncoder();

/** The state a new log starts from (as in the child). */
export function initialState(lib: CrashLibrary): Uint8Array {
  return new lib.ConservationState(0n, 0n, lib.I128_MAX).toBytes();
}

/**
 * Awaits `promise` with a timer keeping the event loop alive. Older builds kept nothing alive
 * while the persistence worker started, so a process with nothing else to do exited silently
 * (status 0) when the worker failed to start (backend 'uring' without io_uring);
 * CTFS_CRASH_DIST may point at such a build.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

export interface UringProbe {
  readonly available: boolean;
  readonly reason: string;
}

/** Whether a DurableKernel can use io_uring here; else the reason. */
export async function probeUring(lib: CrashLibrary): Promise<UringProbe> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-uring-probe-'));
  try {
    const kernel = await keepAlive(lib.DurableKernel.open(dir, new lib.TotalSupplyInvariant(), { announce: false, backend: 'uring' }));
    const backend = kernel.backend;
    await kernel.close();
    return backend === 'io_uring' ? { available: true, reason: '' } : { available: false, reason: `backend is ${backend}` };
  } catch (error) {
    if (error instanceof lib.NativeUnavailableError) return { available: false, reason: error.message };
    throw error;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------- history

export interface SubmittedFact {
  readonly run: string;
  /** Its index among the run's S lines. */
  readonly k: number;
  readonly delta: bigint;
  /** Hex. */
  readonly deps: string[];
  readonly payload: Uint8Array;
}

/** Everything the children printed for one directory, over all its cycles. */
export interface History {
  /** hex id → the fact its S line describes. */
  readonly facts: Map<string, SubmittedFact>;
  /** Ids acknowledged durable (A lines), over every run. */
  readonly acked: Set<string>;
  /** The recovery order the last check found (hex ids). */
  order: string[] | undefined;
  runs: number;
  checkpoints: number;
  /** Torn tails a kill left by itself, and ones cut on purpose (injectTornTail). */
  tornTails: number;
  injected: number;
}

export function newHistory(): History {
  return { facts: new Map(), acked: new Set(), order: undefined, runs: 0, checkpoints: 0, tornTails: 0, injected: 0 };
}

/** The payload of the k-th S line of run `run` (as the child builds it). */
export function payloadOf(lib: CrashLibrary, run: string, k: number, delta: bigint): Uint8Array {
  const pad = k % 5 === 0 ? Math.imul(k + 1, 0x9e3779b1) >>> 20 : 0;
  return lib.TotalSupplyInvariant.payload(delta, encoder.encode(`${run}:${k}`.padEnd(`${run}:${k}`.length + pad, '.')));
}

// ---------------------------------------------------------------------------------- one run

export interface ChildOptions {
  readonly dir: string;
  readonly run: string;
  readonly seed: number;
  readonly backend: Backend;
  readonly mode?: Mode;
  /** Hex ids the child's first facts depend on. */
  readonly deps?: readonly string[];
  readonly killAfterMs: number;
  readonly killAfterAcks?: number;
  readonly startTimeoutMs?: number;
  /** Preload the sync trace (power-loss simulation). */
  readonly traceSyncs?: boolean;
}

export interface ChildResult {
  readonly run: string;
  /** Facts the child recovered (its READY line). */
  ready: number | undefined;
  backend: string | undefined;
  readonly lines: string[];
  stderr: string;
  /** The signal or exit code. */
  exit: NodeJS.Signals | number | null | undefined;
  killed: boolean;
  /** A partial last line, cut by the kill (not an event). */
  partial: string;
  readonly spawned: number;
  started: number;
  killedAt: number;
}

/**
 * Spawns the child on `dir` and kills it: `killAfterMs` after READY, or on the `killAfterAcks`-th
 * ack, or (block mode) `killAfterMs` after the BLOCK line. Resolves with what it printed.
 */
export function runChild({ dir, run, seed, backend, mode = 'random', deps = [], killAfterMs, killAfterAcks = Infinity, startTimeoutMs = 60_000, traceSyncs = false }: ChildOptions): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const args = [...(traceSyncs ? [SYNC_TRACE_ARG] : []), CHILD, dir, run, String(seed), backend, mode, deps.join(',')];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result: ChildResult = { run, ready: undefined, backend: undefined, lines: [], stderr: '', exit: undefined, killed: false, partial: '', spawned: performance.now(), started: 0, killedAt: 0 };
    let pending = '';
    let acks = 0;
    let timer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (result.killed || result.exit !== undefined) return;
      result.killed = true;
      result.killedAt = performance.now();
      clearTimeout(timer);
      child.kill('SIGKILL');
    };
    const startTimer = setTimeout(() => {
      if (result.ready === undefined) {
        result.stderr += `\n[harness] no READY within ${startTimeoutMs} ms`;
        kill();
      }
    }, startTimeoutMs);
    const onLine = (line: string): void => {
      result.lines.push(line);
      if (line.startsWith('READY ')) {
        const [, n, name] = line.split(' ');
        result.ready = Number(n);
        result.backend = name;
        result.started = performance.now();
        clearTimeout(startTimer);
        if (mode !== 'block') timer = setTimeout(kill, killAfterMs);
      } else if (line.startsWith('A ')) {
        if (++acks >= killAfterAcks) kill();
      } else if (line.startsWith('BLOCK ')) {
        timer = setTimeout(kill, killAfterMs);
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      result.stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(startTimer);
      // A partial last line (cut by the kill) is not a complete event: dropped.
      result.partial = pending;
      result.exit = signal ?? code;
      resolve(result);
    });
  });
}

/**
 * Folds a run's output into the history; returns protocol violations (lines that should never
 * appear, ids that do not hash to what the S line says, …).
 */
export function absorb(lib: CrashLibrary, history: History, result: ChildResult): string[] {
  const violations: string[] = [];
  let k = 0;
  for (const line of result.lines) {
    const parts = line.split(' ');
    switch (parts[0]) {
      case 'S': {
        const [, hex = '', deltaText = '', ...deps] = parts;
        const delta = BigInt(deltaText);
        const payload = payloadOf(lib, result.run, k, delta);
        const rebuilt = lib.toHex(lib.factId(deps.map(lib.fromHex), payload));
        if (rebuilt !== hex) violations.push(`run ${result.run}: S line ${k} (${hex}) does not hash to its id (rebuilt ${rebuilt})`);
        if (history.facts.has(hex)) violations.push(`run ${result.run}: id ${hex} submitted twice`);
        history.facts.set(hex, { run: result.run, k, delta, deps, payload });
        k++;
        break;
      }
      case 'A':
        if (!history.facts.has(parts[1]!)) violations.push(`run ${result.run}: ack for ${parts[1]}, never submitted`);
        history.acked.add(parts[1]!);
        break;
      case 'R':
        if (parts[2] !== 'ArenaFull') violations.push(`run ${result.run}: admission of ${parts[1]} refused: ${parts[2]}`);
        break;
      case 'F':
        violations.push(`run ${result.run}: durable ack of ${parts[1]} failed: ${parts.slice(2).join(' ')}`);
        break;
      case 'C':
        history.checkpoints++;
        break;
      case 'ERR':
        violations.push(`run ${result.run}: child error: ${line.slice(4)}`);
        break;
      default:
        break;
    }
  }
  if (result.exit !== 'SIGKILL' || !result.killed) {
    violations.push(`run ${result.run}: child ended on its own (${result.exit}) before it was killed; stderr: ${result.stderr.trim().slice(-2000)}`);
  }
  return violations;
}

// ---------------------------------------------------------------------------------- verification

export interface DirectoryCheck {
  readonly violations: string[];
  /** The recovery order (hex ids). */
  readonly order: string[];
  /** Facts recovered, or -1 if recovery failed. */
  readonly recovered: number;
  readonly torn: boolean;
  readonly tornKind: string | undefined;
  readonly tornTail: unknown;
  /** The sequence of the checkpoint recovery started from (0: none), or -1. */
  readonly checkpoint: number;
  readonly segments: number;
  readonly lastSegment?: ScannedSegment | undefined;
  readonly state?: bigint;
}

/**
 * Checks `dir` (after a kill) against `history`. The library's recovery runs on a copy of the
 * directory, so the next child finds exactly what the killed one left.
 */
export async function verifyDirectory(lib: CrashLibrary, dir: string, history: History): Promise<DirectoryCheck> {
  const violations: string[] = [];
  const fail = (message: string): void => void violations.push(message);
  const segments = scanSegments(lib, dir);
  const checkpoints = scanCheckpoints(lib, dir);

  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-crash-check-'));
  let kernel: Lib.DurableKernel | undefined;
  try {
    fs.cpSync(dir, copy, { recursive: true, filter: (src) => path.basename(src) !== 'LOCK' });
    try {
      kernel = await keepAlive(lib.DurableKernel.open(copy, new lib.TotalSupplyInvariant(), { announce: false, backend: 'portable', initialState: initialState(lib) }));
    } catch (error) {
      // The directory cannot be recovered at all: every acknowledged fact in it is lost.
      const files = fs.readdirSync(dir).sort().map((name) => `${name} (${fs.statSync(path.join(dir, name)).size} B)`);
      const e = error as Error | undefined;
      fail(`recovery failed: ${e?.name ?? 'Error'}: ${e?.message ?? error}; ${history.acked.size} acknowledged fact(s) unreachable; files: ${files.join(', ')}`);
      const last = segments.at(-1);
      return { violations, order: history.order ?? [], recovered: -1, torn: false, tornKind: undefined, tornTail: undefined, checkpoint: -1, segments: segments.length, lastSegment: last };
    }
    const report = kernel.recovery;
    for (const r of report.rejectedCheckpoints) fail(`checkpoint ${path.basename(r.file)} rejected after a process crash: ${r.reason}`);
    if (report.duplicates !== 0) fail(`recovery skipped ${report.duplicates} duplicate records`);

    // --- the checkpoints: one lineage, each consistent with its name and with its predecessor
    for (const c of checkpoints) {
      if (c.problem !== undefined) fail(`checkpoint ${c.name}: ${c.problem}`);
      if (c.ids.length !== c.sequence) fail(`checkpoint ${c.name} holds ${c.ids.length} facts for sequence ${c.sequence}`);
      if (new Set(c.ids).size !== c.ids.length) fail(`checkpoint ${c.name} holds an id twice`);
    }
    // Each checkpoint's set of ids contains its predecessor's (they are sets: memcmp order).
    for (let i = 1; i < checkpoints.length; i++) {
      const a = checkpoints[i - 1]!;
      const b = checkpoints[i]!;
      const held = new Set(b.ids);
      const missing = a.ids.find((id) => !held.has(id));
      if (missing !== undefined) fail(`checkpoint ${b.name} lacks ${missing}, which ${a.name} holds`);
    }

    // --- the WAL as recovery must see it: records up to the next segment's start
    const visible = new Map<number, ScannedSegment['records'][number]>(); // sequence → record
    const everywhere = new Map<string, string>(); // id → where
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]!;
      const limit = i + 1 < segments.length ? segments[i + 1]!.named - 1 : Infinity;
      if (seg.headerOk && seg.first !== seg.named) fail(`segment ${seg.name} header says first sequence ${seg.first}`);
      let expected = seg.first;
      for (const rec of seg.records) {
        const where = `${seg.name}@${rec.offset}#${rec.sequence}`;
        const seen = everywhere.get(rec.id);
        if (seen !== undefined) fail(`id ${rec.id} is logged twice: ${seen} and ${where}`);
        everywhere.set(rec.id, where);
        if (rec.sequence !== expected) {
          fail(`segment ${seg.name}: record at ${rec.offset} has sequence ${rec.sequence}, expected ${expected}`);
          break;
        }
        expected++;
        if (rec.sequence > limit) continue; // a dead run's tail, superseded by the next segment
        if (visible.has(rec.sequence)) fail(`sequence ${rec.sequence} is visible twice (${seg.name})`);
        visible.set(rec.sequence, rec);
      }
    }
    const base = report.checkpoint;
    const baseCheckpoint = base === undefined ? undefined : checkpoints.find((c) => c.name === path.basename(base.file));
    if (base !== undefined && baseCheckpoint === undefined) fail(`recovery started from ${base.file}, which the scan did not find`);
    // A checkpoint holds its ids as a set (memcmp order): their admission order is the order the
    // children submitted them in (their S lines, absorbed run after run).
    const submitted = new Map([...history.facts.keys()].map((hex, i) => [hex, i]));
    const rank = (hex: string): number => submitted.get(hex) ?? Infinity;
    const baseIds = (baseCheckpoint?.ids ?? []).slice().sort((a, b) => rank(a) - rank(b));
    const from = base?.sequence ?? 0;
    // Every checkpoint holds its ids in memcmp order, and exactly the ids of the WAL records it covers.
    for (const c of checkpoints) {
      for (let i = 1; i < c.ids.length; i++) {
        if (!(c.ids[i - 1]! < c.ids[i]!)) {
          fail(`checkpoint ${c.name}: ids ${i - 1} and ${i} are not in increasing order`);
          break;
        }
      }
      const held = new Set(c.ids);
      for (let s = 1; s <= c.ids.length; s++) {
        const rec = visible.get(s);
        if (rec !== undefined && !held.has(rec.id)) {
          fail(`checkpoint ${c.name} covers sequence ${s}, but not its WAL record ${rec.id}`);
          break;
        }
      }
    }

    // --- the recovery order: the base checkpoint's ids, then the WAL from there on
    const order = baseIds.slice();
    let s = from + 1;
    for (; visible.has(s); s++) order.push(visible.get(s)!.id);
    const walEnd = s - 1;
    if (walEnd !== report.lastSequence) {
      fail(`the WAL's readable records end at sequence ${walEnd}, recovery says ${report.lastSequence}`);
    }
    if (order.length > report.lastSequence) order.length = Math.max(report.lastSequence, 0);
    for (const seq of visible.keys()) {
      if (seq > walEnd && seq > from) fail(`record ${seq} is readable but beyond a gap at ${walEnd + 1}`);
    }

    // (d) sequences without gaps: the last sequence is the number of facts
    if (report.lastSequence !== order.length) fail(`recovery.lastSequence ${report.lastSequence} but ${order.length} facts recovered`);
    if (kernel.lastSequence !== report.lastSequence) fail(`kernel.lastSequence ${kernel.lastSequence} ≠ recovery.lastSequence ${report.lastSequence}`);
    if (from + report.replayed !== report.lastSequence) fail(`checkpoint ${from} + replayed ${report.replayed} ≠ lastSequence ${report.lastSequence}`);
    if (kernel.size !== order.length) fail(`the kernel holds ${kernel.size} facts, the recovery order ${order.length}`);

    // (a) exactly once
    const orderSet = new Set(order);
    if (orderSet.size !== order.length) fail(`the recovery order repeats ${order.length - orderSet.size} id(s)`);
    const lost: string[] = [];
    for (const hex of history.acked) if (!orderSet.has(hex) || !kernel.contains(lib.fromHex(hex))) lost.push(hex);
    if (lost.length > 0) {
      const where = lost.slice(0, 5).map((hex) => `${hex} (run ${history.facts.get(hex)?.run}, S#${history.facts.get(hex)?.k})`);
      fail(`${lost.length} acknowledged fact(s) lost: ${where.join(', ')}`);
    }

    // (b) nothing that was never submitted; the kernel agrees with the order on every submitted id
    const foreign = order.filter((hex) => !history.facts.has(hex));
    if (foreign.length > 0) fail(`${foreign.length} recovered fact(s) were never submitted: ${foreign.slice(0, 5).join(', ')}`);
    let disagree = 0;
    for (const hex of history.facts.keys()) if (kernel.contains(lib.fromHex(hex)) !== orderSet.has(hex)) disagree++;
    if (disagree > 0) fail(`kernel.contains disagrees with the WAL/checkpoint scan on ${disagree} submitted id(s)`);

    // WAL records carry what the S lines said
    for (let seq = from + 1; seq <= walEnd; seq++) {
      const rec = visible.get(seq)!;
      const fact = history.facts.get(rec.id);
      if (fact === undefined) continue;
      if (rec.payload !== lib.toHex(fact.payload)) fail(`record ${seq} (${rec.id}) payload differs from its S line`);
      if ([...rec.deps].sort().join() !== [...fact.deps].sort().join()) fail(`record ${seq} (${rec.id}) deps differ from its S line`);
    }

    // (c) the state: a fresh in-memory kernel fed exactly the recovered facts, in order
    const fresh = lib.TwoLaneKernel.withState(new lib.TotalSupplyInvariant(), initialState(lib));
    let replayFailed = false;
    for (let i = 0; i < order.length && !replayFailed; i++) {
      const fact = history.facts.get(order[i]!);
      if (fact === undefined) continue; // reported under (b)
      const code = fresh.tryAdmitRaw(lib.fromHex(order[i]!), fact.deps.map(lib.fromHex), fact.payload);
      if (code !== 0) {
        fail(`replaying recovered fact ${i + 1} (${order[i]}) into a fresh kernel: ${lib.admitCodeName(code)}`);
        replayFailed = true;
      }
    }
    const recoveredState = lib.toHex(kernel.state.bytes);
    const expectedState = lib.toHex(fresh.state.bytes);
    if (!replayFailed && recoveredState !== expectedState) fail(`state differs: recovered ${recoveredState}, replayed ${expectedState}`);

    // history never changes: the last check's order is a prefix of this one
    if (history.order !== undefined) {
      for (let i = 0; i < history.order.length; i++) {
        if (history.order[i] !== order[i]) {
          fail(`the previous recovery order is not a prefix of this one (position ${i}: ${history.order[i]} then ${order[i]})`);
          break;
        }
      }
    }
    const last = segments.at(-1);
    // A torn batch (damaged bytes after the last valid record), or a segment whose header a kill cut short.
    const torn = report.tornTail !== undefined || (last !== undefined && (last.tailBytes > 0 || !last.headerOk));
    const tornKind = !torn ? undefined : last !== undefined && !last.headerOk ? `segment header (${last.size} bytes)` : `tail (${last?.tailBytes ?? 0} bytes)`;
    return {
      violations,
      order,
      recovered: order.length,
      torn,
      tornKind,
      tornTail: report.tornTail,
      checkpoint: from,
      segments: segments.length,
      state: lib.ConservationState.fromCell(kernel.state).balance,
    };
  } finally {
    if (kernel !== undefined) await kernel.close();
    fs.rmSync(copy, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------- torn tails

export interface TornTailCut {
  readonly file: string;
  readonly cut: number;
  readonly from: number;
  readonly droppedFromSequence: number;
}

/**
 * A SIGKILL rarely tears a write (the page cache keeps what was written), so a torn tail is also
 * made on purpose, as a power loss would: the last segment is cut at a random byte after every
 * record that must survive — acknowledged ones (and so, sequences being a prefix, everything
 * before them), records of earlier runs, and everything a checkpoint covers. Returns what was
 * cut, or undefined if nothing could be.
 */
export function injectTornTail(lib: CrashLibrary, dir: string, history: History, rand: () => number): TornTailCut | undefined {
  const segments = scanSegments(lib, dir);
  const last = segments.at(-1);
  if (last === undefined || !last.headerOk || last.records.length === 0) return undefined;
  const protectedUpTo = Math.max(history.order?.length ?? 0, ...scanCheckpoints(lib, dir).map((c) => c.sequence));
  let keep = 0;
  for (let i = 0; i < last.records.length; i++) {
    const rec = last.records[i]!;
    if (history.acked.has(rec.id) || rec.sequence <= protectedUpTo) keep = i + 1;
  }
  if (keep >= last.records.length) return undefined;
  const start = last.records[keep]!.offset;
  const end = last.size - last.tailBytes;
  // Strictly inside the droppable bytes, so a partial record is left behind.
  const cut = start + 1 + Math.floor(rand() * (end - start - 1));
  const file = path.join(dir, last.name);
  fs.truncateSync(file, cut);
  return { file: last.name, cut, from: last.size, droppedFromSequence: last.records[keep]!.sequence };
}

// ---------------------------------------------------------------------------------- power loss

/**
 * Preloaded into the child (`--import`, which also runs in its worker threads): after every
 * successful fdatasync/fsync of a WAL segment it prints `D <segment> <size>` — that many bytes of
 * the file are on stable storage. The line is written before the call returns, so before the
 * worker can advance the durable watermark and before any `A` line that depends on it. Only the
 * portable backend syncs through node:fs; io_uring's syncs are invisible to it.
 */
const SYNC_TRACE = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const SEGMENT = /^wal-[0-9a-f]{16}\\.log$/;
function note(fd) {
  let name;
  try { name = fs.readlinkSync('/proc/self/fd/' + fd).split('/').pop(); } catch { return; }
  if (!SEGMENT.test(name)) return;
  const line = Buffer.from('D ' + name + ' ' + fs.fstatSync(fd).size + '\\n');
  let off = 0;
  while (off < line.length) {
    try { off += fs.writeSync(1, line, off, line.length - off); } catch (e) { if (e.code !== 'EAGAIN') throw e; }
  }
}
for (const key of ['fdatasyncSync', 'fsyncSync']) {
  const original = fs[key];
  fs[key] = function (fd) { const result = original.call(this, fd); note(fd); return result; };
}
syncBuiltinESMExports();
`;
export const SYNC_TRACE_ARG = `--import=data:text/javascript,${encodeURIComponent(SYNC_TRACE)}`;

/** Sizes of the segment files in `dir`. */
export function segmentSizes(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  if (!fs.existsSync(dir)) return sizes;
  for (const name of fs.readdirSync(dir)) if (LAYOUT.segment.name.test(name)) sizes.set(name, fs.statSync(path.join(dir, name)).size);
  return sizes;
}

export interface PowerCut {
  readonly file: string;
  readonly from: number;
  readonly to: number;
  readonly synced: number;
  readonly zeroedHeader?: boolean;
}

/**
 * Simulates a power loss at the moment of the kill: every segment keeps what was synced (the
 * child's `D` lines) or was there before the run, and loses the rest — all of it, or all but a
 * random part (pages written back by chance). Returns the cuts.
 */
export function simulatePowerLoss(dir: string, sizesBefore: Map<string, number>, lines: readonly string[], rand: () => number): PowerCut[] {
  const headerBytes = LAYOUT.segment.headerBytes;
  const synced = new Map<string, number>();
  for (const line of lines) {
    if (!line.startsWith('D ')) continue;
    const [, name = '', size] = line.split(' ');
    synced.set(name, Math.max(synced.get(name) ?? 0, Number(size)));
  }
  const cuts: PowerCut[] = [];
  for (const [name, size] of segmentSizes(dir)) {
    const durable = Math.max(sizesBefore.get(name) ?? 0, synced.get(name) ?? 0);
    if (size <= durable) continue;
    if (durable === 0 && size >= headerBytes && rand() < 0.5) {
      // A segment created in this run whose header was never synced: its size may reach the disk
      // without its data (the "zeroed file" wal-scan.ts expects), leaving 64 zero bytes.
      const file = path.join(dir, name);
      fs.truncateSync(file, headerBytes);
      fs.writeFileSync(file, new Uint8Array(headerBytes));
      cuts.push({ file: name, from: size, to: headerBytes, synced: 0, zeroedHeader: true });
      continue;
    }
    const to = rand() < 0.5 ? durable : durable + Math.floor(rand() * (size - durable));
    fs.truncateSync(path.join(dir, name), to);
    cuts.push({ file: name, from: size, to, synced: durable });
  }
  return cuts;
}

// ---------------------------------------------------------------------------------- cycles

export interface CycleOptions {
  readonly mode?: Mode;
  readonly minMs?: number;
  readonly maxMs?: number;
  readonly backend?: Backend;
  /** How often a torn tail is cut on purpose. */
  readonly tornRate?: number;
  readonly powerLoss?: boolean;
}

export interface CycleResult {
  readonly cycle: number;
  readonly run: string;
  readonly mode: Mode;
  readonly backend: string | undefined;
  readonly violations: string[];
  readonly submitted: number;
  readonly acked: number;
  readonly ackedTotal: number;
  readonly recovered: number;
  readonly checkpoint: number;
  readonly segments: number;
  readonly torn: boolean;
  readonly tornByKill: boolean;
  readonly tornKind: string | undefined;
  readonly injected: TornTailCut | undefined;
  readonly powerCuts: PowerCut[] | undefined;
  readonly tornTail: unknown;
  readonly killAfterMs: number;
  readonly killAfterAcks: number;
  readonly lines: string[];
  readonly stderr: string;
  /** Spawn to READY (startup and recovery in the child). */
  readonly startMs: number | undefined;
  /** The check after the kill. */
  readonly verifyMs: number;
  readonly ms: number;
}

export interface HarnessOptions {
  readonly lib: CrashLibrary;
  readonly dir: string;
  readonly backend?: Backend;
  readonly seed?: number;
}

/** Runs crash cycles on one directory. */
export class CrashHarness {
  readonly lib: CrashLibrary;
  readonly dir: string;
  readonly backend: Backend;
  readonly seed: number;
  readonly history: History = newHistory();
  cycles = 0;
  lastRun: ChildResult | undefined;
  private readonly rand: () => number;

  constructor({ lib, dir, backend = 'auto', seed = Date.now() >>> 0 }: HarnessOptions) {
    this.lib = lib;
    this.dir = dir;
    this.backend = backend;
    this.seed = seed >>> 0;
    this.rand = prng(this.seed);
  }

  /**
   * One cycle: spawn, admit for a random 20–400 ms (or until a random number of acks), SIGKILL,
   * verify. `mode: 'block'` kills the child while it blocks in a Durable admission instead.
   */
  async cycle({ mode = 'random', minMs = 20, maxMs = 400, backend = this.backend, tornRate = 0.25, powerLoss = mode !== 'block' }: CycleOptions = {}): Promise<CycleResult> {
    const lib = this.lib;
    const started = performance.now();
    const n = this.cycles++;
    const run = `c${n}`;
    const rand = this.rand;
    const ackedBefore = [...this.history.acked];
    const deps: string[] = [];
    for (let i = 0; i < 8 && ackedBefore.length > 0; i++) deps.push(ackedBefore[Math.floor(rand() * ackedBefore.length)]!);
    const killAfterMs = mode === 'block' ? 300 : minMs + Math.floor(rand() * (maxMs - minMs + 1));
    const killAfterAcks = mode === 'block' || rand() < 0.7 ? Infinity : 1 + Math.floor(rand() * 300);
    // Power loss can be simulated only where the syncs can be seen: the portable backend, Linux.
    const traceSyncs = powerLoss && backend === 'portable' && process.platform === 'linux';
    const sizesBefore = traceSyncs ? segmentSizes(this.dir) : undefined;
    const result = await runChild({
      traceSyncs,
      dir: this.dir,
      run,
      seed: Math.floor(rand() * 2 ** 32),
      backend,
      mode,
      deps: [...new Set(deps)],
      killAfterMs,
      killAfterAcks,
    });
    this.lastRun = result;
    this.history.runs++;
    const violations = absorb(lib, this.history, result);
    if (result.ready === undefined) violations.push(`run ${run}: no READY line; stderr: ${result.stderr.trim().slice(-2000)}`);
    else if (this.history.order !== undefined && result.ready !== this.history.order.length) {
      violations.push(`run ${run}: the child recovered ${result.ready} facts, the previous check ${this.history.order.length}`);
    }
    if (backend === 'uring' && result.backend !== undefined && result.backend !== 'io_uring') violations.push(`run ${run}: backend ${result.backend}, not io_uring`);
    const verifyStarted = performance.now();
    const powerCuts = sizesBefore !== undefined && result.backend === 'portable' ? simulatePowerLoss(this.dir, sizesBefore, result.lines, rand) : undefined;
    const injected = mode !== 'block' && rand() < tornRate ? injectTornTail(lib, this.dir, this.history, rand) : undefined;
    if (injected !== undefined) this.history.injected++;
    const check = await verifyDirectory(lib, this.dir, this.history);
    violations.push(...check.violations);
    this.history.order = check.order;
    // Torn by the kill itself, not by a simulated power loss or a cut made on purpose.
    const tornByKill = check.torn && injected === undefined && !((powerCuts?.length ?? 0) > 0);
    if (tornByKill) this.history.tornTails++;
    const submitted = result.lines.filter((l) => l.startsWith('S ')).length;
    const acked = result.lines.filter((l) => l.startsWith('A ')).length;
    return {
      cycle: n,
      run,
      mode,
      backend: result.backend,
      violations,
      submitted,
      acked,
      ackedTotal: this.history.acked.size,
      recovered: check.recovered,
      checkpoint: check.checkpoint,
      segments: check.segments,
      torn: check.torn,
      tornByKill,
      tornKind: check.tornKind,
      injected,
      powerCuts,
      tornTail: check.tornTail,
      killAfterMs,
      killAfterAcks,
      lines: result.lines,
      stderr: result.stderr,
      startMs: result.started === 0 ? undefined : Math.round(result.started - result.spawned),
      verifyMs: Math.round(performance.now() - verifyStarted),
      ms: Math.round(performance.now() - started),
    };
  }
}
