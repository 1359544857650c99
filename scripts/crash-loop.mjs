#!/usr/bin/env node
// Crash safety with real processes: a child (test/fixtures/crash-child.mjs) admits facts into a
// DurableKernel and is SIGKILLed at a random moment; the directory is then checked against
// everything the child printed, and the next child recovers the same directory and goes on.
//
//   node scripts/crash-loop.mjs [cycles=100] [--backend=mixed|portable|uring|auto] [--seed=N] [--dir=PATH] [--keep]
//   (npm run test:crash -- 100 --backend=portable)
//
// `mixed` (the default when io_uring works, else `portable`) alternates the backends on one
// directory. Prints one line per cycle and a summary; exits 1 on the first violation, printing
// the evidence (the directory is kept then). The harness is exported for test/crash.test.ts.
//
// A SIGKILL loses nothing the kernel wrote (the page cache survives), so on top of it:
//  - power loss, simulated on portable-backend cycles: the child runs with a preload that prints
//    `D <segment> <size>` after each fdatasync/fsync of a segment, and after the kill every
//    segment loses what was never synced (all of it, or all but a random part) — this is what
//    catches a durable watermark that advances before the fdatasync;
//  - torn tails cut on purpose now and then (injectTornTail), after every record that must stay.
//
// What is checked after each kill (verifyDirectory):
//  (a) every fact acknowledged durable (an `A` line) in any run so far is recovered
//      (kernel.contains), and exactly once: the recovery order has no repeated id, no id occurs in
//      two WAL records (scanned independently of the library: segment header 64 bytes, records
//      with length at +0, CRC-32C, sequence at +16, id at +28..+60), the checkpoints form one
//      lineage (each one's ids a prefix of the next one's, no repeats) and agree with the WAL;
//  (b) nothing was recovered that was never submitted (every recovered id has an `S` line, and
//      the kernel holds exactly the facts of the recovery order, no others);
//  (c) the recovered state cell is byte-identical to a fresh in-memory TwoLaneKernel fed the
//      recovered facts (rebuilt from the `S` lines: delta, deps, nonce) in recovery order;
//  (d) recovery.lastSequence equals the number of recovered facts, and the WAL's readable records
//      end exactly where recovery says (no valid record dropped, no sequence gap).
//  Plus: the previous cycle's recovery order is a prefix of this one's (history never changes),
//  the next child recovers exactly as many facts as the checker did, no checkpoint is rejected,
//  no admission is refused or ack failed for a reason other than back-pressure.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// CTFS_CRASH_DIST: another compiled copy of the library (e.g. a mutated one) for the children and
// the checker; default dist/. (A copy outside the project needs node_modules and a package.json
// with "type": "module" beside it, and CTFS_NATIVE_PATH for io_uring.)
const LIBRARY = process.env.CTFS_CRASH_DIST ? pathToFileURL(path.join(process.env.CTFS_CRASH_DIST, 'index.js')).href : new URL('../dist/index.js', import.meta.url).href;
const {
  ConservationState,
  DurableKernel,
  I128_MAX,
  NativeUnavailableError,
  TotalSupplyInvariant,
  TwoLaneKernel,
  admitCodeName,
  crc32c,
  factId,
  fromHex,
  toHex,
} = await import(LIBRARY);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CHILD = path.join(ROOT, 'test', 'fixtures', 'crash-child.mjs');
/** The state a new log starts from (as in the child). */
export const INITIAL_STATE = new ConservationState(0n, 0n, I128_MAX).toBytes();

const SEGMENT_HEADER_BYTES = 64;
const SEGMENT_MAGIC = 0x53575443; // "CTWS"
const RECORD_MAGIC = 0x52575443; // "CTWR"
const RECORD_HEADER_BYTES = 64;
const CHECKPOINT_HEADER_BYTES = 128;
const TWO_POW_32 = 0x1_0000_0000;
const SEGMENT_RE = /^wal-([0-9a-f]{16})\.log$/;
const CHECKPOINT_RE = /^checkpoint-([0-9a-f]{16})\.ckpt$/;
const encoder = new TextEncoder();

