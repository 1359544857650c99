/**
 * Durable kernels: WAL round trips with both I/O backends, segment rolling, torn tails at every
 * byte of the last record, bit flips (deterministic and a fast-check property), injected write and
 * fsync failures, arena back-pressure, the directory lock and option misuse.
 *
 * DurableKernel starts its persistence worker from compiled JS, so this `threads` file gets the
 * library (test/helpers/lib.ts) from dist/.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AckMode,
  AdmitCode,
  AdmitError,
  CausalHorizonExceededError,
  CtfsError,
  DurabilityError,
  DurableKernel,
  InvalidArgumentError,
  LogLockedError,
  NativeUnavailableError,
  TotalSupplyInvariant,
  TwoLaneDurableKernel,
  WalCorruptionError,
  crc32c,
  toHex,
  type DurableHandle,
} from './helpers/lib.js';

import {
  History,
  SMALL,
  admitMany,
  cleanup,
  closeKernel,
  copyDir,
  crashImage,
  flipBit,
  open,
  pool,
  rejection,
  replay,
  snap,
  testDirs,
  tmpDir,
  type Fact,
  type OpenOptions,
  type Snap,
} from './helpers/durable.js';

// ---------------------------------------------------------------------------------- helpers

const HEADER = 64;

afterEach(() => cleanup(testDirs));

interface Rec {
  readonly offset: number;
  readonly length: number;
  readonly sequence: number;
  /** Sequence of the first record of its batch (sequence − the batch position at +60). */
  readonly batchStart: number;
  /** The last record of its batch (the next record starts another batch, or none follows). */
  batchEnd: boolean;
  readonly crcOk: boolean;
}

interface Seg {
  readonly file: string;
  readonly named: number;
  readonly first: number;
  readonly logId: string;
  readonly maxBatchBytes: number;
  readonly size: number;
  readonly records: Rec[];
}

/** Parses a segment file the way the format says (records from byte 64, each starting with its u32 length). */
function parseSegment(file: string): Seg {
  const buf = fs.readFileSync(file);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const records: Rec[] = [];
  let offset = HEADER;
  while (offset + 8 <= buf.length) {
    const length = view.getUint32(offset, true);
    if (length < HEADER || offset + length > buf.length) break;
    const crc = crc32c(Uint8Array.from([...bytes.subarray(offset, offset + 4), ...bytes.subarray(offset + 8, offset + length)]));
    const sequence = view.getUint32(offset + 20, true) * 2 ** 32 + view.getUint32(offset + 16, true);
    records.push({
      offset,
      length,
      sequence,
      batchStart: sequence - view.getUint32(offset + 60, true),
      batchEnd: true,
      crcOk: crc === view.getUint32(offset + 4, true),
    });
    offset += length;
  }
  for (let i = 0; i + 1 < records.length; i++) records[i]!.batchEnd = records[i + 1]!.batchStart !== records[i]!.batchStart;
  const name = path.basename(file);
  return {
    file,
    named: Number.parseInt(/^wal-([0-9a-f]{16})\.log$/.exec(name)![1]!, 16),
    first: view.getUint32(12, true) * 2 ** 32 + view.getUint32(8, true),
    logId: toHex(bytes.slice(16, 32)),
    maxBatchBytes: view.getUint32(36, true),
    size: buf.length,
    records,
  };
}

function segmentNames(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^wal-[0-9a-f]{16}\.log$/.test(n)).sort();
}

function segments(dir: string): Seg[] {
  return segmentNames(dir).map((n) => parseSegment(path.join(dir, n)));
}

/** Every record of every segment, in file order. */
function allRecords(dir: string): (Rec & { file: string })[] {
  return segments(dir).flatMap((s) => s.records.map((r) => ({ ...r, file: s.file })));
}

async function expectWalCorruption(dir: string, file: string, offset: number): Promise<WalCorruptionError> {
  const error = await rejection(open(dir));
  expect(error).toBeInstanceOf(WalCorruptionError);
  expect(error).toBeInstanceOf(CtfsError);
  const e = error as WalCorruptionError;
  expect(e.code).toBe('WalCorrupted');
  expect(e.position.file).toBe(file);
  expect(e.position.offset).toBe(offset);
  expect(e.message).toContain(file);
  // A failed open releases the lock.
  expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
  return e;
}

/** Sequence numbers across the whole log are 1..n in file order, each segment named by its first. */
function expectContinuous(dir: string, n: number): void {
  const segs = segments(dir);
  const seqs: number[] = [];
  for (const s of segs) {
    expect(s.first).toBe(s.named);
    if (s.records.length > 0) expect(s.records[0]!.sequence).toBe(s.first);
    for (const r of s.records) {
      expect(r.crcOk).toBe(true);
      seqs.push(r.sequence);
    }
    expect(s.size).toBe(HEADER + s.records.reduce((a, r) => a + r.length, 0)); // nothing past the records
  }
  expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  // Each segment starts right after the previous one's last record.
  let expected = 1;
  for (const s of segs) {
    expect(s.first).toBe(expected);
    expected += s.records.length;
  }
}

// ------------------------------------------------------------------------- io_uring probe

