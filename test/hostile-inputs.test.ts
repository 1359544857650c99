/**
 * Every public function and constructor of `ctfs`, called with hostile values in every argument
 * position. Each call either throws a typed `CtfsError` with a stable code and a short message,
 * or returns a result this table documents (a refusal code, or a value a position accepts); never
 * an untyped exception, never a hang, and for kernels never a change of state on a refused call.
 *
 * The exports are enumerated from the module, so a new export fails the completeness test until it
 * has a row here or a reasoned entry in SKIPPED.
 */
import { describe, expect, it } from 'vitest';
import { PUBLIC_API as api } from './helpers/lib.js';
import {
  AdmitCode,
  AlgebraicClass,
  CtfsError,
  DualKernel,
  EscalatingKernel,
  FactBatch,
  Kernel,
  LatencyHistogram,
  MultiKernel,
  TenantKernel,
  TotalSupplyInvariant,
  TwoLaneKernel,
  createFact,
  i128le,
  toHex,
  type Invariant,
} from './helpers/lib.js';
import { describeValue } from './helpers/lib.js';
import { seq } from './helpers/ids.js';

// ---------------------------------------------------------------------------------------------
// hostile values

const HUGE = new Array<number>(1_000_000).fill(1);

function detached(): Uint8Array {
  const buffer = new ArrayBuffer(32);
  const view = new Uint8Array(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  return view; // length 0 now
}

function shrunk(): Uint8Array {
  // Resizable buffers are newer than this project's TypeScript lib.
  const buffer = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer & { resize(n: number): void })(32, { maxByteLength: 64 });
  const view = new Uint8Array(buffer); // length-tracking
  buffer.resize(3);
  return view;
}

const HOSTILE = {
  null: () => null,
  undefined: () => undefined,
  NaN: () => NaN,
  Infinity: () => Infinity,
  '-Infinity': () => -Infinity,
  '-1': () => -1,
  '1.5': () => 1.5,
  '2**53': () => 2 ** 53,
  '10n': () => 10n,
  'Symbol()': () => Symbol('hostile'),
  nullProto: () => Object.create(null) as object,
  '{}': () => ({}),
  '[]': () => [],
  hugeArray: () => HUGE,
  string: () => 'abc',
  Buffer: () => Buffer.from([1, 2, 3]),
  detached,
  shrunk,
} as const;
type Label = keyof typeof HOSTILE;
const LABELS = Object.keys(HOSTILE) as Label[];

/** An optional argument: `undefined` means the default. */
const OPT: readonly Label[] = ['undefined'];
/** Any bytes: a Buffer is a Uint8Array; a detached or shrunk view holds 0 or 3 bytes. */
const BYTES: readonly Label[] = ['Buffer', 'detached', 'shrunk'];
/** An options object: absent (undefined, null) or any object; unknown keys are ignored. */
const OPTIONS: readonly Label[] = ['undefined', 'null', 'nullProto', '{}', '[]', 'hugeArray', 'Buffer', 'detached', 'shrunk'];
/** A time in milliseconds: any finite number (clocks are the caller's). */
const TIMES: readonly Label[] = ['-1', '1.5', '2**53'];
/** Any number: these functions are total over numbers (documented per row). */
const NUMBERS: readonly Label[] = ['NaN', 'Infinity', '-Infinity', '-1', '1.5', '2**53'];

// ---------------------------------------------------------------------------------------------
// the table

interface Call {
  readonly name: string;
  /** Fresh state for one run (a kernel, a histogram, …). */
  readonly setup?: () => unknown;
  /** Arguments with which the call succeeds. */
  readonly args: (subject: unknown) => unknown[];
  readonly run: (subject: unknown, args: unknown[]) => unknown;
  /** Hostile values a position accepts, returning normally (documented above each row). */
  readonly accepts?: Readonly<Record<number, readonly Label[]>>;
  /** The call returns an AdmitCode: a non-zero code is a refusal. */
  readonly codes?: boolean;
  /** What a refused call must leave unchanged. */
  readonly observe?: (subject: unknown) => string;
}

const ID = seq(1);
const fact = createFact([], i128le(5n));
const counter: Invariant = { algebraicClass: AlgebraicClass.Commutative, apply: () => 0 };
const small = { indexCapacity: 16 };

type K = Kernel<TotalSupplyInvariant>;
const kernelState = (k: unknown): string => {
  const kernel = k as K;
  return `${toHex(kernel.state.toBytes())}/${kernel.size}/${toHex(kernel.digest())}`;
};
const domainState = (k: unknown): string => {
  const kernel = k as MultiKernel;
  return `${toHex(kernel.clock.toBytes())}/${kernel.size}/${kernel.frontier().map(toHex).join(',')}`;
};