/** mulberry32 */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Awaits `promise` with a timer keeping the event loop alive. Builds before 70a42c0 kept nothing
 * alive while the persistence worker started, so a process with nothing else to do exited
 * silently (status 0) when the worker failed to start (backend 'uring' without io_uring);
 * CTFS_CRASH_DIST may point at such a build.
 */
export async function keepAlive(promise) {
  const timer = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

/** True if a DurableKernel can use io_uring here; else the reason. */
export async function probeUring() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-uring-probe-'));
  try {
    const kernel = await keepAlive(DurableKernel.open(dir, new TotalSupplyInvariant(), { announce: false, backend: 'uring' }));
    const backend = kernel.backend;
    await kernel.close();
    return backend === 'io_uring' ? { available: true, reason: '' } : { available: false, reason: `backend is ${backend}` };
  } catch (error) {
    if (error instanceof NativeUnavailableError) return { available: false, reason: error.message };
    throw error;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------- raw scanning

function u64(view, at) {
  return view.getUint32(at + 4, true) * TWO_POW_32 + view.getUint32(at, true);
}

/**
 * Every segment in `dir`, read independently of the library: its header, the valid records from
 * the start (stopping at the first one that is not), and how many bytes follow them.
 */
export function scanSegments(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const m = SEGMENT_RE.exec(name);
    if (m === null) continue;
    const named = Number.parseInt(m[1], 16);
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir, name)));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const seg = { name, named, size: bytes.length, headerOk: false, first: named, records: [], tailBytes: 0 };
    out.push(seg);
    if (
      bytes.length < SEGMENT_HEADER_BYTES ||
      view.getUint32(0, true) !== SEGMENT_MAGIC ||
      view.getUint32(60, true) !== crc32c(bytes, 0, 60)
    ) {
      seg.tailBytes = bytes.length;
      continue;
    }
    seg.headerOk = true;
    seg.first = u64(view, 8);
    let off = SEGMENT_HEADER_BYTES;
    while (off + RECORD_HEADER_BYTES <= bytes.length) {
      const length = view.getUint32(off, true);
      if (length < RECORD_HEADER_BYTES || length % 8 !== 0 || off + length > bytes.length) break;
      if (view.getUint32(off + 8, true) !== RECORD_MAGIC) break;
      const crc = crc32c(bytes, off + 8, off + length, crc32c(bytes, off, off + 4));
      if (crc !== view.getUint32(off + 4, true)) break;
      const nDeps = view.getUint16(off + 12, true);
      const payloadLength = view.getUint32(off + 24, true);
      const deps = [];
      for (let d = 0; d < nDeps; d++) deps.push(toHex(bytes.subarray(off + 64 + 32 * d, off + 96 + 32 * d)));
      const p = off + 64 + 32 * nDeps;
      seg.records.push({
        sequence: u64(view, off + 16),
        id: toHex(bytes.subarray(off + 28, off + 60)),
        deps,
        payload: toHex(bytes.subarray(p, p + payloadLength)),
        offset: off,
      });
      off += length;
    }
    seg.tailBytes = bytes.length - off;
  }
  return out;
}

