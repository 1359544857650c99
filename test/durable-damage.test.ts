/**
 * Damage to what a durable log acknowledged, and disks that refuse: every case is a typed error
 * naming the place, or a recovery that is exactly right — never a silently shorter history or a
 * different state.
 *
 * - after a clean close the whole log is known durable: cutting, emptying or deleting its last
 *   segment, or flipping a bit in its last batch, is DurableDataLostError (file, offset, missing
 *   sequences), from open and from verifyLog alike; `salvage: true` recovers the readable prefix
 *   and says what was lost;
 * - after a crash the segment being written is named by the manifest: deleting or emptying it is
 *   detected; only a batch in flight may be dropped (the torn-tail cases in wal-recovery.test.ts);
 * - the initial state and the invariant's identity are in the manifest: a lost or damaged
 *   checkpoint 0 recovers the right state, another invariant is InvariantMismatchError;
 * - ENOSPC, EROFS, EACCES reach the caller as StorageError with the system error as cause, and
 *   no temporary file is left; stale temporary and torn files are removed at open.
 *
 * Real ENOSPC comes from /dev/full (a temporary file name made a symlink to it); EROFS and EACCES
 * cannot be produced here without privileges the tests should not need (they run as root, where
 * permission bits do not refuse), so they are injected through the data directory's test seam.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConservationState,
  CtfsError,
  DurabilityError,
  DurableDataLostError,
  DurableKernel,
  GCounterInvariant,
  GGraphInvariant,
  KernelPool,
  InvariantMismatchError,
  LogFormatError,
  ManifestError,
  StorageError,
  TotalSupplyInvariant,
  WalCorruptionError,
  factId,
  verifyLog,
  storageFaults as libStorageFaults,
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
  rejection,
  replay,
  snap,
  testDirs,
  tmpDir,
  type Fact,
  type OpenOptions,
} from './helpers/durable.js';
import { thrown } from './helpers/errors.js';

afterEach(() => cleanup(testDirs));

const HEADER = 64;
const SEGMENT_1 = 'wal-0000000000000001.log';
const ckptName = (sequence: number): string => `checkpoint-${sequence.toString(16).padStart(16, '0')}.ckpt`;

interface Rec {
  readonly offset: number;
  readonly length: number;
  readonly sequence: number;
}

/** The records of a segment file, by their length fields. */
function records(file: string): Rec[] {
  const bytes = fs.readFileSync(file);
  const out: Rec[] = [];
  for (let at = HEADER; at + 8 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    if (length === 0 || at + length > bytes.length) break;
    out.push({ offset: at, length, sequence: bytes.readUInt32LE(at + 16) });
    at += length;
  }
  return out;
}


/** A cleanly closed log of 30 facts in several batches, one segment. */
async function closedLog(): Promise<{ dir: string; facts: Fact[] }> {
  const dir = tmpDir();
  const history = new History(71);
  const kernel = await open(dir);
  for (let g = 0; g < 3; g++) {
    await admitMany(kernel, history, 10, { payloadBytes: 100 });
    await kernel.flush();
  }
  await closeKernel(kernel);
  return { dir, facts: history.facts };
}

async function expectLost(dir: string, want: { file: string; offset: number; from: number; to: number | undefined }): Promise<void> {
  const listing = fs.readdirSync(dir).sort();
  const error = await rejection(open(dir));
  expect(error, String(error)).toBeInstanceOf(DurableDataLostError);
  expect(error).toBeInstanceOf(CtfsError);
  const e = error as DurableDataLostError;
  expect(e.code).toBe('DurableDataLost');
  expect({ file: e.file, offset: e.offset, from: e.fromSequence, to: e.toSequence }).toEqual(want);
  expect(e.message).toContain(want.file);
  // A refused open changes nothing and releases the lock.
  expect(fs.readdirSync(dir).sort()).toEqual(listing);
  // verifyLog refuses the same way.
  const v = thrown(() => verifyLog(dir)) as DurableDataLostError;
  expect(v).toBeInstanceOf(DurableDataLostError);
  expect({ file: v.file, offset: v.offset, from: v.fromSequence, to: v.toSequence }).toEqual(want);
}

