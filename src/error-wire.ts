/**
 * The one way errors cross a thread boundary (pool tasks, the persistence worker, and any later
 * worker). An Error handed to `postMessage` arrives as a plain `Error` with its message only, so a
 * thread sends `toWire(error)` — a plain, structured-clone-safe object — and the receiver rebuilds
 * the typed error with `fromWire(wire)`:
 *
 * - a ctfs error keeps its class (by the name it is branded with), `code`, `message`, its own
 *   fields (`shard`, `sequence`, `ioCode`, `position`, …) and its `cause`;
 * - a wire form naming a class or code this copy does not know (a newer peer's) becomes a plain
 *   `CtfsError` that keeps `code`, message and fields;
 * - anything else that was thrown (a `TypeError`, a system error, a string) becomes a
 *   {@link ForeignError} keeping its message, name and `code`;
 * - causes are encoded recursively, at most {@link MAX_CAUSE_DEPTH} deep;
 * - the stack travels unless `{ stack: false }`, and replaces the receiver's own stack.
 *
 * Where only bytes can travel (a shared-memory block, a ring), `encodeWire` writes the wire form
 * as UTF-8 JSON within a byte budget and `decodeWire` reads it back.
 */
import { AdmitCode } from './codes.js';
import { describeValue } from './describe-value.js';
import {
  AdmitError,
  AlgebraicPropertyError,
  CausalHorizonExceededError,
  CheckpointError,
  CtfsError,
  DurabilityError,
  DurableDataLostError,
  InvariantMismatchError,
  LogFormatError,
  ManifestError,
  StorageError,
  EscrowError,
  FactIdMismatchError,
  ForeignError,
  InvalidArgumentError,
  LogLockedError,
  MalformedFactError,
  NativeUnavailableError,
  PoolError,
  ReplicationError,
  PoolTimeoutError,
  SharedMemoryError,
  TenantError,
  UnknownTenantError,
  ValueOutOfRangeError,
  WalCorruptionError,
  WIRE_NAME,
  type CtfsErrorCode,
} from './errors.js';

/** Version of the wire form; also marks an object as one. */
export const ERROR_WIRE_VERSION = 1;

/**
 * How deep `cause` chains are encoded. ctfs builds chains of at most three (a pool error, the
 * error a task threw, the system error under it); the bound keeps a cyclic or runaway chain from
 * growing a message without limit.
 */
export const MAX_CAUSE_DEPTH = 8;

/** An error as it crosses a thread: plain data only. */
export interface WireError {
  /** {@link ERROR_WIRE_VERSION}. */
  readonly ctfsError: typeof ERROR_WIRE_VERSION;
  /** The ctfs class (`'DurabilityError'`, …; `'ForeignError'` for anything else). */
  readonly name: string;
  readonly code: string;
  readonly message: string;
  /** The class's own fields (for a ForeignError: `originalName`, `originalCode`). */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly cause?: WireError;
  readonly stack?: string;
}

type AnyErrorClass = abstract new (...args: never[]) => CtfsError;

/** Every class `fromWire` rebuilds, with the codes it may carry. */
const admitCodes: readonly string[] = Object.keys(AdmitCode).filter((name) => name !== 'Ok');
const CLASSES: Readonly<Record<string, { readonly cls: AnyErrorClass; readonly codes: readonly string[] }>> = {
  CtfsError: { cls: CtfsError, codes: [] },
  AdmitError: { cls: AdmitError, codes: admitCodes },
  MalformedFactError: { cls: MalformedFactError, codes: ['MalformedFact'] },
  FactIdMismatchError: { cls: FactIdMismatchError, codes: ['FactIdMismatch'] },
  InvalidArgumentError: { cls: InvalidArgumentError, codes: ['InvalidArgument'] },
  ValueOutOfRangeError: { cls: ValueOutOfRangeError, codes: ['ValueOutOfRange'] },
  CausalHorizonExceededError: { cls: CausalHorizonExceededError, codes: ['CausalHorizonExceeded'] },
  TenantError: { cls: TenantError, codes: ['TenantLimitExceeded', 'TenantAlreadyRegistered'] },
  UnknownTenantError: { cls: UnknownTenantError, codes: ['UnknownTenant'] },
  EscrowError: {
    cls: EscrowError,
    codes: [
      'InsufficientEscrow',
      'UnknownNode',
      'InvalidAmount',
      'InvalidNodes',
      'InvalidTransfer',
      'ReleaseExceedsUsage',
      'AlreadyInitialized',
      'NotInitialized',
      'DuplicateRequest',
      'UnknownRequest',
      'EscrowExhausted',
      'GenesisMismatch',
      'HistoryUnavailable',
      'EscrowHistoryInvalid',
    ] satisfies CtfsErrorCode[],
  },
  AlgebraicPropertyError: { cls: AlgebraicPropertyError, codes: ['AlgebraicPropertyViolated'] },
  SharedMemoryError: { cls: SharedMemoryError, codes: ['InvalidSharedMemory'] },
  DurabilityError: { cls: DurabilityError, codes: ['DurabilityFailed', 'LogClosed', 'DurabilityTimeout'] satisfies CtfsErrorCode[] },
  WalCorruptionError: { cls: WalCorruptionError, codes: ['WalCorrupted'] },
  CheckpointError: { cls: CheckpointError, codes: ['CheckpointCorrupted'] },
  DurableDataLostError: { cls: DurableDataLostError, codes: ['DurableDataLost'] },
  ManifestError: { cls: ManifestError, codes: ['ManifestInvalid'] },
  InvariantMismatchError: { cls: InvariantMismatchError, codes: ['InvariantMismatch'] },
  LogFormatError: { cls: LogFormatError, codes: ['UnsupportedLogFormat'] },
  StorageError: { cls: StorageError, codes: ['StorageFailed'] },
  LogLockedError: { cls: LogLockedError, codes: ['LogLocked'] },
  NativeUnavailableError: { cls: NativeUnavailableError, codes: ['NativeUnavailable'] },
  PoolError: {
    cls: PoolError,
    codes: ['PoolClosed', 'ShardPoisoned', 'ShardLockTimeout', 'PoolTaskFailed', 'DurableShardsUnsupported'] satisfies CtfsErrorCode[],
  },
  PoolTimeoutError: { cls: PoolTimeoutError, codes: ['PoolTaskTimeout', 'PoolStartTimeout'] satisfies CtfsErrorCode[] },
  ForeignError: { cls: ForeignError, codes: ['ForeignError'] },
  ReplicationError: { cls: ReplicationError, codes: ['ReplicationStartFailed', 'ReplicationClosed'] satisfies CtfsErrorCode[] },
};