/** Every checkpoint file in `dir`, oldest first: sequence and ids (sizes checked, hash not). */
export function scanCheckpoints(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir)) {
    const m = CHECKPOINT_RE.exec(name);
    if (m === null) continue;
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir, name)));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const entry = { name, sequence: Number.parseInt(m[1], 16), ids: [], problem: undefined };
    out.push(entry);
    if (bytes.length < CHECKPOINT_HEADER_BYTES) {
      entry.problem = `${bytes.length} bytes`;
      continue;
    }
    const cells = view.getUint32(32, true);
    const count = view.getUint32(36, true);
    const at = CHECKPOINT_HEADER_BYTES + 64 * cells + 64 + 32;
    if (u64(view, 8) !== entry.sequence) entry.problem = `header sequence ${u64(view, 8)}`;
    else if (bytes.length !== at + 32 * count) entry.problem = `size ${bytes.length} for ${cells} cells and ${count} ids`;
    else for (let i = 0; i < count; i++) entry.ids.push(toHex(bytes.subarray(at + 32 * i, at + 32 * i + 32)));
  }
  return out.sort((a, b) => a.sequence - b.sequence);
}

// ---------------------------------------------------------------------------------- history

/** Everything the children printed for one directory, over all its cycles. */
export function newHistory() {
  return {
    /** hex id → { run, k, delta, deps: hex[], payload: Uint8Array } from the S lines. */
    facts: new Map(),
    /** Ids acknowledged durable (A lines), over every run. */
    acked: new Set(),
    /** The recovery order the last check found (hex ids). */
    order: undefined,
    runs: 0,
    checkpoints: 0,
    /** Torn tails a kill left by itself, and ones cut on purpose (injectTornTail). */
    tornTails: 0,
    injected: 0,
  };
}

/** The payload of the k-th S line of run `run` (as the child builds it). */
export function payloadOf(run, k, delta) {
  const pad = k % 5 === 0 ? Math.imul(k + 1, 0x9e3779b1) >>> 20 : 0;
  return TotalSupplyInvariant.payload(delta, encoder.encode(`${run}:${k}`.padEnd(`${run}:${k}`.length + pad, '.')));
}

// ---------------------------------------------------------------------------------- one run

/**
 * Spawns the child on `dir` and kills it: `killAfterMs` after READY, or on the `killAfterAcks`-th
 * ack, or (block mode) `killAfterMs` after the BLOCK line. Resolves with what it printed.
 */