/** Rows for the methods every single-invariant kernel has, on a kernel made by `make`. */
function kernelMethods(kind: string, make: () => K): Call[] {
  const hist = (): LatencyHistogram => new LatencyHistogram({ lanes: 1 });
  const base = { setup: make, observe: kernelState };
  // Replicated admission is for coordination-free invariants only.
  const replica = { setup: () => new Kernel(counter, small) as unknown as K, observe: kernelState };
  const deps = { 1: ['[]'] as Label[] };
  return [
    { ...base, name: `${kind}#tryAdmitRaw`, codes: true, args: () => [seq(9), [], i128le(1n)], run: (k, a) => (k as K).tryAdmitRaw(...(a as [Uint8Array, Uint8Array[], Uint8Array])), accepts: { ...deps, 2: ['Buffer'] } },
    { ...base, name: `${kind}#admitRaw`, args: () => [seq(9), [], i128le(1n)], run: (k, a) => (k as K).admitRaw(...(a as [Uint8Array, Uint8Array[], Uint8Array])), accepts: deps },
    { ...base, name: `${kind}#tryAdmit`, codes: true, args: () => [fact], run: (k, a) => (k as K).tryAdmit(a[0] as never) },
    { ...base, name: `${kind}#admit`, args: () => [fact], run: (k, a) => (k as K).admit(a[0] as never) },
    { ...replica, name: `${kind}#tryAdmitReplicatedRaw`, codes: true, accepts: deps, args: () => [fact.id, [], fact.payload], run: (k, a) => (k as K).tryAdmitReplicatedRaw(...(a as [Uint8Array, Uint8Array[], Uint8Array])) },
    { ...replica, name: `${kind}#admitReplicated`, args: () => [fact], run: (k, a) => (k as K).admitReplicated(a[0] as never) },
    {
      ...base,
      name: `${kind}#admitInstrumented`,
      codes: true,
      args: () => [seq(9), [], i128le(1n), hist()],
      run: (k, a) => (k as K).admitInstrumented(...(a as [Uint8Array, Uint8Array[], Uint8Array, LatencyHistogram])),
      accepts: { ...deps, 2: ['Buffer'] },
    },
    { ...base, name: `${kind}#admitBatch`, args: () => [FactBatch.from([fact])], run: (k, a) => (k as K).admitBatch(a[0] as FactBatch) },
    { ...base, name: `${kind}#contains`, args: () => [ID], run: (k, a) => (k as K).contains(a[0] as Uint8Array), accepts: { 0: [...BYTES] } },
    { ...base, name: `${kind}#query`, args: () => [[]], run: (k, a) => (k as K).query(a[0] as never), accepts: { 0: ['[]'] } },
    { ...base, name: `${kind}#readState`, args: () => [new Uint8Array(64)], run: (k, a) => (k as K).readState(a[0] as Uint8Array) },
    { ...base, name: `${kind}#reset`, args: () => [undefined], run: (k, a) => (k as K).reset(a[0] as never), accepts: { 0: OPT } },
  ];
}

const kernelKinds: [string, () => K][] = [
  ['Kernel', () => new Kernel(new TotalSupplyInvariant(), small)],
  ['TwoLaneKernel', () => new TwoLaneKernel(new TotalSupplyInvariant(), small) as unknown as K],
  ['EscalatingKernel', () => new EscalatingKernel(new TotalSupplyInvariant(), small) as unknown as K],
];

function tenants(): TenantKernel {
  const t = new TenantKernel(new TotalSupplyInvariant(), { indexCapacity: 16, maxTenants: 4 });
  t.registerTenant(1);
  return t;
}
const tenantState = (t: unknown): string => {
  const k = t as TenantKernel;
  return `${toHex(k.state(1).toBytes())}/${k.size(1)}/${k.tenants().join(',')}`;
};

function multi(): MultiKernel {
  const m = new MultiKernel(small);
  m.register(new TotalSupplyInvariant());
  return m;
}
const dual = (): DualKernel => new DualKernel(new TotalSupplyInvariant(), undefined, new TotalSupplyInvariant(), undefined, small);