/** Properties every error has that are not the class's own fields. */
const RESERVED = new Set(['name', 'code', 'message', 'stack', 'cause', '__proto__', 'constructor', 'prototype']);

/** `value` if it survives structured cloning (a copy of it), else its string form. */
function cloneSafe(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'function' || typeof value === 'symbol' ? safeString(value) : value;
  try {
    return structuredClone(value);
  } catch {
    return safeString(value);
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A property, or undefined if reading it throws (a getter, a revoked proxy). */
function read(value: object, key: PropertyKey): unknown {
  try {
    return (value as Record<PropertyKey, unknown>)[key];
  } catch {
    return undefined;
  }
}

/**
 * Any thrown value as plain, structured-clone-safe data. `stack: false` leaves stacks out (where
 * space is tight).
 */
export function toWire(error: unknown, options: { readonly stack?: boolean } = {}): WireError {
  if (options !== undefined && options !== null && typeof options !== 'object') {
    throw new InvalidArgumentError(`toWire's options must be an object, got ${describeValue(options)}`);
  }
  return encode(error, options?.stack !== false, 0);
}

function encode(error: unknown, withStack: boolean, depth: number): WireError {
  const isObject = typeof error === 'object' && error !== null;
  const name = isObject ? read(error, WIRE_NAME) : undefined;
  let wire: { -readonly [K in keyof WireError]: WireError[K] };
  if (typeof name === 'string' && typeof read(error as object, 'code') === 'string') {
    const fields: Record<string, unknown> = {};
    for (const key of Object.keys(error as object)) if (!RESERVED.has(key)) fields[key] = cloneSafe(read(error as object, key));
    wire = { ctfsError: ERROR_WIRE_VERSION, name, code: read(error as object, 'code') as string, message: safeString(read(error as object, 'message')), fields };
  } else {
    const code = isObject ? read(error, 'code') : undefined;
    const originalName = isObject ? read(error, 'name') : undefined;
    wire = {
      ctfsError: ERROR_WIRE_VERSION,
      name: 'ForeignError',
      code: 'ForeignError',
      message: error instanceof Error ? safeString(error.message) : safeString(error),
      fields: {
        originalName: typeof originalName === 'string' ? originalName : isObject ? 'Object' : typeof error,
        originalCode: typeof code === 'string' || typeof code === 'number' ? String(code) : undefined,
      },
    };
  }
  if (isObject && Object.hasOwn(error, 'cause') && depth + 1 < MAX_CAUSE_DEPTH) wire.cause = encode(read(error, 'cause'), withStack, depth + 1);
  const stack = isObject ? read(error, 'stack') : undefined;
  if (withStack && typeof stack === 'string') wire.stack = stack;
  return wire;
}

/** True if `value` has the shape of a wire form (any version-1 producer). */
export function isWireError(value: unknown): value is WireError {
  if (typeof value !== 'object' || value === null) return false;
  const w = value as Partial<Record<keyof WireError, unknown>>;
  return (
    w.ctfsError === ERROR_WIRE_VERSION &&
    typeof w.name === 'string' &&
    typeof w.code === 'string' &&
    typeof w.message === 'string' &&
    typeof w.fields === 'object' &&
    w.fields !== null &&
    (w.stack === undefined || typeof w.stack === 'string')
  );
}

/**
 * The typed error a wire form describes (see the module comment). Never throws: what is not a
 * wire form becomes a ForeignError with `originalName` `'MalformedWire'`.
 */
export function fromWire(wire: unknown): CtfsError {
  return decode(wire, 0);
}

function decode(wire: unknown, depth: number): CtfsError {
  if (!isWireError(wire)) {
    return new ForeignError(`an error arrived in no known form: ${safeString(wire).slice(0, 200)}`, { name: 'MalformedWire' });
  }
  const known = Object.hasOwn(CLASSES, wire.name) ? CLASSES[wire.name] : undefined;
  const cls = known !== undefined && (known.codes.includes(wire.code) || known.cls === CtfsError) ? known.cls : CtfsError;
  const options = wire.cause !== undefined && depth + 1 < MAX_CAUSE_DEPTH ? { cause: decode(wire.cause, depth + 1) } : undefined;
  // Built without running the class's constructor (whose parameters differ per class): an Error
  // with the class's prototype, then the fields every ctfs error has, then the class's own.
  const error = Reflect.construct(Error, options === undefined ? [wire.message] : [wire.message, options], cls) as CtfsError;
  Object.defineProperty(error, 'name', { value: cls === CtfsError ? 'CtfsError' : wire.name, enumerable: false, configurable: true, writable: true });
  Object.defineProperty(error, 'code', { value: wire.code as CtfsErrorCode, enumerable: true, configurable: true, writable: true });
  for (const key of Object.keys(wire.fields)) {
    if (RESERVED.has(key)) continue;
    Object.defineProperty(error, key, { value: wire.fields[key], enumerable: true, configurable: true, writable: true });
  }
  if (wire.stack !== undefined) Object.defineProperty(error, 'stack', { value: wire.stack, enumerable: false, configurable: true, writable: true });
  return error;
}

// ------------------------------------------------------------------ bytes

/** JSON cannot hold these; they travel as one-key tagged objects. */
const TAG_BIGINT = '$bigint';
const TAG_BYTES = '$bytes';
const TAG_UNDEFINED = '$undefined';

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return { [TAG_BIGINT]: value.toString() };
  if (value === undefined) return { [TAG_UNDEFINED]: true };
  if (value instanceof Uint8Array) return { [TAG_BYTES]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return value;
  const v = value as Record<string, unknown>;
  if (typeof v[TAG_BIGINT] === 'string') return BigInt(v[TAG_BIGINT]);
  if (v[TAG_UNDEFINED] === true) return undefined;
  if (typeof v[TAG_BYTES] === 'string') return new Uint8Array(Buffer.from(v[TAG_BYTES], 'base64'));
  return value;
}

/** The largest byte budget `encodeWire` takes: 16 MiB, far beyond any error worth shipping. */
export const MAX_WIRE_BYTES = 1 << 24;

/**
 * The wire form as UTF-8 JSON of at most `maxBytes` bytes. Bigints, byte arrays and undefined
 * survive; other objects among the fields keep their JSON data only. If it does not fit, stacks
 * go first, then the cause, then the fields, then the message is shortened.
 */
export function encodeWire(wire: WireError, maxBytes: number): Uint8Array {
  if (!isWireError(wire)) throw new InvalidArgumentError(`encodeWire takes a wire form (toWire's result), got ${describeValue(wire)}`);
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_WIRE_BYTES) {
    throw new InvalidArgumentError(`maxBytes must be an integer in [1, ${MAX_WIRE_BYTES}], got ${describeValue(maxBytes)}`);
  }
  const encoder = new TextEncoder();
  const attempt = (w: WireError): Uint8Array | undefined => {
    const bytes = encoder.encode(JSON.stringify(w, replacer));
    return bytes.length <= maxBytes ? bytes : undefined;
  };
  const withoutStacks = (w: WireError): WireError => {
    const { stack: _stack, cause, ...rest } = w;
    return cause === undefined ? rest : { ...rest, cause: withoutStacks(cause) };
  };
  const bare = withoutStacks(wire);
  const { cause: _cause, ...noCause } = bare;
  const found = attempt(wire) ?? attempt(bare) ?? attempt(noCause) ?? attempt({ ...noCause, fields: {} });
  if (found !== undefined) return found;
  // Longest prefix of the message that fits (binary search over characters).
  let lo = 0;
  let hi = wire.message.length;
  let best = attempt({ ...noCause, fields: {}, message: '' });
  if (best === undefined) throw new InvalidArgumentError(`an error's wire form needs more than ${maxBytes} bytes even without its message`);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const fit = attempt({ ...noCause, fields: {}, message: `${wire.message.slice(0, mid)}…` });
    if (fit === undefined) hi = mid - 1;
    else {
      best = fit;
      lo = mid;
    }
  }
  return best;
}

/** Reads what `encodeWire` wrote back into a wire form (a ForeignError's if it is not one). */
export function decodeWire(bytes: Uint8Array): WireError {
  let parsed: unknown;
  try {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('not bytes');
    parsed = JSON.parse(new TextDecoder().decode(bytes), reviver);
  } catch {
    parsed = undefined;
  }
  return isWireError(parsed) ? parsed : toWire(fromWire(parsed), { stack: false });
}