/** Salvage recovers exactly the first `kept` facts, reports the loss, and the log is whole again afterwards. */
async function expectSalvage(dir: string, facts: readonly Fact[], kept: number, lost: { from: number; to: number | undefined }): Promise<void> {
  const kernel = await open(dir, { salvage: true });
  expect(kernel.recovery.salvage).toMatchObject({ code: 'DurableDataLost', lostFrom: lost.from, lostTo: lost.to });
  expect(kernel.recovery.lastSequence).toBe(kept);
  expect(snap(kernel)).toEqual(replay(facts.slice(0, kept)));
  await closeKernel(kernel);
  const again = await open(dir);
  expect(again.recovery.salvage).toBeUndefined();
  expect(again.recovery.lastSequence).toBe(kept);
  expect(verifyLog(dir).lastSequence).toBe(kept);
}

describe('after a clean close, damage to the end of the log is DurableDataLostError, never a torn tail', () => {
  it('the last segment cut at a record boundary', async () => {
    const { dir, facts } = await closedLog();
    const file = path.join(dir, SEGMENT_1);
    const last = records(file).at(-1)!;
    fs.truncateSync(file, last.offset);
    await expectLost(dir, { file, offset: last.offset, from: 30, to: 30 });
    await expectSalvage(dir, facts, 29, { from: 30, to: 30 });
  });

  it('the last segment cut inside a record', async () => {
    const { dir, facts } = await closedLog();
    const file = path.join(dir, SEGMENT_1);
    const recs = records(file);
    fs.truncateSync(file, recs[24]!.offset + 30);
    await expectLost(dir, { file, offset: recs[24]!.offset, from: 25, to: 30 });
    await expectSalvage(dir, facts, 24, { from: 25, to: 30 });
  });

  it('the last segment cut to its header, or emptied', async () => {
    const { dir, facts } = await closedLog();
    const headerOnly = copyDir(dir);
    fs.truncateSync(path.join(headerOnly, SEGMENT_1), HEADER);
    await expectLost(headerOnly, { file: path.join(headerOnly, SEGMENT_1), offset: HEADER, from: 1, to: 30 });
    const empty = copyDir(dir);
    fs.truncateSync(path.join(empty, SEGMENT_1), 0);
    await expectLost(empty, { file: path.join(empty, SEGMENT_1), offset: 0, from: 1, to: 30 });
    await expectSalvage(empty, facts, 0, { from: 1, to: 30 });
  });

  it('the last segment deleted', async () => {
    const { dir, facts } = await closedLog();
    fs.rmSync(path.join(dir, SEGMENT_1));
    await expectLost(dir, { file: path.join(dir, SEGMENT_1), offset: 0, from: 1, to: 30 });
    await expectSalvage(dir, facts, 0, { from: 1, to: 30 });
  });

  it('a flipped bit in the last batch', async () => {
    const { dir, facts } = await closedLog();
    const file = path.join(dir, SEGMENT_1);
    const last = records(file).at(-1)!;
    flipBit(file, last.offset + 70, 3);
    await expectLost(dir, { file, offset: last.offset, from: 30, to: 30 });
    await expectSalvage(dir, facts, 29, { from: 30, to: 30 });
  });

  it('a pool thread verifying the log refuses the same way, with the same typed error', async () => {
    const { dir } = await closedLog();
    const file = path.join(dir, SEGMENT_1);
    const last = records(file).at(-1)!;
    fs.truncateSync(file, last.offset);
    const pool = await KernelPool.create({ shards: 1, threads: 1, indexCapacity: 1 << 10, invariant: { builtin: 'TotalSupply' } });
    try {
      const error = await pool.verifyLog(dir).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(DurableDataLostError);
      const e = error as DurableDataLostError;
      expect({ file: e.file, offset: e.offset, from: e.fromSequence, to: e.toSequence }).toEqual({ file, offset: last.offset, from: 30, to: 30 });
      expect(e.message).toBe((thrown(() => verifyLog(dir)) as Error).message);
    } finally {
      await pool.close();
    }
  });

  it('a clean log opens with the manifest reported, and verifyLog agrees', async () => {
    const { dir } = await closedLog();
    expect(verifyLog(dir).manifest).toEqual({ durable: 30, closed: true });
    const kernel = await open(dir);
    expect(kernel.recovery.manifest).toEqual({ durable: 30, closed: true, damagedCopies: [] });
    expect(kernel.recovery.tornTail).toBeUndefined();
  });
});

