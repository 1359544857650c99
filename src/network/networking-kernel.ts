/**
 * NetworkingKernel: a kernel that replicates. It wraps a single-invariant kernel (in memory or
 * durable) and starts a replication worker that owns every socket; the two talk through a pair of
 * SharedArrayBuffer rings, never a message per fact.
 *
 * - Local admissions go through the wrapped kernel as before; its record-log seam stages each
 *   admitted fact in the outbound ring as well (after the WAL arena, for a durable kernel, and the
 *   worker sends it on only once it is fsynced). Admission never waits for the network.
 * - Facts from peers arrive verified (frames, content address) and in causal order; this thread
 *   admits them through the same exact path (dedup, deps, invariant) and answers the worker.
 */
import type { Worker } from 'node:worker_threads';
import { AdmitCode } from '../codes.js';
import { SpscRing } from '../core/spsc-ring.js';
import { startWorker } from '../core/start-worker.js';
import { describeValue } from '../describe-value.js';
import { teeRecordLogs, type RecordLog } from '../domain/record-log.js';
import { setDigest } from '../domain/history-digest.js';
import { AdmitError, EscrowError, InvalidArgumentError, ReplicationError } from '../errors.js';
import { EscrowLedger, ESCROW_CODE_NAMES } from '../algebra/escrow-ledger.js';
import { EscrowKind, decodeEscrowFact, escrowAdapterFor } from '../algebra/escrow-facts.js';
import { listSegments } from '../persistence/data-dir.js';
import { scanLog } from '../persistence/wal-scan.js';
import { copyRecordFact } from '../persistence/wal-record.js';
import { NetworkEscrow, type EscrowOptions } from './network-escrow.js';
import { isCoordinationFree } from '../invariants/invariant.js';
import { KernelBase } from '../kernels/kernel-base.js';
import { DurableKernel } from '../kernels/durable-kernel.js';
import { DURABILITY_CONTROL, RECORD_LOG } from '../kernels/internal.js';
import { MAX_NODE_ID_BYTES } from '../replication/frames.js';
import { derivePsk, deriveClusterId, deriveSketchKey, type LinkSecurity } from './link-security.js';
import { OutboundLog } from './outbound-log.js';
import { checkAddress } from './address.js';
import { RecordKind, readHeader, viewFact, type RecordHeader } from './ring-records.js';
import { ReplicationStats, Stat, REJECT_REASONS, type RejectReason } from './replication-stats.js';
import type { MetricsReplicationCounters } from '../metrics/prometheus.js';
import type { FromWorker, PeerStatus, ReplicationTuning, ReplicationWorkerData, ToWorker } from './worker-protocol.js';

export type { PeerStatus, PeerState } from './worker-protocol.js';

export interface NetworkingOptions {
  /** This node's id: unique in the cluster, 1–64 UTF-8 bytes. */
  readonly nodeId: string;
  /** Where to listen, `host:port` (default `127.0.0.1:0`: loopback, any free port). */
  readonly listen?: string;
  /** The address other nodes are told to dial (default: the bound one). */
  readonly advertise?: string;
  /** Nodes to dial, `host:port`. One reachable member is enough: the rest are learnt from it. */
  readonly peers?: readonly string[];
  /** The cluster's name (default `ctfs`): nodes of clusters with different names never exchange facts. */
  readonly cluster?: string;
  /**
   * The cluster secret (at least 16 bytes, or a string of at least 16 characters): links are TLS
   * 1.3 with a key derived from it. Required unless `tls` or `plaintext` is given.
   */
  readonly secret?: string | Uint8Array;
  /** Mutual TLS instead of a secret: this node's key and certificate, and the CA both sides' certificates chain to (PEM). */
  readonly tls?: { readonly key: string | Uint8Array; readonly cert: string | Uint8Array; readonly ca: string | Uint8Array };
  /** Unauthenticated, unencrypted TCP: only for tests and trusted networks, and only when set to true. */
  readonly plaintext?: boolean;
  /** Anti-entropy period, ms (default 1,000). */
  readonly antiEntropyMs?: number;
  /** Cells of the set sketch (default 4,096: a round decodes up to ~2,900 differences). */
  readonly sketchCells?: number;
  /** Most received facts waiting for their deps (default 10,000). */
  readonly maxPending?: number;
  /** Bytes queued on one link beyond which fact frames to that peer are dropped (default 32 MiB). */
  readonly maxLinkBufferBytes?: number;
  /** Bytes of each of the two rings (a power of two, default 16 MiB). */
  readonly ringBytes?: number;
  /** Reconnect backoff, ms: first delay (default 100) and cap (default 5,000). */
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  /** The failure detector's probe period, ms (default 1,000). */
  readonly probeMs?: number;
  /**
   * Required for a bounded invariant (BoundedGCounter, TotalSupply), refused for any other: the
   * bound is split between `members` and spent through `net.escrow` (docs/ESCROW.md).
   */
  readonly escrow?: EscrowOptions;
}

