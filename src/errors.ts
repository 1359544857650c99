/**
 * Every error ctfs throws. Each class has a stable string `code` (safe to switch on and to log).
 * Every class is branded with a `Symbol.for` key (`ctfs.error` for the base, `ctfs.error.<Name>`
 * for each subclass), and `instanceof` checks that brand: `x instanceof DurabilityError` holds
 * across duplicate package copies and realms, and so does every other class. How errors cross
 * threads is in `error-wire.ts`.
 */
import {
  invariantCodeName,
  lookupAdmitCodeName,
  type AdmitCodeName,
  type InvariantCodeName,
} from './codes.js';
import { describeValue } from './describe-value.js';

/** Static own property of each ctfs class: the brand symbol its instances carry. Local on purpose:
 * `instanceof` asks the class of the checking copy, which reads its own property. */
const CLASS_BRAND = Symbol('ctfs.error.classBrand');
/**
 * Prototype property of each ctfs class: its name as the wire form knows it. `Symbol.for`, so a
 * copy of the package reads the name off another copy's error (the most derived ctfs class wins
 * through the prototype chain; a user's subclass encodes as its nearest ctfs ancestor).
 */
export const WIRE_NAME: unique symbol = Symbol.for('ctfs.error.wireName') as never;

/**
 * Brands `cls`: its prototype carries `Symbol.for('ctfs.error.<name>')` (the base keeps the plain
 * `ctfs.error` it always had, so older copies still recognise it). `name` is spelled out rather
 * than read from `cls.name`, which a minifier may rename.
 */
function brand(cls: abstract new (...args: never[]) => unknown, name: string, symbol = Symbol.for(`ctfs.error.${name}`)): void {
  Object.defineProperty(cls, CLASS_BRAND, { value: symbol });
  Object.defineProperty(cls.prototype, symbol, { value: true });
  Object.defineProperty(cls.prototype, WIRE_NAME, { value: name });
}

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
  | 'ForeignError'
  | PoolErrorCode
  | ReplicationErrorCode;

/**
 * Replication conditions: the replication worker could not start (the listen address is taken,
 * the data directory unreadable, …), or the `NetworkingKernel` was used after `close()`.
 */
export type ReplicationErrorCode = 'ReplicationStartFailed' | 'ReplicationClosed';

/**
 * Worker pool conditions: the pool is closed; a shard was poisoned (a pool thread died or was
 * stopped while it held the shard, so its state may be half-written); `admitBatchSync` gave up
 * waiting for a busy shard; a pool task failed for another reason; durable shards were asked for
 * (not supported yet); a task ran past `taskTimeoutMs`, or the threads did not start within
 * `startTimeoutMs` ({@link PoolTimeoutError}).
 */
export type PoolErrorCode =
  | 'PoolClosed'
  | 'ShardPoisoned'
  | 'ShardLockTimeout'
  | 'PoolTaskFailed'
  | 'DurableShardsUnsupported'
  | PoolTimeoutCode;

/** A pool task ran too long, or the pool's threads did not start in time. */
export type PoolTimeoutCode = 'PoolTaskTimeout' | 'PoolStartTimeout';

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
  | 'UnknownRequest'
  /** A node's own rights fall short and no peer granted more in time. */
  | 'EscrowExhausted'
  /** The escrow genesis in a data directory is not the one this configuration derives. */
  | 'GenesisMismatch'
  /** The WAL no longer holds every escrow fact (compacted), so the ledger cannot be rebuilt. */
  | 'HistoryUnavailable'
  /** A fact in the WAL does not replay into the escrow ledger. */
  | 'EscrowHistoryInvalid';

/** A string as it is; anything else described, so building a message never throws. */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : describeValue(value);
}

/** Base class of every ctfs error. */
export class CtfsError extends Error {
  readonly code: CtfsErrorCode;

