/**
 * Prometheus export through prom-client: one `Registry` whose collectors read the shared-memory
 * histograms and the kernels' counters at scrape time, so what any thread recorded (the
 * persistence worker included) appears in one place, with no per-thread registry.
 */
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import { InvalidArgumentError, admitCodeName } from '../errors.js';
import { optionsObject } from '../core/options.js';
import { describeValue } from '../describe-value.js';
import { HISTOGRAM_BUCKETS, LatencyHistogram, OUTCOME_SLOTS, bucketUpperBound } from './latency-histogram.js';

/**
 * prom-client, loaded on the first registry: it takes ~70 ms to load here, so importing `ctfs`
 * does not pay for it unless metrics are exported. (It is CommonJS, so `require` loads it
 * synchronously, as `createMetricsRegistry` must.)
 */
let promClient: typeof import('prom-client') | undefined;
function loadPromClient(): typeof import('prom-client') {
  promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
  return promClient;
}

/** What the collectors read from a kernel (any kernel has the first three; durable kernels the rest). */
export interface MetricsKernel {
  readonly size: number;
  readonly indexCapacity: number;
  readonly saturation: number;
  readonly lastSequence?: number;
  readonly durableSequence?: number;
  readonly backend?: string;
  readonly logStats?: { readonly bytes: number; readonly fsyncs: number; readonly records: number; readonly batches: number };
  readonly persistenceLatency?: LatencyHistogram;
  /** The exact history's tiers (kernels over a tiered history): ids and bytes per tier. */
  historyMemory?(): HistoryTiers;
}

/** What `ctfs_exact_index_ids` and `ctfs_exact_index_bytes` read: a tiered history's figures (TieredMemory's shape). */
export interface HistoryTiers {
  readonly hot: { readonly bytes: number; readonly ids: number };
  readonly spare: { readonly bytes: number };
  readonly frozen: { readonly bytes: number; readonly ids: number; readonly tables: number };
  readonly runs: { readonly bytes: number; readonly ids: number; readonly count: number };
}

/** Counters of one node's replication (`NetworkingKernel.stats()`), read from shared memory. */
export interface MetricsReplicationCounters {
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly framesIn: number;
  readonly framesOut: number;
  /** Facts from peers the kernel admitted here, and refused (not counting duplicates). */
  readonly factsAdmitted: number;
  readonly factsRefused: number;
  /** Facts in Facts and TreeFacts frames sent (pushes, answers, log streams). */
  readonly factsSent: number;
  /** Facts received and waiting for their deps. */
  readonly pending: number;
  /** Anti-entropy rounds that decoded, and the differences they found. */
  readonly rounds: number;
  readonly differences: number;
  /** Fact frames not sent to a peer whose link had `maxLinkBufferBytes` unsent. */
  readonly slowPeerDrops: number;
  /** Local facts held until the WAL has fsynced them. */
  readonly awaitingDurable: number;
  /** Facts handed to the admitting thread and not answered yet. */
  readonly inFlight: number;
  readonly linksOpened: number;
  readonly linksClosed: number;
  /** Facts (and their bytes) in the worker's log, which it serves to peers. */
  readonly logFacts: number;
  readonly logBytes: number;
  /** Records waiting on the admitting thread for room in the outbound ring (the worker is behind). */
  readonly outboundQueued: number;
  /** Connections closed, by reason. */
  readonly rejected: Readonly<Record<string, number>>;
}

/** Figures of one node's escrow (`NetworkingKernel.escrow.stats()`). */
export interface MetricsEscrowStats {
  readonly available: readonly [bigint, bigint];
  readonly openRequests: number;
  readonly spends: number;
  readonly exhausted: number;
  readonly requestsSent: number;
  readonly requestsReceived: number;
  readonly requestsFailed: number;
  readonly grantsMade: number;
  readonly grantsReceived: number;
  readonly denialsSent: number;
  readonly denialsReceived: number;
  readonly refused: number;
  readonly grantLatencyMs: { readonly p50: number; readonly p99: number; readonly count: number };
}