/** Counters of one node's replication (`stats()`), with the rejections by their reasons. */
export interface ReplicationCounters extends MetricsReplicationCounters {
  readonly rejected: Readonly<Record<RejectReason, number>>;
}

const DEFAULT_RING_BYTES = 16 << 20;
const MIN_SECRET_BYTES = 16;
/** Facts from the network admitted per turn of the event loop before it yields to other work. */
const ADMIT_PER_TURN = 8192;
/** How long `close` waits for the worker to flush and close its links before stopping it. */
const CLOSE_TIMEOUT_MS = 5_000;

function positiveInt(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new InvalidArgumentError(`${what} must be a positive integer, got ${describeValue(value)}`);
  return value as number;
}

function securityOf(options: NetworkingOptions): LinkSecurity {
  const chosen = [options.secret !== undefined, options.tls !== undefined, options.plaintext === true].filter(Boolean).length;
  if (chosen === 0) throw new InvalidArgumentError('replication needs a cluster secret (secret), certificates (tls), or plaintext: true');
  if (chosen > 1) throw new InvalidArgumentError('choose one of secret, tls and plaintext');
  if (options.plaintext !== undefined && typeof options.plaintext !== 'boolean') throw new InvalidArgumentError(`plaintext must be a boolean, got ${describeValue(options.plaintext)}`);
  if (options.plaintext === true) return { mode: 'plaintext' };
  if (options.tls !== undefined) {
    const { key, cert, ca } = options.tls;
    for (const [name, v] of [['key', key], ['cert', cert], ['ca', ca]] as const) {
      if (typeof v !== 'string' && !(v instanceof Uint8Array)) throw new InvalidArgumentError(`tls.${name} must be PEM text or bytes, got ${describeValue(v)}`);
    }
    return { mode: 'mtls', key, cert, ca };
  }
  const secret = typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret;
  if (!(secret instanceof Uint8Array) || secret.length < MIN_SECRET_BYTES) throw new InvalidArgumentError(`secret must be at least ${MIN_SECRET_BYTES} bytes`);
  return { mode: 'psk', psk: derivePsk(secret) };
}

/** Incarnations only grow: a restart within the same millisecond still gets a larger one. */
let lastIncarnation = 0;
function nextIncarnation(): number {
  lastIncarnation = Math.max(lastIncarnation + 1, Date.now());
  return lastIncarnation;
}

export class NetworkingKernel<K extends KernelBase = KernelBase> {
  /** The wrapped kernel: read its state, query it; admit through either. */
  readonly kernel: K;
  readonly nodeId: string;
  private boundAddress = '';
  private readonly worker: Worker;
  private readonly toKernel: SpscRing;
  private readonly outbound: OutboundLog;
  private readonly replicationStats: ReplicationStats;
  private readonly previousLog: RecordLog | null;
  private latestPeers: PeerStatus[] = [];
  private closing: Promise<void> | undefined;
  private closed = false;
  private readonly exited: Promise<void>;
  private readonly header: RecordHeader = { kind: 0, depCount: 0, code: 0, sequence: 0, payloadLength: 0 };
  private readonly deps: Uint8Array[] = [];
  private readonly closedWaiters: (() => void)[] = [];

