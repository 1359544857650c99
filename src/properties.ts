/**
 * `ctfs/properties`: check that an invariant keeps the promises of its algebraic class, with
 * fast-check, over random states, payloads and interleavings — rejections included.
 *
 *   import { assertAlgebraicClass } from 'ctfs/properties';
 *   assertAlgebraicClass(new MyInvariant(), { payload: fc.uint8Array({ minLength: 8, maxLength: 8 }) });
 *
 * What is checked, by class:
 * - every class: `apply` never throws, and a rejection leaves the state byte-for-byte untouched;
 * - coordination-free classes (Commutative, CommutativeIdempotent, Lattice, Group): any two orders
 *   of the same payloads — pairs, and random interleavings of up to `maxPayloads` — accept the same
 *   payloads and end in the same bytes;
 * - BoundedCommutative: the same, whenever every payload is accepted in both orders (only the bound
 *   may make acceptance depend on order);
 * - CommutativeIdempotent and Lattice: applying a payload twice leaves the state as applying it once;
 * - Ordered promises nothing beyond the first rule.
 *
 * A check in which no payload was ever accepted proves nothing and is reported as failing. The
 * bounded check cannot tell a bound from any other order-dependent refusal, and Group's inverses
 * are not checked (the class promises nothing more than Commutative to the kernels).
 *
 * This is a separate entry point so that importing `ctfs` does not load fast-check.
 */
import fc from 'fast-check';
import { AlgebraicClass, isCoordinationFree, type Invariant } from './invariants/invariant.js';
import { AlgebraicPropertyError, InvalidArgumentError } from './errors.js';
import { STATE_CELL_BYTES } from './core/state-cell.js';
import { isIdempotent } from './algebra/classes.js';

export type AlgebraicProperty = 'rejections-leave-state' | 'commutativity' | 'convergence' | 'idempotence';

export interface AlgebraOptions {
  /** Payloads to try (required: only the invariant's author knows their shape). */
  readonly payload: fc.Arbitrary<Uint8Array>;
  /** States to start from: an arbitrary, or one fixed state (default: `initialState()` or zeros). */
  readonly state?: fc.Arbitrary<Uint8Array> | Uint8Array;
  /** Runs per property (default 200). */
  readonly numRuns?: number;
  /** Most payloads in one interleaving (default 8). */
  readonly maxPayloads?: number;
  /** fast-check seed, to replay a failure. */
  readonly seed?: number;
}

export interface PropertyResult {
  readonly property: AlgebraicProperty;
  readonly holds: boolean;
  /** The shrunk failing input (state and payloads as hex) when it does not hold. */
  readonly counterexample?: unknown;
  readonly message?: string;
}

export interface AlgebraReport {
  readonly algebraicClass: AlgebraicClass;
  readonly holds: boolean;
  readonly results: readonly PropertyResult[];
}

