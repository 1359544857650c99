/**
 * ctfs: a coordination-free state kernel. Public API.
 */
import './core/platform.js';

export { AdmitCode, InvariantCode, invariantCodeName } from './codes.js';
export type { AdmitCodeName, InvariantCodeName } from './codes.js';
export {
  AdmitError,
  admitCodeName,
  CausalHorizonExceededError,
  AlgebraicPropertyError,
  CheckpointError,
  CtfsError,
  DurabilityError,
  DurableDataLostError,
  EscrowError,
  FactIdMismatchError,
  ForeignError,
  InvalidArgumentError,
  InvariantMismatchError,
  LogFormatError,
  LogLockedError,
  ManifestError,
  MalformedFactError,
  NativeUnavailableError,
  PoolError,
  PoolTimeoutError,
  ReplicationError,
  SharedMemoryError,
  StorageError,
  TenantError,
  UnknownTenantError,
  ValueOutOfRangeError,
  WalCorruptionError,
} from './errors.js';
export type { CtfsErrorCode, ReplicationErrorCode, PoolErrorCode, PoolTimeoutCode, DurabilityErrorCode, EscrowErrorCode, LogPosition } from './errors.js';
export { ERROR_WIRE_VERSION, MAX_CAUSE_DEPTH, decodeWire, encodeWire, fromWire, isWireError, toWire } from './error-wire.js';
export type { WireError } from './error-wire.js';

export {
  I128_MAX,
  I128_MIN,
  U64_MAX,
  bytesEqual,
  compareBytes,
  fromHex,
  i128le,
  readI128le,
  readU64le,
  toHex,
  u64le,
  writeI128le,
  writeU64le,
} from './core/bytes.js';
export { addI128, compareI128, loadLimbs } from './core/int128.js';
export {
  FACT_ENCODING_VERSION,
  FACT_HEADER_BYTES,
  FACT_ID_BYTES,
  MAX_DEPS,
  MAX_PAYLOAD_BYTES,
  canonicalDeps,
  createFact,
  decodeFact,
  encodeFact,
  encodedFactLength,
  factId,
  isFactId,
  verifyFactId,
} from './core/fact.js';
export type { DecodeFactOptions, Fact, FactId } from './core/fact.js';
export { STATE_CELL_BYTES, StateCell } from './core/state-cell.js';
export { DEFAULT_BATCH_FACTS, FactBatch, MAX_BATCH_FACTS } from './core/fact-batch.js';
export type { BatchResult } from './core/fact-batch.js';

export { NetworkingKernel } from './network/networking-kernel.js';
export type { NetworkingOptions, PeerState, PeerStatus, ReplicationCounters } from './network/networking-kernel.js';
export type { NetworkEscrow, EscrowOptions, EscrowStats } from './network/network-escrow.js';
export { CLOCK_BITS, CLOCK_BYTES, ESCALATION_POPCOUNT, ESCALATION_THRESHOLD, CausalClock } from './causal/causal-clock.js';
export { bloomPositions } from './causal/id-hash.js';
export { DEFAULT_INDEX_CAPACITY, MAX_INDEX_CAPACITY, ExactCausalIndex } from './causal/exact-index.js';
export type { ExactIndexOptions, ReadonlyExactIndex } from './causal/exact-index.js';
export { DEFAULT_PRECISE_CAPACITY, PreciseClock } from './causal/precise-clock.js';

export { AlgebraicClass, isCoordinationFree } from './invariants/invariant.js';
export type { Invariant } from './invariants/invariant.js';
export { ConservationState, TOTAL_SUPPLY_PAYLOAD_BYTES, TotalSupplyInvariant } from './invariants/total-supply.js';
export { MaxInvariant, MaxState } from './invariants/max.js';
export { GCounterInvariant, GCounterState } from './invariants/gcounter.js';
export { BoundedCounterState, BoundedGCounterInvariant } from './invariants/bounded-gcounter.js';
export { LWW_PAYLOAD_BYTES, LWWInvariant, LWWState } from './invariants/lww.js';
export { UNIQUENESS_ELEMENTS, UniquenessInvariant, UniquenessState } from './invariants/uniqueness.js';
export { GGraphInvariant, GraphState, MAX_VERTICES } from './invariants/ggraph.js';
export type { GGraphOptions, GraphOptions } from './invariants/ggraph.js';

