/**
 * What the main thread and pool threads say to each other: the start-up data every pool thread
 * gets in `workerData`, the tasks, and their results. Everything here is structured-clone data;
 * the large parts are SharedArrayBuffer handles, never copies.
 */
import type { SharedBatch } from '../core/fact-batch.js';
import type { SharedKernelMemory } from '../kernels/kernel-base.js';
import type { PoolErrorCode } from '../errors.js';
import type { PortableInvariantSpec } from './invariant-spec.js';
import type { CheckpointJob } from '../kernels/durable-kernel.js';

/** Marks a `workerData` as a ctfs pool's, and its layout version. */
export const POOL_PROTOCOL = 'ctfs-pool/1';
/** Key of the message a pool thread posts once its shards and invariant are set up. */
export const POOL_READY = 'ctfsPoolReady';

export interface PoolWorkerData {
  readonly protocol: typeof POOL_PROTOCOL;
  readonly shards: readonly SharedKernelMemory[];
  readonly locks: SharedArrayBuffer;
  readonly invariant: PortableInvariantSpec;
  /** For each shard, the shards it shares causality with (empty: none). */
  readonly peers: readonly (readonly number[])[];
}

export type PoolTask =
  | { readonly op: 'admit'; readonly shard: number; readonly batches: readonly SharedBatch[] }
  | { readonly op: 'digest'; readonly shard: number }
  | { readonly op: 'verifyLog'; readonly dir: string }
  | { readonly op: 'compactLog'; readonly dir: string; readonly keep: number }
  | ({ readonly op: 'writeCheckpoint' } & CheckpointJob);

/**
 * A task's outcome. Failures travel as data (a code and a message), because an Error crossing a
 * thread keeps only its message; the main thread rebuilds the typed error.
 */
export type PoolResult<T> =
  | { readonly ok: true; readonly value: T }
  | {
      readonly ok: false;
      readonly code:
        | PoolErrorCode
        | 'WalCorrupted'
        | 'CheckpointCorrupted'
        | 'InvalidArgument'
        | 'InvalidSharedMemory'
        | 'DurableDataLost'
        | 'ManifestInvalid'
        | 'UnsupportedLogFormat'
        | 'StorageFailed'
        | 'Error';
      readonly message: string;
      readonly position?: { readonly file: string; readonly offset: number; readonly sequence: number };
      /** The fields of a log or storage error, to rebuild it on the pool's side. */
      readonly details?: { readonly file?: string; readonly offset?: number; readonly fromSequence?: number; readonly toSequence?: number | undefined; readonly ioCode?: string; readonly path?: string | undefined };
    };
