/**
 * Errors across package copies and across threads: every class's brand makes `instanceof` hold
 * between two copies of the package (this source tree and a copy of the compiled modules under a
 * temp dir), and `fromWire(structuredClone(toWire(e)))` rebuilds an equivalent error for every
 * exported class (property test), with causes bounded in depth, unknown classes and codes kept as
 * plain CtfsErrors, and anything else wrapped as a ForeignError.
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ctfs from './helpers/lib.js';
import {
  AdmitCode,
  CtfsError,
  DurabilityError,
  ERROR_WIRE_VERSION,
  EscrowError,
  ForeignError,
  MAX_CAUSE_DEPTH,
  PoolError,
  decodeWire,
  encodeWire,
  fromWire,
  toWire,
  type WireError,
} from './helpers/lib.js';
import { ROOT, ensureDist } from './helpers/dist.js';

type ErrorsModule = typeof ctfs;

/** Every exported class that is an Error: the test must know how to make each one. */
function exportedErrorClasses(mod: Record<string, unknown>): string[] {
  return Object.entries(mod)
    .filter(([, v]) => typeof v === 'function' && (v as { prototype?: unknown }).prototype instanceof Error)
    .map(([name]) => name)
    .sort();
}

const text = fc.string({ maxLength: 40 });
const admitCodes = Object.entries(AdmitCode)
  .filter(([name]) => name !== 'Ok')
  .map(([, code]) => code);
const escrowCodes = ['InsufficientEscrow', 'UnknownNode', 'InvalidAmount', 'InvalidNodes', 'InvalidTransfer', 'ReleaseExceedsUsage', 'AlreadyInitialized', 'NotInitialized', 'DuplicateRequest', 'UnknownRequest'] as const;
const poolCodes = ['PoolClosed', 'ShardPoisoned', 'ShardLockTimeout', 'PoolTaskFailed', 'DurableShardsUnsupported'] as const;
const position = fc.record({ file: text, offset: fc.nat(), sequence: fc.nat() });
const cloneable = fc.oneof(fc.jsonValue(), fc.bigInt(), fc.uint8Array({ maxLength: 8 }));