  /** `message` is used as given if it is a string, else described (an error never fails to build). */
  constructor(code: CtfsErrorCode, message: string, options?: ErrorOptions) {
    super(asText(message), options);
    this.code = code;
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false });
  }

  static {
    brand(this, 'CtfsError', Symbol.for('ctfs.error'));
  }

  /**
   * A ctfs class matches any value carrying its brand, whichever copy of the package made it; a
   * class that is not branded (a user's subclass) falls back to the prototype chain.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const symbol = Object.hasOwn(this, CLASS_BRAND) ? (this as unknown as Record<symbol, symbol>)[CLASS_BRAND] : undefined;
    if (symbol === undefined) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[symbol] === true;
  }
}

/**
 * A fact was not admitted. `code` names the reason; for invariant rejections `invariantError`
 * names the invariant's own reason (`'Underflow'`, `'Overflow'`, …).
 */
export class AdmitError extends CtfsError {
  static {
    brand(this, 'AdmitError');
  }
  declare readonly code: AdmitCodeName;
  /** The numeric {@link AdmitCode} that the `tryAdmit…` variant returns. */
  readonly admitCode: number;
  readonly invariantError: InvariantCodeName | 'Custom' | undefined;

  constructor(admitCode: number, invariantCode = 0, detail?: string) {
    const code = lookupAdmitCodeName(admitCode);
    if (code === undefined) throw new InvalidArgumentError(`${describeValue(admitCode)} is not a rejection code`);
    const invariantError = invariantCode === 0 ? undefined : invariantCodeName(invariantCode);
    const reason = invariantError === undefined ? code : `${code} (${invariantError})`;
    super(code, detail === undefined ? reason : `${reason}: ${asText(detail)}`);
    this.admitCode = admitCode;
    this.invariantError = invariantError;
  }
}

/** Bytes that are not a well-formed fact encoding (short, oversized, garbage, non-canonical). */
export class MalformedFactError extends CtfsError {
  static {
    brand(this, 'MalformedFactError');
  }
  declare readonly code: 'MalformedFact';
  constructor(message: string, options?: ErrorOptions) {
    super('MalformedFact', message, options);
  }
}

/** A fact's id is not the BLAKE3 content address of its deps and payload. */
export class FactIdMismatchError extends CtfsError {
  static {
    brand(this, 'FactIdMismatchError');
  }
  declare readonly code: 'FactIdMismatch';
  constructor(message: string) {
    super('FactIdMismatch', message);
  }
}

/** An argument has the wrong type, size or shape. */
export class InvalidArgumentError extends CtfsError {
  static {
    brand(this, 'InvalidArgumentError');
  }
  declare readonly code: 'InvalidArgument';
  constructor(message: string, options?: ErrorOptions) {
    super('InvalidArgument', message, options);
  }
}

/** A number does not fit the fixed-width field it is written to (i128, u64, …). */
export class ValueOutOfRangeError extends CtfsError {
  static {
    brand(this, 'ValueOutOfRangeError');
  }
  declare readonly code: 'ValueOutOfRange';
  constructor(message: string) {
    super('ValueOutOfRange', message);
  }
}

/** The exact causal index is full: tracking another fact would put it behind the horizon. */
export class CausalHorizonExceededError extends CtfsError {
  static {
    brand(this, 'CausalHorizonExceededError');
  }
  declare readonly code: 'CausalHorizonExceeded';
  constructor(message: string) {
    super('CausalHorizonExceeded', message);
  }
}

/** Tenant registration failed: the cap is reached, or the id is already registered. */
export class TenantError extends CtfsError {
  static {
    brand(this, 'TenantError');
  }
  declare readonly code: 'TenantLimitExceeded' | 'TenantAlreadyRegistered';
  constructor(code: 'TenantLimitExceeded' | 'TenantAlreadyRegistered', message: string) {
    super(code, message);
  }
}

/** A tenant id that was never registered. */
export class UnknownTenantError extends CtfsError {
  static {
    brand(this, 'UnknownTenantError');
  }
  declare readonly code: 'UnknownTenant';
  constructor(tenantId: unknown) {
    super('UnknownTenant', `tenant ${describeValue(tenantId)} is not registered`);
  }
}

/**
 * An escrow operation was refused. For `InsufficientEscrow`, `requested` and `available` say by how
 * much.
 */
export class EscrowError extends CtfsError {
  static {
    brand(this, 'EscrowError');
  }
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
  static {
    brand(this, 'AlgebraicPropertyError');
  }
  declare readonly code: 'AlgebraicPropertyViolated';
  readonly counterexample: unknown;
  constructor(message: string, counterexample: unknown) {
    super('AlgebraicPropertyViolated', message);
    this.counterexample = counterexample;
  }
}