interface Outcome {
  readonly bytes: string;
  readonly accepted: readonly boolean[];
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Applies `payloads` in `order` to a copy of `state`; checks the rejection contract on the way. */
function run(invariant: Invariant, state: Uint8Array, payloads: readonly Uint8Array[], order: readonly number[]): Outcome {
  const cell = state.slice();
  const accepted: boolean[] = new Array<boolean>(payloads.length).fill(false);
  for (const i of order) {
    const before = hex(cell);
    let code: number;
    try {
      code = invariant.apply(payloads[i]!, cell);
    } catch (err) {
      throw new Error(`apply threw: ${String(err)}`);
    }
    if (code !== 0 && hex(cell) !== before) throw new Error(`rejection ${code} changed the state`);
    accepted[i] = code === 0;
  }
  return { bytes: hex(cell), accepted };
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  return a.bytes === b.bytes && a.accepted.every((x, i) => x === b.accepted[i]);
}

const allAccepted = (o: Outcome): boolean => o.accepted.every(Boolean);

/** Checks every property the invariant's class promises; never throws for a violation. */
export function checkAlgebraicClass(invariant: Invariant, options: AlgebraOptions): AlgebraReport {
  if (invariant === null || typeof invariant !== 'object' || typeof invariant.apply !== 'function') {
    throw new InvalidArgumentError('invariant must be an object with an apply(payload, state) method');
  }
  if (options?.payload === undefined) throw new InvalidArgumentError('options.payload (a fast-check arbitrary) is required');
  const cls = invariant.algebraicClass;
  const fixed = options.state instanceof Uint8Array ? options.state : (invariant.initialState?.() ?? new Uint8Array(STATE_CELL_BYTES));
  const states: fc.Arbitrary<Uint8Array> = options.state !== undefined && !(options.state instanceof Uint8Array) ? options.state : fc.constant(fixed);
  const params = { numRuns: options.numRuns ?? 200, ...(options.seed === undefined ? {} : { seed: options.seed }) };
  const maxPayloads = options.maxPayloads ?? 8;
  const orders = fc
    .array(options.payload, { minLength: 2, maxLength: maxPayloads })
    .chain((payloads) =>
      fc.tuple(fc.constant(payloads), fc.shuffledSubarray(indices(payloads.length), { minLength: payloads.length })),
    );
  const coordinationFree = isCoordinationFree(cls);
  const bounded = cls === AlgebraicClass.BoundedCommutative;

  if (fixed.length !== STATE_CELL_BYTES) throw new InvalidArgumentError(`a state is exactly ${STATE_CELL_BYTES} bytes`);
  const results: PropertyResult[] = [];
  // Counts accepted payloads over the whole check: if nothing is ever accepted (payloads all
  // malformed, or a start state that refuses everything) every property holds vacuously.
  let accepted = 0;
  const countAccepted = (o: Outcome): Outcome => {
    for (const a of o.accepted) if (a) accepted++;
    return o;
  };
  const check = <T extends [unknown, ...unknown[]]>(property: AlgebraicProperty, prop: fc.IProperty<T>): void => {
    const details = fc.check(prop, params);
    results.push(
      details.failed
        ? {
            property,
            holds: false,
            counterexample: readable(details.counterexample),
            message: details.errorInstance instanceof Error ? details.errorInstance.message : 'the property returned false',
          }
        : { property, holds: true },
    );
  };

  check(
    'rejections-leave-state',
    fc.property(states, fc.array(options.payload, { minLength: 1, maxLength: maxPayloads }), (state, payloads) => {
      if (state.length !== STATE_CELL_BYTES) throw new Error(`a generated state is ${state.length} bytes, not ${STATE_CELL_BYTES}`);
      countAccepted(run(invariant, state, payloads, indices(payloads.length)));
      return true;
    }),
  );
  if (coordinationFree || bounded) {
    check(
      'commutativity',
      fc.property(states, options.payload, options.payload, (state, a, b) => {
        const ab = run(invariant, state, [a, b], [0, 1]);
        const ba = run(invariant, state, [a, b], [1, 0]);
        return coordinationFree ? sameOutcome(ab, ba) : !(allAccepted(ab) && allAccepted(ba)) || ab.bytes === ba.bytes;
      }),
    );
    check(
      'convergence',
      fc.property(states, orders, (state, [payloads, order]) => {
        const forward = run(invariant, state, payloads, indices(payloads.length));
        const shuffled = run(invariant, state, payloads, order);
        return coordinationFree ? sameOutcome(forward, shuffled) : !(allAccepted(forward) && allAccepted(shuffled)) || forward.bytes === shuffled.bytes;
      }),
    );
  }
  if (isIdempotent(cls)) {
    check(
      'idempotence',
      fc.property(states, options.payload, (state, a) => {
        const once = run(invariant, state, [a], [0]);
        const twice = run(invariant, state, [a, a], [0, 1]);
        return once.bytes === twice.bytes && twice.accepted[1] === once.accepted[0];
      }),
    );
  }
  if (accepted === 0) {
    results.push({
      property: 'rejections-leave-state',
      holds: false,
      message: 'no payload was ever accepted: the check is vacuous (are the payloads or the start state right?)',
    });
  }
  return { algebraicClass: cls, holds: results.every((r) => r.holds), results };
}

/** Like `checkAlgebraicClass`, but throws `AlgebraicPropertyError` with the counterexample. */
export function assertAlgebraicClass(invariant: Invariant, options: AlgebraOptions): AlgebraReport {
  const report = checkAlgebraicClass(invariant, options);
  const failed = report.results.find((r) => !r.holds);
  if (failed !== undefined) {
    throw new AlgebraicPropertyError(
      `${invariant.constructor?.name ?? 'invariant'} breaks ${failed.property} (class ${report.algebraicClass}): ${failed.message ?? ''}`,
      failed.counterexample,
    );
  }
  return report;
}

/** Byte arrays as hex, recursively, so a counterexample can be printed and pasted back. */
function readable(value: unknown): unknown {
  if (value instanceof Uint8Array) return hex(value);
  if (Array.isArray(value)) return value.map(readable);
  return value;
}

function indices(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