/** One arbitrary per exported error class, built with `m`'s classes (`cause` optional where the class takes one). */
function arbitraries(m: ErrorsModule, cause: fc.Arbitrary<unknown>): Record<string, fc.Arbitrary<Error>> {
  const opts = fc.option(cause.map((c) => ({ cause: c })), { nil: undefined });
  return {
    CtfsError: fc.tuple(fc.constantFrom('InvalidArgument', 'LogLocked', 'PoolClosed') as fc.Arbitrary<ctfs.CtfsErrorCode>, text, opts).map(([c, msg, o]) => new m.CtfsError(c, msg, o)),
    AdmitError: fc.tuple(fc.constantFrom(...admitCodes), fc.nat(300), fc.option(text, { nil: undefined })).map(([c, inv, d]) => new m.AdmitError(c, inv, d)),
    MalformedFactError: fc.tuple(text, opts).map(([msg, o]) => new m.MalformedFactError(msg, o)),
    FactIdMismatchError: text.map((msg) => new m.FactIdMismatchError(msg)),
    InvalidArgumentError: fc.tuple(text, opts).map(([msg, o]) => new m.InvalidArgumentError(msg, o)),
    ValueOutOfRangeError: text.map((msg) => new m.ValueOutOfRangeError(msg)),
    CausalHorizonExceededError: text.map((msg) => new m.CausalHorizonExceededError(msg)),
    TenantError: fc.tuple(fc.constantFrom('TenantLimitExceeded', 'TenantAlreadyRegistered') as fc.Arbitrary<'TenantLimitExceeded'>, text).map(([c, msg]) => new m.TenantError(c, msg)),
    UnknownTenantError: fc.nat().map((t) => new m.UnknownTenantError(t)),
    EscrowError: fc
      .tuple(fc.constantFrom(...escrowCodes), text, fc.option(fc.record({ requested: fc.bigInt(), available: fc.bigInt() }), { nil: undefined }))
      .map(([c, msg, a]) => new m.EscrowError(c, msg, a)),
    AlgebraicPropertyError: fc.tuple(text, cloneable).map(([msg, ce]) => new m.AlgebraicPropertyError(msg, ce)),
    SharedMemoryError: text.map((msg) => new m.SharedMemoryError(msg)),
    DurabilityError: fc
      .tuple(fc.constantFrom('DurabilityFailed', 'LogClosed', 'DurabilityTimeout') as fc.Arbitrary<ctfs.DurabilityErrorCode>, text, fc.nat(), fc.option(fc.constantFrom('EIO', 'ENOSPC'), { nil: undefined }), opts)
      .map(([c, msg, sequence, ioCode, o]) => new m.DurabilityError(c, msg, { sequence, ioCode, cause: o?.cause })),
    WalCorruptionError: fc.tuple(text, position, opts).map(([msg, p, o]) => new m.WalCorruptionError(msg, p, o)),
    CheckpointError: fc.tuple(text, text, opts).map(([f, msg, o]) => new m.CheckpointError(f, msg, o)),
    DurableDataLostError: fc
      .tuple(text, text, fc.nat(), fc.nat(), fc.option(fc.nat(), { nil: undefined }), opts)
      .map(([msg, file, offset, fromSequence, toSequence, o]) => new m.DurableDataLostError(msg, { file, offset, fromSequence, toSequence }, o)),
    ManifestError: fc.tuple(text, text, opts).map(([f, msg, o]) => new m.ManifestError(f, msg, o)),
    InvariantMismatchError: text.map((msg) => new m.InvariantMismatchError(msg)),
    LogFormatError: fc.tuple(text, text).map(([f, msg]) => new m.LogFormatError(f, msg)),
    StorageError: fc
      .tuple(text, fc.constantFrom('ENOSPC', 'EROFS', 'EACCES'), fc.option(text, { nil: undefined }), opts)
      .map(([msg, ioCode, path, o]) => new m.StorageError(msg, { ioCode, path }, o)),
    LogLockedError: text.map((msg) => new m.LogLockedError(msg)),
    NativeUnavailableError: fc.tuple(text, opts).map(([msg, o]) => new m.NativeUnavailableError(msg, o)),
    PoolError: fc.tuple(fc.constantFrom(...poolCodes), text, fc.option(fc.nat(4095), { nil: undefined }), opts).map(([c, msg, s, o]) => new m.PoolError(c, msg, s, o)),
    PoolTimeoutError: fc
      .tuple(fc.constantFrom('PoolTaskTimeout', 'PoolStartTimeout') as fc.Arbitrary<ctfs.PoolTimeoutCode>, text, fc.integer({ min: 1, max: 1e6 }), fc.option(fc.nat(4095), { nil: undefined }))
      .map(([c, msg, t, s]) => new m.PoolTimeoutError(c, msg, t, s)),
    ForeignError: fc.tuple(text, text, fc.option(text, { nil: undefined })).map(([msg, name, code]) => new m.ForeignError(msg, { name, code })),
    ReplicationError: fc
      .tuple(fc.constantFrom('ReplicationStartFailed', 'ReplicationClosed') as fc.Arbitrary<ctfs.ReplicationErrorCode>, text, opts)
      .map(([c, msg, o]) => new m.ReplicationError(c, msg, o)),
  };
}

