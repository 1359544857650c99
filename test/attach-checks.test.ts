/**
 * What another thread's `attach` trusts: every shared-memory structure checks its magic and
 * layout version, and a kernel checks every count a loop will run to before reading on, so a
 * damaged buffer is an `InvalidSharedMemory` error — never a hang, a `RangeError` or a wrong read.
 * And the record-log seam: a tee of two logs reserves in both and stages in both or neither.
 */
import { describe, expect, it } from 'vitest';
import {
  AdmitCode,
  ExactCausalIndex,
  GCounterInvariant,
  Kernel,
  type SharedKernelMemory,
  LatencyHistogram,
  MultiKernel,
  ShardLocks,
  SpscRing,
  TotalSupplyInvariant,
  factId,
  i128le,
} from './helpers/lib.js';
import { CausalDomain, DurabilityControl, FRONTIER_WIDTH, SNAP_META, W_HEAD_COUNT, W_HEAD_START, W_MODE, W_SNAP, teeRecordLogs, type RecordLog } from './helpers/lib.js';
import { thrown } from './helpers/errors.js';

/** Exact-index header words (docs/FORMATS.md §4): live count, published count, pending slot writes. */
const INDEX_COUNT = 6;
const INDEX_PUBLISHED = 32;
const INDEX_PENDING_COUNT = 64;
const INDEX_PENDING_SLOTS = 80;
/** Pending slot writes the index buffers at most. */
const PENDING_SLOT_WRITES = 32;

const payload = (n: number): Uint8Array => i128le(BigInt(n));

/** A kernel with three facts admitted and published, and its shared memory as words. */
function sharedKernel(): { kernel: Kernel; ctl: Uint32Array; index: Uint32Array } {
  const kernel = new Kernel(new GCounterInvariant(), { indexCapacity: 64 });
  let prev: Uint8Array[] = [];
  for (let i = 1; i <= 3; i++) {
    const id = factId(prev, payload(i));
    kernel.admitRaw(id, prev, payload(i));
    prev = [id];
  }
  kernel.publish();
  return { kernel, ctl: new Uint32Array(kernel.shared.control), index: hotTableHeader(kernel.shared) };
}

/** Tier directory words (docs/FORMATS.md §5): table entries from word 64, 8 words each (serial, state, location). */
const DIRECTORY_TABLES = 64;
const TABLE_HOT = 1;

/** The header words of a kernel's hot table, where its arena holds it (a location is arena × 2^20 + page). */
function hotTableHeader(shared: SharedKernelMemory): Uint32Array {
  const dir = new Uint32Array(shared.history.directory);
  for (let t = 0; t < 32; t++) {
    const at = DIRECTORY_TABLES + 8 * t;
    if (dir[at + 1] !== TABLE_HOT) continue;
    const location = dir[at + 2]!;
    return new Uint32Array(shared.history.arenas[Math.floor(location / 2 ** 20)]!, (location % 2 ** 20) * 4096, 144);
  }
  throw new Error('no hot table');
}

function expectInvalidSharedMemory(attach: () => unknown): void {
  expect(thrown(attach)).toMatchObject({ code: 'InvalidSharedMemory' });
}