export function runChild({ dir, run, seed, backend, mode = 'random', deps = [], killAfterMs, killAfterAcks = Infinity, startTimeoutMs = 60_000, traceSyncs = false }) {
  return new Promise((resolve, reject) => {
    const args = [...(traceSyncs ? [SYNC_TRACE_ARG] : []), CHILD, dir, run, String(seed), backend, mode, deps.join(',')];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result = { run, ready: undefined, backend: undefined, lines: [], stderr: '', exit: undefined, killed: false, spawned: performance.now(), started: 0, killedAt: 0 };
    let pending = '';
    let acks = 0;
    let timer;
    const kill = () => {
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
    const onLine = (line) => {
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
    child.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
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
export function absorb(history, result) {
  const violations = [];
  let k = 0;
  for (const line of result.lines) {
    const parts = line.split(' ');
    switch (parts[0]) {
      case 'S': {
        const [, hex, deltaText, ...deps] = parts;
        const delta = BigInt(deltaText);
        const payload = payloadOf(result.run, k, delta);
        const rebuilt = toHex(factId(deps.map(fromHex), payload));
        if (rebuilt !== hex) violations.push(`run ${result.run}: S line ${k} (${hex}) does not hash to its id (rebuilt ${rebuilt})`);
        if (history.facts.has(hex)) violations.push(`run ${result.run}: id ${hex} submitted twice`);
        history.facts.set(hex, { run: result.run, k, delta, deps, payload });
        k++;
        break;
      }
      case 'A':
        if (!history.facts.has(parts[1])) violations.push(`run ${result.run}: ack for ${parts[1]}, never submitted`);
        history.acked.add(parts[1]);
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

/**
 * Checks `dir` (after a kill) against `history`; returns { violations, recovered, torn, ... }.
 * The library's recovery runs on a copy of the directory, so the next child finds exactly what
 * the killed one left.
 */
export async function verifyDirectory(dir, history) {
  const violations = [];
  const fail = (message) => violations.push(message);
  const segments = scanSegments(dir);
  const checkpoints = scanCheckpoints(dir);

  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-crash-check-'));
  let kernel;
  try {
    fs.cpSync(dir, copy, { recursive: true, filter: (src) => path.basename(src) !== 'LOCK' });
    try {
      kernel = await keepAlive(DurableKernel.open(copy, new TotalSupplyInvariant(), { announce: false, backend: 'portable', initialState: INITIAL_STATE }));
    } catch (error) {
      // The directory cannot be recovered at all: every acknowledged fact in it is lost.
      const files = fs.readdirSync(dir).sort().map((name) => `${name} (${fs.statSync(path.join(dir, name)).size} B)`);
      fail(`recovery failed: ${error?.name ?? 'Error'}: ${error?.message ?? error}; ${history.acked.size} acknowledged fact(s) unreachable; files: ${files.join(', ')}`);
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
    for (let i = 1; i < checkpoints.length; i++) {
      const a = checkpoints[i - 1];
      const b = checkpoints[i];
      for (let j = 0; j < a.ids.length; j++) {
        if (a.ids[j] !== b.ids[j]) {
          fail(`checkpoint ${a.name} is not a prefix of ${b.name} (position ${j})`);
          break;
        }
      }
    }

    // --- the WAL as recovery must see it: records up to the next segment's start
    const visible = new Map(); // sequence → record
    const everywhere = new Map(); // id → [where]
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const limit = i + 1 < segments.length ? segments[i + 1].named - 1 : Infinity;
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
    const baseIds = baseCheckpoint?.ids ?? [];
    const from = base?.sequence ?? 0;
    // Every visible record agrees with every checkpoint covering it.
    for (const c of checkpoints) {
      for (let s = 1; s <= c.ids.length; s++) {
        const rec = visible.get(s);
        if (rec !== undefined && rec.id !== c.ids[s - 1]) {
          fail(`checkpoint ${c.name} has ${c.ids[s - 1]} at sequence ${s}, the WAL ${rec.id}`);
          break;
        }
      }
    }

    // --- the recovery order: the base checkpoint's ids, then the WAL from there on
    const order = baseIds.slice();
    let s = from + 1;
    for (; visible.has(s); s++) order.push(visible.get(s).id);
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
    const lost = [];
    for (const hex of history.acked) if (!orderSet.has(hex) || !kernel.contains(fromHex(hex))) lost.push(hex);
    if (lost.length > 0) {
      const where = lost.slice(0, 5).map((hex) => `${hex} (run ${history.facts.get(hex)?.run}, S#${history.facts.get(hex)?.k})`);
      fail(`${lost.length} acknowledged fact(s) lost: ${where.join(', ')}`);
    }

    // (b) nothing that was never submitted; the kernel agrees with the order on every submitted id
    const foreign = order.filter((hex) => !history.facts.has(hex));
    if (foreign.length > 0) fail(`${foreign.length} recovered fact(s) were never submitted: ${foreign.slice(0, 5).join(', ')}`);
    let disagree = 0;
    for (const hex of history.facts.keys()) if (kernel.contains(fromHex(hex)) !== orderSet.has(hex)) disagree++;
    if (disagree > 0) fail(`kernel.contains disagrees with the WAL/checkpoint scan on ${disagree} submitted id(s)`);

    // WAL records carry what the S lines said
    for (let seq = from + 1; seq <= walEnd; seq++) {
      const rec = visible.get(seq);
      const fact = history.facts.get(rec.id);
      if (fact === undefined) continue;
      if (rec.payload !== toHex(fact.payload)) fail(`record ${seq} (${rec.id}) payload differs from its S line`);
      if ([...rec.deps].sort().join() !== [...fact.deps].sort().join()) fail(`record ${seq} (${rec.id}) deps differ from its S line`);
    }

    // (c) the state: a fresh in-memory kernel fed exactly the recovered facts, in order
    const fresh = TwoLaneKernel.withState(new TotalSupplyInvariant(), INITIAL_STATE);
    let replayFailed = false;
    for (let i = 0; i < order.length && !replayFailed; i++) {
      const fact = history.facts.get(order[i]);
      if (fact === undefined) continue; // reported under (b)
      const code = fresh.tryAdmitRaw(fromHex(order[i]), fact.deps.map(fromHex), fact.payload);
      if (code !== 0) {
        fail(`replaying recovered fact ${i + 1} (${order[i]}) into a fresh kernel: ${admitCodeName(code)}`);
        replayFailed = true;
      }
    }
    const recoveredState = toHex(kernel.state.bytes);
    const expectedState = toHex(fresh.state.bytes);
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
      state: ConservationState.fromCell(kernel.state).balance,
    };
  } finally {
    if (kernel !== undefined) await kernel.close();
    fs.rmSync(copy, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------- torn tails

/**
 * A SIGKILL rarely tears a write (the page cache keeps what was written), so a torn tail is also
 * made on purpose, as a power loss would: the last segment is cut at a random byte after every
 * record that must survive — acknowledged ones (and so, sequences being a prefix, everything
 * before them), records of earlier runs, and everything a checkpoint covers. Returns what was
 * cut, or undefined if nothing could be.
 */
export function injectTornTail(dir, history, rand) {
  const segments = scanSegments(dir);
  const last = segments.at(-1);
  if (last === undefined || !last.headerOk || last.records.length === 0) return undefined;
  const protectedUpTo = Math.max(history.order?.length ?? 0, ...scanCheckpoints(dir).map((c) => c.sequence));
  let keep = 0;
  for (let i = 0; i < last.records.length; i++) {
    const rec = last.records[i];
    if (history.acked.has(rec.id) || rec.sequence <= protectedUpTo) keep = i + 1;
  }
  if (keep >= last.records.length) return undefined;
  const start = last.records[keep].offset;
  const end = last.size - last.tailBytes;
  // Strictly inside the droppable bytes, so a partial record is left behind.
  const cut = start + 1 + Math.floor(rand() * (end - start - 1));
  const file = path.join(dir, last.name);
  fs.truncateSync(file, cut);
  return { file: last.name, cut, from: last.size, droppedFromSequence: last.records[keep].sequence };
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
export function segmentSizes(dir) {
  const sizes = new Map();
  if (!fs.existsSync(dir)) return sizes;
  for (const name of fs.readdirSync(dir)) if (SEGMENT_RE.test(name)) sizes.set(name, fs.statSync(path.join(dir, name)).size);
  return sizes;
}

/**
 * Simulates a power loss at the moment of the kill: every segment keeps what was synced (the
 * child's `D` lines) or was there before the run, and loses the rest — all of it, or all but a
 * random part (pages written back by chance). Returns the cuts.
 */
export function simulatePowerLoss(dir, sizesBefore, lines, rand) {
  const synced = new Map();
  for (const line of lines) {
    if (!line.startsWith('D ')) continue;
    const [, name, size] = line.split(' ');
    synced.set(name, Math.max(synced.get(name) ?? 0, Number(size)));
  }
  const cuts = [];
  for (const [name, size] of segmentSizes(dir)) {
    const durable = Math.max(sizesBefore.get(name) ?? 0, synced.get(name) ?? 0);
    if (size <= durable) continue;
    if (durable === 0 && size >= SEGMENT_HEADER_BYTES && rand() < 0.5) {
      // A segment created in this run whose header was never synced: its size may reach the disk
      // without its data (the "zeroed file" wal-scan.ts expects), leaving 64 zero bytes.
      const file = path.join(dir, name);
      fs.truncateSync(file, SEGMENT_HEADER_BYTES);
      fs.writeFileSync(file, new Uint8Array(SEGMENT_HEADER_BYTES));
      cuts.push({ file: name, from: size, to: SEGMENT_HEADER_BYTES, synced: 0, zeroedHeader: true });
      continue;
    }
    const to = rand() < 0.5 ? durable : durable + Math.floor(rand() * (size - durable));
    fs.truncateSync(path.join(dir, name), to);
    cuts.push({ file: name, from: size, to, synced: durable });
  }
  return cuts;
}

// ---------------------------------------------------------------------------------- cycles

/** Runs crash cycles on one directory. */
export class CrashHarness {
  constructor({ dir, backend = 'auto', seed = Date.now() >>> 0 }) {
    this.dir = dir;
    this.backend = backend;
    this.seed = seed >>> 0;
    this.rand = prng(this.seed);
    this.history = newHistory();
    this.cycles = 0;
    this.lastRun = undefined;
  }

  /**
   * One cycle: spawn, admit for a random 20–400 ms (or until a random number of acks), SIGKILL,
   * verify. `mode: 'block'` kills the child while it blocks in a Durable admission instead.
   * Resolves with { violations, recovered, acked, torn, ms, … }.
   */
  async cycle({ mode = 'random', minMs = 20, maxMs = 400, backend = this.backend, tornRate = 0.25, powerLoss = mode !== 'block' } = {}) {
    const started = performance.now();
    const n = this.cycles++;
    const run = `c${n}`;
    const rand = this.rand;
    const ackedBefore = [...this.history.acked];
    const deps = [];
    for (let i = 0; i < 8 && ackedBefore.length > 0; i++) deps.push(ackedBefore[Math.floor(rand() * ackedBefore.length)]);
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
    const violations = absorb(this.history, result);
    if (result.ready === undefined) violations.push(`run ${run}: no READY line; stderr: ${result.stderr.trim().slice(-2000)}`);
    else if (this.history.order !== undefined && result.ready !== this.history.order.length) {
      violations.push(`run ${run}: the child recovered ${result.ready} facts, the previous check ${this.history.order.length}`);
    }
    if (backend === 'uring' && result.backend !== undefined && result.backend !== 'io_uring') violations.push(`run ${run}: backend ${result.backend}, not io_uring`);
    const verifyStarted = performance.now();
    const powerCuts = traceSyncs && result.backend === 'portable' ? simulatePowerLoss(this.dir, sizesBefore, result.lines, rand) : undefined;
    const injected = mode !== 'block' && rand() < tornRate ? injectTornTail(this.dir, this.history, rand) : undefined;
    if (injected !== undefined) this.history.injected++;
    const check = await verifyDirectory(this.dir, this.history);
    violations.push(...check.violations);
    this.history.order = check.order;
    // Torn by the kill itself, not by a simulated power loss or a cut made on purpose.
    const tornByKill = check.torn && injected === undefined && !(powerCuts?.length > 0);
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
      /** Spawn to READY (startup and recovery in the child), and the check after the kill. */
      startMs: result.started === 0 ? undefined : Math.round(result.started - result.spawned),
      verifyMs: Math.round(performance.now() - verifyStarted),
      ms: Math.round(performance.now() - started),
    };
  }
}

// ---------------------------------------------------------------------------------- CLI

function parseArgs(argv) {
  const options = { cycles: 100, backend: undefined, seed: (Date.now() ^ (process.pid << 16)) >>> 0, dir: undefined, keep: false };
  for (const arg of argv) {
    if (/^\d+$/.test(arg)) options.cycles = Number(arg);
    else if (arg.startsWith('--backend=')) options.backend = arg.slice(10);
    else if (arg.startsWith('--seed=')) options.seed = Number(arg.slice(7)) >>> 0;
    else if (arg.startsWith('--dir=')) options.dir = arg.slice(6);
    else if (arg === '--keep') options.keep = true;
    else throw new Error(`unknown argument ${arg} (usage: crash-loop.mjs [cycles] [--backend=auto|portable|uring|mixed] [--seed=N] [--dir=PATH] [--keep])`);
  }
  if (options.backend !== undefined && !['auto', 'portable', 'uring', 'mixed'].includes(options.backend)) throw new Error(`bad backend ${options.backend}`);
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const uring = await probeUring();
  options.backend ??= uring.available ? 'mixed' : 'portable';
  if ((options.backend === 'uring' || options.backend === 'mixed') && !uring.available) {
    console.error(`io_uring is not available: ${uring.reason}`);
    process.exit(1);
  }
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-crash-loop-'));
  const harness = new CrashHarness({ dir, backend: options.backend === 'mixed' ? 'portable' : options.backend, seed: options.seed });
  console.log(`crash loop: ${options.cycles} cycles, backend ${options.backend}${uring.available ? '' : ` (io_uring unavailable: ${uring.reason})`}, seed ${options.seed}, dir ${dir}`);
  const started = performance.now();
  let submitted = 0;
  let last;
  for (let i = 0; i < options.cycles; i++) {
    const backend = options.backend === 'mixed' ? (i % 2 === 0 ? 'portable' : 'uring') : options.backend;
    const r = await harness.cycle({ backend });
    last = r;
    submitted += r.submitted;
    console.log(
      `cycle ${String(r.cycle + 1).padStart(3)}  ${(r.backend ?? '?').padEnd(8)} acked ${String(r.ackedTotal).padStart(7)} (+${String(r.acked).padEnd(5)})` +
        `  recovered ${String(r.recovered < 0 ? 'FAILED' : r.recovered).padStart(7)}  ckpt@${String(r.checkpoint).padEnd(7)} segments ${String(r.segments).padStart(3)}` +
        `  ${r.powerCuts === undefined ? '' : `power-loss -${r.powerCuts.reduce((n, c) => n + c.from - c.to, 0)} B${r.powerCuts.some((c) => c.zeroedHeader) ? ' (zeroed header)' : ''}  `}torn ${r.injected !== undefined ? 'yes (cut)' : !r.torn ? 'no' : r.tornByKill ? `yes: ${r.tornKind}` : `yes (power loss): ${r.tornKind}`}  kill ${r.killAfterAcks === Infinity ? `${r.killAfterMs} ms` : `${r.killAfterAcks} acks/${r.killAfterMs} ms`}  ${r.ms} ms (start ${r.startMs}, check ${r.verifyMs})`,
    );
    if (r.violations.length > 0) {
      console.log(`\nVIOLATION in cycle ${r.cycle + 1} (seed ${options.seed}, directory kept: ${dir}):`);
      for (const v of r.violations) console.log(`  - ${v}`);
      console.log(`child stderr:\n${r.stderr.trim() || '(empty)'}`);
      console.log(`last lines the child printed:\n${r.lines.slice(-20).join('\n')}`);
      if (r.tornTail !== undefined) console.log(`torn tail: ${JSON.stringify(r.tornTail)}`);
      if (r.injected !== undefined) console.log(`torn tail cut on purpose: ${JSON.stringify(r.injected)}`);
      if (r.powerCuts !== undefined) console.log(`simulated power loss (unsynced bytes dropped): ${JSON.stringify(r.powerCuts)}`);
      process.exit(1);
    }
  }
  const h = harness.history;
  console.log(
    `\nOK: ${options.cycles} cycles in ${((performance.now() - started) / 1000).toFixed(1)} s, no violation. ` +
      `submitted ${submitted}, acknowledged durable ${h.acked.size} (all recovered), recovered ${last?.recovered ?? 0}, ` +
      `torn tails ${h.tornTails} left by a kill + ${h.injected} cut on purpose, checkpoints ${h.checkpoints}, segments now ${last?.segments ?? 0}, seed ${options.seed}`,
  );
  if (!options.keep && options.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