/** What the replication collectors read from a `NetworkingKernel` (its `stats()` and `peers()`, and its escrow's). */
export interface MetricsReplica {
  readonly escrow?: { stats(): MetricsEscrowStats } | undefined;
  stats(): MetricsReplicationCounters;
  peers(): readonly { readonly state: string; readonly nodeId: string | undefined; readonly address: string; readonly bytesIn: number; readonly bytesOut: number }[];
}

export interface MetricsSources {
  /** Admission latencies (`admitInstrumented`), exported as `ctfs_admission_latency` with outcomes. */
  readonly admission?: LatencyHistogram;
  /** Write + fdatasync latency per batch, exported as `ctfs_persistence_latency` (default: the first durable kernel's). */
  readonly persistence?: LatencyHistogram;
  /** Kernels by name (the `kernel` label). */
  readonly kernels?: Readonly<Record<string, MetricsKernel>>;
  /** Replicating nodes (`NetworkingKernel`s) by name (the `node` label). */
  readonly replication?: Readonly<Record<string, MetricsReplica>>;
}

type Sample = { value: number; labels: Record<string, string>; metricName?: string };

/** A metric whose samples are computed at scrape time (prom-client calls `get`). */
function external(registry: Registry, name: string, help: string, type: 'counter' | 'gauge' | 'histogram', read: () => Sample[]): void {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    collect: () => undefined,
    get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: read() }),
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** Histogram samples: cumulative `_bucket{le}` (64 power-of-two bounds and +Inf), `_sum`, `_count`, in ns. */
function histogramSamples(name: string, histogram: LatencyHistogram): Sample[] {
  const { buckets, count, sum } = histogram.snapshot();
  const out: Sample[] = [];
  let cumulative = 0;
  for (let b = 0; b < HISTOGRAM_BUCKETS; b++) {
    cumulative += buckets[b]!;
    out.push({ metricName: `${name}_bucket`, labels: { le: String(bucketUpperBound(b)) }, value: cumulative });
  }
  out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
  out.push({ metricName: `${name}_sum`, labels: {}, value: sum });
  out.push({ metricName: `${name}_count`, labels: {}, value: count });
  return out;
}

const outcomeName = (code: number): string => (code === 0 ? 'Ok' : code < OUTCOME_SLOTS - 1 ? safeName(code) : 'Other');
function safeName(code: number): string {
  try {
    return admitCodeName(code);
  } catch {
    return `code${code}`;
  }
}

/** `sources` (absent: nothing), checked before anything is registered; InvalidArgument otherwise. */
function checkSources(sources: MetricsSources | null | undefined): MetricsSources {
  const checked = optionsObject(sources, 'metrics sources');
  for (const key of ['admission', 'persistence'] as const) {
    const h = checked[key];
    if (h !== undefined && !(h instanceof LatencyHistogram)) throw new InvalidArgumentError(`${key} must be a LatencyHistogram, got ${describeValue(h)}`);
  }
  const kernels = checked.kernels;
  if (kernels !== undefined && (kernels === null || typeof kernels !== 'object')) {
    throw new InvalidArgumentError(`kernels must be an object of kernels by name, got ${describeValue(kernels)}`);
  }
  const replication = checked.replication;
  if (replication !== undefined) {
    if (replication === null || typeof replication !== 'object') throw new InvalidArgumentError(`replication must be an object of NetworkingKernels by name, got ${describeValue(replication)}`);
    for (const [name, node] of Object.entries(replication)) {
      if (node === null || typeof node !== 'object' || typeof node.stats !== 'function' || typeof node.peers !== 'function') {
        throw new InvalidArgumentError(`replication.${name} must be a NetworkingKernel, got ${describeValue(node)}`);
      }
    }
  }
  return checked;
}

