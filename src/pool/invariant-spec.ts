/**
 * How a pool names its invariant: every pool thread builds its own instance (an invariant is code,
 * and code does not cross threads), so the pool is given a recipe — a built-in by name, or a
 * module and export — plus constructor arguments that survive structured cloning.
 */
import { InvalidArgumentError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { checkInvariant, type Invariant } from '../invariants/invariant.js';
import { TotalSupplyInvariant } from '../invariants/total-supply.js';
import { MaxInvariant } from '../invariants/max.js';
import { GCounterInvariant } from '../invariants/gcounter.js';
import { BoundedGCounterInvariant } from '../invariants/bounded-gcounter.js';
import { LWWInvariant } from '../invariants/lww.js';
import { UniquenessInvariant } from '../invariants/uniqueness.js';
import { GGraphInvariant } from '../invariants/ggraph.js';

const BUILTINS = {
  TotalSupply: TotalSupplyInvariant,
  Max: MaxInvariant,
  GCounter: GCounterInvariant,
  BoundedGCounter: BoundedGCounterInvariant,
  LWW: LWWInvariant,
  Uniqueness: UniquenessInvariant,
  GGraph: GGraphInvariant,
} as const;

export type BuiltinInvariantName = keyof typeof BUILTINS;

/**
 * A built-in invariant (`{ builtin: 'TotalSupply' }`), or a class or factory exported by an ES
 * module (`{ module: new URL('./my-invariant.js', import.meta.url), export: 'MyInvariant' }`;
 * default export if `export` is omitted). `args` go to the constructor or factory in every thread.
 */
export type InvariantSpec =
  | { readonly builtin: BuiltinInvariantName; readonly args?: readonly unknown[] }
  | { readonly module: string | URL; readonly export?: string; readonly args?: readonly unknown[] };

/** The spec as it crosses to pool threads (a URL becomes its string). */
export interface PortableInvariantSpec {
  readonly builtin?: string;
  readonly module?: string;
  readonly export?: string;
  readonly args: readonly unknown[];
}

/** Checks `spec` and turns it into plain data for `workerData`. */
export function portableSpec(spec: InvariantSpec): PortableInvariantSpec {
  if (spec === null || typeof spec !== 'object') throw new InvalidArgumentError('invariant must be an InvariantSpec ({ builtin } or { module, export })');
  const args = spec.args ?? [];
  if (!Array.isArray(args)) throw new InvalidArgumentError('invariant args must be an array');
  try {
    structuredClone(args);
  } catch (cause) {
    throw new InvalidArgumentError('invariant args must survive structured cloning (no functions, symbols or class instances with private state)', { cause });
  }
  if ('builtin' in spec) {
    if (typeof spec.builtin !== 'string' || !Object.hasOwn(BUILTINS, spec.builtin)) {
      throw new InvalidArgumentError(`unknown built-in invariant ${describeValue(spec.builtin)}; one of ${Object.keys(BUILTINS).join(', ')}`);
    }
    return { builtin: spec.builtin, args };
  }
  if (!('module' in spec) || !(typeof spec.module === 'string' || spec.module instanceof URL)) {
    throw new InvalidArgumentError('invariant must name a built-in ({ builtin }) or a module ({ module, export })');
  }
  const exported = spec.export ?? 'default';
  if (typeof exported !== 'string') throw new InvalidArgumentError('invariant export must be a string');
  return { module: String(spec.module), export: exported, args };
}

function isClass(fn: (...args: unknown[]) => unknown): boolean {
  return typeof fn.prototype?.apply === 'function' || /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/** Builds the invariant `spec` describes, in this thread. */
export async function buildInvariant(spec: PortableInvariantSpec): Promise<Invariant> {
  let make: unknown;
  if (spec.builtin !== undefined) {
    make = BUILTINS[spec.builtin as BuiltinInvariantName];
  } else {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(spec.module!)) as Record<string, unknown>;
    } catch (cause) {
      throw new InvalidArgumentError(`cannot import invariant module ${spec.module}`, { cause });
    }
    make = mod[spec.export!];
    if (typeof make !== 'function') throw new InvalidArgumentError(`${spec.module} has no export ${spec.export} that is a class or factory`);
  }
  const fn = make as (...args: unknown[]) => Invariant;
  let invariant: Invariant;
  try {
    // A class is constructed (its apply may be a prototype method or an instance field);
    // anything else is a factory.
    invariant = isClass(fn) ? Reflect.construct(fn, spec.args) : fn(...spec.args);
  } catch (cause) {
    throw new InvalidArgumentError(`building the invariant ${spec.builtin ?? `${spec.module}#${spec.export}`} threw`, { cause });
  }
  checkInvariant(invariant);
  return invariant;
}