describe('after a crash, the segment being written is accounted for', () => {
  async function crashed(): Promise<{ dir: string; facts: Fact[] }> {
    const history = new History(72);
    const kernel = await open(tmpDir());
    await admitMany(kernel, history, 12, { payloadBytes: 100 });
    const dir = await crashImage(kernel);
    await closeKernel(kernel);
    return { dir, facts: history.facts };
  }

  it('deleted: DurableDataLostError naming it (its records were acknowledged, nothing else records them)', async () => {
    const { dir, facts } = await crashed();
    fs.rmSync(path.join(dir, SEGMENT_1));
    await expectLost(dir, { file: path.join(dir, SEGMENT_1), offset: 0, from: 1, to: undefined });
    await expectSalvage(dir, facts, 0, { from: 1, to: undefined });
  });

  it('emptied: DurableDataLostError (its header was fsynced before the manifest named it)', async () => {
    const { dir } = await crashed();
    fs.truncateSync(path.join(dir, SEGMENT_1), 0);
    await expectLost(dir, { file: path.join(dir, SEGMENT_1), offset: 0, from: 1, to: undefined });
  });

  it('intact: recovers everything, reports an open (not closed) manifest', async () => {
    const { dir, facts } = await crashed();
    const kernel = await open(dir);
    expect(kernel.recovery.manifest).toEqual({ durable: 0, closed: false, damagedCopies: [] });
    expect(snap(kernel)).toEqual(replay(facts));
  });
});

describe('whole segments deleted or emptied', () => {
  const segmentFiles = (dir: string): string[] => fs.readdirSync(dir).filter((n) => /^wal-[0-9a-f]{16}\.log$/.test(n)).sort();

  /** A log in 4 KiB segments: several of them. */
  async function rolledKernel() {
    const history = new History(77);
    const kernel = await open(tmpDir(), { segmentBytes: 4096 });
    for (let g = 0; g < 8; g++) {
      await admitMany(kernel, history, 5, { payloadBytes: 300 });
      await kernel.flush();
    }
    return { kernel, history };
  }

  it('a segment in the middle, deleted or emptied: WalCorruptionError (a gap, a segment without header)', async () => {
    const { kernel } = await rolledKernel();
    await closeKernel(kernel);
    const names = segmentFiles(kernel.dir);
    expect(names.length).toBeGreaterThanOrEqual(4);
    const deleted = copyDir(kernel.dir);
    fs.rmSync(path.join(deleted, names[1]!));
    const e1 = await rejection(open(deleted));
    expect(e1).toBeInstanceOf(WalCorruptionError);
    expect((e1 as WalCorruptionError).code).toBe('WalCorrupted');
    expect(thrown(() => verifyLog(deleted))).toBeInstanceOf(WalCorruptionError);
    const emptied = copyDir(kernel.dir);
    fs.truncateSync(path.join(emptied, names[1]!), 0);
    const e2 = await rejection(open(emptied));
    expect(e2).toBeInstanceOf(WalCorruptionError);
    expect((e2 as WalCorruptionError).position.file).toBe(path.join(emptied, names[1]!));
  });

  it('after a crash, the segment the manifest names (and any after it) deleted: DurableDataLostError from its first sequence', async () => {
    const { kernel, history } = await rolledKernel();
    const dir = await crashImage(kernel);
    await closeKernel(kernel);
    // The newest manifest copy says which segment was being written.
    const [newest] = ['MANIFEST.1', 'MANIFEST.2'].map((n) => fs.readFileSync(path.join(dir, n))).sort((a, b) => b.readUInt32LE(8) - a.readUInt32LE(8));
    const named = newest!.readUInt32LE(48);
    expect(named).toBeGreaterThan(1);
    for (const name of segmentFiles(dir)) if (Number.parseInt(name.slice(4, 20), 16) >= named) fs.rmSync(path.join(dir, name));
    const name = `wal-${named.toString(16).padStart(16, '0')}.log`;
    await expectLost(dir, { file: path.join(dir, name), offset: 0, from: named, to: undefined });
    await expectSalvage(dir, history.facts, named - 1, { from: named, to: undefined });
  });
});

