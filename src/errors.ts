/**
 * Every error ctfs throws. Each class has a stable string `code` (safe to switch on and to log).
 * A `Symbol.for` brand makes `instanceof CtfsError` hold across duplicate package copies and
 * realms; subclasses use ordinary `instanceof`, so across copies switch on `code`.
 */
import {
  invariantCodeName,
  lookupAdmitCodeName,
  type AdmitCodeName,
  type InvariantCodeName,
} from './core/codes.js';

const BRAND = Symbol.for('ctfs.error');

export type CtfsErrorCode =
  | AdmitCodeName
  | 'InvalidArgument'
  | 'ValueOutOfRange'
  | 'TenantLimitExceeded'
  | 'TenantAlreadyRegistered'
  | 'InvalidSharedMemory'
  | 'AlgebraicPropertyViolated'
  | EscrowErrorCode
  | DurabilityErrorCode
  | 'WalCorrupted'
  | 'DurableDataLost'
  | 'ManifestInvalid'
  | 'InvariantMismatch'
  | 'UnsupportedLogFormat'
  | 'StorageFailed'
  | 'CheckpointCorrupted'
  | 'LogLocked'
  | 'NativeUnavailable'
  | PoolErrorCode;

/**
 * Worker pool conditions: the pool is closed; a shard was poisoned (a pool thread died while it
 * held the shard, so its state may be half-written); `admitBatchSync` gave up waiting for a busy
 * shard; a pool task failed for another reason; or durable shards were asked for (not supported yet).
 */
export type PoolErrorCode = 'PoolClosed' | 'ShardPoisoned' | 'ShardLockTimeout' | 'PoolTaskFailed' | 'DurableShardsUnsupported';

/**
 * Why a fact could not be confirmed durable: the log failed (a write or fsync error, which
 * poisons it until it is reopened), it was closed first, or the wait timed out.
 */
export type DurabilityErrorCode = 'DurabilityFailed' | 'LogClosed' | 'DurabilityTimeout';

/** Escrow conditions. */
export type EscrowErrorCode =
  | 'InsufficientEscrow'
  | 'UnknownNode'
  | 'InvalidAmount'
  | 'InvalidNodes'
  | 'InvalidTransfer'
  | 'ReleaseExceedsUsage'
  | 'AlreadyInitialized'
  | 'NotInitialized'
  | 'DuplicateRequest'
  | 'UnknownRequest';

/** Base class of every ctfs error. */
export class CtfsError extends Error {
  readonly code: CtfsErrorCode;