/** `b` is what `a` was: same class, name, code, message, own fields, stack, and causes likewise. */
function expectEquivalent(a: unknown, b: unknown, withStack = true): void {
  expect(Object.getPrototypeOf(b)).toBe(Object.getPrototypeOf(a));
  const x = a as CtfsError;
  const y = b as CtfsError;
  expect(y.name).toBe(x.name);
  expect(y.message).toBe(x.message);
  expect({ ...y }).toEqual({ ...x });
  if (withStack) expect(y.stack).toBe(x.stack);
  expect(Object.hasOwn(y, 'cause')).toBe(Object.hasOwn(x, 'cause'));
  if (Object.hasOwn(x, 'cause')) {
    if (x.cause instanceof CtfsError) expectEquivalent(x.cause, y.cause, withStack);
    else expect(y.cause).toBeInstanceOf(ForeignError);
  }
}

describe('brands: instanceof across two copies of the package', () => {
  let copy: ErrorsModule;
  let dir: string;

  beforeAll(async () => {
    ensureDist();
    // A second copy of the compiled error modules, as a duplicated dependency would be.
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-errors-copy-'));
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    for (const file of ['errors.js', 'error-wire.js', 'codes.js', 'describe-value.js']) {
      // Without the source-map comment: the copy has no maps beside it.
      const code = fs.readFileSync(path.join(ROOT, 'dist', file), 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, '');
      fs.writeFileSync(path.join(dir, file), code);
    }
    const errors = (await import(pathToFileURL(path.join(dir, 'errors.js')).href)) as ErrorsModule;
    const wire = (await import(pathToFileURL(path.join(dir, 'error-wire.js')).href)) as ErrorsModule;
    copy = { ...errors, ...wire };
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('every class of one copy recognises the same class of the other, both ways, and no other class', () => {
    const names = exportedErrorClasses(ctfs);
    const local = arbitraries(ctfs, fc.constant(new Error('x')));
    const remote = arbitraries(copy, fc.constant(new Error('x')));
    expect(Object.keys(local).sort()).toEqual(names);
    for (const name of names) {
      const fromCopy = fc.sample(remote[name]!, { numRuns: 1, seed: 1 })[0]!;
      const fromHere = fc.sample(local[name]!, { numRuns: 1, seed: 1 })[0]!;
      expect(Object.getPrototypeOf(fromCopy)).not.toBe(Object.getPrototypeOf(fromHere));
      const LocalClass = (ctfs as unknown as Record<string, new () => Error>)[name]!;
      const CopyClass = (copy as unknown as Record<string, new () => Error>)[name]!;
      expect(fromCopy instanceof LocalClass, `${name} from the copy is a ${name} here`).toBe(true);
      expect(fromHere instanceof CopyClass, `${name} from here is a ${name} in the copy`).toBe(true);
      expect(fromCopy instanceof CtfsError).toBe(true);
      for (const other of names) {
        if (other === name || other === 'CtfsError') continue;
        // PoolTimeoutError is a PoolError; nothing else is related.
        const related = name === 'PoolTimeoutError' && other === 'PoolError';
        expect(fromCopy instanceof (ctfs as unknown as Record<string, new () => Error>)[other]!, `${name} vs ${other}`).toBe(related);
      }
    }
    expect(new Error('plain') instanceof DurabilityError).toBe(false);
    expect((null as unknown) instanceof CtfsError).toBe(false);
    expect({ code: 'LogClosed' } instanceof DurabilityError).toBe(false);
  });

  it('a user subclass keeps ordinary instanceof, and is still its ctfs ancestor', () => {
    class MyPoolError extends PoolError {}
    const mine = new MyPoolError('PoolClosed', 'mine');
    expect(mine instanceof MyPoolError).toBe(true);
    expect(new PoolError('PoolClosed', 'theirs') instanceof MyPoolError).toBe(false);
    expect(mine instanceof copy.PoolError).toBe(true);
    // On the wire it is its nearest ctfs class.
    expect(fromWire(toWire(mine))).toBeInstanceOf(PoolError);
    expect(Object.getPrototypeOf(fromWire(toWire(mine)))).toBe(PoolError.prototype);
  });

  it('the wire form made by one copy is rebuilt by the other into its own classes', () => {
    const e = new copy.DurabilityError('DurabilityFailed', 'disk gone', { sequence: 7, ioCode: 'EIO' });
    const back = fromWire(structuredClone(copy.toWire(e)));
    expect(Object.getPrototypeOf(back)).toBe(DurabilityError.prototype);
    expect(back).toMatchObject({ code: 'DurabilityFailed', sequence: 7, ioCode: 'EIO', message: 'disk gone' });
    const there = copy.fromWire(structuredClone(toWire(new EscrowError('InsufficientEscrow', 'short', { requested: 5n, available: 2n }))));
    expect(Object.getPrototypeOf(there)).toBe(copy.EscrowError.prototype);
    expect(there).toMatchObject({ requested: 5n, available: 2n });
  });
});

describe('toWire / fromWire', () => {
  const causes = fc.letrec<{ error: Error }>((tie) => ({
    error: fc.oneof(
      { depthSize: 'small' },
      fc.constant(new TypeError('plain cause')),
      ...Object.values(arbitraries(ctfs, tie('error'))),
    ),
  })).error;

  it('fromWire(structuredClone(toWire(e))) is equivalent to e, for every exported class (with causes)', () => {
    const all = arbitraries(ctfs, causes);
    expect(Object.keys(all).sort()).toEqual(exportedErrorClasses(ctfs));
    for (const [name, arb] of Object.entries(all)) {
      fc.assert(
        fc.property(arb, (e) => {
          const wire = structuredClone(toWire(e));
          expect(wire.ctfsError).toBe(ERROR_WIRE_VERSION);
          expect(wire.name).toBe(name);
          expectEquivalent(e, fromWire(wire));
          expectEquivalent(e, fromWire(structuredClone(toWire(e, { stack: false }))), false);
        }),
        { numRuns: 60 },
      );
    }
  });

  it('anything else that is thrown becomes a ForeignError keeping message, name and code', () => {
    const sys = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    const e = fromWire(structuredClone(toWire(sys)));
    expect(e).toBeInstanceOf(ForeignError);
    expect(e).toMatchObject({ code: 'ForeignError', message: 'ENOENT: no such file', originalName: 'Error', originalCode: 'ENOENT' });
    expect(e.stack).toBe(sys.stack);
    expect(fromWire(toWire(new RangeError('r')))).toMatchObject({ originalName: 'RangeError', originalCode: undefined });
    expect(fromWire(toWire('just a string'))).toMatchObject({ code: 'ForeignError', message: 'just a string', originalName: 'string' });
    expect(fromWire(toWire(42))).toMatchObject({ message: '42', originalName: 'number' });
    expect(fromWire(toWire(undefined))).toMatchObject({ message: 'undefined', originalName: 'undefined' });
    expect(fromWire(toWire({ code: 7 }))).toMatchObject({ originalName: 'Object', originalCode: '7' });
    const hostile = {
      get message(): string {
        throw new Error('no');
      },
      toString(): string {
        throw new Error('no');
      },
    };
    expect(fromWire(toWire(hostile))).toBeInstanceOf(ForeignError);
  });

  it('a class or code this copy does not know becomes a plain CtfsError keeping code, message and fields', () => {
    const future: WireError = { ctfsError: 1, name: 'QuantumError', code: 'Decoherence', message: 'later', fields: { qubits: 3 } };
    const e = fromWire(structuredClone(future));
    expect(Object.getPrototypeOf(e)).toBe(CtfsError.prototype);
    expect(e).toMatchObject({ name: 'CtfsError', code: 'Decoherence', message: 'later', qubits: 3 });
    // A known class with a code it never carries is not trusted to be that class.
    const odd = fromWire({ ctfsError: 1, name: 'DurabilityError', code: 'PoolClosed', message: 'odd', fields: {} });
    expect(Object.getPrototypeOf(odd)).toBe(CtfsError.prototype);
    expect(odd.code).toBe('PoolClosed');
  });

  it('what is not a wire form becomes a ForeignError (MalformedWire); reserved field names are ignored', () => {
    for (const bad of [undefined, null, 'x', {}, { ctfsError: 2, name: 'CtfsError', code: 'x', message: '', fields: {} }, { ctfsError: 1, name: 5 }]) {
      expect(fromWire(bad)).toMatchObject({ code: 'ForeignError', originalName: 'MalformedWire' });
    }
    const sneaky = fromWire({ ctfsError: 1, name: 'PoolError', code: 'PoolClosed', message: 'm', fields: JSON.parse('{"__proto__": {"polluted": true}, "name": "x", "shard": 3}') });
    expect(sneaky).toBeInstanceOf(PoolError);
    expect(sneaky).toMatchObject({ name: 'PoolError', shard: 3 });
    expect((sneaky as unknown as { polluted?: boolean }).polluted).toBeUndefined();
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('causes are encoded at most MAX_CAUSE_DEPTH deep; a cyclic cause ends', () => {
    let chain: Error = new Error('root');
    for (let i = 0; i < 3 * MAX_CAUSE_DEPTH; i++) chain = new CtfsError('PoolTaskFailed', `level ${i}`, { cause: chain });
    let depth = 0;
    for (let w: WireError | undefined = toWire(chain); w !== undefined; w = w.cause) depth++;
    expect(depth).toBe(MAX_CAUSE_DEPTH);
    let decoded = 0;
    for (let e: unknown = fromWire(toWire(chain)); e !== undefined; e = (e as Error).cause) decoded++;
    expect(decoded).toBe(MAX_CAUSE_DEPTH);
    const cyclic = new CtfsError('PoolTaskFailed', 'me');
    Object.defineProperty(cyclic, 'cause', { value: cyclic });
    expect(fromWire(structuredClone(toWire(cyclic)))).toBeInstanceOf(CtfsError);
  });

  it('fields that cannot be cloned travel as their string form', () => {
    const e = new ctfs.AlgebraicPropertyError('not commutative', { f: () => 1 });
    const back = fromWire(structuredClone(toWire(e))) as ctfs.AlgebraicPropertyError;
    expect(back.counterexample).toBe('[object Object]');
  });
});

describe('encodeWire / decodeWire (bytes)', () => {
  it('round-trips bigints, byte arrays and undefined within the budget', () => {
    const e = new EscrowError('InsufficientEscrow', 'short', { requested: 2n ** 100n, available: -1n });
    const back = fromWire(decodeWire(encodeWire(toWire(e, { stack: false }), 4096)));
    expectEquivalent(e, back, false);
    const bytes = new ctfs.AlgebraicPropertyError('x', new Uint8Array([1, 2, 3]));
    expect((fromWire(decodeWire(encodeWire(toWire(bytes), 4096))) as ctfs.AlgebraicPropertyError).counterexample).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('never exceeds the budget: stacks, cause, fields go first, then the message is shortened', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), fc.integer({ min: 160, max: 600 }), (message, budget) => {
        const e = new DurabilityError('DurabilityFailed', message, { sequence: 9, ioCode: 'EIO', cause: new Error(message) });
        const bytes = encodeWire(toWire(e), budget);
        expect(bytes.length).toBeLessThanOrEqual(budget);
        const back = fromWire(decodeWire(bytes));
        expect(back).toBeInstanceOf(DurabilityError);
        expect(back.code).toBe('DurabilityFailed');
        expect(message.startsWith(back.message.replace(/…$/, ''))).toBe(true);
      }),
      { numRuns: 100 },
    );
    expect(() => encodeWire(toWire(new CtfsError('PoolClosed', 'x')), 10)).toThrow(ctfs.InvalidArgumentError);
    expect(fromWire(decodeWire(new TextEncoder().encode('not json')))).toMatchObject({ code: 'ForeignError', originalName: 'MalformedWire' });
  });
});