/**
 * A prom-client `Registry` exporting `sources`:
 * - `ctfs_admission_latency` (histogram, ns) and `ctfs_admissions_total{outcome}`;
 * - `ctfs_persistence_latency` (histogram, ns: write + fdatasync per batch);
 * - per kernel (`kernel` label): `ctfs_exact_index_facts`, `ctfs_exact_index_fill` (facts /
 *   `indexCapacity`, 0..1; 0 without a limit), `ctfs_bloom_saturation` (0..1); per tier of the
 *   exact history (`tier` label: hot, frozen, runs; bytes also spare) `ctfs_exact_index_ids` and
 *   `ctfs_exact_index_bytes`, and `ctfs_exact_index_runs` (runs consulted by a lookup) and
 *   `ctfs_exact_index_frozen_tables` (tables waiting for compaction); for durable kernels `ctfs_durable_lag_facts` (admitted but
 *   not yet fsynced), `ctfs_wal_bytes_total`, `ctfs_wal_records_total`, `ctfs_wal_fsyncs_total`
 *   and `ctfs_persistence_backend_info{backend}`.
 * Nothing is copied ahead of time: every scrape reads the shared memory.
 */
export function createMetricsRegistry(sources: MetricsSources = {}): Registry {
  sources = checkSources(sources);
  const registry = new (loadPromClient().Registry)();
  const kernels = Object.entries(sources.kernels ?? {});
  const durable = kernels.filter(([, k]) => k.logStats !== undefined);
  const { admission } = sources;
  if (admission !== undefined) {
    external(registry, 'ctfs_admission_latency', 'Admission latency in nanoseconds (admitInstrumented)', 'histogram', () => histogramSamples('ctfs_admission_latency', admission));
    external(registry, 'ctfs_admissions_total', 'Admissions recorded by admitInstrumented, by outcome', 'counter', () =>
      admission
        .snapshot()
        .outcomes.map((value, code) => ({ value, labels: { outcome: outcomeName(code) } }))
        .filter((s) => s.value > 0 || s.labels.outcome === 'Ok'),
    );
  }
  const persistence = sources.persistence ?? durable.find(([, k]) => k.persistenceLatency !== undefined)?.[1].persistenceLatency;
  if (persistence !== undefined) {
    external(registry, 'ctfs_persistence_latency', 'WAL batch write + fdatasync latency in nanoseconds', 'histogram', () => histogramSamples('ctfs_persistence_latency', persistence));
  }
  if (kernels.length > 0) {
    const perKernel = (read: (k: MetricsKernel) => number) => (): Sample[] => kernels.map(([name, k]) => ({ value: read(k), labels: { kernel: name } }));
    external(registry, 'ctfs_exact_index_facts', 'Facts in the exact causal index', 'gauge', perKernel((k) => k.size));
    external(registry, 'ctfs_exact_index_fill', 'Exact index fill: facts / capacity', 'gauge', perKernel((k) => (Number.isFinite(k.indexCapacity) ? k.size / k.indexCapacity : 0)));
    external(registry, 'ctfs_bloom_saturation', 'Fraction of the Bloom clock bits set', 'gauge', perKernel((k) => k.saturation));
    const tiered = kernels.filter(([, k]) => typeof k.historyMemory === 'function');
    if (tiered.length > 0) {
      const perTier = (read: (m: HistoryTiers) => Record<string, number>) => (): Sample[] =>
        tiered.flatMap(([name, k]) => Object.entries(read(k.historyMemory!())).map(([tier, value]) => ({ value, labels: { kernel: name, tier } })));
      const perHistory = (read: (m: HistoryTiers) => number) => (): Sample[] => tiered.map(([name, k]) => ({ value: read(k.historyMemory!()), labels: { kernel: name } }));
      external(registry, 'ctfs_exact_index_ids', 'Ids in each tier of the exact history', 'gauge', perTier((m) => ({ hot: m.hot.ids, frozen: m.frozen.ids, runs: m.runs.ids })));
      external(registry, 'ctfs_exact_index_bytes', 'Bytes of memory held by each tier of the exact history', 'gauge', perTier((m) => ({ hot: m.hot.bytes, spare: m.spare.bytes, frozen: m.frozen.bytes, runs: m.runs.bytes })));
      external(registry, 'ctfs_exact_index_runs', 'Sorted runs a lookup consults', 'gauge', perHistory((m) => m.runs.count));
      external(registry, 'ctfs_exact_index_frozen_tables', 'Frozen hot tables waiting for compaction', 'gauge', perHistory((m) => m.frozen.tables));
    }
  }
  if (durable.length > 0) {
    const perLog = (read: (k: MetricsKernel) => number) => (): Sample[] => durable.map(([name, k]) => ({ value: read(k), labels: { kernel: name } }));
    external(registry, 'ctfs_durable_lag_facts', 'Facts admitted but not yet fsynced (last sequence - durable watermark)', 'gauge', perLog((k) => (k.lastSequence ?? 0) - (k.durableSequence ?? 0)));
    external(registry, 'ctfs_wal_bytes_total', 'Bytes written to the WAL', 'counter', perLog((k) => k.logStats!.bytes));
    external(registry, 'ctfs_wal_records_total', 'Records written to the WAL', 'counter', perLog((k) => k.logStats!.records));
    external(registry, 'ctfs_wal_fsyncs_total', 'fdatasync calls of the WAL', 'counter', perLog((k) => k.logStats!.fsyncs));
    external(registry, 'ctfs_persistence_backend_info', 'The I/O backend of each durable kernel', 'gauge', () =>
      durable.map(([name, k]) => ({ value: 1, labels: { kernel: name, backend: k.backend ?? 'unknown' } })),
    );
  }
  registerReplication(registry, Object.entries(sources.replication ?? {}));
  return registry;
}