  constructor(code: CtfsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false });
  }

  get [BRAND](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== CtfsError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/**
 * A fact was not admitted. `code` names the reason; for invariant rejections `invariantError`
 * names the invariant's own reason (`'Underflow'`, `'Overflow'`, …).
 */
export class AdmitError extends CtfsError {
  declare readonly code: AdmitCodeName;
  /** The numeric {@link AdmitCode} that the `tryAdmit…` variant returns. */
  readonly admitCode: number;
  readonly invariantError: InvariantCodeName | 'Custom' | undefined;

  constructor(admitCode: number, invariantCode = 0, detail?: string) {
    const code = lookupAdmitCodeName(admitCode);
    if (code === undefined) throw new InvalidArgumentError(`${String(admitCode)} is not a rejection code`);
    const invariantError = invariantCode === 0 ? undefined : invariantCodeName(invariantCode);
    const reason = invariantError === undefined ? code : `${code} (${invariantError})`;
    super(code, detail === undefined ? reason : `${reason}: ${detail}`);
    this.admitCode = admitCode;
    this.invariantError = invariantError;
  }
}

/** Bytes that are not a well-formed fact encoding (short, oversized, garbage, non-canonical). */
export class MalformedFactError extends CtfsError {
  declare readonly code: 'MalformedFact';
  constructor(message: string, options?: ErrorOptions) {
    super('MalformedFact', message, options);
  }
}

/** A fact's id is not the BLAKE3 content address of its deps and payload. */
export class FactIdMismatchError extends CtfsError {
  declare readonly code: 'FactIdMismatch';
  constructor(message: string) {
    super('FactIdMismatch', message);
  }
}

/** An argument has the wrong type, size or shape. */
export class InvalidArgumentError extends CtfsError {
  declare readonly code: 'InvalidArgument';
  constructor(message: string, options?: ErrorOptions) {
    super('InvalidArgument', message, options);
  }
}

/** A number does not fit the fixed-width field it is written to (i128, u64, …). */
export class ValueOutOfRangeError extends CtfsError {
  declare readonly code: 'ValueOutOfRange';
  constructor(message: string) {
    super('ValueOutOfRange', message);
  }
}

/** The exact causal index is full: tracking another fact would put it behind the horizon. */
export class CausalHorizonExceededError extends CtfsError {
  declare readonly code: 'CausalHorizonExceeded';
  constructor(message: string) {
    super('CausalHorizonExceeded', message);
  }
}

/** Tenant registration failed: the cap is reached, or the id is already registered. */
export class TenantError extends CtfsError {
  declare readonly code: 'TenantLimitExceeded' | 'TenantAlreadyRegistered';
  constructor(code: 'TenantLimitExceeded' | 'TenantAlreadyRegistered', message: string) {
    super(code, message);
  }
}

/** A tenant id that was never registered. */
export class UnknownTenantError extends CtfsError {
  declare readonly code: 'UnknownTenant';
  constructor(tenantId: unknown) {
    super('UnknownTenant', `tenant ${String(tenantId)} is not registered`);
  }
}

/**
 * An escrow operation was refused. For `InsufficientEscrow`, `requested` and `available` say by how
 * much.
 */
export class EscrowError extends CtfsError {
  declare readonly code: EscrowErrorCode;
  readonly requested: bigint | undefined;
  readonly available: bigint | undefined;

  constructor(code: EscrowErrorCode, message: string, amounts?: { requested: bigint; available: bigint }) {
    super(code, message);
    this.requested = amounts?.requested;
    this.available = amounts?.available;
  }
}

/** An invariant broke a promise of its algebraic class; `counterexample` shows how. */
export class AlgebraicPropertyError extends CtfsError {
  declare readonly code: 'AlgebraicPropertyViolated';
  readonly counterexample: unknown;
  constructor(message: string, counterexample: unknown) {
    super('AlgebraicPropertyViolated', message);
    this.counterexample = counterexample;
  }
}

/** A SharedArrayBuffer handed to `attach` does not hold the structure it claims to. */
export class SharedMemoryError extends CtfsError {
  declare readonly code: 'InvalidSharedMemory';
  constructor(message: string) {
    super('InvalidSharedMemory', message);
  }
}

/**
 * A fact's durability could not be confirmed. `sequence` is the WAL sequence number of the fact
 * concerned (0 if none); `ioCode` the system error code behind a failure (`EIO`, `ENOSPC`, …).
 * Facts whose sequence is at most the log's durable watermark stay durable: only the ones after
 * it are in doubt.
 */
export class DurabilityError extends CtfsError {
  declare readonly code: DurabilityErrorCode;
  readonly sequence: number;
  readonly ioCode: string | undefined;
  constructor(code: DurabilityErrorCode, message: string, details: { sequence?: number; ioCode?: string; cause?: unknown } = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause });
    this.sequence = details.sequence ?? 0;
    this.ioCode = details.ioCode;
  }
}

/** Where in a log a problem was found. */
export interface LogPosition {
  /** The segment file. */
  readonly file: string;
  /** Byte offset in it. */
  readonly offset: number;
  /** The sequence number expected there. */
  readonly sequence: number;
}

/**
 * A write-ahead log holds damage that is not a torn tail: a bad record followed by valid ones, a
 * gap in the sequence, a segment of another log, a record that cannot be replayed. Acknowledged
 * facts may be missing, so recovery stops instead of guessing; `position` says where.
 */
export class WalCorruptionError extends CtfsError {
  declare readonly code: 'WalCorrupted';
  readonly position: LogPosition;
  /** The message without the position. */
  readonly detail: string;
  constructor(message: string, position: LogPosition, options?: ErrorOptions) {
    super('WalCorrupted', `${message} (${position.file} at byte ${position.offset}, sequence ${position.sequence})`, options);
    this.position = position;
    this.detail = message;
  }
}

/**
 * Records the log's manifest says were fsynced (and so may have been acknowledged) cannot be read:
 * after a clean close, anything of the log; after a crash, anything up to the last segment start.
 * Recovery refuses rather than come back with less; `DurableKernel.open(…, { salvage: true })`
 * recovers what is readable instead. `file` and `offset` say where the readable records end,
 * `fromSequence`..`toSequence` which sequences are missing.
 */
