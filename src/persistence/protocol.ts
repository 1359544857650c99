/**
 * What crosses between a durable kernel's thread and its persistence worker: the worker's start
 * data (shared buffers and settings) and the messages it posts back. Everything per record goes
 * through the shared buffers, never through messages.
 */
import type { WireError } from '../error-wire.js';
import type { BackendChoice } from './io-backend.js';
import type { Manifest } from './manifest.js';

/**
 * Test hooks: make the n-th batch's write or sync fail (1-based) with `ioCode` (default `EIO`),
 * or slow every sync down.
 */
export interface FaultPlan {
  readonly failWriteAt?: number;
  readonly failSyncAt?: number;
  readonly ioCode?: string;
  readonly syncDelayMs?: number;
}

export interface PersistenceWorkerData {
  readonly ring: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  /** A LatencyHistogram: the worker records each batch's write + sync time (ns) into its own lane. */
  readonly latency: SharedArrayBuffer;
  readonly dir: string;
  /** The segment to append to (created, header written and synced by the kernel). */
  readonly segmentFile: string;
  readonly logId: Uint8Array;
  /** Start a new segment once the current one reaches this many bytes. */
  readonly segmentBytes: number;
  readonly backend: BackendChoice;
  readonly faults?: FaultPlan;
  /** A BatchTrace's buffer: stamp every batch's stages into it (the `traceBatches` option). */
  readonly trace?: SharedArrayBuffer;
  /** The manifest the kernel wrote at open (naming `segmentFile`); the worker writes its successors. */
  readonly manifest: Manifest;
}

export type WorkerMessage =
  | { type: 'ready'; backend: 'io_uring' | 'portable'; note: string }
  | { type: 'failed'; error: WireError }
  | { type: 'closed' };