/** Peer states a replicating node reports (each exported, so a state with no peer shows 0). */
const PEER_STATES = ['connecting', 'handshaking', 'ready', 'backoff'] as const;

/**
 * Replication (`node` label): peers by state, bytes/frames/facts in and out, pending facts,
 * reconciliation rounds and differences, facts not yet sent (held for fsync) and in flight,
 * drops, and rejected connections by reason. One `stats()` read per node per scrape.
 */
function registerReplication(registry: Registry, nodes: [string, MetricsReplica][]): void {
  if (nodes.length === 0) return;
  const each = (read: (s: ReturnType<MetricsReplica['stats']>, name: string) => Sample[]) => (): Sample[] => nodes.flatMap(([name, n]) => read(n.stats(), name));
  const one = (read: (s: ReturnType<MetricsReplica['stats']>) => number) => each((s, node) => [{ value: read(s), labels: { node } }]);
  external(registry, 'ctfs_replication_peers', 'Peers of each node by link state', 'gauge', () =>
    nodes.flatMap(([node, n]) => {
      const peers = n.peers();
      return PEER_STATES.map((state) => ({ value: peers.filter((p) => p.state === state).length, labels: { node, state } }));
    }),
  );
  external(registry, 'ctfs_replication_bytes_total', 'Bytes on replication links (after TLS framing is removed)', 'counter', each((s, node) => [
    { value: s.bytesIn, labels: { node, direction: 'in' } },
    { value: s.bytesOut, labels: { node, direction: 'out' } },
  ]));
  external(registry, 'ctfs_replication_frames_total', 'Replication frames received and sent', 'counter', each((s, node) => [
    { value: s.framesIn, labels: { node, direction: 'in' } },
    { value: s.framesOut, labels: { node, direction: 'out' } },
  ]));
  external(registry, 'ctfs_replication_facts_total', 'Facts from peers admitted or refused here, and facts sent to peers', 'counter', each((s, node) => [
    { value: s.factsAdmitted, labels: { node, outcome: 'admitted' } },
    { value: s.factsRefused, labels: { node, outcome: 'refused' } },
    { value: s.factsSent, labels: { node, outcome: 'sent' } },
  ]));
  external(registry, 'ctfs_replication_pending_facts', 'Facts received and waiting for their deps', 'gauge', one((s) => s.pending));
  external(registry, 'ctfs_replication_inflight_facts', 'Facts received and not yet answered by the admitting thread', 'gauge', one((s) => s.inFlight));
  external(registry, 'ctfs_replication_unsent_facts', 'Local facts held back until the WAL has fsynced them (replication lag at the origin)', 'gauge', one((s) => s.awaitingDurable));
  external(registry, 'ctfs_replication_rounds_total', 'Anti-entropy rounds that decoded the difference', 'counter', one((s) => s.rounds));
  external(registry, 'ctfs_replication_differences_total', 'Facts the anti-entropy rounds found missing on either side', 'counter', one((s) => s.differences));
  external(registry, 'ctfs_replication_outbound_queued_records', 'Records the admitting thread holds until the outbound ring has room (the worker is behind)', 'gauge', one((s) => s.outboundQueued));
  external(registry, 'ctfs_replication_slow_peer_drops_total', 'Fact frames not sent to a peer whose link had too much unsent; reconciliation sends the facts later', 'counter', one((s) => s.slowPeerDrops));
  external(registry, 'ctfs_replication_rejected_total', 'Connections closed for a reason, by reason', 'counter', each((s, node) => Object.entries(s.rejected).map(([reason, value]) => ({ value, labels: { node, reason } }))));
  registerEscrow(registry, nodes.flatMap(([name, n]) => (n.escrow === undefined ? [] : [[name, n.escrow] as [string, { stats(): MetricsEscrowStats }]])));
}