export class DurableDataLostError extends CtfsError {
  declare readonly code: 'DurableDataLost';
  readonly file: string;
  readonly offset: number;
  readonly fromSequence: number;
  /** The last missing sequence; undefined when nothing records how far the log went. */
  readonly toSequence: number | undefined;
  /** The message without the position and range. */
  readonly detail: string;
  constructor(message: string, details: { file: string; offset: number; fromSequence: number; toSequence: number | undefined }, options?: ErrorOptions) {
    const range = details.toSequence === undefined ? `sequences from ${details.fromSequence} on (how many is unknown)` : `sequences ${details.fromSequence}..${details.toSequence}`;
    super('DurableDataLost', `${message}: ${range} were fsynced but cannot be read (${details.file} at byte ${details.offset}); open with { salvage: true } to recover what is readable`, options);
    this.file = details.file;
    this.offset = details.offset;
    this.fromSequence = details.fromSequence;
    this.toSequence = details.toSequence;
    this.detail = message;
  }
}

/**
 * The log's manifest (what recovery knows was made durable, the initial state, the invariant's
 * identity) is missing, damaged, or disagrees with the log's files. `file` names it.
 */
export class ManifestError extends CtfsError {
  declare readonly code: 'ManifestInvalid';
  readonly file: string;
  /** The message without the file. */
  readonly detail: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super('ManifestInvalid', `${file}: ${message}`, options);
    this.file = file;
    this.detail = message;
  }
}

/** A log was opened with another invariant (or another number of state cells) than it was created with. */
export class InvariantMismatchError extends CtfsError {
  declare readonly code: 'InvariantMismatch';
  constructor(message: string) {
    super('InvariantMismatch', message);
  }
}

/** A data directory written by a format this version does not read (`file` names the evidence). */
export class LogFormatError extends CtfsError {
  declare readonly code: 'UnsupportedLogFormat';
  readonly file: string;
  /** The message without the file. */
  readonly detail: string;
  constructor(file: string, message: string) {
    super('UnsupportedLogFormat', `${file}: ${message}`);
    this.file = file;
    this.detail = message;
  }
}

/**
 * The file system refused an operation on the data directory: no space (`ENOSPC`), read-only
 * (`EROFS`), permission denied (`EACCES`, `EPERM`), or another I/O error. `ioCode` is the system
 * code, `path` the file concerned, `cause` the system error.
 */
export class StorageError extends CtfsError {
  declare readonly code: 'StorageFailed';
  readonly ioCode: string;
  readonly path: string | undefined;
  constructor(message: string, details: { ioCode: string; path?: string | undefined }, options?: ErrorOptions) {
    super('StorageFailed', message, options);
    this.ioCode = details.ioCode;
    this.path = details.path;
  }
}

/**
 * `error` as a `StorageError` if it is a system error (it has an errno-style `code` and is not a
 * CtfsError), else unchanged: file operations of the data directory report through this.
 */
export function asStorageError(error: unknown, what: string): unknown {
  if (error instanceof CtfsError || error === null || typeof error !== 'object') return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !/^E[A-Z0-9]+$/.test(code)) return error;
  const file = (error as NodeJS.ErrnoException).path;
  return new StorageError(`${what}: ${code}${file === undefined ? '' : ` on ${file}`} (${(error as Error).message})`, { ioCode: code, path: file }, { cause: error });
}

/** A checkpoint file failed verification (hash, magic, version, sizes) or does not fit the kernel. */
export class CheckpointError extends CtfsError {
  declare readonly code: 'CheckpointCorrupted';
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super('CheckpointCorrupted', `${file}: ${message}`, options);
    this.file = file;
  }
}

/** Another live process holds the data directory. */
export class LogLockedError extends CtfsError {
  declare readonly code: 'LogLocked';
  constructor(message: string) {
    super('LogLocked', message);
  }
}

/** The io_uring backend was forced (`CTFS_IO=uring`) but the native shim is not built or io_uring is refused. */
export class NativeUnavailableError extends CtfsError {
  declare readonly code: 'NativeUnavailable';
  constructor(message: string, options?: ErrorOptions) {
    super('NativeUnavailable', message, options);
  }
}

/** A worker pool could not do what was asked; `code` says why (see {@link PoolErrorCode}). */
export class PoolError extends CtfsError {
  declare readonly code: PoolErrorCode;
  /** The shard concerned, if one is. */
  readonly shard: number | undefined;
  constructor(code: PoolErrorCode, message: string, shard?: number, options?: ErrorOptions) {
    super(code, message, options);
    this.shard = shard;
  }
}

/** The string name of a non-zero admission code, e.g. `'DuplicateFact'`; InvalidArgument otherwise. */
export function admitCodeName(code: number): AdmitCodeName {
  const name = lookupAdmitCodeName(code);
  if (name === undefined) throw new InvalidArgumentError(`${String(code)} is not a rejection code`);
  return name;
}