describe('the manifest', () => {
  it('one damaged copy: the other is used, the damage reported, and the next open rewrites both', async () => {
    const { dir, facts } = await closedLog();
    flipBit(path.join(dir, 'MANIFEST.2'), 40, 0);
    const kernel = await open(dir);
    expect(kernel.recovery.manifest).toEqual({ durable: 30, closed: true, damagedCopies: [path.join(dir, 'MANIFEST.2')] });
    expect(snap(kernel)).toEqual(replay(facts));
    await closeKernel(kernel);
    expect((await open(dir)).recovery.manifest?.damagedCopies).toEqual([]);
  });

  it('both copies damaged or deleted: ManifestError; salvage recovers the readable log', async () => {
    const { dir, facts } = await closedLog();
    const damaged = copyDir(dir);
    for (const name of ['MANIFEST.1', 'MANIFEST.2']) flipBit(path.join(damaged, name), 20, 1);
    const e1 = await rejection(open(damaged));
    expect(e1).toBeInstanceOf(ManifestError);
    expect((e1 as ManifestError).code).toBe('ManifestInvalid');
    expect(thrown(() => verifyLog(damaged))).toBeInstanceOf(ManifestError);
    for (const name of ['MANIFEST.1', 'MANIFEST.2']) fs.rmSync(path.join(dir, name));
    const e2 = await rejection(open(dir));
    expect(e2).toBeInstanceOf(ManifestError);
    expect((e2 as ManifestError).file).toBe(path.join(dir, 'MANIFEST.1'));
    const kernel = await open(dir, { salvage: true });
    expect(kernel.recovery.salvage?.code).toBe('ManifestInvalid');
    expect(snap(kernel)).toEqual(replay(facts));
  });

  it('a directory of the earlier format (version 1 segments, no manifest) is LogFormatError, even with salvage', async () => {
    const { dir } = await closedLog();
    for (const name of ['MANIFEST.1', 'MANIFEST.2']) fs.rmSync(path.join(dir, name));
    // Rewrite the segment header as version 1 (with its CRC), as an earlier ctfs wrote it.
    const file = path.join(dir, SEGMENT_1);
    const bytes = fs.readFileSync(file);
    bytes.writeUInt32LE(1, 4);
    const { crc32c } = await import('./helpers/lib.js');
    bytes.writeUInt32LE(crc32c(new Uint8Array(bytes.buffer, bytes.byteOffset, 60)), 60);
    fs.writeFileSync(file, bytes);
    for (const options of [{}, { salvage: true }] as OpenOptions[]) {
      const error = await rejection(open(dir, options));
      expect(error).toBeInstanceOf(LogFormatError);
      expect((error as LogFormatError).code).toBe('UnsupportedLogFormat');
      expect((error as LogFormatError).file).toBe(file);
    }
  });
});

// ------------------------------------------------------------------ initial state and invariant

