/**
 * describeValue, and the errors built with it: a message about any argument is short, quick to
 * build, and never itself the cause of an exception.
 */
import { describe, expect, it } from 'vitest';
import { AdmitError, CheckpointError, CtfsError, DurabilityError, InvalidArgumentError, UnknownTenantError, WalCorruptionError, admitCodeName } from './helpers/lib.js';
import { MAX_DESCRIPTION_CHARS, describeValue } from './helpers/lib.js';

const HUGE = new Array<number>(1_000_000).fill(1);

function detached(): Uint8Array {
  const buffer = new ArrayBuffer(32);
  const view = new Uint8Array(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  return view;
}

/** Values that break naive message building: String() throws on some, takes seconds on others. */
const AWKWARD: unknown[] = [null, undefined, NaN, -Infinity, 10n, Symbol('s'), Object.create(null), {}, [], HUGE, 'abc', Buffer.from([1, 2]), detached()];

describe('describeValue', () => {
  it('describes anything briefly and never throws', () => {
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    const values: unknown[] = [
      ...AWKWARD,
      revoked.proxy,
      new Proxy({}, { ownKeys: () => { throw new Error('trap'); } }),
      Object.defineProperty([1], 0, { get: () => { throw new Error('getter'); } }),
      { toString: () => { throw new Error('toString'); } },
      'x'.repeat(1_000_000),
      10n ** 400n,
      Symbol('d'.repeat(1000)),
      function named() {},
      new Map(),
      new Float64Array([1.5, 2, 3, 4]),
      new SharedArrayBuffer(8),
      new DataView(new ArrayBuffer(4)),
    ];
    for (const v of values) {
      const started = performance.now();
      const text = describeValue(v);
      expect(performance.now() - started).toBeLessThan(100);
      expect(typeof text).toBe('string');
      expect(text.length).toBeGreaterThan(0);
      expect(text.length).toBeLessThanOrEqual(MAX_DESCRIPTION_CHARS);
    }
  });

  it('says what a value is', () => {
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(-0)).toBe('-0');
    expect(describeValue(10n)).toBe('10n');
    expect(describeValue(Symbol('s'))).toBe('Symbol(s)');
    expect(describeValue('ab')).toBe('"ab"');
    expect(describeValue(Object.create(null))).toBe('object (null prototype) {}');
    expect(describeValue({ id: 1, deps: 2 })).toBe('{ id, deps }');
    expect(describeValue(HUGE)).toBe('Array(1000000) [1, 1, 1, …]');
    expect(describeValue(Buffer.from([0xde, 0xad]))).toBe('Buffer(2) [de ad]');
    expect(describeValue(new Uint8Array(32))).toBe('Uint8Array(32) [00 00 00 00 00 00 00 00 …]');
    expect(describeValue(detached())).toBe('Uint8Array(0)');
    expect(describeValue([new Uint8Array(2), {}, [1]])).toBe('Array(3) [Uint8Array(2), {…}, Array(1)]');
  });
});

describe('errors describe their arguments', () => {
  it('every error builds, whatever it is given, with a bounded message', () => {
    for (const v of AWKWARD) {
      const started = performance.now();
      const errors: CtfsError[] = [
        new InvalidArgumentError(v as string),
        new UnknownTenantError(v),
        new CheckpointError(v as string, v as string),
        new WalCorruptionError(v as string, v as never),
        new DurabilityError('DurabilityFailed', v as string, v as never),
      ];
      for (const e of errors) {
        expect(e).toBeInstanceOf(CtfsError);
        expect(typeof e.message).toBe('string');
        expect(e.message.length).toBeLessThanOrEqual(4 * MAX_DESCRIPTION_CHARS);
      }
      const refused = [() => new AdmitError(v as number), () => admitCodeName(v as number)];
      for (const make of refused) {
        let caught: unknown;
        try {
          make();
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(InvalidArgumentError);
        expect((caught as Error).message.length).toBeLessThanOrEqual(2 * MAX_DESCRIPTION_CHARS);
      }
      expect(performance.now() - started).toBeLessThan(200);
    }
  });

  it('names the tenant and the code it was given', () => {
    expect(new UnknownTenantError(Symbol('t')).message).toBe('tenant Symbol(t) is not registered');
    expect(new UnknownTenantError(Object.create(null)).message).toBe('tenant object (null prototype) {} is not registered');
    expect(() => admitCodeName(HUGE as never)).toThrow('Array(1000000) [1, 1, 1, …] is not a rejection code');
  });
});