describe('attach checks every count it will loop to', () => {
  const corruptions: [string, (m: { ctl: Uint32Array; index: Uint32Array }) => void][] = [
    ['live frontier count past the ring', ({ ctl }) => (ctl[W_HEAD_COUNT] = FRONTIER_WIDTH + 1)],
    ['live frontier count huge', ({ ctl }) => (ctl[W_HEAD_COUNT] = 0xffffffff)],
    ['live frontier start outside the ring', ({ ctl }) => (ctl[W_HEAD_START] = FRONTIER_WIDTH)],
    ['published frontier count past the ring', ({ ctl }) => (ctl[W_SNAP + SNAP_META + 1] = 1_000_000)],
    ['published frontier start outside the ring', ({ ctl }) => (ctl[W_SNAP + SNAP_META] = 99)],
    ['published size past the capacity', ({ ctl }) => (ctl[W_SNAP + SNAP_META + 3] = 65)],
    ['published size past what the index holds', ({ ctl }) => (ctl[W_SNAP + SNAP_META + 3] = 4)],
    ['unknown escalation mode', ({ ctl }) => (ctl[W_MODE] = 7)],
    ['index live count past the capacity', ({ index }) => (index[INDEX_COUNT] = 1 << 30)],
    ['pending slot writes past their buffer', ({ index }) => (index[INDEX_PENDING_COUNT] = PENDING_SLOT_WRITES + 1)],
    [
      'a pending slot write outside the table',
      ({ index }) => {
        index[INDEX_PENDING_COUNT] = 1;
        index[INDEX_PENDING_SLOTS] = 0x7fffffff;
      },
    ],
  ];

  for (const [what, corrupt] of corruptions) {
    it(`${what}: InvalidSharedMemory`, () => {
      const { kernel, ctl, index } = sharedKernel();
      expect(Kernel.attach(kernel.shared, new GCounterInvariant()).size).toBe(3); // intact: attaches
      corrupt({ ctl, index });
      expectInvalidSharedMemory(() => Kernel.attach(kernel.shared, new GCounterInvariant()));
    });
  }

  it('a hot table whose published count runs ahead of its live count (what a read torn by its writer sees) attaches; lookups stay inside the table', () => {
    const { kernel, index } = sharedKernel();
    index[INDEX_PUBLISHED] = 1 << 30;
    const reader = Kernel.attach(kernel.shared, new GCounterInvariant());
    reader.sync();
    expect(reader.size).toBe(3);
    expect(reader.contains(new Uint8Array(32).fill(9))).toBe(false);
  });

  it('a snapshot damaged after attaching: sync() throws InvalidSharedMemory instead of looping or reading past the ring', () => {
    const { kernel, ctl } = sharedKernel();
    const reader = Kernel.attach(kernel.shared, new GCounterInvariant());
    expect(reader.sync().size).toBe(3);
    ctl[W_SNAP + SNAP_META + 1] = 0xffffffff;
    expectInvalidSharedMemory(() => reader.sync());
    ctl[W_SNAP + SNAP_META + 1] = 1;
    ctl[W_SNAP + SNAP_META + 3] = 1 << 20;
    expectInvalidSharedMemory(() => reader.sync());
  });
});

describe('every shared structure checks its magic and layout version', () => {
  const structures: [string, () => SharedArrayBuffer, (b: SharedArrayBuffer) => unknown][] = [
    ['ExactCausalIndex', () => new ExactCausalIndex({ capacity: 16 }).buffer, (b) => ExactCausalIndex.attach(b)],
    ['SpscRing', () => new SpscRing({ capacity: 1 << 16 }).buffer, (b) => SpscRing.attach(b)],
    ['LatencyHistogram', () => new LatencyHistogram().buffer, (b) => LatencyHistogram.attach(b)],
    ['ShardLocks', () => new ShardLocks(2).buffer, (b) => ShardLocks.attach(b)],
    ['DurabilityControl', () => new DurabilityControl().buffer, (b) => new DurabilityControl(b)],
    ['kernel control block', () => new Kernel(new GCounterInvariant(), { indexCapacity: 16 }).shared.control, (b) => Kernel.attach({ control: b, history: new Kernel(new GCounterInvariant(), { indexCapacity: 16 }).shared.history }, new GCounterInvariant())],
  ];
  for (const [name, create, attach] of structures) {
    it(`${name}: wrong magic, wrong version, too small, not shared → InvalidSharedMemory`, () => {
      if (name !== 'kernel control block') expect(() => attach(create())).not.toThrow();
      const magic = create();
      const magicWords = new Uint32Array(magic);
      magicWords[0] = magicWords[0]! ^ 1;
      expectInvalidSharedMemory(() => attach(magic));
      const version = create();
      const versionWords = new Uint32Array(version);
      versionWords[1] = versionWords[1]! + 1;
      expectInvalidSharedMemory(() => attach(version));
      expectInvalidSharedMemory(() => attach(new SharedArrayBuffer(4)));
      expectInvalidSharedMemory(() => attach(new ArrayBuffer(4096) as unknown as SharedArrayBuffer));
    });
  }
});