describe('the initial state and the invariant are recorded redundantly', () => {
  /** A log created with balance 455 in [0, 5000], then -1000 and +545 applied: 0 in [0, 5000]. */
  async function bounded(): Promise<{ dir: string; expected: ConservationState }> {
    const dir = tmpDir();
    const kernel = await open(dir, { initialState: new ConservationState(455n, 0n, 5000n).toBytes() });
    const a = { id: factId([], TotalSupplyInvariant.payload(-455n)), deps: [] as Uint8Array[], payload: TotalSupplyInvariant.payload(-455n) };
    kernel.admitRaw(a.id, a.deps, a.payload);
    const bPayload = TotalSupplyInvariant.payload(545n);
    kernel.admitRaw(factId([a.id], bPayload), [a.id], bPayload);
    // Refused by the bound: the balance would be 545 - 1000 < 0.
    const cPayload = TotalSupplyInvariant.payload(-1000n);
    expect(kernel.tryAdmitRaw(factId([], cPayload), [], cPayload)).not.toBe(0);
    await closeKernel(kernel);
    return { dir, expected: new ConservationState(545n, 0n, 5000n) };
  }

  it.for(['deleted', 'damaged'] as const)('checkpoint 0 %s (no later checkpoint): recovered from the manifest, whatever initialState this open passes', async (how) => {
    const { dir, expected } = await bounded();
    const ckpt = path.join(dir, ckptName(0));
    if (how === 'deleted') fs.rmSync(ckpt);
    else flipBit(ckpt, 200, 4);
    const kernel = await open(dir, { initialState: new ConservationState(-1000n).toBytes() });
    expect(ConservationState.fromCell(kernel.state)).toEqual(expected);
    expect(kernel.recovery.checkpoint).toBeUndefined();
    // The bound still holds: the state's limits came back too.
    const payload = TotalSupplyInvariant.payload(-546n);
    expect(kernel.tryAdmitRaw(factId([], payload), [], payload)).not.toBe(0);
  });

  it('checkpoint 0 and the manifest both gone: ManifestError, not a state built on a guess', async () => {
    const { dir } = await bounded();
    for (const name of [ckptName(0), 'MANIFEST.1', 'MANIFEST.2']) fs.rmSync(path.join(dir, name));
    const error = await rejection(open(dir));
    expect(error).toBeInstanceOf(ManifestError);
  });

  it('another invariant, or another configuration of it, is InvariantMismatchError (salvage does not override it)', async () => {
    const { dir } = await bounded();
    for (const options of [{}, { salvage: true }]) {
      const error = await rejection(DurableKernel.open(dir, new GCounterInvariant(), { ...SMALL, backend: 'portable', ...options }));
      expect(error).toBeInstanceOf(InvariantMismatchError);
      expect((error as InvariantMismatchError).code).toBe('InvariantMismatch');
    }
    const kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), { ...SMALL, backend: 'portable' });
    expect(ConservationState.fromCell(kernel.state).balance).toBe(545n);
    await kernel.close();

    // The same class with another parameter: a graph log without degree limits, reopened with them.
    const graph = tmpDir();
    await (await DurableKernel.open(graph, new GGraphInvariant(), { ...SMALL, backend: 'portable' })).close();
    const error = await rejection(DurableKernel.open(graph, new GGraphInvariant({ degreeLimits: true }), { ...SMALL, backend: 'portable' }));
    expect(error).toBeInstanceOf(InvariantMismatchError);
    await (await DurableKernel.open(graph, new GGraphInvariant(), { ...SMALL, backend: 'portable' })).close();
  });
});

// ------------------------------------------------------------------------------ disk errors

type Seam = { before?: ((op: string, file: string) => void) | undefined };
/** The data directory's test seam, from the same compiled module the kernel uses. */
const storageFaults = libStorageFaults as unknown as Seam;

function systemError(code: string, file: string): Error {
  return Object.assign(new Error(`${code}: injected, open '${file}'`), { code, path: file, syscall: 'open' });
}

afterEach(() => {
  storageFaults.before = undefined;
});

function expectStorage(error: unknown, ioCode: string): StorageError {
  expect(error, String(error)).toBeInstanceOf(StorageError);
  expect(error).toBeInstanceOf(CtfsError);
  const e = error as StorageError;
  expect(e.code).toBe('StorageFailed');
  expect(e.ioCode).toBe(ioCode);
  expect((e.cause as NodeJS.ErrnoException).code).toBe(ioCode);
  return e;
}

const tmpFiles = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'));

