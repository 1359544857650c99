/**
 * The one way tests and their helpers reach the library. No other file under test/ names a path
 * inside src/ or dist/ (test/one-library.test.ts checks it), so a reorganisation of src/ is
 * followed here and nowhere else.
 *
 * Which copy: the TypeScript source. A test process must hold ONE copy of the library, or its
 * classes (FactBatch, the kernels, the error classes seen through `instanceof`) come in two
 * versions that do not recognise each other.
 *  - `unit` project (vitest.config.ts): these imports load src/ as written; no build needed.
 *  - `threads` project: vitest.config.ts resolves the src/ imports of this module to the same
 *    files compiled in dist/ (built by its global setup). DurableKernel and KernelPool start their
 *    workers from the `.js` files next to their own module, which exist only in dist/, and worker
 *    threads and child processes (test/fixtures/*.mjs) load dist/ themselves. So in that project
 *    the test process runs dist/ too, and what crosses to a worker or child is SharedArrayBuffers
 *    and structured clones, never objects of another copy. (A fixture a test imports in-process,
 *    such as pool.test.ts's invariant module, also loads dist/: the same module as this one.)
 * Either way the names below are the same; the types are those of src/.
 */
export * from '../../src/index.js';
export * from '../../src/properties.js';
/** The public API alone (the root entry), for tests that enumerate what users can import. */
export * as PUBLIC_API from '../../src/index.js';

// ---------------------------------------------------------------------------------------------
// Internals: not part of the public API, imported by tests that check a layout or a hostile input
// the public API cannot produce.

/** Escrow's sans-IO agent and fact codec, driven by the escrow simulator and world harnesses. */
export { EscrowAgent, type EscrowHint } from '../../src/algebra/escrow-agent.js';
export { decodeEscrowFact, escrowAdapterFor } from '../../src/algebra/escrow-facts.js';

/** The word-at-a-time CRC-32C the persistence worker uses, checked against the byte-wise one. */
export { crc32cWords } from '../../src/persistence/crc32c.js';
/** A state cell's word layout, for invariants written against raw words. */
export { STATE_WORDS, type StateView } from '../../src/core/state-cell.js';
/** The Bloom position derivation constants, for checking that all 32 id bytes count. */
export { BLOOM_MULTIPLIERS, BLOOM_OFFSET } from '../../src/causal/id-hash.js';
/** Admission straight from a FactBatch's shared buffers, fed damaged buffers on purpose. */
export { admitShared } from '../../src/core/fact-batch.js';
/** The on-disk layout the crash harness's independent WAL and checkpoint scanner also encodes. */
export {
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  encodeSegmentHeader,
  parseSegmentFileName,
  segmentFileName,
} from '../../src/persistence/segment.js';
export {
  RECORD_ID_OFFSET,
  WAL_HEADER_BYTES,
  WAL_RECORD_MAGIC,
  recordDepCount,
  recordPayloadLength,
  recordSequence,
  sealWalRecord,
  walRecordBytes,
  writeWalRecord,
} from '../../src/persistence/wal-record.js';
export {
  CHECKPOINT_HEADER_BYTES,
  checkpointFileName,
  encodeCheckpoint,
  parseCheckpointFileName,
} from '../../src/persistence/checkpoint.js';
export { FRONTIER_WIDTH, type DomainImage } from '../../src/domain/causal-domain.js';
/** The shared-memory layout of a causal domain and the record-log seam, checked against damage. */
export { CausalDomain } from '../../src/domain/causal-domain.js';
export { SNAP_META, W_HEAD_COUNT, W_HEAD_START, W_MODE, W_SNAP } from '../../src/domain/control-block.js';
export { teeRecordLogs, type RecordLog } from '../../src/domain/record-log.js';
export { DurabilityControl } from '../../src/persistence/durability-control.js';
/** The error-message describer every error uses. */
export { MAX_DESCRIPTION_CHARS, describeValue } from '../../src/describe-value.js';
/** The storage fault seam of the data directory (EROFS/EACCES cannot be produced for real as root). */
export { storageFaults } from '../../src/persistence/data-dir.js';
/** The cold tier of the exact history, not yet wired into the index: the id filter and sorted runs. */
export { ID_FILTER_HEADER_BYTES, IdFilter, IdFilterHash, MAX_FILTER_IDS, idFilterByteLength } from '../../src/causal/id-filter.js';
export { RUN_FENCE_IDS, RUN_HEADER_BYTES, SortedRun, sortedRunByteLength, verifySortedRun } from '../../src/causal/sorted-run.js';
/** The tiered exact history (hot table, frozen tables, runs, their arenas), not yet wired into the domain. */
export {
  DEFAULT_HOT_CAPACITY,
  DEFAULT_MERGE_FACTOR,
  TieredExactIndex,
  buildRun,
  mergeRuns,
  type CompactionJob,
  type SharedTieredMemory,
  type TieredIndexOptions,
  type TieredMemory,
} from '../../src/causal/tiered-index.js';
export { ARENA_PAGE, HistoryArenas, arenaStateWords, createArenas } from '../../src/causal/history-arenas.js';
/** The replication protocol core, not yet public: frames, the set sketch, the state machine. */
export * from '../../src/replication/frames.js';
export * from '../../src/replication/rateless-sketch.js';
export * from '../../src/replication/replica-core.js';
export * from '../../src/replication/failure-detector.js';
export * from '../../src/replication/broadcast-tree.js';
/** The replication layer's reanchor of an in-memory kernel (internal). */
export { RECORD_LOG, RESTORE_IMAGE } from '../../src/kernels/internal.js';
/** The replication worker's parts that run without a thread: rings' records, the fact store, framing. */
export { FactStore } from '../../src/network/fact-store.js';
export { FrameSplitter } from '../../src/network/frame-splitter.js';
export { ByteSlab } from '../../src/network/byte-slab.js';
export { OutboundLog } from '../../src/network/outbound-log.js';
export { RecordKind, copyFact, readHeader, type RecordHeader } from '../../src/network/ring-records.js';
export { deriveClusterId, derivePsk, deriveSketchKey } from '../../src/network/link-security.js';
export { setDigest } from '../../src/domain/history-digest.js';
export { Fifo } from '../../src/core/fifo.js';