  private constructor(kernel: K, data: ReplicationWorkerData, toKernel: SpscRing, outbound: OutboundLog, stats: ReplicationStats, previousLog: RecordLog | null) {
    this.kernel = kernel;
    this.nodeId = data.nodeId;
    this.toKernel = toKernel;
    this.outbound = outbound;
    this.replicationStats = stats;
    this.previousLog = previousLog;
    this.tryAdmitRaw = kernel.tryAdmitRaw.bind(kernel) as K['tryAdmitRaw'];
    this.admitRaw = kernel.admitRaw.bind(kernel) as K['admitRaw'];
    this.tryAdmit = kernel.tryAdmit.bind(kernel) as K['tryAdmit'];
    this.admit = kernel.admit.bind(kernel) as K['admit'];
    this.worker = startWorker(new URL('../workers/replication-worker.js', import.meta.url), data);
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (m: FromWorker) => {
      if (m.type === 'peers') this.latestPeers = m.peers;
      else if (m.type === 'closed') for (const w of this.closedWaiters.splice(0)) w();
      else if (m.type === 'quota') {
        const hint = m.request ? { type: 'request' as const, requestId: m.requestId, resource: m.resource as 0 | 1, amount: m.amount } : { type: 'denial' as const, requestId: m.requestId, resource: m.resource as 0 | 1, available: m.amount };
        this.escrow?.onHint(m.nodeId, hint);
      }
    });
  }

  /**
   * Starts replicating `kernel`: binds the listen address, dials the peers, and resolves once the
   * node is listening. The kernel must be coordination-free (bounded invariants replicate through
   * escrow) and, if it lives in memory, empty: its facts so far could not be served to peers.
   */
  static async start<K extends KernelBase>(kernel: K, options: NetworkingOptions): Promise<NetworkingKernel<K>> {
    if (!(kernel instanceof KernelBase)) throw new InvalidArgumentError(`NetworkingKernel wraps a single-invariant kernel (Kernel, DurableKernel), got ${describeValue(kernel)}`);
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError(`NetworkingKernel.start needs options, got ${describeValue(options)}`);
    const bounded = !isCoordinationFree(kernel.invariant.algebraicClass);
    if (bounded && options.escrow === undefined) {
      throw new InvalidArgumentError(`${kernel.invariant.constructor.name} is not coordination-free: bounded invariants replicate only through escrow (options.escrow)`);
    }
    if (!bounded && options.escrow !== undefined) throw new InvalidArgumentError(`${kernel.invariant.constructor.name} is coordination-free: it needs no escrow`);
    const { nodeId } = options;
    if (typeof nodeId !== 'string' || nodeId.length === 0 || new TextEncoder().encode(nodeId).length > MAX_NODE_ID_BYTES) {
      throw new InvalidArgumentError(`nodeId must be 1 to ${MAX_NODE_ID_BYTES} UTF-8 bytes, got ${describeValue(nodeId)}`);
    }
    const listen = checkAddress(options.listen ?? '127.0.0.1:0', 'listen');
    const advertise = options.advertise === undefined ? undefined : checkAddress(options.advertise, 'advertise');
    if (options.peers !== undefined && !Array.isArray(options.peers)) throw new InvalidArgumentError(`peers must be an array of "host:port", got ${describeValue(options.peers)}`);
    const peers = (options.peers ?? []).map((p, i) => checkAddress(p, `peers[${i}]`));
    const cluster = options.cluster ?? 'ctfs';
    if (typeof cluster !== 'string' || cluster.length === 0) throw new InvalidArgumentError(`cluster must be a non-empty string, got ${describeValue(cluster)}`);
    const security = securityOf(options);
    const tuning: ReplicationTuning = {
      antiEntropyMs: positiveInt(options.antiEntropyMs, 1_000, 'antiEntropyMs'),
      sketchCells: positiveInt(options.sketchCells, 4_096, 'sketchCells'),
      maxPending: positiveInt(options.maxPending, 10_000, 'maxPending'),
      maxLinkBufferBytes: positiveInt(options.maxLinkBufferBytes, 32 << 20, 'maxLinkBufferBytes'),
      reconnectMinMs: positiveInt(options.reconnectMinMs, 100, 'reconnectMinMs'),
      reconnectMaxMs: positiveInt(options.reconnectMaxMs, 5_000, 'reconnectMaxMs'),
      probeMs: options.probeMs === undefined ? undefined : positiveInt(options.probeMs, 1_000, 'probeMs'),
    };
    const ringBytes = positiveInt(options.ringBytes, DEFAULT_RING_BYTES, 'ringBytes');

    const ledger = options.escrow === undefined ? undefined : escrowLedgerOf(kernel, nodeId, options.escrow);
    let durable: ReplicationWorkerData['durable'];
    if (kernel instanceof DurableKernel) {
      // Everything admitted so far is read back from the WAL by the worker: make it all durable
      // first, and take the boundary in the same synchronous stretch as installing the seam.
      while (kernel.durableSequence < kernel.lastSequence) await kernel.flush();
      durable = { dir: kernel.dir, control: kernel[DURABILITY_CONTROL], through: kernel.lastSequence };
    } else if (kernel.size > 0) {
      throw new InvalidArgumentError('an in-memory kernel must be wrapped before it admits anything (its earlier facts could not be served to peers); use a DurableKernel to replicate a history');
    }

    const clusterId = deriveClusterId(cluster);
    const toNet = new SpscRing({ capacity: ringBytes });
    const toKernel = new SpscRing({ capacity: ringBytes });
    const stats = new ReplicationStats();
    const durableKernel = kernel instanceof DurableKernel ? kernel : undefined;
    const outbound = new OutboundLog(toNet, durableKernel === undefined ? undefined : () => durableKernel.lastSequence);
    const previous = kernel[RECORD_LOG];
    kernel[RECORD_LOG] = previous === null ? outbound : teeRecordLogs(previous, outbound);
    const data: ReplicationWorkerData = {
      nodeId,
      clusterId,
      sketchKey: deriveSketchKey(clusterId),
      incarnation: nextIncarnation(),
      listen,
      advertise,
      peers,
      security,
      toNet: toNet.buffer,
      toKernel: toKernel.buffer,
      stats: stats.buffer,
      durable,
      tuning,
    };
    const net = new NetworkingKernel(kernel, data, toKernel, outbound, stats, previous);
    const first = await new Promise<FromWorker | undefined>((resolve) => {
      const onMessage = (m: FromWorker): void => {
        if (m.type !== 'ready' && m.type !== 'failed') return;
        net.worker.off('message', onMessage);
        resolve(m);
      };
      net.worker.on('message', onMessage);
      net.worker.once('error', () => resolve(undefined));
      void net.exited.then(() => resolve(undefined));
    });
    if (first?.type !== 'ready') {
      kernel[RECORD_LOG] = previous;
      await net.worker.terminate();
      const reason = first?.type === 'failed' ? `${first.code}: ${first.message}` : 'the replication worker exited';
      throw new ReplicationError('ReplicationStartFailed', `replication of node ${nodeId} did not start (${reason})`);
    }
    net.boundAddress = first.address;
    if (ledger !== undefined) net.startEscrow(ledger, options.escrow!);
    void net.pump();
    return net;
  }

  /** Escrow, for a bounded invariant: spend, read the shares, grant, reclaim (undefined otherwise). */
  escrow: NetworkEscrow | undefined;

  /**
   * Starts escrow: the agent, then the genesis (a fresh node admits it, and it replicates like any
   * fact; every node derives the same one, so dedup keeps one). The admission family refuses from
   * now on: bounded facts go through `escrow.admitSpend`, which adds what replicas need to check them.
   */
  private startEscrow(ledger: EscrowLedger, options: EscrowOptions): void {
    const ready = (): string[] => this.latestPeers.filter((p) => p.state === 'ready' && p.nodeId !== undefined).map((p) => p.nodeId!);
    const escrow = new NetworkEscrow(
      this.kernel,
      ledger,
      options,
      (nodeId, hint) => {
        if (this.closed || this.closing !== undefined || !ready().includes(nodeId)) return false;
        this.tell({ type: 'quota', nodeId, request: hint.type === 'request', requestId: hint.requestId, resource: hint.resource, amount: hint.type === 'request' ? hint.amount : hint.available });
        return true;
      },
      ready,
    );
    this.escrow = escrow;
    const refuse = (): number => AdmitCode.RequiresCoordination;
    const refuseThrowing = (): never => {
      throw new AdmitError(AdmitCode.RequiresCoordination, 0, 'a bounded fact is admitted through net.escrow.admitSpend (escrow adds what replicas need to check it)');
    };
    const self = this as { -readonly [P in 'tryAdmitRaw' | 'tryAdmit' | 'admitRaw' | 'admit']: unknown };
    self.tryAdmitRaw = refuse;
    self.tryAdmit = refuse;
    self.admitRaw = refuseThrowing;
    self.admit = refuseThrowing;
    if (!ledger.isStarted) {
      const g = ledger.genesisFact();
      const code = escrow.admitRemote(g.id, g.deps, g.payload);
      if (code !== AdmitCode.Ok) throw new EscrowError('GenesisMismatch', `node ${this.nodeId} could not admit its escrow genesis (code ${code})`);
    }
  }

  /** The address this node listens on (`host:port`, the port bound when 0 was asked for). */
  get address(): string {
    return this.boundAddress;
  }

  /** Dials `address` from now on (and again after every disconnect, with backoff). */
  addPeer(address: string): void {
    this.checkOpen();
    this.tell({ type: 'addPeer', address: checkAddress(address, 'address') });
  }

  /** Stops dialling `address` and closes the link to it. */
  removePeer(address: string): void {
    this.checkOpen();
    this.tell({ type: 'removePeer', address: checkAddress(address, 'address') });
  }

  private tell(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private checkOpen(): void {
    if (this.closed || this.closing !== undefined) throw new ReplicationError('ReplicationClosed', `node ${this.nodeId} is closed`);
  }

  // ------------------------------------------------------------------------------- admission

  /**
   * The wrapped kernel's admission family, bound to it (same arguments, same codes; a durable
   * kernel's take its ack mode): a fact admitted here replicates.
   */
  readonly tryAdmitRaw: K['tryAdmitRaw'];
  readonly admitRaw: K['admitRaw'];
  readonly tryAdmit: K['tryAdmit'];
  readonly admit: K['admit'];

  /**
   * BLAKE3 of the set of admitted facts and the state they make (`setDigest`, docs/FORMATS.md §7):
   * equal on two nodes exactly when they admitted the same facts, in whatever order. Sorts every
   * id: a check, not something to call per fact.
   */
  digest(): Uint8Array {
    return setDigest(this.kernel.historyImage());
  }

  /** Facts admitted here, local and replicated. */
  get size(): number {
    return this.kernel.size;
  }

  /** Every peer this node dials or was dialled by, as of the worker's last report (at most 250 ms old). */
  peers(): PeerStatus[] {
    return this.latestPeers.map((p) => ({ ...p }));
  }

  /** Replication counters, read from shared memory (no message). */
  stats(): ReplicationCounters {
    const s = this.replicationStats;
    return {
      bytesIn: s.get(Stat.BytesIn),
      bytesOut: s.get(Stat.BytesOut),
      framesIn: s.get(Stat.FramesIn),
      framesOut: s.get(Stat.FramesOut),
      factsAdmitted: s.get(Stat.FactsAdmitted),
      factsRefused: s.get(Stat.FactsRefused),
      factsSent: s.get(Stat.FactsSent),
      pending: s.get(Stat.Pending),
      rounds: s.get(Stat.Rounds),
      differences: s.get(Stat.Differences),
      slowPeerDrops: s.get(Stat.SlowPeerDrops),
      awaitingDurable: s.get(Stat.AwaitingDurable),
      inFlight: s.get(Stat.InFlight),
      linksOpened: s.get(Stat.LinksOpened),
      linksClosed: s.get(Stat.LinksClosed),
      logFacts: s.get(Stat.LogFacts),
      logBytes: s.get(Stat.LogBytes),
      outboundQueued: this.outbound.queued,
      rejected: s.rejected(),
    };
  }

  /** The reasons connections can be rejected for (labels of `stats().rejected`). */
  static readonly rejectReasons: readonly RejectReason[] = REJECT_REASONS;

  // ------------------------------------------------------------------------------- inbound

  /** Admits what the worker hands over, in order, until closed. */
  private async pump(): Promise<void> {
    const ring = this.toKernel;
    while (!this.closed) {
      const progress = this.admitIncoming();
      if (progress === 'idle') {
        // A closed ring answers at once: stop, or this loop would starve the event loop.
        if (ring.closed) return;
        await ring.waitForDataAsync(ring.tail(), 1000);
      }
      else if (progress === 'blocked') await new Promise((resolve) => setTimeout(resolve, 1));
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Admits up to ADMIT_PER_TURN handed-over facts. 'blocked': the outbound ring has no room for an
   * answer, or the WAL arena is full — the fact stays in the ring and is tried again shortly.
   */
  private admitIncoming(): 'idle' | 'more' | 'blocked' {
    const ring = this.toKernel;
    const outbound = this.outbound;
    let tail = ring.tail();
    const head = ring.head();
    if (tail === head) return 'idle';
    let result: 'more' | 'blocked' = 'more';
    const kernel = this.kernel;
    const escrow = this.escrow;
    for (let n = 0; tail !== head && n < ADMIT_PER_TURN; n++) {
      if (!outbound.roomForAnswer()) {
        result = 'blocked';
        break;
      }
      const start = ring.messageStart(tail);
      const offset = ring.offsetOf(start);
      const length = ring.lengthAt(offset);
      const h = readHeader(ring, offset, this.header);
      if (h.kind !== RecordKind.Admit) {
        tail = (start + length) | 0;
        continue;
      }
      const { id, payload } = viewFact(ring, offset, h, this.deps);
      outbound.answering = true;
      let code: number;
      try {
        code = escrow === undefined ? kernel.tryAdmitRaw(id, this.deps, payload) : escrow.admitRemote(id, this.deps, payload);
      } finally {
        outbound.answering = false;
      }
      if (code === AdmitCode.ArenaFull) {
        // The disk is behind: keep the fact where it is and try again (its answer must follow it).
        result = 'blocked';
        break;
      }
      if (code !== AdmitCode.Ok) outbound.refused(code);
      tail = (start + length) | 0;
    }
    ring.release(tail);
    outbound.publish();
    return result;
  }

  // ------------------------------------------------------------------------------- closing

  /**
   * Stops replicating: local facts staged so far are handed to the worker, which flushes them to
   * its links and closes them. The wrapped kernel stays open (close it yourself) and keeps every
   * fact admitted; it no longer replicates.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.escrow?.close();
    this.kernel[RECORD_LOG] = this.previousLog;
    // What waits for ring room still goes to the worker before it is told to close.
    const flushBy = Date.now() + CLOSE_TIMEOUT_MS;
    while (!this.outbound.flushOverflow() && Date.now() < flushBy) await new Promise((r) => setTimeout(r, 1));
    this.outbound.stop();
    this.outbound.publish();
    const closed = new Promise<void>((resolve) => this.closedWaiters.push(resolve));
    this.tell({ type: 'close' });
    const timer = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref());
    await Promise.race([closed, this.exited, timer]);
    this.closed = true;
    this.toKernel.close();
    await this.worker.terminate();
  }
}

/**
 * The escrow ledger of `kernel` for node `nodeId`: a fresh kernel starts from its state; a durable
 * kernel that already holds facts replays its WAL, which must begin with the genesis these
 * options derive and hold nothing but escrow facts.
 */
function escrowLedgerOf(kernel: KernelBase, nodeId: string, options: EscrowOptions): EscrowLedger {
  if (options === null || typeof options !== 'object' || !Array.isArray(options.members)) {
    throw new InvalidArgumentError(`escrow needs { members: [node ids] }, got ${describeValue(options)}`);
  }
  if (kernel.size === 0) return EscrowLedger.create(kernel.invariant, nodeId, options.members, kernel.state.bytes.slice());
  if (!(kernel instanceof DurableKernel)) throw new InvalidArgumentError('an in-memory kernel must be wrapped before it admits anything');
  const segments = listSegments(kernel.dir);
  if (segments.length === 0 || segments[0]!.firstSequence !== 1) {
    throw new EscrowError('HistoryUnavailable', `the WAL of ${kernel.dir} no longer begins with the escrow genesis (it was compacted): the ledger cannot be rebuilt`);
  }
  let ledger: EscrowLedger | undefined;
  let failure: EscrowError | undefined;
  const through = kernel.lastSequence;
  scanLog(kernel.dir, {
    fromSequence: 1,
    salvage: true,
    visit: (bytes, words, offset, sequence) => {
      if (failure !== undefined || sequence > through) return;
      const { id, deps, payload } = copyRecordFact(bytes, words, offset);
      if (ledger === undefined) {
        // The first fact is the genesis: it carries the initial state the ledger starts from.
        const adapter = escrowAdapterFor(kernel.invariant);
        const genesis = adapter === undefined ? undefined : decodeEscrowFact(adapter, payload);
        const initial = genesis?.kind === EscrowKind.Genesis ? genesis.initialState.slice() : undefined;
        if (initial === undefined) {
          failure = new EscrowError('GenesisMismatch', `the first fact in ${kernel.dir} is not an escrow genesis`);
          return;
        }
        ledger = EscrowLedger.create(kernel.invariant, nodeId, options.members, initial);
      }
      const code = ledger.check(id, deps, payload);
      if (code !== 0) {
        failure = new EscrowError(sequence === 1 ? 'GenesisMismatch' : 'EscrowHistoryInvalid', `fact ${sequence} of ${kernel.dir} does not replay into the escrow ledger: ${ESCROW_CODE_NAMES[code]}${sequence === 1 ? ' (configured with other members or another initial state)' : ''}`);
        return;
      }
      ledger.commit(id);
    },
  });
  if (failure !== undefined) throw failure;
  return ledger!;
}