describe('disks that refuse', () => {
  it('ENOSPC (real, /dev/full) while writing a checkpoint: StorageError, no temporary file left, the kernel goes on', async () => {
    const dir = tmpDir();
    const history = new History(73);
    const kernel = await open(dir);
    await admitMany(kernel, history, 5);
    await kernel.flush();
    const tmp = path.join(dir, `${ckptName(5)}.tmp`);
    fs.symlinkSync('/dev/full', tmp);
    const error = await kernel.checkpoint().then(
      () => undefined,
      (e: unknown) => e,
    );
    expectStorage(error, 'ENOSPC');
    expect(fs.lstatSync(tmp, { throwIfNoEntry: false })).toBeUndefined();
    expect(fs.existsSync(path.join(dir, ckptName(5)))).toBe(false);
    await admitMany(kernel, history, 1);
    expect((await kernel.checkpoint()).sequence).toBe(6);
  });

  it('ENOSPC (real, /dev/full) while creating a log: StorageError, the directory unlocked and clean, and the next open starts it', async () => {
    const dir = tmpDir();
    const tmp = path.join(dir, `${ckptName(0)}.tmp`);
    fs.symlinkSync('/dev/full', tmp);
    expectStorage(await rejection(open(dir)), 'ENOSPC');
    expect(fs.lstatSync(tmp, { throwIfNoEntry: false })).toBeUndefined();
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    const kernel = await open(dir);
    expect(kernel.recovery.created).toBe(true);
  });

  it('ENOSPC (real) while a pool thread writes the checkpoint: StorageError with the system code', async () => {
    const dir = tmpDir();
    const kernel = await open(dir);
    await admitMany(kernel, new History(76), 4);
    await kernel.flush();
    fs.symlinkSync('/dev/full', path.join(dir, `${ckptName(4)}.tmp`));
    const pool = await KernelPool.create({ shards: 1, threads: 1, indexCapacity: 1 << 10, invariant: { builtin: 'TotalSupply' } });
    try {
      const error = await kernel.checkpoint({ pool }).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).ioCode).toBe('ENOSPC');
      expect(tmpFiles(dir)).toEqual([]);
    } finally {
      await pool.close();
    }
  });

  it('EACCES taking the lock, EROFS writing the manifest at open: StorageError, nothing left locked', async () => {
    const dir = tmpDir();
    storageFaults.before = (op, file) => {
      if (op === 'lock') throw systemError('EACCES', file);
    };
    expectStorage(await rejection(open(dir)), 'EACCES');
    storageFaults.before = (op, file) => {
      if (op === 'write' && file.includes('MANIFEST')) throw systemError('EROFS', file);
    };
    const e = expectStorage(await rejection(open(dir, { initialState: new ConservationState(455n).toBytes() })), 'EROFS');
    expect(e.path).toContain('MANIFEST.1.tmp');
    expect(tmpFiles(dir)).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'LOCK'))).toBe(false);
    // The failed open left checkpoint 0 (balance 455) and an empty segment, no manifest: the next
    // open recovers that initial state, not the one it passes.
    storageFaults.before = undefined;
    const kernel = await open(dir, { initialState: new ConservationState(7n).toBytes() });
    expect(kernel.recovery.created).toBe(false);
    expect(ConservationState.fromCell(kernel.state).balance).toBe(455n);
  });

  it('EROFS while writing a checkpoint later: StorageError, no temporary file left', async () => {
    const dir = tmpDir();
    const kernel = await open(dir);
    await admitMany(kernel, new History(74), 3);
    storageFaults.before = (op, file) => {
      if (op === 'write') throw systemError('EROFS', file);
    };
    expectStorage(await kernel.checkpoint().then(() => undefined, (e: unknown) => e), 'EROFS');
    expect(tmpFiles(dir)).toEqual([]);
  });

  it('a write error in the persistence worker keeps its system code (here EROFS) in the DurabilityError', async () => {
    const dir = tmpDir();
    const kernel = await open(dir, { faults: { failWriteAt: 1, ioCode: 'EROFS' } } as OpenOptions);
    const [fact] = await admitMany(kernel, new History(75), 1);
    const error = await kernel.whenDurable(1).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(DurabilityError);
    expect(error).toBeInstanceOf(CtfsError);
    expect((error as DurabilityError).ioCode).toBe('EROFS');
    expect(kernel.contains(fact!.id)).toBe(true);
  });
});

describe('stale files', () => {
  it('temporary and torn files of this directory’s naming patterns are removed at open; anything else is kept', async () => {
    const { dir } = await closedLog();
    const stale = [`${ckptName(7)}.tmp`, 'MANIFEST.1.tmp', `${SEGMENT_1}.torn-1765000000000`];
    const kept = ['notes.tmp', `${ckptName(7)}.tmp.keep`, `${SEGMENT_1}.salvaged-1765000000000`, `${SEGMENT_1}.torn-x`];
    for (const name of [...stale, ...kept]) fs.writeFileSync(path.join(dir, name), new Uint8Array(4096));
    const kernel = await open(dir);
    expect([...kernel.recovery.removedFiles].sort()).toEqual([...stale].sort());
    for (const name of stale) expect(fs.existsSync(path.join(dir, name))).toBe(false);
    for (const name of kept) expect(fs.existsSync(path.join(dir, name))).toBe(true);
  });
});
