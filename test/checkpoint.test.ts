/**
 * Durable kernels: checkpoints (format, tiered BLAKE3 hash, atomic write), recovery from the
 * newest one that verifies with fallback to the one before, compaction, stale temporary files,
 * foreign checkpoints and incompatible ones.
 *
 * DurableKernel starts its persistence worker from compiled JS, so this `threads` file gets the
 * library (test/helpers/lib.ts) from dist/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hash } from 'blake3-jit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AdmitCode,
  CheckpointError,
  CtfsError,
  DurableDataLostError,
  ManifestError,
  DurabilityError,
  DurableKernel,
  LogFormatError,
  toHex,
  verifyLog,
} from './helpers/lib.js';
import { thrown } from './helpers/errors.js';

import {
  History,
  admitMany,
  cleanup,
  closeKernel,
  copyDir,
  flipBit,
  open,
  pool,
  rejection,
  replay,
  snap,
  testDirs,
  tmpDir,
  type Fact,
  type Snap,
} from './helpers/durable.js';

// ---------------------------------------------------------------------------------- helpers

const CKPT_HEADER = 128;
/** The frontier ring in a checkpoint: 8 ids of 32 bytes (version 1: 8 u32 key numbers). */
const RING_BYTES = 256;
const V1_RING_BYTES = 32;

afterEach(() => cleanup(testDirs));

const ckptName = (sequence: number): string => `checkpoint-${sequence.toString(16).padStart(16, '0')}.ckpt`;

function checkpointFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => /^checkpoint-[0-9a-f]{16}\.ckpt$/.test(n)).sort();
}

interface SegInfo {
  readonly file: string;
  readonly first: number;
}

function segmentList(dir: string): SegInfo[] {
  return fs
    .readdirSync(dir)
    .filter((n) => /^wal-[0-9a-f]{16}\.log$/.test(n))
    .sort()
    .map((n) => ({ file: path.join(dir, n), first: Number.parseInt(n.slice(4, 20), 16) }));
}

/** The fields of a checkpoint file (docs/FORMATS.md §9, checkpoint.ts). */
function parseCheckpoint(file: string) {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const v = new DataView(bytes.buffer);
  const cells = v.getUint32(32, true);
  const ids = v.getUint32(36, true);
  return {
    bytes,
    magic: v.getUint32(0, true),
    version: v.getUint32(4, true),
    sequence: v.getUint32(12, true) * 2 ** 32 + v.getUint32(8, true),
    logId: toHex(bytes.slice(16, 32)),
    cells,
    ids,
    popcount: v.getUint32(40, true),
    headStart: v.getUint32(44, true),
    headCount: v.getUint32(48, true),
    bodyBytes: v.getUint32(52, true),
    createdAt: v.getUint32(60, true) * 2 ** 32 + v.getUint32(56, true),
    hash: toHex(bytes.slice(64, 96)),
  };
}

const HASH_CONTEXT = new TextEncoder().encode('ctfs/checkpoint/v1\0');

/** The documented tiered hash, computed independently of the library (of a version-1 file with `ringBytes` 32). */
function tieredHash(bytes: Uint8Array, ringBytes = RING_BYTES): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  const cellBytes = 64 * v.getUint32(32, true);
  const idBytes = 32 * v.getUint32(36, true);
  let at = CKPT_HEADER;
  const cells = bytes.slice(at, (at += cellBytes));
  const clockAndHeads = bytes.slice(at, (at += 64 + ringBytes));
  const ids = bytes.slice(at, (at += idBytes));
  const top = new Uint8Array([
    ...HASH_CONTEXT,
    ...bytes.subarray(0, 64),
    ...bytes.subarray(96, 128),
    ...hash(cells),
    ...hash(clockAndHeads),
    ...hash(ids),
  ]);
  return hash(top);
}


// --------------------------------------------------------------------------- checkpoint + WAL