export { FRONTIER_WIDTH } from './domain/causal-domain.js';
export type { KernelOptions, SharedKernelMemory, WithInvariant } from './kernels/kernel-base.js';
export { Kernel, TwoLaneKernel } from './kernels/kernel.js';
export { CausalMode, EscalatingKernel } from './kernels/escalating-kernel.js';
export {
  DEFAULT_MAX_TENANTS,
  DEFAULT_TENANT_HOT_CAPACITY,
  MAX_TENANT_ID,
  TenantKernel,
} from './kernels/tenant-kernel.js';
export type { TenantKernelOptions } from './kernels/tenant-kernel.js';
export type { Snapshot, View } from './kernels/view.js';
export { DualKernel, MAX_INVARIANTS, MultiKernel } from './kernels/multi-kernel.js';

export { EscrowManager, MAX_ESCROW_LIMIT } from './algebra/escrow.js';
export type { EscrowAllocation, NodeId } from './algebra/escrow.js';
export { INITIAL_BACKOFF_MS, MAX_BACKOFF_MS, PendingQuotaRequests, QuotaRequest } from './algebra/quota-requests.js';
export type { GrantOutcome, QuotaRequestPolicy } from './algebra/quota-requests.js';
export { EscrowKind, Resource } from './algebra/escrow-facts.js';
export type { EscrowAdapter, EscrowFact } from './algebra/escrow-facts.js';
export { EscrowCode, EscrowLedger } from './algebra/escrow-ledger.js';
export type { HolderView, UnackedGrant } from './algebra/escrow-ledger.js';
export type { EscrowCounters, EscrowPolicy } from './algebra/escrow-agent.js';
export {
  CoordinationScope,
  composeAll,
  composeClasses,
  convergesWithoutCoordination,
  coordinationScope,
  isIdempotent,
} from './algebra/classes.js';
export { LexPairLattice, MaxLattice, PNCounter, gSetLattice } from './algebra/lattice.js';
export type { JoinSemilattice, LexPair } from './algebra/lattice.js';

export {
  AckMode,
  DEFAULT_ACK_TIMEOUT_MS,
  DEFAULT_ARENA_BYTES,
  DEFAULT_SEGMENT_BYTES,
  DurableHandle,
  DurableKernel,
  TwoLaneDurableKernel,
} from './kernels/durable-kernel.js';
export type { CheckpointInfo, CheckpointOffload, DurabilityStatus, DurableKernelOptions } from './kernels/durable-kernel.js';
export { MAX_TRACE_BATCHES } from './persistence/batch-trace.js';
export type { BatchStamp, BatchTrace } from './persistence/batch-trace.js';
export type { RecoveryReport, CompactionResult } from './persistence/recovery.js';
export type { TornTail } from './persistence/wal-scan.js';
export { SpscRing, MIN_RING_CAPACITY, MAX_RING_CAPACITY } from './core/spsc-ring.js';
export type { SpscRingOptions } from './core/spsc-ring.js';
export { crc32c } from './persistence/crc32c.js';
export { verifyLog } from './persistence/verify.js';
export type { CheckpointVerification, LogVerification } from './persistence/verify.js';
export { HISTORY_DIGEST_BYTES } from './domain/history-digest.js';

// The worker pool and the Prometheus export, also importable alone as `ctfs/pool` and
// `ctfs/metrics`. Their heavy dependencies (piscina, prom-client) load on first use, so these
// re-exports cost an importer nothing until a pool or a registry is created.
export * from './pool.js';

export {
  DEFAULT_LANES,
  HISTOGRAM_BUCKETS,
  LatencyHistogram,
  bucketOf,
  bucketUpperBound,
  nowNs,
} from './metrics/latency-histogram.js';
export type { HistogramSnapshot, Percentiles } from './metrics/latency-histogram.js';
export * from './metrics.js';