/** A SharedArrayBuffer handed to `attach` does not hold the structure it claims to. */
export class SharedMemoryError extends CtfsError {
  static {
    brand(this, 'SharedMemoryError');
  }
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
  static {
    brand(this, 'DurabilityError');
  }
  declare readonly code: DurabilityErrorCode;
  readonly sequence: number;
  readonly ioCode: string | undefined;
  constructor(code: DurabilityErrorCode, message: string, details: { sequence?: number; ioCode?: string; cause?: unknown } = {}) {
    const { sequence, ioCode, cause } = details ?? {};
    super(code, message, cause === undefined ? undefined : { cause });
    this.sequence = sequence ?? 0;
    this.ioCode = ioCode;
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
  static {
    brand(this, 'WalCorruptionError');
  }
  declare readonly code: 'WalCorrupted';
  readonly position: LogPosition;
  /** The message without the position. */
  readonly detail: string;
  constructor(message: string, position: LogPosition, options?: ErrorOptions) {
    const where = position !== null && typeof position === 'object' ? `${asText(position.file)} at byte ${describeValue(position.offset)}, sequence ${describeValue(position.sequence)}` : describeValue(position);
    super('WalCorrupted', `${asText(message)} (${where})`, options);
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
  static {
    brand(this, 'DurableDataLostError');
  }
  declare readonly code: 'DurableDataLost';
  readonly file: string;
  readonly offset: number;
  readonly fromSequence: number;
  /** The last missing sequence; undefined when nothing records how far the log went. */
  readonly toSequence: number | undefined;
  /** The message without the position and range. */
  readonly detail: string;
  constructor(message: string, details: { file: string; offset: number; fromSequence: number; toSequence: number | undefined }, options?: ErrorOptions) {
    const d = (typeof details === 'object' && details !== null ? details : {}) as Partial<typeof details>;
    const range =
      d.toSequence === undefined ? `sequences from ${describeValue(d.fromSequence)} on (how many is unknown)` : `sequences ${describeValue(d.fromSequence)}..${describeValue(d.toSequence)}`;
    super(
      'DurableDataLost',
      `${asText(message)}: ${range} were fsynced but cannot be read (${asText(d.file)} at byte ${describeValue(d.offset)}); open with { salvage: true } to recover what is readable`,
      options,
    );
    this.file = d.file as string;
    this.offset = d.offset as number;
    this.fromSequence = d.fromSequence as number;
    this.toSequence = d.toSequence;
    this.detail = message;
  }
}

/**
 * The log's manifest (what recovery knows was made durable, the initial state, the invariant's
 * identity) is missing, damaged, or disagrees with the log's files. `file` names it.
 */
export class ManifestError extends CtfsError {
  static {
    brand(this, 'ManifestError');
  }
  declare readonly code: 'ManifestInvalid';
  readonly file: string;
  /** The message without the file. */
  readonly detail: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super('ManifestInvalid', `${asText(file)}: ${asText(message)}`, options);
    this.file = file;
    this.detail = message;
  }
}

/** A log was opened with another invariant (or another number of state cells) than it was created with. */
export class InvariantMismatchError extends CtfsError {
  static {
    brand(this, 'InvariantMismatchError');
  }
  declare readonly code: 'InvariantMismatch';
  constructor(message: string) {
    super('InvariantMismatch', asText(message));
  }
}

/** A data directory written by a format this version does not read (`file` names the evidence). */
export class LogFormatError extends CtfsError {
  static {
    brand(this, 'LogFormatError');
  }
  declare readonly code: 'UnsupportedLogFormat';
  readonly file: string;
  /** The message without the file. */
  readonly detail: string;
  constructor(file: string, message: string) {
    super('UnsupportedLogFormat', `${asText(file)}: ${asText(message)}`);
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
  static {
    brand(this, 'StorageError');
  }
  declare readonly code: 'StorageFailed';
  readonly ioCode: string;
  readonly path: string | undefined;
  constructor(message: string, details: { ioCode: string; path?: string | undefined }, options?: ErrorOptions) {
    super('StorageFailed', message, options);
    const d = (typeof details === 'object' && details !== null ? details : {}) as Partial<typeof details>;
    this.ioCode = typeof d.ioCode === 'string' ? d.ioCode : 'EIO';
    this.path = typeof d.path === 'string' ? d.path : undefined;
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
  static {
    brand(this, 'CheckpointError');
  }
  declare readonly code: 'CheckpointCorrupted';
  readonly file: string;
  constructor(file: string, message: string, options?: ErrorOptions) {
    super('CheckpointCorrupted', `${asText(file)}: ${asText(message)}`, options);
    this.file = file;
  }
}

/** Another live process holds the data directory. */
export class LogLockedError extends CtfsError {
  static {
    brand(this, 'LogLockedError');
  }
  declare readonly code: 'LogLocked';
  constructor(message: string) {
    super('LogLocked', message);
  }
}

/** The io_uring backend was forced (`CTFS_IO=uring`) but the native shim is not built or io_uring is refused. */
export class NativeUnavailableError extends CtfsError {
  static {
    brand(this, 'NativeUnavailableError');
  }
  declare readonly code: 'NativeUnavailable';
  constructor(message: string, options?: ErrorOptions) {
    super('NativeUnavailable', message, options);
  }
}

/** A worker pool could not do what was asked; `code` says why (see {@link PoolErrorCode}). */
export class PoolError extends CtfsError {
  static {
    brand(this, 'PoolError');
  }
  declare readonly code: PoolErrorCode;
  /** The shard concerned, if one is. */
  readonly shard: number | undefined;
  constructor(code: PoolErrorCode, message: string, shard?: number, options?: ErrorOptions) {
    super(code, message, options);
    this.shard = shard;
  }
}

/** A replication condition ({@link ReplicationErrorCode}); the system's error, if any, is the `cause`. */
export class ReplicationError extends CtfsError {
  static {
    brand(this, 'ReplicationError');
  }
  declare readonly code: ReplicationErrorCode;
  constructor(code: ReplicationErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * A pool task ran past `taskTimeoutMs` (`PoolTaskTimeout`: its thread was stopped and replaced, and
 * an admission's shard poisoned, since the thread may have stopped mid-batch), or the pool's
 * threads did not all start within `startTimeoutMs` (`PoolStartTimeout`).
 */
export class PoolTimeoutError extends PoolError {
  static {
    brand(this, 'PoolTimeoutError');
  }
  declare readonly code: PoolTimeoutCode;
  /** The limit that was exceeded, in milliseconds. */
  readonly timeoutMs: number;
  constructor(code: PoolTimeoutCode, message: string, timeoutMs: number, shard?: number, options?: ErrorOptions) {
    super(code, message, shard, options);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Something that is not a ctfs error (a `TypeError`, a system error, a thrown string), as it
 * arrives from another thread: `fromWire` gives this, keeping the original's `message`, its name
 * (`originalName`: `'TypeError'`, or `typeof` for a thrown non-object) and its `code` property if
 * it had a string or numeric one (`originalCode`: `'ENOENT'`, …). A wire form that cannot be read
 * at all arrives as one too, with `originalName` `'MalformedWire'`.
 */
export class ForeignError extends CtfsError {
  static {
    brand(this, 'ForeignError');
  }
  declare readonly code: 'ForeignError';
  readonly originalName: string;
  readonly originalCode: string | undefined;
  constructor(message: string, original: { name: string; code?: string | undefined }, options?: ErrorOptions) {
    super('ForeignError', message, options);
    // Whatever was thrown elsewhere is described, never trusted: a name and code only if strings.
    const o = (typeof original === 'object' && original !== null ? original : {}) as { name?: unknown; code?: unknown };
    this.originalName = typeof o.name === 'string' ? o.name : 'Error';
    this.originalCode = typeof o.code === 'string' ? o.code : undefined;
  }
}

/** The string name of a non-zero admission code, e.g. `'DuplicateFact'`; InvalidArgument otherwise. */
export function admitCodeName(code: number): AdmitCodeName {
  const name = lookupAdmitCodeName(code);
  if (name === undefined) throw new InvalidArgumentError(`${describeValue(code)} is not a rejection code`);
  return name;
}