/**
 * Escrow (`node` label), for nodes over a bounded invariant: rights available per resource,
 * spends by outcome, requests, grants and denials both ways, escrow facts refused, and the grant
 * latency's p50/p99 over the last 1,024 grants.
 */
function registerEscrow(registry: Registry, nodes: [string, { stats(): MetricsEscrowStats }][]): void {
  if (nodes.length === 0) return;
  const each = (read: (s: MetricsEscrowStats, node: string) => Sample[]) => (): Sample[] => nodes.flatMap(([name, e]) => read(e.stats(), name));
  const two = (a: keyof MetricsEscrowStats, b: keyof MetricsEscrowStats, label: string, names: [string, string]) =>
    each((s, node) => [
      { value: s[a] as number, labels: { node, [label]: names[0] } },
      { value: s[b] as number, labels: { node, [label]: names[1] } },
    ]);
  external(registry, 'ctfs_escrow_available', 'Rights this node can spend, by resource (down: toward the floor, up: toward the ceiling)', 'gauge', each((s, node) => [
    { value: Number(s.available[0]), labels: { node, resource: 'down' } },
    { value: Number(s.available[1]), labels: { node, resource: 'up' } },
  ]));
  external(registry, 'ctfs_escrow_open_requests', 'Requests for quota this node has open', 'gauge', each((s, node) => [{ value: s.openRequests, labels: { node } }]));
  external(registry, 'ctfs_escrow_spends_total', 'Bounded admissions on this node, by outcome (exhausted: its rights fell short)', 'counter', two('spends', 'exhausted', 'outcome', ['ok', 'exhausted']));
  external(registry, 'ctfs_escrow_requests_total', 'Quota requests sent and received', 'counter', two('requestsSent', 'requestsReceived', 'direction', ['sent', 'received']));
  external(registry, 'ctfs_escrow_requests_failed_total', 'Quota requests that ran out of attempts or time', 'counter', each((s, node) => [{ value: s.requestsFailed, labels: { node } }]));
  external(registry, 'ctfs_escrow_grants_total', 'Grants this node made and received', 'counter', two('grantsMade', 'grantsReceived', 'direction', ['made', 'received']));
  external(registry, 'ctfs_escrow_denials_total', 'Denials this node sent and received', 'counter', two('denialsSent', 'denialsReceived', 'direction', ['sent', 'received']));
  external(registry, 'ctfs_escrow_refused_total', 'Escrow facts from peers the ledger refused (a fork or a reclaimed node: see docs/ESCROW.md)', 'counter', each((s, node) => [{ value: s.refused, labels: { node } }]));
  // Two gauges, not a summary: the agent keeps the last 1,024 latencies, not a running sum.
  external(registry, 'ctfs_escrow_grant_latency_p50_seconds', 'Median of request opened → grant admitted here, over the last 1,024 grants', 'gauge', each((s, node) => [{ value: s.grantLatencyMs.p50 / 1000, labels: { node } }]));
  external(registry, 'ctfs_escrow_grant_latency_p99_seconds', '99th percentile of request opened → grant admitted here, over the last 1,024 grants', 'gauge', each((s, node) => [{ value: s.grantLatencyMs.p99 / 1000, labels: { node } }]));
}