/** A record log that keeps what it was asked, refusing reservations with `refuse` (0: room). */
function recordingLog(refuse = 0): RecordLog & { reserved: number; staged: string[]; refuse: number } {
  const log = {
    reserved: 0,
    staged: [] as string[],
    refuse,
    reserve(): number {
      log.reserved++;
      return log.refuse;
    },
    stage(idWords: Uint32Array, deps: readonly Uint8Array[], p: Uint8Array): void {
      log.staged.push(`${idWords[0]}:${deps.length}:${p.length}`);
    },
  };
  return log;
}

describe('the record-log seam', () => {
  /** A TotalSupply domain from the invariant's own initial state (unbounded balance). */
  const supply = (): CausalDomain => {
    const invariant = new TotalSupplyInvariant();
    const domain = new CausalDomain([invariant], { idLimit: 64 });
    domain.setInitialState(invariant.initialState());
    return domain;
  };

  it('a domain without a log admits without one; with a log every admitted fact is staged once, in order', () => {
    const domain = supply();
    expect(domain.log).toBeNull();
    expect(domain.tryAdmit(factId([], payload(5)), [], payload(5))).toBe(AdmitCode.Ok);
    const log = recordingLog();
    domain.log = log;
    const a = factId([], payload(6));
    expect(domain.tryAdmit(a, [], payload(6))).toBe(AdmitCode.Ok);
    expect(domain.tryAdmit(factId([a], payload(7)), [a], payload(7))).toBe(AdmitCode.Ok);
    expect(log.staged).toEqual([`${new Uint32Array(a.slice().buffer)[0]}:0:16`, expect.stringMatching(/:1:16$/)]);
  });

  it('refused before the invariant (duplicate, missing dep) reserves nothing; refused by the invariant stages nothing', () => {
    const domain = supply();
    const log = recordingLog();
    domain.log = log;
    const a = factId([], payload(1));
    expect(domain.tryAdmit(a, [], payload(1))).toBe(AdmitCode.Ok);
    expect(domain.tryAdmit(a, [], payload(1))).toBe(AdmitCode.DuplicateFact);
    expect(domain.tryAdmit(factId([factId([], payload(9))], payload(2)), [factId([], payload(9))], payload(2))).toBe(AdmitCode.CausalityViolation);
    expect(log.reserved).toBe(1);
    // TotalSupply refuses a payload of the wrong length after the reservation.
    expect(domain.tryAdmit(factId([], new Uint8Array(3)), [], new Uint8Array(3))).not.toBe(AdmitCode.Ok);
    expect(log.staged).toHaveLength(1);
  });

  it('a tee reserves in both and stages in both, or refuses with the refusing log’s code and stages in neither', () => {
    const domain = supply();
    const wal = recordingLog();
    const ring = recordingLog();
    domain.log = teeRecordLogs(wal, ring);
    expect(domain.tryAdmit(factId([], payload(1)), [], payload(1))).toBe(AdmitCode.Ok);
    ring.refuse = AdmitCode.ArenaFull;
    const before = { size: domain.index.size, state: domain.state.slice() };
    expect(domain.tryAdmit(factId([], payload(2)), [], payload(2))).toBe(AdmitCode.ArenaFull);
    expect({ size: domain.index.size, state: domain.state.slice() }).toEqual(before);
    ring.refuse = 0;
    wal.refuse = AdmitCode.DurabilityFailed;
    expect(domain.tryAdmit(factId([], payload(3)), [], payload(3))).toBe(AdmitCode.DurabilityFailed);
    expect(ring.reserved).toBe(2); // the second log is not asked once the first refused
    wal.refuse = 0;
    expect(domain.tryAdmit(factId([], payload(4)), [], payload(4))).toBe(AdmitCode.Ok);
    expect(wal.staged).toEqual(ring.staged);
    expect(wal.staged).toHaveLength(2);
  });

  it('only a single-invariant domain can log', () => {
    const multi = new MultiKernel();
    const domain = (multi as unknown as { domain: CausalDomain }).domain;
    expect(thrown(() => (domain.log = recordingLog()))).toMatchObject({ code: 'InvalidArgument' });
    expect(domain.log).toBeNull();
  });
});