/** Rows per export name. An export may have several calls (its constructor, static methods, …). */
const ROWS: Record<string, Call[]> = {
  // --- errors: constructing an error never throws an untyped exception; a hostile message is described
  ...Object.fromEntries(
    (
      [
        ['CtfsError', (a: unknown[]) => new api.CtfsError(...(a as [never, string]))],
        ['InvalidArgumentError', (a: unknown[]) => new api.InvalidArgumentError(a[0] as string)],
        ['MalformedFactError', (a: unknown[]) => new api.MalformedFactError(a[0] as string)],
        ['FactIdMismatchError', (a: unknown[]) => new api.FactIdMismatchError(a[0] as string)],
        ['ValueOutOfRangeError', (a: unknown[]) => new api.ValueOutOfRangeError(a[0] as string)],
        ['CausalHorizonExceededError', (a: unknown[]) => new api.CausalHorizonExceededError(a[0] as string)],
        ['SharedMemoryError', (a: unknown[]) => new api.SharedMemoryError(a[0] as string)],
        ['LogLockedError', (a: unknown[]) => new api.LogLockedError(a[0] as string)],
        ['NativeUnavailableError', (a: unknown[]) => new api.NativeUnavailableError(a[0] as string)],
        ['UnknownTenantError', (a: unknown[]) => new api.UnknownTenantError(a[0])],
        ['TenantError', (a: unknown[]) => new api.TenantError(...(a as [never, string]))],
        ['AlgebraicPropertyError', (a: unknown[]) => new api.AlgebraicPropertyError(...(a as [string, unknown]))],
        ['EscrowError', (a: unknown[]) => new api.EscrowError(...(a as [never, string]))],
        ['DurabilityError', (a: unknown[]) => new api.DurabilityError(...(a as [never, string]))],
        ['PoolError', (a: unknown[]) => new api.PoolError(...(a as [never, string]))],
        ['ReplicationError', (a: unknown[]) => new api.ReplicationError(...(a as [never, string]))],
        ['CheckpointError', (a: unknown[]) => new api.CheckpointError(...(a as [string, string]))],
        ['WalCorruptionError', (a: unknown[]) => new api.WalCorruptionError(...(a as [string, never]))],
      ] as const
    ).map(([name, make]) => {
      const arity = { CtfsError: 2, TenantError: 2, AlgebraicPropertyError: 2, EscrowError: 2, DurabilityError: 2, PoolError: 2, ReplicationError: 2, CheckpointError: 2, WalCorruptionError: 2 }[name as string] ?? 1;
      const valid = name === 'WalCorruptionError' ? ['m', { file: 'f', offset: 0, sequence: 1 }] : ['InvalidArgument', 'm'].slice(2 - arity);
      const all = Object.fromEntries(Array.from({ length: arity }, (_, i) => [i, LABELS]));
      return [name, [{ name: `new ${name}`, args: () => [...valid], run: (_: unknown, a: unknown[]) => make(a), accepts: all }]];
    }),
  ),
  ForeignError: [{ name: 'new ForeignError', args: () => ['m', { name: 'Error' }], run: (_, a) => new api.ForeignError(...(a as [string, { name: string }])), accepts: { 0: LABELS, 1: LABELS } }],
  PoolTimeoutError: [
    { name: 'new PoolTimeoutError', args: () => ['PoolTaskTimeout', 'm', 10], run: (_, a) => new api.PoolTimeoutError(...(a as [never, string, number])), accepts: { 0: LABELS, 1: LABELS, 2: LABELS } },
  ],
  // --- errors across threads: total over any value (what is not an error or a wire form becomes a ForeignError)
  toWire: [{ name: 'toWire', args: () => [new api.InvalidArgumentError('x'), {}], run: (_, a) => api.toWire(a[0], a[1] as never), accepts: { 0: LABELS, 1: OPTIONS } }],
  fromWire: [{ name: 'fromWire', args: () => [api.toWire(new api.InvalidArgumentError('x'))], run: (_, a) => api.fromWire(a[0]), accepts: { 0: LABELS } }],
  isWireError: [{ name: 'isWireError', args: () => [api.toWire(new api.InvalidArgumentError('x'))], run: (_, a) => api.isWireError(a[0]), accepts: { 0: LABELS } }],
  encodeWire: [{ name: 'encodeWire', args: () => [api.toWire(new api.InvalidArgumentError('x')), 4096], run: (_, a) => api.encodeWire(a[0] as never, a[1] as number) }],
  decodeWire: [{ name: 'decodeWire', args: () => [api.encodeWire(api.toWire(new api.InvalidArgumentError('x')), 4096)], run: (_, a) => api.decodeWire(a[0] as Uint8Array), accepts: { 0: LABELS } }],
  DurableDataLostError: [
    {
      name: 'new DurableDataLostError',
      args: () => ['m', { file: 'f', offset: 0, fromSequence: 1, toSequence: 2 }],
      run: (_, a) => new api.DurableDataLostError(...(a as [string, never])),
      accepts: { 0: LABELS, 1: LABELS },
    },
  ],
  ManifestError: [{ name: 'new ManifestError', args: () => ['f', 'm'], run: (_, a) => new api.ManifestError(...(a as [string, string])), accepts: { 0: LABELS, 1: LABELS } }],
  InvariantMismatchError: [{ name: 'new InvariantMismatchError', args: () => ['m'], run: (_, a) => new api.InvariantMismatchError(a[0] as string), accepts: { 0: LABELS } }],
  LogFormatError: [{ name: 'new LogFormatError', args: () => ['f', 'm'], run: (_, a) => new api.LogFormatError(...(a as [string, string])), accepts: { 0: LABELS, 1: LABELS } }],
  StorageError: [{ name: 'new StorageError', args: () => ['m', { ioCode: 'EIO' }], run: (_, a) => new api.StorageError(...(a as [string, never])), accepts: { 0: LABELS, 1: LABELS } }],
  // --- the pool's building blocks and a data directory's verification
  routeKey: [{ name: 'routeKey', args: () => ['account-1', 8], run: (_, a) => api.routeKey(a[0] as string, a[1] as number), accepts: { 0: ['string', 'Buffer', 'detached', 'shrunk'] } }],
  routeTenant: [{ name: 'routeTenant', args: () => [7, 8], run: (_, a) => api.routeTenant(a[0] as number, a[1] as number) }],
  ShardLocks: [
    { name: 'new ShardLocks', args: () => [2], run: (_, a) => new api.ShardLocks(a[0] as number) },
    { name: 'ShardLocks.attach', args: () => [new api.ShardLocks(2).buffer], run: (_, a) => api.ShardLocks.attach(a[0] as SharedArrayBuffer) },
    { name: 'ShardLocks.acquireWithin', args: () => [0, 10], run: (_, a) => new api.ShardLocks(1).acquireWithin(a[0] as number, a[1] as number), accepts: { 1: ['1.5'] } },
  ],
  verifyLog: [{ name: 'verifyLog', args: () => [process.cwd()], run: (_, a) => api.verifyLog(a[0] as string) }],
  AdmitError: [{ name: 'new AdmitError', args: () => [AdmitCode.DuplicateFact, 0, 'detail'], run: (_, a) => new api.AdmitError(...(a as [number, number, string])), accepts: { 1: [...LABELS], 2: [...LABELS] } }],
  admitCodeName: [{ name: 'admitCodeName', args: () => [10], run: (_, a) => api.admitCodeName(a[0] as number) }],
  invariantCodeName: [
    // Total over its input: every non-zero code that is not a named one is 'Custom'.
    { name: 'invariantCodeName', args: () => [1], run: (_, a) => api.invariantCodeName(a[0] as number), accepts: { 0: LABELS } },
  ],

  // --- bytes and integers
  bytesEqual: [{ name: 'bytesEqual', args: () => [ID, ID], run: (_, a) => api.bytesEqual(a[0] as Uint8Array, a[1] as Uint8Array), accepts: { 0: BYTES, 1: BYTES } }],
  compareBytes: [{ name: 'compareBytes', args: () => [ID, ID], run: (_, a) => api.compareBytes(a[0] as Uint8Array, a[1] as Uint8Array), accepts: { 0: BYTES, 1: BYTES } }],
  toHex: [{ name: 'toHex', args: () => [ID], run: (_, a) => api.toHex(a[0] as Uint8Array), accepts: { 0: BYTES } }],
  fromHex: [{ name: 'fromHex', args: () => ['00ff'], run: (_, a) => api.fromHex(a[0] as string) }],
  i128le: [{ name: 'i128le', args: () => [5n], run: (_, a) => api.i128le(a[0] as bigint), accepts: { 0: ['10n'] } }],
  u64le: [{ name: 'u64le', args: () => [5n], run: (_, a) => api.u64le(a[0] as bigint), accepts: { 0: ['10n', '-1'].filter((l) => l === '10n') as Label[] } }],
  readI128le: [{ name: 'readI128le', args: () => [new Uint8Array(16), 0], run: (_, a) => api.readI128le(a[0] as Uint8Array, a[1] as number), accepts: { 1: OPT } }],
  readU64le: [{ name: 'readU64le', args: () => [new Uint8Array(8), 0], run: (_, a) => api.readU64le(a[0] as Uint8Array, a[1] as number), accepts: { 1: OPT } }],
  writeI128le: [{ name: 'writeI128le', args: () => [new Uint8Array(16), 0, 1n], run: (_, a) => api.writeI128le(a[0] as Uint8Array, a[1] as number, a[2] as bigint), accepts: { 2: ['10n'] } }],
  writeU64le: [{ name: 'writeU64le', args: () => [new Uint8Array(8), 0, 1n], run: (_, a) => api.writeU64le(a[0] as Uint8Array, a[1] as number, a[2] as bigint), accepts: { 2: ['10n'] } }],
  addI128: [
    {
      name: 'addI128',
      args: () => [new Uint32Array(4), 0, new Uint32Array(4), 0, new Uint32Array(4), 0],
      run: (_, a) => api.addI128(...(a as [Uint32Array, number, Uint32Array, number, Uint32Array, number])),
    },
  ],
  compareI128: [{ name: 'compareI128', args: () => [new Uint32Array(4), 0, new Uint32Array(4), 0], run: (_, a) => api.compareI128(...(a as [Uint32Array, number, Uint32Array, number])) }],
  loadLimbs: [{ name: 'loadLimbs', args: () => [new Uint8Array(16), 0, new Uint32Array(4), 0], run: (_, a) => api.loadLimbs(...(a as [Uint8Array, number, Uint32Array, number])) }],
  crc32c: [{ name: 'crc32c', args: () => [new Uint8Array(9), 0, 9, 0], run: (_, a) => api.crc32c(...(a as [Uint8Array, number, number, number])), accepts: { 0: ['Buffer'], 1: OPT, 2: OPT, 3: OPT } }],

  // --- facts
  canonicalDeps: [{ name: 'canonicalDeps', args: () => [[ID]], run: (_, a) => api.canonicalDeps(a[0] as Uint8Array[]), accepts: { 0: ['[]'] } }],
  createFact: [{ name: 'createFact', args: () => [[], new Uint8Array(1)], run: (_, a) => api.createFact(a[0] as Uint8Array[], a[1] as Uint8Array), accepts: { 0: ['[]'], 1: BYTES } }],
  factId: [{ name: 'factId', args: () => [[], new Uint8Array(1)], run: (_, a) => api.factId(a[0] as Uint8Array[], a[1] as Uint8Array), accepts: { 0: ['[]'], 1: BYTES } }],
  decodeFact: [{ name: 'decodeFact', args: () => [api.encodeFact(fact), {}], run: (_, a) => api.decodeFact(a[0] as Uint8Array, a[1] as never), accepts: { 1: OPTIONS } }],
  encodeFact: [{ name: 'encodeFact', args: () => [fact], run: (_, a) => api.encodeFact(a[0] as never) }],
  encodedFactLength: [{ name: 'encodedFactLength', args: () => [1, 8], run: (_, a) => api.encodedFactLength(a[0] as number, a[1] as number) }],
  isFactId: [
    // A predicate: false for anything that is not a 32-byte Uint8Array.
    { name: 'isFactId', args: () => [ID], run: (_, a) => api.isFactId(a[0]), accepts: { 0: LABELS } },
  ],
  verifyFactId: [{ name: 'verifyFactId', args: () => [fact], run: (_, a) => api.verifyFactId(a[0] as never) }],
  StateCell: [
    { name: 'new StateCell', args: () => [new ArrayBuffer(64), 0], run: (_, a) => new api.StateCell(a[0] as ArrayBuffer, a[1] as number), accepts: { 0: OPT, 1: OPT } },
    { name: 'StateCell.from', args: () => [new Uint8Array(64)], run: (_, a) => api.StateCell.from(a[0] as Uint8Array) },
  ],
  FactBatch: [
    { name: 'new FactBatch', args: () => [4, 1024], run: (_, a) => new FactBatch(a[0] as number, a[1] as number), accepts: { 0: OPT, 1: ['undefined', 'null'] } },
    { name: 'FactBatch.from', args: () => [[fact]], run: (_, a) => FactBatch.from(a[0] as never), accepts: { 0: ['[]', 'hugeArray'] } },
    {
      name: 'FactBatch#pushRaw',
      setup: () => new FactBatch(4),
      args: () => [ID, [], new Uint8Array(1)],
      run: (b, a) => (b as FactBatch).pushRaw(...(a as [Uint8Array, Uint8Array[], Uint8Array])),
      // A wrong shape is kept as a refused record (admission reports its code): documented.
      accepts: { 0: LABELS, 1: LABELS, 2: LABELS },
    },
  ],

  // --- causality
  CausalClock: [
    { name: 'new CausalClock', args: () => [new ArrayBuffer(64), 0], run: (_, a) => new api.CausalClock(a[0] as ArrayBuffer, a[1] as number), accepts: { 0: OPT, 1: OPT } },
    { name: 'CausalClock.fromBytes', args: () => [new Uint8Array(64)], run: (_, a) => api.CausalClock.fromBytes(a[0] as Uint8Array) },
    { name: 'CausalClock#observe', setup: () => new api.CausalClock(), observe: (c) => toHex((c as api.CausalClock).toBytes()), args: () => [ID], run: (c, a) => (c as api.CausalClock).observe(a[0] as Uint8Array) },
  ],
  bloomPositions: [{ name: 'bloomPositions', args: () => [ID], run: (_, a) => api.bloomPositions(a[0] as Uint8Array) }],
  ExactCausalIndex: [
    { name: 'new ExactCausalIndex', args: () => [{ capacity: 16 }], run: (_, a) => new api.ExactCausalIndex(a[0] as never), accepts: { 0: OPTIONS } },
    { name: 'ExactCausalIndex.attach', args: () => [new api.ExactCausalIndex({ capacity: 16 }).buffer], run: (_, a) => api.ExactCausalIndex.attach(a[0] as SharedArrayBuffer) },
    {
      name: 'ExactCausalIndex#insert',
      setup: () => new api.ExactCausalIndex({ capacity: 16 }),
      observe: (x) => String((x as api.ExactCausalIndex).size),
      args: () => [ID],
      run: (x, a) => (x as api.ExactCausalIndex).insert(a[0] as Uint8Array),
    },
    { name: 'ExactCausalIndex#idAt', setup: () => new api.ExactCausalIndex({ capacity: 16 }), args: (x) => ((x as api.ExactCausalIndex).insert(ID), [0]), run: (x, a) => (x as api.ExactCausalIndex).idAt(a[0] as number) },
  ],
  PreciseClock: [
    { name: 'new PreciseClock', args: () => [4], run: (_, a) => new api.PreciseClock(a[0] as number), accepts: { 0: OPT } },
    { name: 'PreciseClock#observe', setup: () => new api.PreciseClock(), observe: (c) => (c as api.PreciseClock).ids().map(toHex).join(), args: () => [ID], run: (c, a) => (c as api.PreciseClock).observe(a[0] as Uint8Array) },
  ],

  // --- invariants and their states
  isCoordinationFree: [{ name: 'isCoordinationFree', args: () => [AlgebraicClass.Commutative], run: (_, a) => api.isCoordinationFree(a[0] as never) }],
  TotalSupplyInvariant: [
    { name: 'new TotalSupplyInvariant', args: () => [], run: () => new TotalSupplyInvariant() },
    { name: 'TotalSupplyInvariant.payload', args: () => [1n, new Uint8Array(2)], run: (_, a) => TotalSupplyInvariant.payload(a[0] as bigint, a[1] as Uint8Array), accepts: { 0: ['10n'], 1: ['undefined', ...BYTES] } },
  ],
  ConservationState: [
    { name: 'new ConservationState', args: () => [0n, -5n, 5n], run: (_, a) => new api.ConservationState(...(a as [bigint, bigint, bigint])), accepts: { 1: OPT, 2: ['undefined', '10n'] } },
    { name: 'ConservationState.fromCell', args: () => [new api.ConservationState(0n).toBytes()], run: (_, a) => api.ConservationState.fromCell(a[0] as Uint8Array) },
  ],
  MaxInvariant: [
    { name: 'new MaxInvariant', args: () => [], run: () => new api.MaxInvariant() },
    { name: 'MaxInvariant.payload', args: () => [1n], run: (_, a) => api.MaxInvariant.payload(a[0] as bigint), accepts: { 0: ['10n'] } },
  ],
  MaxState: [
    { name: 'new MaxState', args: () => [1n], run: (_, a) => new api.MaxState(a[0] as bigint), accepts: { 0: ['undefined', '10n'] } },
    { name: 'MaxState.fromCell', args: () => [new Uint8Array(64)], run: (_, a) => api.MaxState.fromCell(a[0] as Uint8Array) },
  ],
  GCounterInvariant: [
    { name: 'new GCounterInvariant', args: () => [], run: () => new api.GCounterInvariant() },
    { name: 'GCounterInvariant.payload', args: () => [1n], run: (_, a) => api.GCounterInvariant.payload(a[0] as bigint), accepts: { 0: ['10n'] } },
  ],
  GCounterState: [
    { name: 'new GCounterState', args: () => [1n], run: (_, a) => new api.GCounterState(a[0] as bigint), accepts: { 0: ['undefined', '10n'] } },
    { name: 'GCounterState.fromCell', args: () => [new Uint8Array(64)], run: (_, a) => api.GCounterState.fromCell(a[0] as Uint8Array) },
  ],
  BoundedGCounterInvariant: [
    { name: 'new BoundedGCounterInvariant', args: () => [], run: () => new api.BoundedGCounterInvariant() },
    { name: 'BoundedGCounterInvariant.payload', args: () => [1n], run: (_, a) => api.BoundedGCounterInvariant.payload(a[0] as bigint), accepts: { 0: ['10n'] } },
  ],
  BoundedCounterState: [
    { name: 'new BoundedCounterState', args: () => [1n, 20n], run: (_, a) => new api.BoundedCounterState(a[0] as bigint, a[1] as bigint), accepts: { 0: ['10n'], 1: ['10n'] } },
    { name: 'BoundedCounterState.fromCell', args: () => [new Uint8Array(64)], run: (_, a) => api.BoundedCounterState.fromCell(a[0] as Uint8Array) },
  ],
  LWWInvariant: [
    { name: 'new LWWInvariant', args: () => [], run: () => new api.LWWInvariant() },
    { name: 'LWWInvariant.payload', args: () => [ID, 1n, 1n], run: (_, a) => api.LWWInvariant.payload(...(a as [Uint8Array, bigint, bigint])), accepts: { 1: ['10n'], 2: ['10n'] } },
  ],
  LWWState: [
    { name: 'new LWWState', args: () => [ID, 1n, 1n], run: (_, a) => new api.LWWState(...(a as [Uint8Array, bigint, bigint])), accepts: { 0: OPT, 1: ['undefined', '10n'], 2: ['undefined', '10n'] } },
    { name: 'LWWState.fromCell', args: () => [new Uint8Array(64)], run: (_, a) => api.LWWState.fromCell(a[0] as Uint8Array) },
  ],
  UniquenessInvariant: [
    { name: 'new UniquenessInvariant', args: () => [], run: () => new api.UniquenessInvariant() },
    { name: 'UniquenessInvariant.payload', args: () => [3], run: (_, a) => api.UniquenessInvariant.payload(a[0] as number) },
  ],
  UniquenessState: [
    // Any iterable of elements; an empty one (or an empty view) is the empty set.
    { name: 'new UniquenessState', args: () => [[1, 2]], run: (_, a) => new api.UniquenessState(a[0] as number[]), accepts: { 0: ['undefined', '[]', 'hugeArray', ...BYTES] } },
    { name: 'UniquenessState.fromCell', args: () => [new Uint8Array(64)], run: (_, a) => api.UniquenessState.fromCell(a[0] as Uint8Array) },
  ],
  GGraphInvariant: [
    { name: 'new GGraphInvariant', args: () => [{}], run: (_, a) => new api.GGraphInvariant(a[0] as never), accepts: { 0: OPTIONS } },
    { name: 'GGraphInvariant.payload', args: () => [0, 1], run: (_, a) => api.GGraphInvariant.payload(a[0] as number, a[1] as number) },
  ],
  GraphState: [
    { name: 'new GraphState', args: () => [4, {}, new Uint8Array(32)], run: (_, a) => new api.GraphState(...(a as [number, never, Uint8Array])), accepts: { 1: OPTIONS, 2: OPT } },
    { name: 'GraphState.fromCell', args: () => [new api.GraphState(4).toBytes()], run: (_, a) => api.GraphState.fromCell(a[0] as Uint8Array) },
  ],

  // --- kernels
  Kernel: [
    { name: 'new Kernel', args: () => [new TotalSupplyInvariant(), small], run: (_, a) => new Kernel(a[0] as never, a[1] as never), accepts: { 1: OPTIONS } },
    { name: 'Kernel.withState', args: () => [new TotalSupplyInvariant(), new Uint8Array(64), small], run: (_, a) => Kernel.withState(...(a as [never, Uint8Array, never])), accepts: { 2: OPTIONS } },
    { name: 'Kernel.attach', args: () => [new Kernel(new TotalSupplyInvariant(), small).shared, new TotalSupplyInvariant()], run: (_, a) => Kernel.attach(...(a as [never, never])) },
    ...kernelKinds.flatMap(([kind, make]) => kernelMethods(kind, make)),
  ],
  TwoLaneKernel: [{ name: 'new TwoLaneKernel', args: () => [new TotalSupplyInvariant(), small], run: (_, a) => new TwoLaneKernel(a[0] as never, a[1] as never), accepts: { 1: OPTIONS } }],
  EscalatingKernel: [{ name: 'new EscalatingKernel', args: () => [new TotalSupplyInvariant(), small], run: (_, a) => new EscalatingKernel(a[0] as never, a[1] as never), accepts: { 1: OPTIONS } }],
  TenantKernel: [
    { name: 'new TenantKernel', args: () => [new TotalSupplyInvariant(), { indexCapacity: 16 }], run: (_, a) => new TenantKernel(a[0] as never, a[1] as never), accepts: { 1: OPTIONS } },
    { name: 'TenantKernel#registerTenant', setup: tenants, observe: tenantState, args: () => [2, undefined], run: (t, a) => (t as TenantKernel).registerTenant(a[0] as number, a[1] as never), accepts: { 1: OPT } },
    { name: 'TenantKernel#tryAdmit', setup: tenants, observe: tenantState, codes: true, args: () => [1, seq(9), [], i128le(1n)], run: (t, a) => (t as TenantKernel).tryAdmit(...(a as [number, Uint8Array, Uint8Array[], Uint8Array])), accepts: { 2: ['[]'], 3: ['Buffer'] } },
    { name: 'TenantKernel#admit', setup: tenants, observe: tenantState, args: () => [1, seq(9), [], i128le(1n)], run: (t, a) => (t as TenantKernel).admit(...(a as [number, Uint8Array, Uint8Array[], Uint8Array])), accepts: { 2: ['[]'] } },
    {
      name: 'TenantKernel#admitInstrumented',
      setup: tenants,
      observe: tenantState,
      codes: true,
      args: () => [1, seq(9), [], i128le(1n), new LatencyHistogram({ lanes: 1 })],
      run: (t, a) => (t as TenantKernel).admitInstrumented(...(a as [number, Uint8Array, Uint8Array[], Uint8Array, LatencyHistogram])),
      accepts: { 2: ['[]'], 3: ['Buffer'] },
    },
    { name: 'TenantKernel#reset', setup: tenants, observe: tenantState, args: () => [1, undefined], run: (t, a) => (t as TenantKernel).reset(a[0] as number, a[1] as never), accepts: { 1: OPT } },
    { name: 'TenantKernel#query', setup: tenants, observe: tenantState, args: () => [1, []], run: (t, a) => (t as TenantKernel).query(a[0] as number, a[1] as never), accepts: { 1: ['[]'] } },
  ],
  MultiKernel: [
    { name: 'new MultiKernel', args: () => [small], run: (_, a) => new MultiKernel(a[0] as never), accepts: { 0: OPTIONS } },
    { name: 'MultiKernel#register', setup: () => new MultiKernel(small), observe: (m) => String((m as MultiKernel).invariantCount), args: () => [counter, undefined], run: (m, a) => (m as MultiKernel).register(a[0] as never, a[1] as never), accepts: { 1: OPT } },
    { name: 'MultiKernel#tryAdmit', setup: multi, observe: domainState, codes: true, args: () => [seq(9), [], [i128le(1n)]], run: (m, a) => (m as MultiKernel).tryAdmit(...(a as [Uint8Array, Uint8Array[], Uint8Array[]])), accepts: { 1: ['[]'] } },
    { name: 'MultiKernel#admit', setup: multi, observe: domainState, args: () => [seq(9), [], [i128le(1n)]], run: (m, a) => (m as MultiKernel).admit(...(a as [Uint8Array, Uint8Array[], Uint8Array[]])), accepts: { 1: ['[]'] } },
    {
      name: 'MultiKernel#admitInstrumented',
      setup: multi,
      observe: domainState,
      codes: true,
      args: () => [seq(9), [], [i128le(1n)], new LatencyHistogram({ lanes: 1 })],
      run: (m, a) => (m as MultiKernel).admitInstrumented(...(a as [Uint8Array, Uint8Array[], Uint8Array[], LatencyHistogram])),
      accepts: { 1: ['[]'] },
    },
    { name: 'MultiKernel#reset', setup: multi, observe: domainState, args: () => [[]], run: (m, a) => (m as MultiKernel).reset(a[0] as never), accepts: { 0: ['undefined', '[]'] } },
  ],
  DualKernel: [
    {
      name: 'new DualKernel',
      args: () => [new TotalSupplyInvariant(), undefined, new TotalSupplyInvariant(), undefined, small],
      run: (_, a) => new DualKernel(...(a as [never, never, never, never, never])),
      accepts: { 1: OPT, 3: OPT, 4: OPTIONS },
    },
    { name: 'DualKernel#tryAdmit', setup: dual, observe: domainState, codes: true, args: () => [seq(9), [], i128le(1n), i128le(1n)], run: (d, a) => (d as DualKernel).tryAdmit(...(a as [Uint8Array, Uint8Array[], Uint8Array, Uint8Array])), accepts: { 1: ['[]'], 2: ['Buffer'], 3: ['Buffer'] } },
    { name: 'DualKernel#admit', setup: dual, observe: domainState, args: () => [seq(9), [], i128le(1n), i128le(1n)], run: (d, a) => (d as DualKernel).admit(...(a as [Uint8Array, Uint8Array[], Uint8Array, Uint8Array])), accepts: { 1: ['[]'] } },
    {
      name: 'DualKernel#admitInstrumented',
      setup: dual,
      observe: domainState,
      codes: true,
      args: () => [seq(9), [], i128le(1n), i128le(1n), new LatencyHistogram({ lanes: 1 })],
      run: (d, a) => (d as DualKernel).admitInstrumented(...(a as [Uint8Array, Uint8Array[], Uint8Array, Uint8Array, LatencyHistogram])),
      accepts: { 1: ['[]'], 2: ['Buffer'], 3: ['Buffer'] },
    },
  ],

  // --- algebra
  EscrowManager: [
    { name: 'new EscrowManager', args: () => [100n], run: (_, a) => new api.EscrowManager(a[0] as bigint), accepts: { 0: ['10n'] } },
    {
      name: 'EscrowManager#consume',
      setup: () => {
        const e = new api.EscrowManager(100n);
        e.initialize(['a', 'b']);
        return e;
      },
      observe: (e) => String((e as api.EscrowManager).totalUsed()),
      args: () => ['a', 1n],
      run: (e, a) => (e as api.EscrowManager).consume(a[0] as string, a[1] as bigint),
      accepts: { 1: ['10n'] },
    },
  ],
  EscrowLedger: [
    {
      name: 'EscrowLedger.create',
      args: () => [new api.BoundedGCounterInvariant(), 'a', ['a', 'b'], new api.BoundedCounterState(0n, 10n).toBytes()],
      run: (_, a) => api.EscrowLedger.create(...(a as [never, string, string[], Uint8Array])),
      accepts: { 1: ['string'] },
    },
    {
      name: 'EscrowLedger#check',
      codes: true,
      setup: () => {
        const ledger = api.EscrowLedger.create(new api.BoundedGCounterInvariant(), 'a', ['a', 'b'], new api.BoundedCounterState(0n, 10n).toBytes());
        return { ledger, genesis: ledger.genesisFact() };
      },
      observe: (s) => api.toHex((s as { ledger: api.EscrowLedger }).ledger.digest()),
      args: (s) => {
        const g = (s as { genesis: { id: Uint8Array; deps: Uint8Array[]; payload: Uint8Array } }).genesis;
        return [g.id, g.deps, g.payload];
      },
      run: (s, a) => (s as { ledger: api.EscrowLedger }).ledger.check(...(a as [Uint8Array, Uint8Array[], Uint8Array])),
      // The genesis has no deps: [] is its own deps list.
      accepts: { 1: ['[]'] },
    },
  ],
  PendingQuotaRequests: [
    { name: 'new PendingQuotaRequests', args: () => [{}], run: (_, a) => new api.PendingQuotaRequests(a[0] as never), accepts: { 0: OPTIONS } },
    { name: 'PendingQuotaRequests#open', setup: () => new api.PendingQuotaRequests(), args: () => ['r', 5n, 0], run: (p, a) => (p as api.PendingQuotaRequests).open(...(a as [string, bigint, number])), accepts: { 0: ['string'], 1: ['10n'], 2: TIMES } },
  ],
  QuotaRequest: [{ name: 'new QuotaRequest', args: () => ['r', 5n, 0], run: (_, a) => new api.QuotaRequest(...(a as [string, bigint, number])), accepts: { 0: ['string'], 1: ['10n'], 2: TIMES } }],
  coordinationScope: [{ name: 'coordinationScope', args: () => [AlgebraicClass.Commutative], run: (_, a) => api.coordinationScope(a[0] as never) }],
  convergesWithoutCoordination: [{ name: 'convergesWithoutCoordination', args: () => [AlgebraicClass.Commutative], run: (_, a) => api.convergesWithoutCoordination(a[0] as never) }],
  isIdempotent: [{ name: 'isIdempotent', args: () => [AlgebraicClass.Commutative], run: (_, a) => api.isIdempotent(a[0] as never) }],
  composeClasses: [{ name: 'composeClasses', args: () => [AlgebraicClass.Commutative, AlgebraicClass.Lattice], run: (_, a) => api.composeClasses(a[0] as never, a[1] as never) }],
  composeAll: [{ name: 'composeAll', args: () => [[AlgebraicClass.Commutative]], run: (_, a) => api.composeAll(a[0] as never), accepts: { 0: ['hugeArray'] } }],
  gSetLattice: [{ name: 'gSetLattice', args: () => [], run: () => api.gSetLattice() }],
  PNCounter: [
    { name: 'PNCounter#increment', args: () => ['a', 1n], run: (_, a) => api.PNCounter.bottom.increment(a[0] as string, a[1] as bigint), accepts: { 0: ['string'], 1: ['10n'] } },
    { name: 'PNCounter#join', args: () => [api.PNCounter.bottom], run: (_, a) => api.PNCounter.bottom.join(a[0] as never) },
  ],

  // --- shared memory and metrics
  SpscRing: [
    { name: 'new SpscRing', args: () => [{ capacity: 4096 }], run: (_, a) => new api.SpscRing(a[0] as never) },
    { name: 'SpscRing.attach', args: () => [new api.SpscRing({ capacity: 4096 }).buffer], run: (_, a) => api.SpscRing.attach(a[0] as SharedArrayBuffer) },
    // Nothing arrives, so a valid call waits out its 1 ms; a hostile timeout must not wait forever.
    // Positions are compared, not interpreted: anything but the current tail means "data is there".
    { name: 'SpscRing#waitForData', setup: () => new api.SpscRing({ capacity: 4096 }), args: () => [0, 1, 0], run: (r, a) => (r as api.SpscRing).waitForData(...(a as [number, number, number])), accepts: { 0: LABELS, 1: ['1.5'], 2: OPT } },
    { name: 'SpscRing#tryPush', setup: () => new api.SpscRing({ capacity: 4096 }), args: () => [new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0])], run: (r, a) => (r as api.SpscRing).tryPush(a[0] as Uint8Array) },
  ],
  LatencyHistogram: [
    { name: 'new LatencyHistogram', args: () => [{ lanes: 2 }], run: (_, a) => new LatencyHistogram(a[0] as never), accepts: { 0: OPTIONS } },
    { name: 'LatencyHistogram.attach', args: () => [new LatencyHistogram({ lanes: 2 }).buffer], run: (_, a) => LatencyHistogram.attach(a[0] as SharedArrayBuffer) },
    {
      name: 'LatencyHistogram#record',
      setup: () => new LatencyHistogram({ lanes: 1 }),
      observe: (h) => JSON.stringify((h as LatencyHistogram).snapshot()),
      args: () => [100],
      run: (h, a) => (h as LatencyHistogram).record(a[0] as number),
      // NaN and negatives (a clock stepping back) count as 0; only +Infinity would poison the sum.
      accepts: { 0: ['NaN', '-Infinity', '-1', '1.5', '2**53'] },
    },
    {
      name: 'LatencyHistogram#recordOutcome',
      setup: () => new LatencyHistogram({ lanes: 1 }),
      observe: (h) => JSON.stringify((h as LatencyHistogram).snapshot()),
      args: () => [0, 100],
      run: (h, a) => (h as LatencyHistogram).recordOutcome(a[0] as number, a[1] as number),
      // Any number outside the 16 outcome slots counts as the last ("Other"); latencies as in record.
      accepts: { 0: NUMBERS, 1: ['NaN', '-Infinity', '-1', '1.5', '2**53'] },
    },
  ],
  bucketOf: [
    // Total over numbers: NaN and negatives are bucket 0, huge values the last bucket.
    { name: 'bucketOf', args: () => [100], run: (_, a) => api.bucketOf(a[0] as number), accepts: { 0: NUMBERS } },
  ],
  bucketUpperBound: [{ name: 'bucketUpperBound', args: () => [3], run: (_, a) => api.bucketUpperBound(a[0] as number) }],
  nowNs: [{ name: 'nowNs', args: () => [], run: () => api.nowNs() }],
  createMetricsRegistry: [{ name: 'createMetricsRegistry', args: () => [{}], run: (_, a) => api.createMetricsRegistry(a[0] as never), accepts: { 0: OPTIONS } }],
};