describe('checkpoint()', () => {
  it('writes the snapshot taken at the call; reopen starts from it and replays only the facts after it', async () => {
    const dir = tmpDir();
    const history = new History(21);
    const started = Date.now();
    const kernel = await open(dir);
    await admitMany(kernel, history, 30);
    const frontierAt30 = kernel.frontier().map(toHex);
    const pending = kernel.checkpoint();
    // Admission goes on meanwhile; the checkpoint holds the snapshot taken at the call.
    await admitMany(kernel, history, 10);
    const info = await pending;
    const file = path.join(dir, ckptName(30));
    expect(info.file).toBe(file);
    expect(info.sequence).toBe(30);
    expect(info.facts).toBe(30);
    expect(info.bytes).toBe(fs.statSync(file).size);
    expect(info.bytes).toBe(CKPT_HEADER + 64 + 64 + RING_BYTES + 30 * 32);
    expect(info.compaction).toEqual({ deletedSegments: [], deletedCheckpoints: [] });
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(checkpointFiles(dir)).toEqual([ckptName(0), ckptName(30)]);
    await admitMany(kernel, history, 5);
    const logId = kernel.recovery.logId;
    await closeKernel(kernel);

    // The header says what the file holds, and the stored hash is the documented tiered BLAKE3.
    const c = parseCheckpoint(file);
    expect(c.magic).toBe(0x50435443);
    expect(c.version).toBe(2);
    expect(c.sequence).toBe(30);
    expect(c.logId).toBe(logId);
    expect(c.cells).toBe(1);
    expect(c.ids).toBe(30);
    expect(c.bodyBytes).toBe(c.bytes.length - CKPT_HEADER);
    expect(c.createdAt).toBeGreaterThanOrEqual(started);
    expect(c.createdAt).toBeLessThanOrEqual(Date.now());
    expect(toHex(tieredHash(c.bytes))).toBe(c.hash);
    // The body's ids are the first 30 admitted, in memcmp order (the set's canonical order).
    const ids = c.bytes.subarray(CKPT_HEADER + 64 + 64 + RING_BYTES);
    const first30 = history.facts.slice(0, 30).map((f) => toHex(f.id)).sort();
    for (let i = 0; i < 30; i++) expect(toHex(ids.subarray(32 * i, 32 * i + 32))).toBe(first30[i]);
    // The frontier ring holds the heads' ids themselves, as the kernel showed them.
    const ring = c.bytes.subarray(CKPT_HEADER + 64 + 64, CKPT_HEADER + 64 + 64 + RING_BYTES);
    const heads = Array.from({ length: c.headCount }, (_, i) => {
      const slot = (c.headStart + i) % 8;
      return toHex(ring.subarray(32 * slot, 32 * slot + 32));
    });
    expect(heads).toEqual(frontierAt30);

    const again = await open(dir);
    expect(again.recovery.checkpoint).toEqual({ file, sequence: 30 });
    expect(again.recovery.rejectedCheckpoints).toEqual([]);
    expect(again.recovery.replayed).toBe(15);
    expect(again.recovery.lastSequence).toBe(45);
    expect(snap(again)).toEqual(replay(history.facts));
    await admitMany(again, history, 3);
    const second = await again.checkpoint();
    expect(second.sequence).toBe(48);
    await closeKernel(again);
    const third = await open(dir);
    expect(third.recovery.checkpoint?.sequence).toBe(48);
    expect(third.recovery.replayed).toBe(0);
    expect(snap(third)).toEqual(replay(history.facts));
  });

  it('a checkpoint of a failed log rejects with DurabilityError and writes nothing', async () => {
    const dir = tmpDir();
    const history = new History(22);
    const kernel = await open(dir, { faults: { failSyncAt: 2 } });
    await admitMany(kernel, history, 1);
    await kernel.flush();
    await admitMany(kernel, history, 1);
    await expect(kernel.flush()).rejects.toBeInstanceOf(DurabilityError);
    const error = await rejection(kernel.checkpoint());
    expect(error).toBeInstanceOf(DurabilityError);
    expect(checkpointFiles(dir)).toEqual([ckptName(0)]);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

// ------------------------------------------------------------------- damaged newest checkpoint

describe('damaged checkpoints', () => {
  const baseDirs: string[] = [];
  let base = '';
  let facts: Fact[] = [];
  let expected: Snap;
  let c1 = 0;
  let c2 = 0;
  afterAll(() => cleanup(baseDirs));

  beforeAll(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
    baseDirs.push(base);
    const history = new History(23);
    const kernel = await open(base);
    await admitMany(kernel, history, 8);
    c1 = (await kernel.checkpoint()).sequence;
    await admitMany(kernel, history, 6);
    c2 = (await kernel.checkpoint()).sequence;
    await admitMany(kernel, history, 4);
    await closeKernel(kernel);
    facts = history.facts;
    expected = replay(facts);
    expect([c1, c2]).toEqual([8, 14]);
  });

  async function expectFallback(dir: string, what: string): Promise<string> {
    const kernel = await open(dir);
    const report = kernel.recovery;
    expect(report.rejectedCheckpoints.map((r) => r.file), what).toEqual([path.join(dir, ckptName(c2))]);
    expect(report.checkpoint, what).toEqual({ file: path.join(dir, ckptName(c1)), sequence: c1 });
    expect(report.replayed, what).toBe(facts.length - c1);
    expect(report.lastSequence).toBe(facts.length);
    expect(snap(kernel), what).toEqual(expected);
    await closeKernel(kernel);
    return report.rejectedCheckpoints[0]!.reason;
  }

  it('the base opens from the newest checkpoint', async () => {
    const kernel = await open(copyDir(base));
    expect(kernel.recovery.checkpoint?.sequence).toBe(c2);
    expect(kernel.recovery.rejectedCheckpoints).toEqual([]);
    expect(snap(kernel)).toEqual(expected);
  });

  it('a flipped bit in any byte of the newest checkpoint (header fields and body) is rejected; recovery falls back with an identical result', async () => {
    const original = fs.readFileSync(path.join(base, ckptName(c2)));
    expect(original.length).toBe(CKPT_HEADER + 64 + 64 + RING_BYTES + c2 * 32);
    // Every byte, one open per 24 positions: the checkpoint itself damaged at the first, and
    // damaged copies at the others under higher sequence names, so recovery examines (and must
    // reject) each of them before the real one. A copy that passed verification would be
    // rejected for its name instead (or, if the flip made it match its name, be used): both fail.
    const positions = Array.from({ length: original.length }, (_, i) => i);
    const chunks: number[][] = [];
    for (let i = 0; i < positions.length; i += 24) chunks.push(positions.slice(i, i + 24));
    await pool(chunks, 3, async (chunk) => {
      const dir = copyDir(base);
      const damaged = (byte: number): Buffer => {
        const bytes = Buffer.from(original);
        bytes[byte] = bytes[byte]! ^ (1 << ((byte * 3) % 8));
        return bytes;
      };
      fs.writeFileSync(path.join(dir, ckptName(c2)), damaged(chunk[0]!));
      for (let j = 1; j < chunk.length; j++) fs.writeFileSync(path.join(dir, ckptName(1000 + j)), damaged(chunk[j]!));
      const kernel = await open(dir);
      const report = kernel.recovery;
      const files = [...chunk.slice(1).map((_, j) => ckptName(1000 + j + 1)).reverse(), ckptName(c2)];
      expect(report.rejectedCheckpoints.map((r) => path.basename(r.file)), `bytes ${chunk.join(',')}`).toEqual(files);
      for (const [j, r] of report.rejectedCheckpoints.entries()) {
        expect(r.reason, `byte ${j === files.length - 1 ? chunk[0] : chunk[files.length - 1 - j]}`).not.toMatch(/its name says/);
      }
      expect(report.checkpoint).toEqual({ file: path.join(dir, ckptName(c1)), sequence: c1 });
      expect(report.replayed).toBe(facts.length - c1);
      expect(snap(kernel)).toEqual(expected);
      await closeKernel(kernel);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  it('a flipped bit in each header field of the newest checkpoint, alone: rejected, fallback identical', async () => {
    // sequence, log id, cell count, id count, popcount, frontier, body size, createdAt, hash, reserved
    const bytes = [9, 17, 32, 37, 41, 45, 49, 53, 57, 62, 66, 100, 127];
    await pool(bytes, 3, async (byte) => {
      const dir = copyDir(base);
      flipBit(path.join(dir, ckptName(c2)), byte, (byte * 3) % 8);
      await expectFallback(dir, `byte ${byte}`);
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });

  it('the reasons name the damage: hash, magic, version, sizes', async () => {
    const cases: [number, RegExp][] = [
      [0, /magic/],
      [4, /version/],
      [8, /hash/], // the sequence field: covered by the hash
      [20, /hash/], // the log id
      [33, /cell count|size/],
      [36, /size/], // the id count
      [58, /hash/], // createdAt
      [70, /hash/], // the stored hash itself
      [CKPT_HEADER + 3, /hash/], // the state cell
    ];
    for (const [byte, reason] of cases) {
      const dir = copyDir(base);
      flipBit(path.join(dir, ckptName(c2)), byte, 1);
      expect(await expectFallback(dir, `byte ${byte}`)).toMatch(reason);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a truncated checkpoint or one with trailing garbage is rejected', async () => {
    const file = ckptName(c2);
    const full = fs.readFileSync(path.join(base, file));
    const variants: [string, Uint8Array][] = [
      ['1 byte short', full.subarray(0, full.length - 1)],
      ['32 bytes short', full.subarray(0, full.length - 32)],
      ['header only', full.subarray(0, CKPT_HEADER)],
      ['shorter than a header', full.subarray(0, 100)],
      ['empty', new Uint8Array(0)],
      ['1 byte of garbage after it', Buffer.concat([full, Buffer.from([0])])],
      ['32 bytes of garbage after it', Buffer.concat([full, Buffer.alloc(32, 0xab)])],
    ];
    for (const [what, bytes] of variants) {
      const dir = copyDir(base);
      fs.writeFileSync(path.join(dir, file), bytes);
      const reason = await expectFallback(dir, what);
      expect(reason, what).toMatch(/size|shorter/);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with every checkpoint rejected the whole WAL is replayed; with the WAL deleted too, DurableDataLostError', async () => {
    const dir = copyDir(base);
    for (const name of checkpointFiles(dir)) flipBit(path.join(dir, name), 200, 0);
    const kernel = await open(dir);
    expect(kernel.recovery.checkpoint).toBeUndefined();
    expect(kernel.recovery.rejectedCheckpoints.map((r) => path.basename(r.file))).toEqual(checkpointFiles(dir).reverse());
    expect(kernel.recovery.rejectedCheckpoints.length).toBe(2); // checkpoint 0 was compacted away
    expect(kernel.recovery.replayed).toBe(facts.length);
    expect(snap(kernel)).toEqual(expected);
    await closeKernel(kernel);

    const empty = tmpDir();
    await closeKernel(await open(empty));
    for (const s of segmentList(empty)) fs.rmSync(s.file);
    flipBit(path.join(empty, ckptName(0)), 130, 0);
    // The manifest names the segment the log was appending to: its deletion is detected.
    const error = await rejection(open(empty));
    expect(error).toBeInstanceOf(DurableDataLostError);
    expect(error).toBeInstanceOf(CtfsError);
    expect((error as DurableDataLostError).code).toBe('DurableDataLost');
    expect((error as DurableDataLostError).file).toBe(path.join(empty, 'wal-0000000000000001.log'));
    expect((error as DurableDataLostError).fromSequence).toBe(1);
    expect(fs.existsSync(path.join(empty, 'LOCK'))).toBe(false);
  });
});

// ------------------------------------------------------------------------------- compaction

describe('compaction', () => {
  it('keeps the two newest checkpoints, deletes the segments entirely below the older one, and reopen (also via the fallback) gives the same state', async () => {
    const dir = tmpDir();
    const history = new History(24);
    const options = { segmentBytes: 4096 };
    const phase = async (kernel: DurableKernel): Promise<void> => {
      for (let g = 0; g < 4; g++) {
        await admitMany(kernel, history, 3, { payloadBytes: 1500 });
        await kernel.flush();
      }
    };
    let kernel = await open(dir, options);
    await phase(kernel);
    const i1 = await kernel.checkpoint();
    expect(i1.compaction).toEqual({ deletedSegments: [], deletedCheckpoints: [] }); // two checkpoints: nothing to delete
    await phase(kernel);
    const i2 = await kernel.checkpoint();
    expect(i2.compaction.deletedCheckpoints).toEqual([path.join(dir, ckptName(0))]);
    await phase(kernel);
    await closeKernel(kernel);

    // Reopened, so no segment is being rolled while we look.
    kernel = await open(dir, options);
    const before = segmentList(dir);
    expect(before.length).toBeGreaterThanOrEqual(6);
    const i3 = await kernel.checkpoint();
    const c2 = i2.sequence;
    const expectedDeleted = before.filter((_, i) => i + 1 < before.length && before[i + 1]!.first - 1 <= c2).map((s) => s.file);
    expect(expectedDeleted.length).toBeGreaterThan(0);
    expect([...i3.compaction.deletedSegments].sort()).toEqual(expectedDeleted);
    expect(i3.compaction.deletedCheckpoints).toEqual([i1.file]);
    expect(checkpointFiles(dir)).toEqual([ckptName(c2), ckptName(i3.sequence)]);
    const after = segmentList(dir);
    for (const f of expectedDeleted) expect(fs.existsSync(f)).toBe(false);
    // What remains still covers every record after the older kept checkpoint.
    expect(after[0]!.first).toBeLessThanOrEqual(c2 + 1);
    for (let i = 0; i + 1 < after.length; i++) expect(after[i + 1]!.first - 1).toBeGreaterThan(c2);
    await phase(kernel);
    await closeKernel(kernel);

    const again = await open(copyDir(dir));
    expect(again.recovery.checkpoint?.sequence).toBe(i3.sequence);
    expect(snap(again)).toEqual(replay(history.facts));
    await closeKernel(again);

    // Fall back to the older kept checkpoint: the WAL after it must still be complete.
    const damaged = copyDir(dir);
    flipBit(path.join(damaged, ckptName(i3.sequence)), 140, 4);
    const fallback = await open(damaged);
    expect(fallback.recovery.rejectedCheckpoints.map((r) => path.basename(r.file))).toEqual([ckptName(i3.sequence)]);
    expect(fallback.recovery.checkpoint?.sequence).toBe(c2);
    expect(fallback.recovery.replayed).toBe(history.facts.length - c2);
    expect(snap(fallback)).toEqual(replay(history.facts));
  });
});

// ---------------------------------------------------------------------------- temporary files

describe('temporary files', () => {
  it('no .tmp remains after a checkpoint; stale .tmp files are ignored and overwritten', async () => {
    const dir = tmpDir();
    const history = new History(25);
    let kernel = await open(dir);
    await admitMany(kernel, history, 6);
    const info = await kernel.checkpoint();
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp'))).toEqual([]);
    await closeKernel(kernel);

    // A crash mid-write leaves `checkpoint-….ckpt.tmp`: garbage, or even a whole valid image.
    fs.writeFileSync(path.join(dir, `${ckptName(0xff)}.tmp`), Buffer.alloc(300, 7));
    fs.copyFileSync(info.file, path.join(dir, `${ckptName(0x100)}.tmp`));
    fs.writeFileSync(path.join(dir, `${ckptName(9)}.tmp`), Buffer.alloc(50, 1)); // the next checkpoint's name
    kernel = await open(dir);
    expect(kernel.recovery.checkpoint).toEqual({ file: info.file, sequence: 6 });
    expect(kernel.recovery.rejectedCheckpoints).toEqual([]);
    await admitMany(kernel, history, 3);
    const next = await kernel.checkpoint();
    expect(next.file).toBe(path.join(dir, ckptName(9)));
    expect(fs.existsSync(`${next.file}.tmp`)).toBe(false);
    await closeKernel(kernel);
    kernel = await open(dir);
    expect(kernel.recovery.checkpoint?.sequence).toBe(9);
    expect(kernel.recovery.rejectedCheckpoints).toEqual([]);
    expect(snap(kernel)).toEqual(replay(history.facts));
  });
});

// ------------------------------------------------------------------------ foreign checkpoints

describe('a checkpoint from another log', () => {
  let a = '';
  let b = '';
  let aFacts: Fact[] = [];
  let bSequence = 0;
  const baseDirs: string[] = [];
  afterAll(() => cleanup(baseDirs));

  beforeAll(async () => {
    a = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
    b = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-wal-'));
    baseDirs.push(a, b);
    const ha = new History(26);
    const ka = await open(a);
    await admitMany(ka, ha, 10);
    await ka.checkpoint();
    await admitMany(ka, ha, 3);
    await closeKernel(ka);
    aFacts = ha.facts;
    const hb = new History(27);
    const kb = await open(b);
    await admitMany(kb, hb, 20);
    bSequence = (await kb.checkpoint()).sequence;
    await closeKernel(kb);
    expect(parseCheckpoint(path.join(a, ckptName(10))).logId).not.toBe(parseCheckpoint(path.join(b, ckptName(20))).logId);
  });

  it('under its own (consistent) name it verifies, but not as part of this log (the manifest names another log id): rejected, recovery falls back', async () => {
    const dir = copyDir(a);
    const foreign = path.join(dir, ckptName(bSequence));
    fs.copyFileSync(path.join(b, ckptName(bSequence)), foreign);
    const kernel = await open(dir);
    expect(kernel.recovery.rejectedCheckpoints).toEqual([{ file: foreign, reason: expect.stringMatching(/another log/) }]);
    expect(kernel.recovery.checkpoint?.sequence).toBe(10);
    expect(snap(kernel)).toEqual(replay(aFacts));
  });

  it('renamed to a higher sequence than it holds, it is rejected and recovery falls back', async () => {
    const dir = copyDir(a);
    const foreign = path.join(dir, ckptName(0x40));
    fs.copyFileSync(path.join(b, ckptName(bSequence)), foreign);
    const kernel = await open(dir);
    expect(kernel.recovery.rejectedCheckpoints).toEqual([{ file: foreign, reason: expect.stringMatching(/holds sequence 20, its name says 64/) }]);
    expect(kernel.recovery.checkpoint?.sequence).toBe(10);
    expect(kernel.recovery.lastSequence).toBe(13);
    expect(snap(kernel)).toEqual(replay(aFacts));
  });
});

// ------------------------------------------------------------------------------ incompatible

/** A copy of a valid checkpoint with a second state cell, re-hashed: well formed, but not for a one-invariant kernel. */
function forgeTwoCells(bytes: Uint8Array): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  expect(v.getUint32(32, true)).toBe(1);
  const out = new Uint8Array(bytes.length + 64);
  out.set(bytes.subarray(0, CKPT_HEADER + 64));
  out.set(bytes.subarray(CKPT_HEADER, CKPT_HEADER + 64), CKPT_HEADER + 64); // the second cell
  out.set(bytes.subarray(CKPT_HEADER + 64), CKPT_HEADER + 128);
  const w = new DataView(out.buffer);
  w.setUint32(32, 2, true);
  w.setUint32(52, v.getUint32(52, true) + 64, true);
  out.set(tieredHash(out), 64);
  return out;
}

// ---------------------------------------------------------------- crafted, correctly hashed

/** `bytes` changed by `edit` (a view of the copy) and re-hashed: a forgery the hash accepts. */
function forge(bytes: Uint8Array, edit: (v: DataView, out: Uint8Array) => void): Uint8Array {
  const out = bytes.slice();
  edit(new DataView(out.buffer), out);
  out.set(tieredHash(out), 64);
  return out;
}

describe('crafted checkpoints with a valid hash are cross-checked', () => {
  const cases: [string, (v: DataView, out: Uint8Array) => void, RegExp][] = [
    ['a Bloom popcount above 512 (saturation > 1)', (v) => v.setUint32(40, 600, true), /popcount 600/],
    ['a Bloom popcount that is not the clock’s bit count', (v) => v.setUint32(40, v.getUint32(40, true) + 1, true), /popcount/],
    [
      'an empty clock (every id missing from it)',
      (v, out) => {
        v.setUint32(40, 0, true);
        out.fill(0, CKPT_HEADER + 64, CKPT_HEADER + 128);
      },
      /id 0 is not in the causal clock/,
    ],
    [
      'a frontier naming one fact twice',
      (v, out) => {
        const start = v.getUint32(44, true);
        const ring = CKPT_HEADER + 64 + 64;
        v.setUint32(48, 2, true);
        out.copyWithin(ring + 32 * ((start + 1) % 8), ring + 32 * start, ring + 32 * start + 32);
      },
      /frontier names a fact twice/,
    ],
    [
      'a frontier naming an id that is not among the ids',
      (v, out) => {
        const ring = CKPT_HEADER + 64 + 64;
        const head = ring + 32 * v.getUint32(44, true);
        out[head + 31] = out[head + 31]! ^ 1; // the first word still matches an id: the full compare decides
      },
      /frontier head 0 is not one of the checkpoint's ids/,
    ],
    [
      'a frontier head that shares no first word with any id',
      (v, out) => {
        const ring = CKPT_HEADER + 64 + 64;
        v.setUint32(44, 5, true);
        v.setUint32(48, 1, true);
        out.fill(0xab, ring + 32 * 5, ring + 32 * 6);
      },
      /frontier head 0 is not one of the checkpoint's ids/,
    ],
    ['more frontier heads than ids', (v) => v.setUint32(48, 8, true), /frontier/],
  ];

  it.for(cases)('%s: rejected by open and by verifyLog, recovery falls back with the exact history', async ([, edit, reason]) => {
    const dir = tmpDir();
    const history = new History(30);
    const kernel = await open(dir);
    await admitMany(kernel, history, 5, { deps: 0 });
    const info = await kernel.checkpoint();
    await admitMany(kernel, history, 2);
    await closeKernel(kernel);
    fs.writeFileSync(info.file, forge(new Uint8Array(fs.readFileSync(info.file)), edit));
    expect(verifyLog(dir).checkpoints[0]).toEqual({ file: info.file, sequence: 5, problem: expect.stringMatching(reason) });
    const k = await open(dir);
    expect(k.recovery.rejectedCheckpoints).toEqual([{ file: info.file, reason: expect.stringMatching(reason) }]);
    expect(k.recovery.checkpoint?.sequence).toBe(0);
    expect(snap(k)).toEqual(replay(history.facts));
  });
});

// ------------------------------------------------------------------------------ earlier format

/**
 * `bytes` (a checkpoint of this version) as version 1 wrote it: the frontier ring as 8 u32 key
 * numbers (a head's position in the id list) instead of 8 ids, re-hashed the same way.
 */
function asVersion1(bytes: Uint8Array): Uint8Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  const ringAt = CKPT_HEADER + 64 * v.getUint32(32, true) + 64;
  const idsAt = ringAt + RING_BYTES;
  const ids = Array.from({ length: v.getUint32(36, true) }, (_, k) => toHex(bytes.subarray(idsAt + 32 * k, idsAt + 32 * k + 32)));
  const out = new Uint8Array(bytes.length - RING_BYTES + V1_RING_BYTES);
  out.set(bytes.subarray(0, ringAt));
  out.set(bytes.subarray(idsAt), ringAt + V1_RING_BYTES);
  const w = new DataView(out.buffer);
  for (let slot = 0; slot < 8; slot++) {
    const k = ids.indexOf(toHex(bytes.subarray(ringAt + 32 * slot, ringAt + 32 * slot + 32)));
    w.setUint32(ringAt + 4 * slot, Math.max(k, 0), true);
  }
  w.setUint32(4, 1, true);
  w.setUint32(52, v.getUint32(52, true) - RING_BYTES + V1_RING_BYTES, true);
  out.set(tieredHash(out, V1_RING_BYTES), 64);
  return out;
}

describe('a checkpoint of the earlier format (version 1: the frontier as key numbers)', () => {
  async function withVersion1(seed: number): Promise<{ dir: string; file: string; history: History }> {
    const dir = tmpDir();
    const history = new History(seed);
    const kernel = await open(dir);
    await admitMany(kernel, history, 6);
    const info = await kernel.checkpoint();
    await admitMany(kernel, history, 2);
    await closeKernel(kernel);
    fs.writeFileSync(info.file, asVersion1(new Uint8Array(fs.readFileSync(info.file))));
    return { dir, file: info.file, history };
  }

  it('intact: LogFormatError from open (salvage too), verifyLog and reanchor — never skipped as damage', async () => {
    const { dir, file } = await withVersion1(32);
    for (const options of [{}, { salvage: true }]) {
      const error = await rejection(open(dir, options));
      expect(error).toBeInstanceOf(LogFormatError);
      expect((error as LogFormatError).code).toBe('UnsupportedLogFormat');
      expect((error as LogFormatError).file).toBe(file);
      expect((error as LogFormatError).message).toMatch(/checkpoint version 1 .*earlier ctfs format/);
    }
    expect(thrown(() => verifyLog(dir))).toBeInstanceOf(LogFormatError);
    const other = await open(tmpDir());
    const before = snap(other);
    expect(await rejection(other.reanchor(file))).toBeInstanceOf(LogFormatError);
    expect(snap(other)).toEqual(before);
    await closeKernel(other);
  });

  it('damaged (its hash does not verify): CheckpointError naming the version, and recovery falls back', async () => {
    const { dir, file, history } = await withVersion1(33);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    fs.writeFileSync(file, bytes);
    const k = await open(dir);
    expect(k.recovery.rejectedCheckpoints).toEqual([{ file, reason: expect.stringMatching(/unsupported version 1/) }]);
    expect(k.recovery.checkpoint?.sequence).toBe(0);
    expect(snap(k)).toEqual(replay(history.facts));
  });
});

describe('incompatible checkpoints', () => {
  it('a well-formed checkpoint with another number of state cells is refused: CheckpointError when nothing else can be recovered', async () => {
    const dir = tmpDir();
    const history = new History(28);
    const kernel = await open(dir);
    await admitMany(kernel, history, 5);
    const info = await kernel.checkpoint();
    await closeKernel(kernel);
    const forged = forgeTwoCells(new Uint8Array(fs.readFileSync(info.file)));

    // As the newest checkpoint: refused, named with the reason, and the older one is used.
    const withFallback = copyDir(dir);
    fs.writeFileSync(path.join(withFallback, ckptName(5)), forged);
    const k = await open(withFallback);
    expect(k.recovery.rejectedCheckpoints).toEqual([{ file: path.join(withFallback, ckptName(5)), reason: expect.stringMatching(/2 state cells, the kernel 1/) }]);
    expect(k.recovery.checkpoint?.sequence).toBe(0);
    expect(snap(k)).toEqual(replay(history.facts));
    await closeKernel(k);

    // As the only history (no manifest either): a typed error, not a silently empty kernel.
    const only = tmpDir();
    fs.writeFileSync(path.join(only, ckptName(5)), forged);
    const error = await rejection(open(only));
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as ManifestError).code).toBe('ManifestInvalid');
  });

  it('the independent tiered hash accepts the forged file format (sanity: the forgery is well formed)', async () => {
    const dir = tmpDir();
    const kernel = await open(dir);
    await admitMany(kernel, new History(29), 3);
    const info = await kernel.checkpoint();
    await closeKernel(kernel);
    const original = new Uint8Array(fs.readFileSync(info.file));
    expect(toHex(tieredHash(original))).toBe(toHex(original.subarray(64, 96)));
    const forged = forgeTwoCells(original);
    expect(forged.length).toBe(original.length + 64);
    // Put back as a one-cell file of the same log it must verify: only the cell count is off.
    const dir2 = copyDir(dir);
    fs.writeFileSync(path.join(dir2, ckptName(3)), forged);
    const k = await open(dir2);
    expect(k.recovery.rejectedCheckpoints[0]?.reason).toMatch(/state cells/);
    expect(k.recovery.rejectedCheckpoints[0]?.reason).not.toMatch(/hash|size/);
  });
});

describe('re-anchoring on a verified checkpoint', () => {
  it('makes the kernel exactly the checkpoint’s history, in memory and on disk, and it goes on from there', async () => {
    const source = await open(tmpDir());
    const a = new History(41);
    await admitMany(source, a, 50);
    const anchor = await source.checkpoint();
    await closeKernel(source);

    const dir = tmpDir();
    const kernel = await open(dir);
    const b = new History(42);
    await admitMany(kernel, b, 20);
    await kernel.checkpoint();
    await admitMany(kernel, b, 5);
    const before = kernel.lastSequence;

    const info = await kernel.reanchor(anchor.file);
    expect(info.sequence).toBe(before);
    expect(info.facts).toBe(50);
    expect(snap(kernel)).toEqual(replay(a.facts));
    expect(kernel.contains(b.facts[0]!.id)).toBe(false);
    // Only the anchor is left to recover from: no fallback to the history before it.
    expect(checkpointFiles(dir)).toEqual([ckptName(before)]);

    // New facts may depend on the anchored history; a reopen gives anchor + what followed.
    const next = a.make({ deps: 2 });
    a.facts.push(next);
    expect(kernel.tryAdmitRaw(next.id, next.deps, next.payload)).toBe(AdmitCode.Ok);
    await closeKernel(kernel);
    const again = await open(dir);
    expect(again.recovery.checkpoint?.sequence).toBe(before);
    expect(again.recovery.replayed).toBe(1);
    expect(snap(again)).toEqual(replay(a.facts));
  });

  it('refuses a damaged or unfitting checkpoint and changes nothing', async () => {
    const source = await open(tmpDir());
    const a = new History(43);
    await admitMany(source, a, 30);
    const anchor = await source.checkpoint();
    await closeKernel(source);
    const damaged = path.join(tmpDir(), 'damaged.ckpt');
    const bytes = fs.readFileSync(anchor.file);
    bytes[CKPT_HEADER + 3] = bytes[CKPT_HEADER + 3]! ^ 0x10;
    fs.writeFileSync(damaged, bytes);

    const dir = tmpDir();
    const kernel = await open(dir, { indexCapacity: 16 });
    const b = new History(44);
    await admitMany(kernel, b, 10);
    const files = fs.readdirSync(dir).sort();
    const expected = snap(kernel);
    const e1 = await rejection(kernel.reanchor(damaged));
    expect(e1).toBeInstanceOf(CheckpointError);
    // 30 facts do not fit a kernel sized for 16.
    const e2 = await rejection(kernel.reanchor(anchor.file));
    expect((e2 as CtfsError).code).toBe('InvalidArgument');
    expect(snap(kernel)).toEqual(expected);
    expect(fs.readdirSync(dir).sort()).toEqual(files);
    await closeKernel(kernel);
  });
});