async function uringAvailable(): Promise<boolean> {
  if (process.env['CTFS_IO'] === 'portable') return false;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
  try {
    const kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), { ...SMALL, backend: 'uring' });
    const ok = kernel.backend === 'io_uring';
    await kernel.close();
    return ok;
  } catch (error) {
    if (error instanceof NativeUnavailableError) return false;
    throw error;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const HAVE_URING = await uringAvailable();
/** On Linux CI the io_uring backend must be there: its cases run (and fail) even if it is not. */
const MUST_URING = process.env['CI'] !== undefined && process.env['CI'] !== '' && process.platform === 'linux';
const BACKENDS = (['portable', 'uring'] as const).filter((b) => b === 'portable' || HAVE_URING || MUST_URING);
const expectedBackend = (b: 'portable' | 'uring'): string =>
  process.env['CTFS_IO'] === 'portable' ? 'portable' : process.env['CTFS_IO'] === 'uring' || b === 'uring' ? 'io_uring' : 'portable';

it('the io_uring cases run where io_uring is available, and on Linux CI', () => {
  expect(BACKENDS).toContain('portable');
  expect(BACKENDS.includes('uring')).toBe(HAVE_URING || MUST_URING);
});

// ---------------------------------------------------------------------------------- 1. round trip

describe.each(BACKENDS)('round trip (%s backend)', (backend) => {
  it('facts written by the worker come back with the same state, ids, order, frontier and sequences', async () => {
    const dir = tmpDir();
    const history = new History(backend === 'portable' ? 1 : 2);
    const kernel = await open(dir, { backend });
    expect(kernel.backend).toBe(expectedBackend(backend));
    expect(kernel.recovery.created).toBe(true);
    expect(kernel.lastSequence).toBe(0);
    const logId = kernel.recovery.logId;

    // Mixed ack modes: async handles, blocking Durable / WALSubmitted, and plain Volatile.
    const handles: DurableHandle[] = [];
    for (let round = 0; round < 12; round++) {
      for (let i = 0; i < 6; i++) {
        const f = history.make();
        handles.push(kernel.admitAsync(f.id, f.deps, f.payload));
        history.facts.push(f);
      }
      const d = history.make();
      expect(kernel.tryAdmitRaw(d.id, d.deps, d.payload, AckMode.Durable)).toBe(AdmitCode.Ok);
      history.facts.push(d);
      expect(kernel.durableSequence).toBe(history.facts.length);
      const w = history.make();
      kernel.admitRaw(w.id, w.deps, w.payload, AckMode.WALSubmitted);
      history.facts.push(w);
      expect(kernel.writtenSequence).toBeGreaterThanOrEqual(history.facts.length);
      await admitMany(kernel, history, 10);
      await kernel.flush();
    }
    // Payload sizes cover the range.
    const sizes = history.facts.map((f) => f.payload.length);
    expect(Math.min(...sizes)).toBeLessThan(100);
    expect(Math.max(...sizes)).toBeGreaterThan(1900);
    expect(history.facts.some((f) => f.deps.length === 3)).toBe(true);

    const n = history.facts.length;
    // Handles got consecutive sequences, all durable now.
    for (const h of handles) {
      expect(h.poll()).toBe('durable');
      expect(h.isDurable()).toBe(true);
      expect(h.spinWait(1000)).toBe(true);
      await h.durable();
    }
    for (let i = 1; i < 6; i++) expect(handles[i]!.sequence).toBe(handles[i - 1]!.sequence + 1);
    expect(handles[0]!.sequence).toBe(1);
    expect(kernel.lastSequence).toBe(n);
    expect(kernel.durableSequence).toBe(n);
    const before = snap(kernel);
    expect(before).toEqual(replay(history.facts));
    await closeKernel(kernel);
    expect(kernel.logStats.records).toBe(n);
    expectContinuous(dir, n);
    expect(segments(dir).every((s) => s.logId === logId)).toBe(true);

    const again = await open(dir, { backend });
    expect(again.backend).toBe(expectedBackend(backend));
    const report = again.recovery;
    expect(report.created).toBe(false);
    expect(report.lastSequence).toBe(n);
    expect(report.replayed).toBe(n);
    expect(report.duplicates).toBe(0);
    expect(report.tornTail).toBeUndefined();
    expect(report.rejectedCheckpoints).toEqual([]);
    expect(report.checkpoint?.sequence).toBe(0);
    expect(report.logId).toBe(logId);
    expect(snap(again)).toEqual(before);
    for (const f of history.facts) expect(again.contains(f.id)).toBe(true);
    expect(again.lastSequence).toBe(n);
    expect(again.durableSequence).toBe(n);

    // The sequence continues where the log ended.
    const next = history.make({ deps: 2 });
    const h = again.admitAsync(next.id, next.deps, next.payload);
    history.facts.push(next);
    expect(h.sequence).toBe(n + 1);
    await h.durable();
    await closeKernel(again);
    expectContinuous(dir, n + 1);

    const third = await open(dir, { backend });
    expect(third.recovery.lastSequence).toBe(n + 1);
    expect(snap(third)).toEqual(replay(history.facts));
    await closeKernel(third);
  });
});

// ------------------------------------------------------------- 2. reopen never truncates; segments

describe('segments', () => {
  it('reopen never truncates or rewrites a segment; the worker rolls small segments; sequences stay continuous', async () => {
    const dir = tmpDir();
    const history = new History(3);
    const kernel = await open(dir, { segmentBytes: 4096 });
    for (let g = 0; g < 10; g++) {
      await admitMany(kernel, history, 4, { payloadBytes: 16 + ((g * 397) % 1500) });
      await kernel.flush();
    }
    const n1 = history.facts.length;
    await closeKernel(kernel);
    const run1 = segments(dir);
    expect(run1.length).toBeGreaterThanOrEqual(4); // the worker rolled
    expectContinuous(dir, n1);
    // Every rolled segment reached the limit before the worker left it.
    for (const s of run1.slice(0, -1)) expect(s.size).toBeGreaterThanOrEqual(4096);
    const saved = new Map(run1.map((s) => [s.file, fs.readFileSync(s.file)]));

    const again = await open(dir, { segmentBytes: 4096 });
    expect(again.recovery.lastSequence).toBe(n1);
    expect(snap(again)).toEqual(replay(history.facts));
    // A segment for the next sequence exists at once, with a valid header.
    const appendFile = path.join(dir, `wal-${(n1 + 1).toString(16).padStart(16, '0')}.log`);
    expect(fs.existsSync(appendFile)).toBe(true);
    expect(parseSegment(appendFile).first).toBe(n1 + 1);
    for (let g = 0; g < 6; g++) {
      await admitMany(again, history, 4, { payloadBytes: 40 + ((g * 211) % 1200) });
      await again.flush();
    }
    expect(again.logStats.segments).toBeGreaterThanOrEqual(1);
    const n = history.facts.length;
    await closeKernel(again);

    // Files of the first run that hold records are byte for byte what they were; a header-only
    // last segment may have been reused, so only its header must be unchanged.
    for (const [file, bytes] of saved) {
      const now = fs.readFileSync(file);
      if (bytes.length > HEADER) expect(now.equals(bytes)).toBe(true);
      else expect(now.subarray(0, HEADER).equals(bytes)).toBe(true);
    }
    expectContinuous(dir, n);
    expect(segments(dir).length).toBeGreaterThan(run1.length);

    const third = await open(dir);
    expect(third.recovery.lastSequence).toBe(n);
    expect(snap(third)).toEqual(replay(history.facts));
  });
});

describe('large segments', () => {
  it('a segment larger than the 1 MiB read window: round trip, and torn tail and corruption positions past the window are file offsets', async () => {
    const dir = tmpDir();
    const history = new History(17);
    const kernel = await open(dir);
    await admitMany(kernel, history, 700, { payloadBytes: 2000, deps: 1 }); // ~1.47 MB in one segment
    const crashed = await crashImage(kernel);
    await closeKernel(kernel);
    const seg = segments(dir)[0]!;
    expect(seg.size).toBeGreaterThan(1.3 * (1 << 20));
    expectContinuous(dir, 700);
    const expected = replay(history.facts);

    const again = await open(copyDir(dir));
    expect(again.recovery.lastSequence).toBe(700);
    expect(snap(again)).toEqual(expected);
    await closeKernel(again);

    // Damage past the first window, followed by later batches: corruption at that file offset.
    const ends = seg.records.filter((r) => r.batchEnd);
    const target = seg.records.find((r) => r.offset > 1.1 * (1 << 20) && ends.filter((e) => e.sequence > r.sequence).length >= 2)!;
    expect(target).toBeDefined();
    const corrupt = copyDir(dir);
    const file = path.join(corrupt, path.basename(seg.file));
    flipBit(file, target.offset + 200, 3);
    const e = await expectWalCorruption(corrupt, file, target.offset);
    expect(e.position.sequence).toBe(target.sequence);

    // Records straddling the window's end are read whole; a cut in the last record is a torn tail.
    const last = seg.records.at(-1)!;
    const torn = copyDir(crashed);
    const tornFile = path.join(torn, path.basename(seg.file));
    fs.truncateSync(tornFile, last.offset + 1000);
    const k = await open(torn);
    expect(k.recovery.lastSequence).toBe(699);
    expect(k.recovery.tornTail).toEqual({ file: tornFile, offset: last.offset, bytes: 1000, droppedRecords: 0 });
    expect(snap(k)).toEqual(replay(history.facts.slice(0, 699)));
  });
});

// --------------------------------------------------------------------------- 3. torn tail sweep

describe('torn writes', () => {
  const baseDirs: string[] = [];
  let base = '';
  let facts: Fact[] = [];
  let last: Rec;
  let lastFile = '';
  let history: History;
  afterAll(() => cleanup(baseDirs));

  beforeAll(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
    baseDirs.push(base, scratch);
    history = new History(4);
    // The base is a crash image: the last batch is the one a crash may tear.
    const kernel = await open(scratch);
    for (let g = 0; g < 4; g++) {
      await admitMany(kernel, history, 5);
      await kernel.flush();
    }
    await admitMany(kernel, history, 3, { payloadBytes: 300 });
    await admitMany(kernel, history, 1, { payloadBytes: 16, deps: 0 }); // the last record: 80 bytes
    await crashImage(kernel, base);
    await closeKernel(kernel);
    facts = history.facts.slice();
    const segs = segments(base);
    expect(segs.length).toBe(1);
    lastFile = path.basename(segs[0]!.file);
    last = segs[0]!.records.at(-1)!;
    expect(last.sequence).toBe(facts.length);
    expect(last.length).toBe(80);
    expect(last.offset + last.length).toBe(segs[0]!.size);
  });

  it('a cut at every byte of the last record recovers exactly the records before it, and the log goes on', async () => {
    const n = facts.length;
    const prefix = replay(facts.slice(0, n - 1));
    const extra = history.make({ deps: 1 });
    const withExtra = replay([...facts.slice(0, n - 1), extra]);
    const cuts = Array.from({ length: last.length }, (_, i) => last.offset + i);
    await pool(cuts, 4, async (cut) => {
      const dir = copyDir(base);
      const file = path.join(dir, lastFile);
      fs.truncateSync(file, cut);
      const kernel = await open(dir);
      const report = kernel.recovery;
      expect(report.lastSequence, `cut ${cut}`).toBe(n - 1);
      if (cut === last.offset) {
        expect(report.tornTail, `cut ${cut}`).toBeUndefined(); // a clean end: nothing torn
      } else {
        expect(report.tornTail, `cut ${cut}`).toEqual({ file, offset: last.offset, bytes: cut - last.offset, droppedRecords: 0 });
      }
      expect(snap(kernel)).toEqual(prefix);
      expect(kernel.contains(facts[n - 1]!.id)).toBe(false);
      const h = kernel.admitAsync(extra.id, extra.deps, extra.payload);
      expect(h.sequence).toBe(n);
      await h.durable();
      await closeKernel(kernel);
      expect(fs.statSync(file).size, 'the torn segment is never truncated or rewritten').toBe(cut);

      const again = await open(dir);
      expect(again.recovery.lastSequence).toBe(n);
      expect(again.recovery.tornTail).toBeUndefined();
      expect(again.contains(extra.id)).toBe(true);
      expect(snap(again)).toEqual(withExtra);
      await closeKernel(again);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  it('a cut inside a large last record (2000-byte payload) is a torn tail too', async () => {
    const h = new History(40);
    h.facts.push(...facts);
    const kernel = await open(copyDir(base));
    await admitMany(kernel, h, 1, { payloadBytes: 2000, deps: 3 });
    const dir0 = await crashImage(kernel);
    await closeKernel(kernel);
    const seg = segments(dir0).at(-1)!;
    const rec = seg.records.at(-1)!;
    expect(rec.length).toBe(64 + 96 + 2000);
    const cuts = [1, 7, 8, 63, 64, 65, 160, 161, 1000, rec.length - 8, rec.length - 1].map((c) => rec.offset + c);
    await pool(cuts, 4, async (cut) => {
      const dir = copyDir(dir0);
      const file = path.join(dir, path.basename(seg.file));
      fs.truncateSync(file, cut);
      const k = await open(dir);
      expect(k.recovery.lastSequence).toBe(facts.length);
      expect(k.recovery.tornTail).toEqual({ file, offset: rec.offset, bytes: cut - rec.offset, droppedRecords: 0 });
      expect(snap(k)).toEqual(replay(facts));
      await closeKernel(k);
    });
  });

  it('a segment whose only record is torn is set aside (renamed, never overwritten) and the sequence is reused', async () => {
    const n = facts.length;
    const kernel = await open(copyDir(base));
    const h = new History(41);
    h.facts.push(...facts);
    await admitMany(kernel, h, 1, { payloadBytes: 500 });
    const dir = await crashImage(kernel);
    await closeKernel(kernel);
    const name = `wal-${(n + 1).toString(16).padStart(16, '0')}.log`;
    const file = path.join(dir, name);
    expect(parseSegment(file).records.length).toBe(1);
    fs.truncateSync(file, HEADER + 100);
    const tornBytes = fs.readFileSync(file);

    const again = await open(dir);
    expect(again.recovery.lastSequence).toBe(n);
    expect(again.recovery.tornTail).toEqual({ file, offset: HEADER, bytes: 100, droppedRecords: 0 });
    const aside = fs.readdirSync(dir).filter((f) => f.startsWith(`${name}.torn-`));
    expect(aside.length).toBe(1);
    expect(fs.readFileSync(path.join(dir, aside[0]!)).equals(tornBytes)).toBe(true);
    const fresh = parseSegment(file);
    expect(fresh.first).toBe(n + 1);
    expect(fresh.size).toBe(HEADER);
    const extra = history.make({ deps: 2 });
    await again.admitAsync(extra.id, extra.deps, extra.payload).durable();
    await closeKernel(again);

    const third = await open(dir);
    expect(third.recovery.lastSequence).toBe(n + 1);
    expect(snap(third)).toEqual(replay([...facts, extra]));
  });
});

// ------------------------------------------------------------------------------- 4. bit flips

/** Builds a log whose last batch holds several records: the worker sleeps in its first sync while the rest is staged. */
async function buildLog(dir: string, seed: number, groups: number, perGroup: number, options: OpenOptions & { payloadBytes?: number } = {}): Promise<Fact[]> {
  const history = new History(seed);
  const { payloadBytes, ...openOptions } = options;
  // Built elsewhere; `dir` gets a crash image of it, so its last batch is one a crash may tear.
  const kernel = await open(tmpDir(), openOptions);
  for (let g = 0; g < groups; g++) {
    await admitMany(kernel, history, perGroup, payloadBytes === undefined ? {} : { payloadBytes: 16 + Math.floor(((g + 1) * 7919) % payloadBytes) });
    await kernel.flush();
  }
  await crashImage(kernel, dir);
  await closeKernel(kernel);
  return history.facts;
}

/** The records of the log's last batch. */
function lastBatch<R extends Rec>(recs: readonly R[]): R[] {
  const ends = recs.filter((r) => r.batchEnd);
  const from = ends.length >= 2 ? ends.at(-2)!.sequence : 0;
  return recs.filter((r) => r.sequence > from);
}

interface Expected {
  readonly kind: 'corrupt' | 'recover';
  readonly file?: string;
  readonly offset?: number;
  readonly last?: number;
}

/**
 * What recovery must do after damage at `byte` of segment `segIndex` (format rules, wal-scan.ts):
 * a damaged header of a segment with records, or damage in a non-last segment, is corruption;
 * damage to record r of the last segment is a torn tail unless a valid record follows it from a
 * later batch (one whose batch started after r's sequence).
 */
function expectedAfterDamage(segs: readonly Seg[], segIndex: number, byte: number): Expected {
  const seg = segs[segIndex]!;
  const isLast = segIndex === segs.length - 1;
  const total = segs.reduce((a, s) => a + s.records.length, 0);
  if (byte < HEADER) {
    return isLast && seg.size <= HEADER ? { kind: 'recover', last: total } : { kind: 'corrupt', file: seg.file, offset: 0 };
  }
  const index = seg.records.findIndex((r) => byte >= r.offset && byte < r.offset + r.length);
  expect(index).toBeGreaterThanOrEqual(0);
  const r = seg.records[index]!;
  if (!isLast) return { kind: 'corrupt', file: seg.file, offset: r.offset };
  for (const x of seg.records.slice(index + 1)) {
    if (x.batchStart > r.sequence) return { kind: 'corrupt', file: seg.file, offset: r.offset };
  }
  return { kind: 'recover', last: r.sequence - 1 };
}

describe('bit flips', () => {
  const baseDirs: string[] = [];
  /** Several flushed batches in one segment; the last batch holds several records. */
  let batched = '';
  let batchedFacts: Fact[] = [];
  /** Small segments (4096 bytes). */
  let rolled = '';
  let rolledFacts: Fact[] = [];
  afterAll(() => cleanup(baseDirs));

  beforeAll(async () => {
    batched = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
    rolled = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
    baseDirs.push(batched, rolled);
    // Batched: 4 groups, each flushed; then one fact the worker takes alone and sleeps on, and 5
    // staged meanwhile, which become the last batch.
    const history = new History(5);
    const kernel = await open(tmpDir(), { faults: { syncDelayMs: 150 } } as OpenOptions);
    for (let g = 0; g < 4; g++) {
      await admitMany(kernel, history, 4, { payloadBytes: 16 + g * 50 });
      await kernel.flush();
    }
    await admitMany(kernel, history, 1, { payloadBytes: 64 });
    await new Promise((r) => setTimeout(r, 50));
    await admitMany(kernel, history, 5, { payloadBytes: 120 });
    await crashImage(kernel, batched);
    await closeKernel(kernel);
    batchedFacts = history.facts;
    rolledFacts = await buildLog(rolled, 6, 8, 4, { segmentBytes: 4096, payloadBytes: 900 });
    expect(segments(rolled).length).toBeGreaterThanOrEqual(3);
  });

  it('the batched base log has several batches and a multi-record last batch', () => {
    const recs = allRecords(batched);
    expect(recs.length).toBe(batchedFacts.length);
    expect(recs.filter((r) => r.batchEnd).length).toBeGreaterThanOrEqual(6);
    expect(recs.at(-1)!.batchEnd).toBe(true);
    expect(lastBatch(recs).length).toBeGreaterThanOrEqual(2);
  });

  it('a flipped bit in a record followed by later batches is WalCorruptionError at that record', async () => {
    const recs = allRecords(batched);
    // A record of the second batch, and a batch-end record of an early batch.
    const firstEnd = recs.findIndex((r) => r.batchEnd);
    const targets = [recs[firstEnd + 1]!, recs[firstEnd]!, recs[0]!];
    // Bits in every header field and in the deps/payload.
    const positions = [0, 3, 4, 9, 12, 14, 16, 22, 24, 30, 61, 64, 70];
    for (const target of targets) {
      for (const at of positions.filter((p) => p < target.length)) {
        const dir = copyDir(batched);
        const file = path.join(dir, path.basename(target.file));
        flipBit(file, target.offset + at, at % 8);
        const e = await expectWalCorruption(dir, file, target.offset);
        expect(e.position.sequence).toBe(target.sequence);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('a flipped bit in the very last record is a torn tail: the rest is recovered', async () => {
    const recs = allRecords(batched);
    const target = recs.at(-1)!;
    const n = batchedFacts.length;
    const expected = replay(batchedFacts.slice(0, n - 1));
    const positions = [0, 1, 4, 8, 12, 14, 16, 24, 28, 60, 64, 100, target.length - 1];
    await pool(positions, 4, async (at) => {
      const dir = copyDir(batched);
      const file = path.join(dir, path.basename(target.file));
      flipBit(file, target.offset + at, (at * 5) % 8);
      const k = await open(dir);
      expect(k.recovery.lastSequence, `byte ${at}`).toBe(n - 1);
      expect(k.recovery.tornTail?.offset, `byte ${at}`).toBe(target.offset);
      expect(k.recovery.tornTail?.file).toBe(file);
      expect(snap(k)).toEqual(expected);
      await closeKernel(k);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  it('a flipped bit in the last record of the next-to-last batch is corruption, not a torn tail (that batch was fsynced)', async () => {
    const recs = allRecords(batched);
    const batch = lastBatch(recs);
    const target = recs.find((r) => r.sequence === batch[0]!.sequence - 1)!;
    expect(target.batchEnd).toBe(true);
    const dir = copyDir(batched);
    const file = path.join(dir, path.basename(target.file));
    flipBit(file, target.offset + 40, 1);
    const e = await expectWalCorruption(dir, file, target.offset);
    expect(e.position.sequence).toBe(target.sequence);
  });

  it('a flipped bit in the first record of the last batch drops the whole (torn) batch', async () => {
    const batch = lastBatch(allRecords(batched));
    const target = batch[0]!;
    const dir = copyDir(batched);
    const file = path.join(dir, path.basename(target.file));
    flipBit(file, target.offset + 90, 2);
    const k = await open(dir);
    expect(k.recovery.lastSequence).toBe(target.sequence - 1);
    expect(k.recovery.tornTail).toMatchObject({ file, offset: target.offset, droppedRecords: batch.length - 1 });
    expect(snap(k)).toEqual(replay(batchedFacts.slice(0, target.sequence - 1)));
  });

  it('a flipped bit anywhere in a non-last segment header is WalCorruptionError at offset 0', async () => {
    const segs = segments(rolled);
    for (const seg of segs.slice(0, 2)) {
      for (let byte = 0; byte < HEADER; byte++) {
        const dir = copyDir(rolled);
        const file = path.join(dir, path.basename(seg.file));
        flipBit(file, byte, (byte * 3) % 8);
        await expectWalCorruption(dir, file, 0);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it('a flipped bit in a record of a non-last segment is WalCorruptionError, even in that segment\'s last record', async () => {
    const seg = segments(rolled)[1]!;
    for (const r of [seg.records[0]!, seg.records.at(-1)!]) {
      const dir = copyDir(rolled);
      const file = path.join(dir, path.basename(seg.file));
      flipBit(file, r.offset + r.length - 1, 0);
      await expectWalCorruption(dir, file, r.offset);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a record with a valid CRC but not the next sequence is WalCorruptionError (continuity is checked, not only CRCs)', async () => {
    const recs = allRecords(batched);
    // Re-seal a middle record with the sequence of its successor.
    const target = recs[6]!;
    const dir = copyDir(batched);
    const file = path.join(dir, path.basename(target.file));
    const bytes = fs.readFileSync(file);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    view.setUint32(target.offset + 16, target.sequence + 1, true);
    const body = Uint8Array.from([...bytes.subarray(target.offset, target.offset + 4), ...bytes.subarray(target.offset + 8, target.offset + target.length)]);
    view.setUint32(target.offset + 4, crc32c(body), true);
    fs.writeFileSync(file, bytes);
    expect(parseSegment(file).records[6]!.crcOk).toBe(true);
    const e = await expectWalCorruption(dir, file, target.offset);
    expect(e.position.sequence).toBe(target.sequence);
    expect(e.message).toMatch(/sequence/);

    // The last record written twice (a replayed write): the copy is whole and valid, but old.
    const twice = copyDir(batched);
    const lastRec = recs.at(-1)!;
    const twiceFile = path.join(twice, path.basename(lastRec.file));
    const data = fs.readFileSync(twiceFile);
    fs.appendFileSync(twiceFile, data.subarray(lastRec.offset, lastRec.offset + lastRec.length));
    await expectWalCorruption(twice, twiceFile, lastRec.offset + lastRec.length);
  });

  it('a zeroed range over several batches, followed by records of a later batch, is WalCorruptionError', async () => {
    const dir = tmpDir();
    const history = new History(16);
    const kernel = await open(dir, { faults: { syncDelayMs: 20 } } as OpenOptions);
    await admitMany(kernel, history, 300, { payloadBytes: 2000, deps: 1 }); // ~630 KB through a 256 KiB arena
    await closeKernel(kernel);
    const seg = segments(dir).at(-1)!;
    const ends = seg.records.filter((r) => r.batchEnd);
    expect(ends.length).toBeGreaterThanOrEqual(3);
    const from = ends[0]!;
    const lastBatchStart = seg.records.find((r) => r.sequence === ends.at(-2)!.sequence + 1)!;
    expect(lastBatchStart.batchStart).toBeGreaterThan(from.sequence);
    // Lost pages: zeros from the first batch end up to the last batch (every batch end between is gone).
    const bytes = fs.readFileSync(seg.file);
    bytes.fill(0, from.offset, lastBatchStart.offset);
    fs.writeFileSync(seg.file, bytes);
    const e = await expectWalCorruption(dir, seg.file, from.offset);
    expect(e.position.sequence).toBe(from.sequence);
  });

  it('property: after a random bit flip, reopen throws WalCorruptionError or recovers a prefix with the replayed state', async () => {
    const logs = [
      { dir: batched, facts: batchedFacts },
      { dir: rolled, facts: rolledFacts },
    ];
    const shapes = logs.map((l) => segments(l.dir));
    const prefixes = logs.map((l) => new Map<number, Snap>([[l.facts.length, replay(l.facts)]]));
    let recovered = 0;
    let corrupt = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(1), fc.nat(), fc.nat(), fc.nat(7), async (which, segPick, bytePick, bit) => {
        const log = logs[which]!;
        const segs = shapes[which]!;
        const segIndex = segPick % segs.length;
        const seg = segs[segIndex]!;
        const byte = bytePick % seg.size;
        const dir = copyDir(log.dir);
        try {
          const file = path.join(dir, path.basename(seg.file));
          flipBit(file, byte, bit);
          const local = segs.map((s) => ({ ...s, file: path.join(dir, path.basename(s.file)) }));
          const want = expectedAfterDamage(local, segIndex, byte);
          let kernel: TwoLaneDurableKernel | undefined;
          try {
            kernel = await open(dir);
          } catch (error) {
            expect(error, `byte ${byte} of ${path.basename(file)}: ${String(error)}`).toBeInstanceOf(WalCorruptionError);
            expect(want.kind).toBe('corrupt');
            expect((error as WalCorruptionError).position.file).toBe(want.file);
            expect((error as WalCorruptionError).position.offset).toBe(want.offset);
            corrupt++;
            return;
          }
          const k = kernel.recovery.lastSequence;
          const s = snap(kernel);
          await closeKernel(kernel);
          expect(want.kind, `byte ${byte} of ${path.basename(file)} was recovered to ${k}`).toBe('recover');
          expect(k).toBe(want.last);
          expect(k).toBeLessThanOrEqual(log.facts.length);
          // Never a fact that was not admitted, never a changed state for the prefix.
          const cache = prefixes[which]!;
          if (!cache.has(k)) cache.set(k, replay(log.facts.slice(0, k)));
          expect(s).toEqual(cache.get(k));
          recovered++;
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 40 },
    );
    expect(recovered + corrupt).toBe(40);
  });
});

// ------------------------------------------------------------------------- 6. fault injection

describe.each(BACKENDS)('fault injection (%s backend)', (backend) => {
  for (const fault of ['failSyncAt', 'failWriteAt'] as const) {
    it(`${fault}: 3 fails the third batch and everything after it; the log is poisoned, nothing changes, reopen recovers a prefix`, async () => {
      const dir = tmpDir();
      const history = new History(fault === 'failSyncAt' ? 7 : 8);
      const kernel = await open(dir, { backend, faults: { [fault]: 3 } } as OpenOptions);
      // Batches 1 and 2: one fact each.
      for (let b = 1; b <= 2; b++) {
        await admitMany(kernel, history, 1);
        await kernel.flush();
        expect(kernel.durableSequence).toBe(b);
      }
      // Batch 3 (and whatever follows it) fails. The worker may take the first of these alone
      // and fail before the loop ends: then the rest is refused at once.
      const handles: DurableHandle[] = [];
      for (let i = 0; i < 5; i++) {
        const f = history.make();
        try {
          handles.push(kernel.admitAsync(f.id, f.deps, f.payload));
        } catch (error) {
          expect(error).toBeInstanceOf(AdmitError);
          expect((error as AdmitError).code).toBe('DurabilityFailed');
          expect(handles.length).toBeGreaterThan(0);
          expect(kernel.contains(f.id)).toBe(false);
          break;
        }
        history.facts.push(f);
      }
      const settled = await Promise.allSettled(handles.map((h) => h.durable()));
      for (const [i, s] of settled.entries()) {
        expect(s.status).toBe('rejected');
        const e = (s as PromiseRejectedResult).reason as DurabilityError;
        expect(e).toBeInstanceOf(DurabilityError);
        expect(e.code).toBe('DurabilityFailed');
        expect(e.ioCode).toBe('EIO');
        expect(e.sequence).toBe(handles[i]!.sequence);
      }
      expect(kernel.durableSequence).toBe(2);
      for (const h of handles) {
        expect(h.poll()).toBe('failed');
        expect(h.isDurable()).toBe(false);
        expect(() => h.spinWait(1000)).toThrow(DurabilityError);
      }
      await expect(kernel.flush()).rejects.toBeInstanceOf(DurabilityError);

      // Later admissions are refused and change nothing.
      const before = snap(kernel);
      const last = kernel.lastSequence;
      expect(last).toBe(2 + handles.length);
      const f = history.make();
      expect(kernel.tryAdmitRaw(f.id, f.deps, f.payload)).toBe(AdmitCode.DurabilityFailed);
      expect(kernel.tryAdmitRaw(f.id, f.deps, f.payload, AckMode.Durable)).toBe(AdmitCode.DurabilityFailed);
      let thrown: unknown;
      try {
        kernel.admitAsync(f.id, f.deps, f.payload);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(AdmitError);
      expect((thrown as AdmitError).code).toBe('DurabilityFailed');
      expect(kernel.contains(f.id)).toBe(false);
      expect(snap(kernel)).toEqual(before);
      expect(kernel.lastSequence).toBe(last);
      await closeKernel(kernel); // resolves

      const again = await open(dir, { backend });
      const k = again.recovery.lastSequence;
      expect(k).toBeGreaterThanOrEqual(2);
      expect(k).toBeLessThanOrEqual(last);
      if (fault === 'failWriteAt') expect(k).toBe(2); // the third batch was never written
      expect(snap(again)).toEqual(replay(history.facts.slice(0, k)));
      history.facts.length = k; // the rest is gone: new facts may depend only on recovered ones
      const g = history.make({ deps: 2 });
      expect(again.tryAdmitRaw(g.id, g.deps, g.payload, AckMode.Durable)).toBe(AdmitCode.Ok);
      expect(again.lastSequence).toBe(k + 1);
    });
  }

  it('a blocking Durable admission whose sync fails returns DurabilityFailed, the fact stays admitted in memory (documented)', async () => {
    const dir = tmpDir();
    const history = new History(9);
    const kernel = await open(dir, { backend, faults: { failSyncAt: 1 } } as OpenOptions);
    const f = history.make();
    expect(kernel.tryAdmitRaw(f.id, f.deps, f.payload, AckMode.Durable)).toBe(AdmitCode.DurabilityFailed);
    expect(kernel.contains(f.id)).toBe(true);
    expect(kernel.durableSequence).toBe(0);
    await closeKernel(kernel);
  });
});

describe('arena back-pressure', () => {
  it('syncDelayMs + a 256 KiB arena: ArenaFull applies nothing, and admission succeeds again after flush()', async () => {
    const dir = tmpDir();
    const history = new History(10);
    const kernel = await open(dir, { faults: { syncDelayMs: 150 } } as OpenOptions);
    let refused: Fact | undefined;
    for (let i = 0; i < 1000 && refused === undefined; i++) {
      const f = history.make({ payloadBytes: 2000, deps: 1 });
      const state = toHex(kernel.state.toBytes());
      const size = kernel.size;
      const last = kernel.lastSequence;
      const frontier = kernel.frontier().map(toHex);
      const code = kernel.tryAdmitRaw(f.id, f.deps, f.payload);
      if (code === AdmitCode.Ok) {
        history.facts.push(f);
        continue;
      }
      expect(code).toBe(AdmitCode.ArenaFull);
      refused = f;
      expect(kernel.contains(f.id)).toBe(false);
      expect(toHex(kernel.state.toBytes())).toBe(state);
      expect(kernel.size).toBe(size);
      expect(kernel.lastSequence).toBe(last);
      expect(kernel.frontier().map(toHex)).toEqual(frontier);
    }
    expect(refused).toBeDefined();
    expect(kernel.durableSequence).toBeLessThan(kernel.lastSequence);
    expect(kernel.arenaUsed).toBeGreaterThan(0);
    const snapshot = snap(kernel);
    expect(snapshot).toEqual(replay(history.facts));
    await kernel.flush();
    expect(kernel.tryAdmitRaw(refused!.id, refused!.deps, refused!.payload)).toBe(AdmitCode.Ok);
    history.facts.push(refused!);
    await closeKernel(kernel);
    const again = await open(dir);
    expect(snap(again)).toEqual(replay(history.facts));
  });
});

// ---------------------------------------------------------------------------------------- 7. lock

describe('lock', () => {
  it('a second open of the same directory is LogLockedError; after close() it opens again', async () => {
    const dir = tmpDir();
    const kernel = await open(dir);
    const error = await rejection(open(dir));
    expect(error).toBeInstanceOf(LogLockedError);
    expect((error as LogLockedError).code).toBe('LogLocked');
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    // The refused open did not disturb the running kernel.
    const f = new History(11).make();
    await kernel.admitAsync(f.id, f.deps, f.payload).durable();
    await closeKernel(kernel);
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    const again = await open(dir);
    expect(again.contains(f.id)).toBe(true);
  });

  it('a LOCK left by a dead process is taken over', async () => {
    const dir = tmpDir();
    await closeKernel(await open(dir));
    const child = spawnSync(process.execPath, ['-e', '0']);
    expect(child.status).toBe(0);
    const dead = child.pid!;
    fs.writeFileSync(path.join(dir, 'LOCK'), `${dead}\n`);
    const kernel = await open(dir);
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim()).toBe(String(process.pid));
    await closeKernel(kernel);
  });

  it('a LOCK held by a live process is refused, naming it', async () => {
    const dir = tmpDir();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      fs.writeFileSync(path.join(dir, 'LOCK'), `${child.pid}\n`);
      const error = await rejection(open(dir));
      expect(error).toBeInstanceOf(LogLockedError);
      expect((error as Error).message).toContain(String(child.pid));
      expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8').trim()).toBe(String(child.pid)); // not stolen
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    }
    const kernel = await open(dir); // the owner is gone now
    await closeKernel(kernel);
  });
});

// -------------------------------------------------------------------------------------- 8. misuse

describe('misuse', () => {
  it('bad options are InvalidArgumentError, and nothing is created', async () => {
    const bad: OpenOptions[] = [
      { arenaBytes: 300_000 },
      { arenaBytes: 1 << 17 },
      { arenaBytes: 2 ** 31 },
      { segmentBytes: 4095 },
      { segmentBytes: 1000.5 },
      { backend: 'foo' as never },
      { ackTimeoutMs: -1 },
    ];
    for (const options of bad) {
      const dir = path.join(tmpDir(), 'data');
      const error = await rejection(open(dir, options));
      expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).code).toBe('InvalidArgument');
      expect(fs.existsSync(dir)).toBe(false);
    }
    const error = await rejection(TwoLaneDurableKernel.open('', new TotalSupplyInvariant(), SMALL));
    expect(error).toBeInstanceOf(InvalidArgumentError);
  });

  it('reopening with an indexCapacity smaller than a checkpointed history is InvalidArgumentError', async () => {
    const dir = tmpDir();
    const history = new History(12);
    const kernel = await open(dir);
    await admitMany(kernel, history, 40);
    await kernel.checkpoint();
    await closeKernel(kernel);
    const error = await rejection(open(dir, { indexCapacity: 16 }));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toContain('indexCapacity');
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    const again = await open(dir);
    expect(snap(again)).toEqual(replay(history.facts));
  });

  // An intact log replayed into a kernel too small for it is a capacity error, not corruption.
  it('reopening with an indexCapacity smaller than a WAL-only history is a typed capacity error, not WalCorruptionError', async () => {
    const dir = tmpDir();
    const history = new History(13);
    const kernel = await open(dir);
    await admitMany(kernel, history, 40);
    await closeKernel(kernel);
    const error = await rejection(open(dir, { indexCapacity: 16 }));
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    expect(error instanceof InvalidArgumentError || error instanceof CausalHorizonExceededError, String(error)).toBe(true);
  });

  // A zeroed header left by a crash while starting a segment must not receive new, acknowledged
  // records (the next open would refuse the whole log): it is renamed aside.
  it('a zeroed header-only last segment (crash while starting it) is not reused for new records', async () => {
    const dir = tmpDir();
    const history = new History(14);
    const kernel = await open(dir);
    await admitMany(kernel, history, 5);
    await closeKernel(kernel);
    fs.writeFileSync(path.join(dir, 'wal-0000000000000006.log'), new Uint8Array(HEADER));
    const again = await open(dir);
    expect(again.recovery.lastSequence).toBe(5);
    const f = history.make();
    expect(again.tryAdmitRaw(f.id, f.deps, f.payload, AckMode.Durable)).toBe(AdmitCode.Ok);
    history.facts.push(f);
    await closeKernel(again);
    const third = await open(dir);
    expect(third.recovery.lastSequence).toBe(6);
    expect(snap(third)).toEqual(replay(history.facts));
  });

  // A header-only segment left by a run with a smaller arena, then written by a run with a larger
  // one: damage in its large last batch is still a torn tail.
  it('a header-only segment reused with a larger arena still classifies damage in its last batch as a torn tail', async () => {
    const dir = tmpDir();
    await closeKernel(await open(dir, { arenaBytes: 1 << 18 })); // leaves wal-1 with only a header (maxBatchBytes 256 KiB)
    const history = new History(15);
    const kernel = await open(dir, { arenaBytes: 1 << 22, faults: { syncDelayMs: 200 } } as OpenOptions);
    await admitMany(kernel, history, 1, { payloadBytes: 2000 });
    await new Promise((r) => setTimeout(r, 30));
    await admitMany(kernel, history, 400, { payloadBytes: 2000 }); // one batch of ~830 KB, staged while the worker sleeps
    const crashed = await crashImage(kernel);
    await closeKernel(kernel);
    const recs = allRecords(crashed);
    expect(recs[0]!.batchEnd).toBe(true);
    expect(recs.slice(1, -1).some((r) => r.batchEnd)).toBe(false);
    flipBit(recs[1]!.file, recs[1]!.offset + 100, 0);
    const again = await open(crashed, { arenaBytes: 1 << 22 });
    expect(again.recovery.lastSequence).toBe(1);
    expect(again.recovery.tornTail?.offset).toBe(recs[1]!.offset);
  });
});