/** Exports that are not called here, and why. */
const SKIPPED: Record<string, string> = {
  DurableKernel: 'needs a data directory and a worker thread (test/durable-kernel.test.ts covers its options)',
  TwoLaneDurableKernel: 'needs a data directory and a worker thread (test/durable-kernel.test.ts)',
  DurableHandle: 'made only by DurableKernel.admitAsync (needs a data directory)',
  KernelPool: 'needs worker threads (test/pool.test.ts and test/pool-failures.test.ts cover its options)',
  NetworkingKernel: 'starts a replication worker thread (test/networking.test.ts covers its options and hostile bytes on its port)',
  MetricsServer: 'binds a socket; its address parsing is covered in test/metrics.test.ts',
};

// ---------------------------------------------------------------------------------------------
// the checks

/**
 * No call may hang. Real work over the million-element argument (FactBatch.from keeps a refused
 * record per element) takes up to ~1 s on two busy cores, so the bound is generous; unbounded
 * message building is caught by MAX_MESSAGE_CHARS instead.
 */
const MAX_CALL_MS = 5_000;
/** Error messages stay short whatever the argument (a message embeds descriptions, not values). */
const MAX_MESSAGE_CHARS = 600;

type Outcome = { kind: 'threw'; error: unknown } | { kind: 'returned'; value: unknown };

function attempt(fn: () => unknown): Outcome {
  try {
    return { kind: 'returned', value: fn() };
  } catch (error) {
    return { kind: 'threw', error };
  }
}

function problemsOf(call: Call): string[] {
  const problems: string[] = [];
  const arity = Math.max(1, call.args(call.setup?.()).length);
  // The valid call succeeds (the row is right).
  {
    const subject = call.setup?.();
    const r = attempt(() => call.run(subject, call.args(subject)));
    if (r.kind === 'threw') problems.push(`valid call threw ${describeValue(r.error)}: ${(r.error as Error)?.message}`);
    else if (call.codes === true && r.value !== 0) problems.push(`valid call returned code ${describeValue(r.value)}`);
  }
  if (call.args(call.setup?.()).length === 0) return problems;
  for (let position = 0; position < arity; position++) {
    for (const label of LABELS) {
      const subject = call.setup?.();
      const args = call.args(subject);
      args[position] = HOSTILE[label]();
      const before = call.observe?.(subject);
      const started = performance.now();
      const r = attempt(() => call.run(subject, args));
      const ms = performance.now() - started;
      const where = `${call.name} arg ${position} = ${label}`;
      if (ms > MAX_CALL_MS) problems.push(`${where}: took ${Math.round(ms)} ms`);
      const accepted = call.accepts?.[position]?.includes(label) === true;
      let refused: boolean;
      if (r.kind === 'threw') {
        refused = true;
        if (!(r.error instanceof CtfsError) || typeof r.error.code !== 'string') {
          problems.push(`${where}: threw untyped ${describeValue(r.error)}: ${String((r.error as Error)?.message).slice(0, 120)}`);
        } else if (r.error.message.length > MAX_MESSAGE_CHARS) {
          problems.push(`${where}: message of ${r.error.message.length} chars`);
        }
      } else if (call.codes === true) {
        refused = r.value !== 0;
        if (typeof r.value !== 'number') problems.push(`${where}: returned ${describeValue(r.value)}, not a code`);
        else if (!refused && !accepted) problems.push(`${where}: admitted`);
      } else {
        refused = false;
        if (!accepted) problems.push(`${where}: returned ${describeValue(r.value)}`);
      }
      if (refused && call.observe !== undefined && call.observe(subject) !== before) problems.push(`${where}: refused but changed state`);
    }
  }
  return problems;
}

describe('hostile inputs', () => {
  it('every exported function and class has a row or a reasoned skip', () => {
    const callable = Object.entries(api)
      .filter(([, v]) => typeof v === 'function')
      .map(([name]) => name);
    const missing = callable.filter((name) => ROWS[name] === undefined && SKIPPED[name] === undefined);
    expect(missing).toEqual([]);
    const stale = [...Object.keys(ROWS), ...Object.keys(SKIPPED)].filter((name) => !callable.includes(name));
    expect(stale).toEqual([]);
  });

  for (const [name, calls] of Object.entries(ROWS)) {
    it(`${name}: typed errors or documented results`, () => {
      expect(calls.flatMap(problemsOf)).toEqual([]);
    });
  }
});
