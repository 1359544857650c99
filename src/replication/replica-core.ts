/**
 * ReplicaCore: the replication protocol of one node as a pure state machine (sans-IO). It owns no
 * socket, thread, clock or randomness: the host feeds it what happened — a link to a peer opened
 * or closed, a frame arrived, time passed, the kernel admitted a fact (its own or one the core
 * asked for) — and it answers with actions: frames to send, facts to admit, events. The same code
 * runs in the replication worker and in the deterministic simulator.
 *
 * What it guarantees, with the kernel's exact admission behind it:
 * - **Causal delivery.** A fact is handed to the kernel only once every dep is admitted here or
 *   handed over before it (the kernel admits in hand-over order); one
 *   whose deps are missing waits in a bounded pending buffer while they are requested from the
 *   peer that sent it (it admitted them, so it has them). Overflow drops the fact: anti-entropy
 *   fetches it later. Nothing is handed over twice.
 * - **Dissemination.** A node pushes each fact it admits from its own writer to every open peer
 *   (one hop; full mesh).
 * - **Exact anti-entropy.** On every link opening and then periodically, a node asks each peer for
 *   a prefix of its rateless sketch, growing it until the difference decodes: it then requests
 *   what it lacks and pushes what the peer lacks. No per-peer memory is needed for correctness, so
 *   lost frames, restarts and partitions heal on the next round.
 */
import { hash } from 'blake3-jit';
import { AdmitCode } from '../codes.js';
import { bytesEqual } from '../core/bytes.js';
import { InvalidArgumentError } from '../errors.js';
import { RatelessSketch, SKETCH_CELL_WORDS } from './rateless-sketch.js';
import {
  CLUSTER_ID_BYTES,
  FrameType,
  MAX_FRAME_BYTES,
  MAX_REQUESTED_IDS,
  PROTOCOL_VERSION,
  SKETCH_CELL_BYTES,
  decodeFrame,
  encodeFactRequest,
  encodeFacts,
  encodeHello,
  encodeLogRequest,
  encodePing,
  encodeSketchCells,
  encodeSketchRequest,
  MAX_MEMBERS_PER_FRAME,
  encodeMembers,
  encodeGraft,
  encodeIHave,
  encodeNack,
  encodeQuota,
  encodePingReq,
  encodePrune,
  encodeTreeFacts,
  encodeSnapshotChunk,
  encodeSnapshotOffer,
  encodeSnapshotRequest,
  MAX_SNAPSHOT_CHUNK_BYTES,
  type Frame,
  type Member,
  type MemberState,
  type MemberStatus,
  type WireFact,
} from './frames.js';
import { FailureDetector, type FailureDetectorOptions } from './failure-detector.js';
import { BroadcastTree, DEFAULT_TREE_FANOUT } from './broadcast-tree.js';

/** Where the core reads the facts this node admitted (the kernel's log, or a model of it). */
export interface FactSource {
  /** The fact with this id, if this node admitted it. */
  get(id: Uint8Array): WireFact | undefined;
  /**
   * Up to `max` facts of this node's log from sequence `from` on (1-based, admission order, so
   * every fact comes after its deps); fewer at the end, none past it.
   */
  logFrom(from: number, max: number): WireFact[];
  /** The sequence of the oldest fact the log still serves (default 1: all of it). */
  retainedFrom?(): number;
  /**
   * A snapshot of this node's history through log sequence `through` (a checkpoint), as bytes a
   * peer's host can reanchor on; needed once `retainedFrom` passes 1. The core offers it under
   * its BLAKE3 and serves it in chunks.
   */
  snapshot?(): { readonly bytes: Uint8Array; readonly through: number } | undefined;
}

export interface ReplicaOptions {
  readonly nodeId: string;
  readonly clusterId: Uint8Array;
  /** Distinguishes this run of the node from earlier ones (a restart takes a new one). */
  readonly incarnation: number;
  /** Key of the set sketch: the same on every node of the cluster (8 bytes). */
  readonly sketchKey: Uint8Array;
  /** How other nodes reach this one (opaque to the core; the host dials it). Default ''. */
  readonly address?: string;
  /** Cells of the sketch this node keeps: the most differences one round can decode is ~70% of it (default 4,096). */
  readonly sketchCells?: number;
  /**
   * Fewest cells asked for after the first round trip found the sets different (default 8; more
   * when the expected difference needs more); each further request asks for a prefix 4× as long. A round
   * always starts with cell 0 alone, the whole set's summary: equal sets cost one 44-byte cell.
   */
  readonly firstSketchCells?: number;
  /**
   * Anti-entropy period in ms (default 1,000). A link whose rounds keep finding nothing waits up
   * to 8 periods between rounds; any difference, and any new link, brings it back to one.
   */
  readonly antiEntropyMs?: number;
  /** Most facts waiting for deps (default 10,000). */
  readonly maxPending?: number;
  /**
   * A fact waits this long for its deps at most (default 60,000 ms), then is dropped: its deps may
   * be gone for good (lost with a crashed node's unsynced tail), and if they turn up later,
   * anti-entropy brings the fact again.
   */
  readonly pendingTimeoutMs?: number;
  /** A requested fact not received after this long is requested again (default 500 ms). */
  readonly requestRetryMs?: number;
  /** Hello is sent again this often until the peer shows it took it (default 250 ms). */
  readonly helloRetryMs?: number;
  /** Probe period, timeouts and suspicion of the failure detector (see FailureDetector). */
  readonly failureDetector?: FailureDetectorOptions;
  /**
   * Up to this many live members (default 16), a node pushes each fact it originates to every
   * peer: one hop. Beyond, facts travel down per-origin broadcast trees (see BroadcastTree).
   */
  readonly directPushMax?: number;
  /** Overlay neighbours each node picks for the broadcast trees (default 4). */
  readonly treeFanout?: number;
  /** A fact announced by IHave and not received through the tree this long is grafted (default 250 ms). */
  readonly graftTimeoutMs?: number;
  /** Largest snapshot this node accepts from a peer, in bytes (default 1 GiB): it is held in memory until verified. */
  readonly maxSnapshotBytes?: number;
  /**
   * Checks that a received fact's id is the content address of its deps and payload (the
   * replication worker passes `verifyFactId`). Called once per fact not already seen; a fact
   * that fails is dropped and its link reported with a `protocolError` ("ForgedFact: …").
   * Default: none (the simulator, whose facts are its own).
   */
  readonly verifyFact?: (fact: WireFact) => boolean;
}

/** What the host must do. */
export type ReplicaAction =
  | { readonly kind: 'send'; readonly peer: string; readonly frame: Uint8Array }
  /** `hops`: links the fact crossed from its origin, when it came by push or down a tree (not by repair). */
  | { readonly kind: 'admit'; readonly fact: WireFact; readonly from: string; readonly hops?: number }
  | { readonly kind: 'event'; readonly event: ReplicaEvent }
  /**
   * A peer's snapshot arrived whole and matches its BLAKE3: reanchor the kernel on it (keeping
   * this node's facts the snapshot lacks), then call `reanchored` with the ids it added — or
   * `reanchorFailed` if it does not fit the kernel.
   */
  | { readonly kind: 'reanchor'; readonly peer: string; readonly snapshot: Uint8Array; readonly through: number };

export type ReplicaEvent =
  | { readonly type: 'peerReady'; readonly peer: string; readonly nodeId: string; readonly incarnation: number }
  | { readonly type: 'peerRestarted'; readonly peer: string; readonly nodeId: string; readonly incarnation: number }
  | { readonly type: 'protocolError'; readonly peer: string; readonly reason: string }
  | { readonly type: 'pendingOverflow'; readonly peer: string; readonly dropped: number }
  | { readonly type: 'factRefused'; readonly peer: string; readonly id: Uint8Array; readonly code: number }
  | { readonly type: 'reconciled'; readonly peer: string; readonly theirs: number; readonly ours: number; readonly cells: number }
  | { readonly type: 'sketchExhausted'; readonly peer: string }
  | { readonly type: 'streamed'; readonly peer: string; readonly facts: number; readonly through: number }
  /** A peer's log no longer reaches back to our cursor: its snapshot is being fetched. */
  | { readonly type: 'snapshotOffered'; readonly peer: string; readonly through: number; readonly bytes: number }
  /** A peer asked for log this node no longer has, and the host offers no snapshot. */
  | { readonly type: 'snapshotUnavailable'; readonly peer: string; readonly fromSequence: number }
  /** A node this one did not know (or knew by an older incarnation): the host should link to it. */
  | { readonly type: 'memberDiscovered'; readonly member: Member }
  /** The failure detector changed its mind about a member (alive, suspect, failed). */
  | { readonly type: 'memberStatus'; readonly member: MemberStatus; readonly previous: MemberState | undefined }
  /** Escrow: a QuotaRequest (`request`) or QuotaDenial from node `nodeId`, for the host's escrow agent. */
  | { readonly type: 'quota'; readonly peer: string; readonly nodeId: string; readonly request: boolean; readonly requestId: Uint8Array; readonly resource: number; readonly amount: bigint };

/** Admission codes that are about the fact itself, so it is refused for good. */
const FACT_REFUSALS: ReadonlySet<number> = new Set([AdmitCode.InvariantViolation, AdmitCode.MalformedFact, AdmitCode.PayloadTooLarge, AdmitCode.FactIdMismatch, AdmitCode.RequiresCoordination]);

const DEFAULT_SKETCH_CELLS = 4096;
/**
 * Facts asked for per LogRequest when a sketch cannot decode the difference: enough that a far
 * behind node catches up in few round trips, few enough that one answer stays a handful of frames.
 */
const LOG_STREAM_FACTS = 4096;
const DEFAULT_FIRST_SKETCH_CELLS = 8;
/**
 * Cells a prefix needs per difference to decode in one go: measured 1.4–1.8 from a few dozen
 * differences up (bench: sketch), more for a handful; the slack covers the small cases.
 */
const CELLS_PER_DIFFERENCE = 1.8;
const PREFIX_SLACK_CELLS = 8;
/**
 * Peers each membership change goes to in a cluster beyond directPushMax, each of which passes it
 * on once: with fanout 4 an infection reaches all of 100 nodes in about 4 steps (log₄ 100 ≈ 3.3),
 * and the periodic full-table sync covers the stragglers.
 */
const GOSSIP_FANOUT = 4;
/** How much a prefix grows after a failed decode (see onSketchCells). */
const PREFIX_GROWTH = 4;
/**
 * Facts whose tree arrival (hops, parent) is remembered, so later copies and announcements can
 * move a node to a shorter path: enough for a few seconds of traffic; older ones are forgotten
 * first (they only tune the tree).
 */
const REMEMBERED_ARRIVALS = 4096;
/** An announcement this many hops shorter than the copy received moves the tree (Plumtree's optimisation threshold). */
const SHORTER_PATH_HOPS = 2;
/** A quiet link's rounds are spaced up to 2^3 = 8 anti-entropy periods apart. */
/**
 * Anti-entropy rounds a node starts per period, spread over its links: every link of a cluster
 * within the direct-push size (16 nodes, 15 links) still gets a round every 4 periods at most.
 */
const ANTI_ENTROPY_LINKS_PER_PERIOD = 4;
const MAX_QUIET_DOUBLINGS = 3;
/** Rounds put off in a row while pushes arrive: a round still runs every 9 periods under any load. */
const MAX_DEFERRED_ROUNDS = 8;
const DEFAULT_ANTI_ENTROPY_MS = 1_000;
const DEFAULT_MAX_PENDING = 10_000;
const DEFAULT_REQUEST_RETRY_MS = 500;
const DEFAULT_HELLO_RETRY_MS = 250;
const DEFAULT_PENDING_TIMEOUT_MS = 60_000;
const DEFAULT_DIRECT_PUSH_MAX = 16;
const DEFAULT_MAX_SNAPSHOT_BYTES = 2 ** 30;
/** Snapshot chunks asked for at once: 4 × 512 KiB keeps a LAN link busy without a large backlog. */
const SNAPSHOT_WINDOW = 4;
/** A few round trips on a LAN: long enough that the tree's copy usually wins, short enough to repair fast. */
const DEFAULT_GRAFT_TIMEOUT_MS = 250;
/**
 * Bytes of facts per pushed frame: 64 KiB, a few hundred small facts. Larger frames save little
 * header but cost memory no allocator recycles: buffers above ~128 KiB come fresh from the kernel,
 * and a first touch of a page costs ~12 µs on the machines measured (about 1 µs per 300-byte fact
 * for each copy of it). A fact larger than the budget still goes alone in its own frame.
 */
const FACTS_PER_FRAME_BUDGET = 64 * 1024;
/** Sketch cells per SketchCells frame, so a reply stays well inside the frame limit. */
const CELLS_PER_FRAME = Math.floor((MAX_FRAME_BYTES - 64) / SKETCH_CELL_BYTES);

const hexOf = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.length).toString('hex');

interface Pending {
  readonly fact: WireFact;
  readonly from: string;
  readonly missing: Set<string>;
  readonly since: number;
}

/** A snapshot being fetched from a peer. */
interface SnapshotTransfer {
  readonly id: Uint8Array;
  readonly through: number;
  readonly bytes: Uint8Array;
  /** The next offset to ask for, bytes received, and the chunks asked for (offset → when). */
  next: number;
  received: number;
  readonly asked: Map<number, number>;
}

/** How a fact not yet admitted arrived by push: relayed on down its origin's tree once admitted. */
interface Arrival {
  /** Its origin's tree, or undefined for a direct push (nothing to relay). */
  readonly origin: string | undefined;
  readonly hops: number;
  /** The node it came from (not sent back to). */
  readonly from: string;
}

/** A fact some peers announced (IHave) that has not arrived: grafted from them in turn. */
interface Announced {
  readonly id: Uint8Array;
  readonly origin: string;
  readonly announcers: { node: string; hops: number }[];
  since: number;
}

interface Peer {
  /** Set once the peer's Hello arrived and checked out. */
  ready: boolean;
  /**
   * Set once any other frame arrived from the peer, which it sends only after taking our Hello:
   * until then our Hello may have been lost, so it is sent again every `helloRetryMs`.
   */
  confirmed: boolean;
  helloSentAt: number;
  incarnation: number;
  /** The anti-entropy round in progress: the peer's cells received so far. */
  round: { cells: Int32Array; received: number; asked: number; whole: boolean; pushed: boolean } | undefined;
  /** Differences the last decoded round with this peer found: a hint for the next prefix size only. */
  lastDifference: number;
  /** Facts to push, flushed on `tick`/`flush`. */
  outbox: WireFact[];
  outboxBytes: number;
  /** Facts to relay down trees, and ids to announce, by origin and hop count ("origin\0hops"). */
  treeOutbox: Map<string, WireFact[]>;
  treeOutboxBytes: number;
  ihaveOutbox: Map<string, Uint8Array[]>;
  /**
   * The next sequence of the peer's log to ask for when streaming it (a hint: the set sketch, not
   * this, decides what is missing; back to 1 when the peer restarts).
   */
  cursor: number;
  /** Streaming: where the current LogRequest ends, and when it was sent (to ask again if lost). */
  streamEnd: number;
  streamAskedAt: number;
  streaming: boolean;
  /** The peer's snapshot being fetched, or handed to the host and not reanchored yet. */
  transfer: SnapshotTransfer | undefined;
  reanchoring: { through: number } | undefined;
  /** When this link's next anti-entropy round is due, and how many rounds in a row found nothing. */
  nextRound: number;
  quietRounds: number;
  /** Rounds put off in a row because pushed facts were still arriving (see tick). */
  deferredRounds: number;
}

export class ReplicaCore {
  readonly nodeId: string;
  private readonly options: Required<Omit<ReplicaOptions, 'nodeId' | 'clusterId' | 'incarnation' | 'sketchKey' | 'address' | 'failureDetector' | 'verifyFact'>>;
  private readonly tree: BroadcastTree;
  /** The overlay must be recomputed from the members before the tree is next used. */
  private treeStale = true;
  private readonly arrivals = new Map<string, Arrival>();
  private readonly announced = new Map<string, Announced>();
  /** Ids a round found missing, asked for at `at` unless they came meanwhile. */
  private readonly deferred = new Map<string, { id: Uint8Array; peer: string; at: number }>();
  /** Recent tree arrivals: fact (hex) → the hops and parent of its first copy. */
  private readonly treeArrivals = new Map<string, { hops: number; from: string }>();
  /** The snapshot this node last offered (peers fetch it by id until the host takes a newer one). */
  private offered: { id: Uint8Array; bytes: Uint8Array; through: number } | undefined;
  /** Every node this one knows, itself included, and whether it is alive: what it tells each new peer. */
  private readonly detector: FailureDetector;
  /** Node id ↔ the link it spoke Hello on (the host names links; the protocol names nodes). */
  private readonly linkOf = new Map<string, string>();
  private readonly nodeOf = new Map<string, string>();
  /** Where the next membership gossip starts among the ready links (large clusters). */
  private gossipTurn = 0;
  private readonly clusterId: Uint8Array;
  private readonly incarnation: number;
  private readonly sketch: RatelessSketch;
  private readonly source: FactSource;
  private readonly verify: ((fact: WireFact) => boolean) | undefined;
  private readonly peers = new Map<string, Peer>();
  /** Ids admitted here (hex). */
  private readonly known = new Set<string>();
  /** Ids handed to the kernel and not answered yet. */
  private readonly admitting = new Set<string>();
  /** Ids the kernel refused: never asked for or handed over again. */
  private readonly refused = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  /** Dep (hex) → the pending facts waiting for it. */
  private readonly waiting = new Map<string, Set<string>>();
  /** Id (hex) → when it was last requested. */
  private readonly requested = new Map<string, number>();
  private actions: ReplicaAction[] = [];
  private now = 0;
  /** When pushed facts (not asked for) last arrived from any peer. */
  private lastPushAt = -Infinity;

  constructor(options: ReplicaOptions, source: FactSource) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('ReplicaCore needs options');
    const { nodeId, clusterId, incarnation, sketchKey } = options;
    if (typeof nodeId !== 'string' || nodeId === '') throw new InvalidArgumentError('nodeId must be a non-empty string');
    if (!(clusterId instanceof Uint8Array) || clusterId.length !== CLUSTER_ID_BYTES) throw new InvalidArgumentError(`clusterId must be ${CLUSTER_ID_BYTES} bytes`);
    if (!Number.isSafeInteger(incarnation) || incarnation < 0) throw new InvalidArgumentError('incarnation must be a non-negative integer');
    const positive = (v: number | undefined, d: number, what: string): number => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError(`${what} must be a positive integer`);
      return x;
    };
    this.options = {
      sketchCells: positive(options.sketchCells, DEFAULT_SKETCH_CELLS, 'sketchCells'),
      firstSketchCells: positive(options.firstSketchCells, DEFAULT_FIRST_SKETCH_CELLS, 'firstSketchCells'),
      antiEntropyMs: positive(options.antiEntropyMs, DEFAULT_ANTI_ENTROPY_MS, 'antiEntropyMs'),
      maxPending: positive(options.maxPending, DEFAULT_MAX_PENDING, 'maxPending'),
      requestRetryMs: positive(options.requestRetryMs, DEFAULT_REQUEST_RETRY_MS, 'requestRetryMs'),
      helloRetryMs: positive(options.helloRetryMs, DEFAULT_HELLO_RETRY_MS, 'helloRetryMs'),
      pendingTimeoutMs: positive(options.pendingTimeoutMs, DEFAULT_PENDING_TIMEOUT_MS, 'pendingTimeoutMs'),
      directPushMax: positive(options.directPushMax, DEFAULT_DIRECT_PUSH_MAX, 'directPushMax'),
      treeFanout: positive(options.treeFanout, DEFAULT_TREE_FANOUT, 'treeFanout'),
      graftTimeoutMs: positive(options.graftTimeoutMs, DEFAULT_GRAFT_TIMEOUT_MS, 'graftTimeoutMs'),
      maxSnapshotBytes: positive(options.maxSnapshotBytes, DEFAULT_MAX_SNAPSHOT_BYTES, 'maxSnapshotBytes'),
    };
    this.tree = new BroadcastTree(nodeId, this.options.treeFanout);
    this.nodeId = nodeId;
    this.clusterId = clusterId.slice();
    this.incarnation = incarnation;
    this.sketch = new RatelessSketch(this.options.sketchCells, sketchKey);
    this.source = source;
    if (options.verifyFact !== undefined && typeof options.verifyFact !== 'function') throw new InvalidArgumentError('verifyFact must be a function');
    this.verify = options.verifyFact;
    const address = options.address ?? '';
    if (typeof address !== 'string') throw new InvalidArgumentError('address must be a string');
    this.detector = new FailureDetector({ nodeId, address, incarnation, refutations: 0, state: 'alive', reporter: '' }, this.detectorHost(), options.failureDetector);
  }

  /** How the failure detector, which speaks of nodes, reaches them over links. */
  private detectorHost(): ConstructorParameters<typeof FailureDetector>[1] {
    const linkTo = (nodeId: string): string | undefined => {
      const link = this.linkOf.get(nodeId);
      return link !== undefined && this.peers.get(link)?.ready === true ? link : undefined;
    };
    const sendTo = (nodeId: string, frame: () => Uint8Array): void => {
      const link = linkTo(nodeId);
      if (link !== undefined) this.send(link, frame());
    };
    return {
      linked: (nodeId) => linkTo(nodeId) !== undefined,
      linkedPeers: () => [...this.linkOf.keys()].filter((n) => linkTo(n) !== undefined),
      ping: (nodeId, nonce) => sendTo(nodeId, () => encodePing(nonce)),
      pong: (nodeId, nonce) => sendTo(nodeId, () => encodePing(nonce, true)),
      pingReq: (nodeId, nonce, target) => sendTo(nodeId, () => encodePingReq(nonce, target)),
      nack: (nodeId, nonce) => sendTo(nodeId, () => encodeNack(nonce)),
      gossip: (statuses, nodeId) => {
        if (nodeId !== undefined) {
          const link = linkTo(nodeId);
          if (link !== undefined) this.sendMembers(link, statuses);
          return;
        }
        // Up to directPushMax members, to every peer; beyond, infection style: to GOSSIP_FANOUT
        // peers in turn, each passing on what changed its own view, so a change reaches all n
        // nodes in ~log n steps instead of crossing all n² links (the full-table sync every few
        // probes catches what a lost frame missed).
        const ready = [...this.peers].filter(([, link]) => link.ready).map(([name]) => name);
        if (ready.length <= this.options.directPushMax) {
          for (const name of ready) this.sendMembers(name, statuses);
          return;
        }
        for (let i = 0; i < GOSSIP_FANOUT; i++) this.sendMembers(ready[(this.gossipTurn + i) % ready.length]!, statuses);
        this.gossipTurn = (this.gossipTurn + GOSSIP_FANOUT) % ready.length;
      },
      changed: (status, previous) => {
        // The host links to members it did not know, by address: one without an address (heard of
        // only through its own Hello, on a link the host already has) waits for its address.
        if (status.address !== '' && (previous === undefined || status.incarnation > previous.incarnation || previous.address === '')) {
          this.emit({ type: 'memberDiscovered', member: { nodeId: status.nodeId, address: status.address, incarnation: status.incarnation } });
        }
        if (previous?.state !== status.state) this.emit({ type: 'memberStatus', member: status, previous: previous?.state });
        if (previous === undefined || (previous.state === 'failed') !== (status.state === 'failed')) this.treeStale = true;
      },
    };
  }

  /** The actions produced since the last call. */
  drain(): ReplicaAction[] {
    const out = this.actions;
    this.actions = [];
    return out;
  }

  /** Facts admitted here, as the sketch counts them. */
  get size(): number {
    return this.sketch.size;
  }

  /** Facts waiting for deps. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * A summary of the admitted set (the sketch's cell 0: count, XOR of ids, XOR of hashes). Equal
   * sets give equal summaries; different sets differ except with negligible probability.
   */
  setSummary(): Int32Array {
    return this.sketch.prefix(1);
  }

  // ----------------------------------------------------------------------------------- inputs

  /** A link to `peer` opened: introduce ourselves. */
  linkUp(peer: string, now: number): void {
    this.now = now;
    const link: Peer = {
      ready: false,
      confirmed: false,
      helloSentAt: now,
      incarnation: -1,
      round: undefined,
      lastDifference: 0,
      outbox: [],
      outboxBytes: 0,
      treeOutbox: new Map(),
      treeOutboxBytes: 0,
      ihaveOutbox: new Map(),
      cursor: 1,
      streamEnd: 0,
      streamAskedAt: 0,
      streaming: false,
      transfer: undefined,
      reanchoring: undefined,
      nextRound: now,
      quietRounds: 0,
      deferredRounds: 0,
    };
    this.peers.set(peer, link);
    this.sendHello(peer, link);
  }

  private sendHello(peer: string, link: Peer): void {
    link.helloSentAt = this.now;
    this.send(peer, encodeHello({ clusterId: this.clusterId, nodeId: this.nodeId, incarnation: this.incarnation, address: this.detector.selfStatus.address }));
  }

  /** The link to `peer` closed: forget its link state (what it has is learnt again on the next link). */
  linkDown(peer: string): void {
    this.peers.delete(peer);
    const nodeId = this.nodeOf.get(peer);
    if (nodeId === undefined) return;
    this.nodeOf.delete(peer);
    // Two nodes that dial each other at once have two links for a moment, and the host closes one:
    // if that was the one registered for the node, the other carries on in its place.
    for (const [name, other] of this.nodeOf) {
      if (other === nodeId && this.peers.get(name)?.ready === true) {
        if (this.linkOf.get(nodeId) === peer) this.linkOf.set(nodeId, name);
        return;
      }
    }
    if (this.linkOf.get(nodeId) === peer) this.linkOf.delete(nodeId);
    this.tree.forget(nodeId);
  }

  /** Time passed: flush pushes, retry requests, start anti-entropy rounds when due. */
  tick(now: number): void {
    this.now = now;
    for (const [name, peer] of this.peers) {
      if (!peer.confirmed && now - peer.helloSentAt >= this.options.helloRetryMs) this.sendHello(name, peer);
      if (peer.ready) {
        this.flushOutbox(name, peer);
        this.flushTree(name, peer);
      }
      // A LogRequest or its answer was lost: ask again from where the stream stands.
      if (peer.ready && peer.transfer !== undefined) this.askChunks(name, peer);
      else if (peer.ready && peer.streaming && peer.reanchoring === undefined && now - peer.streamAskedAt >= this.options.requestRetryMs) this.askLog(name, peer);
    }
    // Each link's rounds are spread so that a node runs about ANTI_ENTROPY_LINKS_PER_PERIOD rounds
    // per period whatever its link count: in a large cluster, rounds on every link each period would
    // mostly race facts still travelling down the trees, and cost O(links) per period.
    let ready = 0;
    for (const peer of this.peers.values()) if (peer.ready) ready++;
    const spread = Math.max(1, Math.ceil(ready / ANTI_ENTROPY_LINKS_PER_PERIOD));
    // While pushed facts keep arriving, the sets differ by what is still on its way: a round then
    // would find the in-flight facts and send them a second time (and a burst bigger than a sketch
    // decodes would stream a whole log). Rounds wait a period for the pushes to land, but never
    // more than MAX_DEFERRED_ROUNDS periods in a row, so a lost fact is found under any load.
    const pushing = now - this.lastPushAt < this.options.antiEntropyMs;
    for (const [name, peer] of this.peers) {
      if (!peer.ready || now < peer.nextRound) continue;
      if (pushing && peer.deferredRounds < MAX_DEFERRED_ROUNDS) {
        peer.deferredRounds++;
        peer.nextRound = now + this.options.antiEntropyMs;
        continue;
      }
      peer.deferredRounds = 0;
      peer.nextRound = now + this.options.antiEntropyMs * spread * 2 ** Math.min(peer.quietRounds, MAX_QUIET_DOUBLINGS);
      this.startRound(name, peer);
    }
    this.retryRequests();
    this.requestDeferred();
    this.expirePending();
    this.graftMissing();
    this.detector.tick(now);
  }

  /** Facts waiting for deps, oldest first. */
  pendingFacts(): WireFact[] {
    return [...this.pending.values()].map((p) => p.fact);
  }

  private expirePending(): void {
    for (const [key, p] of this.pending) {
      if (this.now - p.since < this.options.pendingTimeoutMs) break; // insertion order: oldest first
      this.dropPending(key);
    }
  }

  private dropPending(key: string): void {
    const p = this.pending.get(key);
    if (p === undefined) return;
    this.pending.delete(key);
    this.arrivals.delete(key);
    for (const dep of p.missing) {
      const waiters = this.waiting.get(dep);
      waiters?.delete(key);
      if (waiters?.size === 0) this.waiting.delete(dep);
    }
  }

  /**
   * This node's writer admitted `fact` (the kernel's log has it): push it to every peer, or send it
   * down this node's broadcast tree in a large cluster.
   */
  admittedLocally(fact: WireFact): void {
    const key = hexOf(fact.id);
    if (this.known.has(key)) return;
    this.markKnown(key, fact.id);
    if (this.treeMode()) this.relay(fact, this.nodeId, 1, '');
    // Hop count 0 marks a direct push: the receivers do not relay it.
    else for (const [name, peer] of this.peers) if (peer.ready) this.queueTree(name, peer, this.nodeId, 0, fact);
  }

  private treeMode(): boolean {
    return this.detector.liveCount > this.options.directPushMax;
  }

  /** Sends `fact` of `origin` whole to its tree's eager peers and as an id to its lazy ones. */
  private relay(fact: WireFact, origin: string, hops: number, except: string): void {
    if (this.treeStale) {
      this.tree.setMembers(this.detector.statuses().filter((m) => m.state !== 'failed').map((m) => m.nodeId));
      this.treeStale = false;
    }
    for (const node of this.tree.eager(origin)) {
      const link = node === except ? undefined : this.readyLink(node);
      if (link !== undefined) this.queueTree(link[0], link[1], origin, hops, fact);
    }
    for (const node of this.tree.lazy(origin)) {
      const link = node === except ? undefined : this.readyLink(node);
      if (link === undefined) continue;
      const key = `${origin}\0${hops}`;
      let ids = link[1].ihaveOutbox.get(key);
      if (ids === undefined) link[1].ihaveOutbox.set(key, (ids = []));
      ids.push(fact.id);
    }
  }

  private readyLink(nodeId: string): [string, Peer] | undefined {
    const name = this.linkOf.get(nodeId);
    const link = name === undefined ? undefined : this.peers.get(name);
    return name !== undefined && link?.ready === true ? [name, link] : undefined;
  }

  /**
   * Sends an escrow hint (QuotaRequest, or QuotaDenial when `request` is false) to node `nodeId`
   * over its link; false when there is no ready link to it (a hint is safe to lose).
   */
  sendQuota(nodeId: string, request: boolean, requestId: Uint8Array, resource: number, amount: bigint): boolean {
    const link = this.readyLink(nodeId);
    if (link === undefined) return false;
    this.send(link[0], encodeQuota(request ? FrameType.QuotaRequest : FrameType.QuotaDenial, requestId, resource, amount));
    return true;
  }

  /** Node ids this node has a ready link to. */
  readyNodes(): string[] {
    const out: string[] = [];
    for (const [nodeId] of this.linkOf) if (this.readyLink(nodeId) !== undefined) out.push(nodeId);
    return out;
  }

  /** The kernel's answer to an `admit` action. */
  admitResult(fact: WireFact, from: string, code: number): void {
    const key = hexOf(fact.id);
    this.admitting.delete(key);
    const arrival = this.arrivals.get(key);
    this.arrivals.delete(key);
    if (code === AdmitCode.Ok || code === AdmitCode.DuplicateFact) {
      this.markKnown(key, fact.id);
      // Admitted: now it may go on down its origin's tree (never before: a fact this kernel
      // refuses is not passed on).
      if (code === AdmitCode.Ok && arrival?.origin !== undefined) this.relay(fact, arrival.origin, arrival.hops + 1, arrival.from);
      return;
    }
    // A peer sent a fact this kernel will not take (a forged id, a payload the invariant refuses):
    // remember it so neither pushes nor anti-entropy bring it back again. A refusal that says
    // nothing about the fact (the log is full or failed, a budget is spent) is not remembered:
    // the fact comes again by reconciliation.
    if (FACT_REFUSALS.has(code)) this.refused.add(key);
    this.emit({ type: 'factRefused', peer: from, id: fact.id, code });
  }

  /** Bytes received from `peer`: one whole frame (the host splits the stream with `decodeFrame`). */
  receive(peer: string, bytes: Uint8Array, now: number): void {
    this.now = now;
    const link = this.peers.get(peer);
    if (link === undefined) return;
    const decoded = decodeFrame(bytes);
    if (!decoded.ok) {
      this.emit({ type: 'protocolError', peer, reason: decoded.fault === 'Incomplete' ? 'a partial frame' : `${decoded.fault}: ${decoded.detail}` });
      return;
    }
    const frame = decoded.frame;
    if (frame.type !== FrameType.Hello) link.confirmed = true;
    if (!link.ready && frame.type !== FrameType.Hello) {
      this.emit({ type: 'protocolError', peer, reason: `frame type ${frame.type} before Hello` });
      return;
    }
    this.handle(peer, link, frame);
  }

  // --------------------------------------------------------------------------------- handling

  private handle(peer: string, link: Peer, frame: Frame): void {
    switch (frame.type) {
      case FrameType.Hello:
        return this.onHello(peer, link, frame);
      case FrameType.Facts:
        this.onFacts(peer, frame.facts);
        if (frame.firstSequence > 0) this.onStreamed(peer, link, frame.firstSequence, frame.facts.length);
        return;
      case FrameType.FactRequest:
        return this.onFactRequest(peer, link, frame.ids);
      case FrameType.SketchRequest:
        return this.onSketchRequest(peer, frame.firstCell, frame.cellCount);
      case FrameType.SketchCells:
        return this.onSketchCells(peer, link, frame.firstCell, frame.cells);
      case FrameType.SketchPush:
        if (frame.firstCell !== 0) return;
        if (frame.cells.length === 0) {
          // The peer's round with us could not decode even at its full sketch: too many
          // differences for a sketch, so we stream its log (it streams ours).
          this.emit({ type: 'sketchExhausted', peer });
          return this.startStream(peer, link);
        }
        // The peer holds less and hands us the decoding: a round of ours, its first cells here.
        link.round = { cells: new Int32Array(0), received: 0, asked: frame.cells.length / SKETCH_CELL_WORDS, whole: false, pushed: true };
        return this.onSketchCells(peer, link, 0, frame.cells);
      case FrameType.Ping:
        return this.send(peer, encodePing(frame.nonce, true));
      case FrameType.LogRequest:
        return this.onLogRequest(peer, frame.fromSequence, frame.maxFacts);
      case FrameType.Members:
        return this.detector.learnFrom(this.nodeOf.get(peer) ?? '', frame.members, this.now);
      case FrameType.Pong:
        return this.detector.onPong(frame.nonce);
      case FrameType.PingReq:
        return this.detector.onPingReq(this.nodeOf.get(peer) ?? '', frame.nonce, frame.target, this.now);
      case FrameType.Nack:
        return this.detector.onNack(frame.nonce);
      case FrameType.TreeFacts:
        return this.onTreeFacts(peer, frame.origin, frame.hops, frame.facts);
      case FrameType.IHave:
        return this.onIHave(peer, frame.origin, frame.hops, frame.ids);
      case FrameType.Graft:
        return this.onGraft(peer, link, frame.origin, frame.hops, frame.ids);
      case FrameType.Prune:
        this.tree.prune(frame.origin, this.nodeOf.get(peer) ?? '');
        return;
      case FrameType.SnapshotOffer:
        return this.onSnapshotOffer(peer, link, frame.snapshotId, frame.through, frame.totalBytes);
      case FrameType.SnapshotRequest:
        return this.onSnapshotRequest(peer, frame.snapshotId, frame.offset, frame.length);
      case FrameType.SnapshotChunk:
        return this.onSnapshotChunk(peer, link, frame.snapshotId, frame.offset, frame.bytes);
      case FrameType.QuotaRequest:
      case FrameType.QuotaDenial: {
        const nodeId = this.nodeOf.get(peer);
        if (nodeId === undefined) return;
        this.emit({ type: 'quota', peer, nodeId, request: frame.type === FrameType.QuotaRequest, requestId: frame.requestId, resource: frame.resource, amount: frame.amount });
        return;
      }
    }
  }

  private onHello(peer: string, link: Peer, hello: Extract<Frame, { type: typeof FrameType.Hello }>): void {
    if (!bytesEqual(hello.clusterId, this.clusterId)) {
      this.emit({ type: 'protocolError', peer, reason: 'a node of another cluster' });
      return;
    }
    if (hello.minVersion > PROTOCOL_VERSION || hello.maxVersion < PROTOCOL_VERSION) {
      this.emit({ type: 'protocolError', peer, reason: `speaks versions ${hello.minVersion}..${hello.maxVersion}, not ${PROTOCOL_VERSION}` });
      return;
    }
    // A repeated Hello of the same run (ours to it may have been lost; it keeps saying hello until
    // it hears from us) needs no new round: answer with anything, which confirms our Hello.
    if (link.ready && hello.incarnation === link.incarnation) {
      this.send(peer, encodePing(0));
      return;
    }
    const restarted = link.ready && hello.incarnation !== link.incarnation;
    link.ready = true;
    // A restarted peer may have lost its log's unsynced tail and numbered new facts there.
    link.cursor = 1;
    link.streaming = false;
    link.quietRounds = 0;
    link.nextRound = this.now + this.options.antiEntropyMs;
    link.incarnation = hello.incarnation;
    link.round = undefined;
    this.linkOf.set(hello.nodeId, peer);
    this.nodeOf.set(peer, hello.nodeId);
    // The peer is a member even if its Members frame is lost: its Hello says who it is.
    this.detector.learn({ nodeId: hello.nodeId, address: hello.address, incarnation: hello.incarnation, refutations: 0, state: 'alive', reporter: '' }, this.now);
    this.emit({ type: restarted ? 'peerRestarted' : 'peerReady', peer, nodeId: hello.nodeId, incarnation: hello.incarnation });
    // Tell it every node we know (it may have joined through us alone), then reconcile at once:
    // whatever either side missed while apart is found now, not a period later.
    this.sendMembers(peer, this.detector.statuses());
    // One round reconciles both ways: only the end with the smaller node id starts one at once
    // (the other's first comes a period later), so the same difference is not decoded twice.
    if (this.nodeId < hello.nodeId) this.startRound(peer, link);
  }

  /** Facts a peer sent; `pushedHops` when they came by push (not asked for), with their hop count. */
  private onFacts(peer: string, facts: readonly WireFact[], pushedHops?: number, origin?: string): void {
    const wanted: Uint8Array[] = [];
    let dropped = 0;
    for (const fact of facts) {
      const key = hexOf(fact.id);
      const asked = this.requested.delete(key);
      if (this.seen(key)) continue;
      if (this.verify !== undefined && !this.verify(fact)) {
        // A forged fact: its id is not its content's address. Not remembered as refused (the
        // genuine fact of that id must still get in); the host closes the link that sent it.
        this.emit({ type: 'protocolError', peer, reason: `ForgedFact: ${key.slice(0, 16)}… is not the BLAKE3 address of its deps and payload` });
        return;
      }
      this.announced.delete(key);
      if (pushedHops !== undefined && !asked) this.lastPushAt = this.now;
      // A direct push (hop count 0) took one hop and goes no further.
      if (pushedHops !== undefined && !asked) this.arrivals.set(key, pushedHops === 0 ? { origin: undefined, hops: 1, from: '' } : { origin, hops: pushedHops, from: this.nodeOf.get(peer) ?? '' });
      const missing = new Set<string>();
      for (const dep of fact.deps) {
        const d = hexOf(dep);
        // A dep handed to the kernel already counts: the kernel admits in hand-over order.
        if (!this.known.has(d) && !this.admitting.has(d)) {
          missing.add(d);
          if (!this.admitting.has(d) && !this.pending.has(d) && !this.requested.has(d)) {
            // A fact down a tree usually depends on facts still coming down other origins'
            // trees: ask for the dep only if it has not come within a graft timeout.
            if (pushedHops !== undefined && pushedHops > 0) this.requested.set(d, this.now - this.options.requestRetryMs + this.options.graftTimeoutMs);
            else wanted.push(dep);
          }
        }
      }
      if (missing.size === 0) {
        this.handOver(fact, peer, key);
        continue;
      }
      if (this.pending.size >= this.options.maxPending) {
        this.arrivals.delete(key);
        dropped++;
        continue;
      }
      // Copied: a fact may wait long, and its views would keep its whole frame (up to 1 MiB) alive.
      this.pending.set(key, { fact: { id: fact.id.slice(), deps: fact.deps.map((d) => d.slice()), payload: fact.payload.slice() }, from: peer, missing, since: this.now });
      for (const d of missing) {
        let set = this.waiting.get(d);
        if (set === undefined) this.waiting.set(d, (set = new Set()));
        set.add(key);
      }
    }
    if (dropped > 0) this.emit({ type: 'pendingOverflow', peer, dropped });
    this.request(peer, wanted);
  }

  /**
   * Facts of `origin` coming down its tree. A copy we already had prunes a link: the one it came
   * on, or, when it came by a shorter path than the first copy, the first copy's link instead, so
   * each origin's tree drifts towards shortest paths.
   */
  private onTreeFacts(peer: string, origin: string, hops: number, facts: readonly WireFact[]): void {
    const sender = this.nodeOf.get(peer) ?? '';
    const fresh: WireFact[] = [];
    let prune: string | undefined;
    for (const f of facts) {
      const key = hexOf(f.id);
      if (!this.seen(key)) {
        fresh.push(f);
        if (hops > 0) this.rememberArrival(key, hops, sender);
        continue;
      }
      if (hops === 0) continue; // a direct push: no tree to shape
      // Only a second copy down the tree says a link is redundant: a fact that came first by
      // repair (a requested dep) says nothing about the tree.
      const first = this.treeArrivals.get(key);
      if (first === undefined) continue;
      if (hops < first.hops && first.from !== sender) {
        prune ??= first.from;
        this.treeArrivals.set(key, { hops, from: sender });
      } else prune ??= sender;
    }
    if (prune !== undefined) this.pruneLink(origin, prune);
    this.onFacts(peer, fresh, hops, origin);
  }

  private pruneLink(origin: string, node: string): void {
    this.tree.prune(origin, node);
    const link = this.readyLink(node);
    if (link !== undefined) this.send(link[0], encodePrune(origin));
  }

  private rememberArrival(key: string, hops: number, from: string): void {
    if (this.treeArrivals.size >= REMEMBERED_ARRIVALS) this.treeArrivals.delete(this.treeArrivals.keys().next().value!);
    this.treeArrivals.set(key, { hops, from });
  }

  private onIHave(peer: string, origin: string, hops: number, ids: readonly Uint8Array[]): void {
    const node = this.nodeOf.get(peer) ?? '';
    let shorter = false;
    for (const id of ids) {
      const key = hexOf(id);
      if (this.seen(key)) {
        // Plumtree's optimisation: a much shorter path than the one the tree gave us. Graft it
        // (no facts needed) and prune the old parent.
        const first = this.treeArrivals.get(key);
        if (!shorter && first !== undefined && hops + SHORTER_PATH_HOPS <= first.hops && first.from !== node) {
          shorter = true;
          this.tree.graft(origin, node);
          this.send(peer, encodeGraft(origin, hops, []));
          this.pruneLink(origin, first.from);
          this.treeArrivals.set(key, { hops, from: node });
        }
        continue;
      }
      let a = this.announced.get(key);
      if (a === undefined) this.announced.set(key, (a = { id, origin, announcers: [], since: this.now }));
      a.announcers.push({ node, hops });
    }
  }

  /** Announced facts that did not come through the tree in time: graft them from an announcer. */
  private graftMissing(): void {
    const grafts = new Map<string, { origin: string; hops: number; ids: Uint8Array[] }>();
    for (const [key, a] of this.announced) {
      if (this.now - a.since < this.options.graftTimeoutMs) continue;
      const next = a.announcers.shift();
      if (next === undefined || this.known.has(key)) {
        this.announced.delete(key); // nobody left to ask: anti-entropy will find it
        continue;
      }
      a.since = this.now;
      if (this.readyLink(next.node) === undefined) continue;
      const g = `${next.node}\0${a.origin}`;
      let batch = grafts.get(g);
      if (batch === undefined) grafts.set(g, (batch = { origin: a.origin, hops: next.hops, ids: [] }));
      batch.ids.push(a.id);
    }
    for (const [g, { origin, hops, ids }] of grafts) {
      const node = g.slice(0, g.indexOf('\0'));
      const [name] = this.readyLink(node)!;
      this.tree.graft(origin, node);
      for (let i = 0; i < ids.length; i += MAX_REQUESTED_IDS) this.send(name, encodeGraft(origin, hops, ids.slice(i, i + MAX_REQUESTED_IDS)));
    }
  }

  /**
   * A peer grafted itself onto `origin`'s tree here: it gets the facts it named down the tree (so
   * it relays them on), and the rest from now on.
   */
  private onGraft(peer: string, link: Peer, origin: string, hops: number, ids: readonly Uint8Array[]): void {
    this.tree.graft(origin, this.nodeOf.get(peer) ?? '');
    for (const id of ids) {
      const fact = this.source.get(id);
      if (fact !== undefined) this.queueTree(peer, link, origin, hops, fact);
    }
    this.flushTree(peer, link);
  }

  private onFactRequest(peer: string, link: Peer, ids: readonly Uint8Array[]): void {
    for (const id of ids) {
      const fact = this.source.get(id);
      if (fact !== undefined) this.queuePush(peer, link, fact);
    }
    this.flushOutbox(peer, link);
  }

  private onSketchRequest(peer: string, firstCell: number, cellCount: number): void {
    const end = Math.min(this.sketch.cells, firstCell + Math.min(cellCount, this.sketch.cells));
    for (let at = firstCell; at < end; at += CELLS_PER_FRAME) {
      const upTo = Math.min(end, at + CELLS_PER_FRAME);
      const cells = this.sketch.words.slice(at * SKETCH_CELL_WORDS, upTo * SKETCH_CELL_WORDS);
      this.send(peer, encodeSketchCells(at, cells));
    }
    // A request past the end gets an empty answer, so the asker knows the sketch is exhausted.
    if (firstCell >= end) this.send(peer, encodeSketchCells(firstCell, new Int32Array(0)));
  }

  private onSketchCells(peer: string, link: Peer, firstCell: number, cells: Int32Array): void {
    const round = link.round;
    if (round === undefined || firstCell !== round.received) return; // a stale or out-of-order answer
    const count = cells.length / SKETCH_CELL_WORDS;
    if (count === 0) {
      // The peer's sketch ends before the cells asked for: it cannot say more.
      link.round = undefined;
      this.sketchExhausted(peer, link);
      return;
    }
    if (round.received + count > round.asked) return; // an answer to an earlier, longer request
    if (round.cells.length < round.asked * SKETCH_CELL_WORDS) {
      const grown = new Int32Array(round.asked * SKETCH_CELL_WORDS);
      grown.set(round.cells.subarray(0, round.received * SKETCH_CELL_WORDS));
      round.cells = grown;
    }
    round.cells.set(cells, round.received * SKETCH_CELL_WORDS);
    round.received += count;
    if (round.received < round.asked) return; // more frames of this answer are on their way
    const diff = this.sketch.difference(round.cells.subarray(0, round.received * SKETCH_CELL_WORDS));
    if (diff === null) {
      if (round.received >= this.sketch.cells) {
        if (!round.whole) {
          // The prefix was gathered in two pieces while the peer admitted: its cells may be of
          // different moments. Ask once for the whole prefix at one moment.
          round.whole = true;
          round.received = 0;
          round.asked = this.sketch.cells;
          this.send(peer, encodeSketchRequest(0, round.asked));
          return;
        }
        link.round = undefined;
        this.sketchExhausted(peer, link);
        return;
      }
      // Not enough cells to decode. After cell 0 alone said "different", the next prefix is sized
      // for the expected difference: the set sizes' difference (exact when only one side has
      // extras, as when a node catches up) or what the last round with this peer found,
      // whichever is larger; those cells are asked for on top of cell 0. After that, the prefix
      // grows 4× and is asked for whole: cells gathered in pieces are of different moments once
      // the peer admits between two answers, and such a mix never decodes (a round that kept
      // growing it would end at the full sketch every time the cluster is busy). Re-asking whole
      // prefixes costs their geometric sum: 4× growth keeps it at 1.33× the last prefix and
      // halves the round trips of doubling, for about the same bytes (measured, 1,000 split
      // differences: scripts/reconcile-figures.mjs).
      const first = round.received === 1 && !round.pushed;
      const next = first ? this.firstPrefix(link, round.cells) : PREFIX_GROWTH * round.received;
      round.asked = Math.min(next, this.sketch.cells);
      // The peer holds more than we do (cell 0's count): its extras are likely most of the
      // difference, so let it decode and push them, rather than decode here and ask for each by
      // id (32 bytes a fact). One frame of our cells, if the prefix fits in one.
      if (first && round.cells[SKETCH_CELL_WORDS - 1]! > this.sketch.size && round.asked <= CELLS_PER_FRAME) {
        link.round = undefined;
        this.send(peer, encodeSketchCells(0, this.sketch.prefix(round.asked), true));
        return;
      }
      // Whole, even the first time (one cell more than asking past cell 0): a peer that admitted
      // anything since its cell 0 was sent would otherwise give a mix that never decodes.
      round.whole = true;
      round.received = 0;
      this.send(peer, encodeSketchRequest(0, round.asked));
      return;
    }
    link.round = undefined;
    link.lastDifference = diff.theirs.length + diff.ours.length;
    // Nothing found: this link may wait longer before its next round. Something found: back to
    // the full rate, since more may be missing.
    if (diff.theirs.length === 0 && diff.ours.length === 0) link.quietRounds++;
    else {
      link.quietRounds = 0;
      link.nextRound = Math.min(link.nextRound, this.now + this.options.antiEntropyMs);
    }
    const wanted = diff.theirs.filter((id) => {
      const key = hexOf(id);
      return !this.seen(key);
    });
    // What the peer has and we lack is often on its way down a tree or in a push: ask for it only
    // if it has not come within a graft timeout. (In a busy cluster almost every round finds
    // facts in flight; asking at once fetched each of them twice.)
    for (const id of wanted) this.deferred.set(hexOf(id), { id, peer, at: this.now + this.options.graftTimeoutMs });
    // What the peer lacks is sent at once — except, in a cluster on broadcast trees, in a round
    // this node started: there most of it is on its way down a tree, and the peer's own rounds
    // (a node runs about four per period) pull whatever is really missing, after a graft timeout.
    // A round the peer handed over (it pushed its cells, holding less) is answered in full.
    if (round.pushed || !this.treeMode()) {
      for (const id of diff.ours) {
        const fact = this.source.get(id);
        if (fact !== undefined) this.queuePush(peer, link, fact);
      }
      this.flushOutbox(peer, link);
    }
    this.emit({ type: 'reconciled', peer, theirs: diff.theirs.length, ours: diff.ours.length, cells: round.received });
  }

  private sendMembers(peer: string, members: readonly MemberStatus[]): void {
    for (let i = 0; i < members.length; i += MAX_MEMBERS_PER_FRAME) this.send(peer, encodeMembers(members.slice(i, i + MAX_MEMBERS_PER_FRAME)));
  }

  /** The nodes this one knows, itself included, with what the failure detector believes of each. */
  knownMembers(): MemberStatus[] {
    return this.detector.statuses();
  }

  /**
   * More differences than the sketch decodes: stream the peer's log from the cursor instead.
   * Everything it admitted after the cursor comes, in admission order; what the peer lacks from
   * this node reaches it the same way, by its own rounds.
   */
  private startStream(peer: string, link: Peer): void {
    if (link.streaming) return;
    // One log stream at a time: a node far behind would otherwise stream the same facts from
    // every peer at once. This link's next round asks again, and finds only what is still missing.
    for (const other of this.peers.values()) if (other !== link && other.streaming) return;
    link.streaming = true;
    this.askLog(peer, link);
  }

  private askLog(peer: string, link: Peer): void {
    link.streamEnd = link.cursor + LOG_STREAM_FACTS;
    link.streamAskedAt = this.now;
    this.send(peer, encodeLogRequest(link.cursor, LOG_STREAM_FACTS));
  }

  /** A log stream's frame arrived: move the cursor if it is the next piece; ask on or stop. */
  private onStreamed(peer: string, link: Peer, firstSequence: number, count: number): void {
    if (!link.streaming || firstSequence !== link.cursor) return; // a stale or duplicated piece
    link.cursor += count;
    link.streamAskedAt = this.now;
    if (count === 0) {
      link.streaming = false; // the end of the peer's log
      this.emit({ type: 'streamed', peer, facts: 0, through: link.cursor - 1 });
    } else if (link.cursor >= link.streamEnd) {
      this.emit({ type: 'streamed', peer, facts: count, through: link.cursor - 1 });
      this.askLog(peer, link);
    } else if (link.streamEnd - link.cursor <= LOG_STREAM_FACTS / 2 && link.streamEnd - link.cursor + count > LOG_STREAM_FACTS / 2) {
      // Half of the window has come: ask for the next one now, so the peer serves it while this
      // node admits the rest (one window at a time would leave one side idle at every turn).
      this.emit({ type: 'streamed', peer, facts: count, through: link.cursor - 1 });
      this.send(peer, encodeLogRequest(link.streamEnd, LOG_STREAM_FACTS));
      link.streamEnd += LOG_STREAM_FACTS;
    }
  }

  /** Serves up to `maxFacts` of this node's log from `fromSequence`, in frames; an empty one at the end. */
  private onLogRequest(peer: string, fromSequence: number, maxFacts: number): void {
    if (fromSequence < 1) return;
    if (fromSequence < (this.source.retainedFrom?.() ?? 1)) return this.offerSnapshot(peer, fromSequence);
    const facts = this.source.logFrom(fromSequence, Math.min(maxFacts, LOG_STREAM_FACTS));
    let first = fromSequence;
    let batch: WireFact[] = [];
    let bytes = 0;
    for (const fact of facts) {
      const size = 40 + 32 * fact.deps.length + fact.payload.length;
      if (bytes + size > FACTS_PER_FRAME_BUDGET && batch.length > 0) {
        this.send(peer, encodeFacts(batch, first));
        first += batch.length;
        batch = [];
        bytes = 0;
      }
      batch.push(fact);
      bytes += size;
    }
    // The last piece, or an empty one that says the log ends here.
    this.send(peer, encodeFacts(batch, first));
  }

  // -------------------------------------------------------------------------------- snapshots

  /** The log no longer reaches back to `fromSequence`: offer the host's snapshot instead. */
  private offerSnapshot(peer: string, fromSequence: number): void {
    const snap = this.source.snapshot?.();
    if (snap === undefined || snap.through + 1 < (this.source.retainedFrom?.() ?? 1)) {
      // Nothing can bridge the gap: say the log ends, so the peer stops asking.
      this.emit({ type: 'snapshotUnavailable', peer, fromSequence });
      this.send(peer, encodeFacts([], fromSequence));
      return;
    }
    if (this.offered === undefined || this.offered.through !== snap.through || this.offered.bytes.length !== snap.bytes.length) {
      this.offered = { id: hash(snap.bytes), bytes: snap.bytes, through: snap.through };
    }
    this.send(peer, encodeSnapshotOffer(this.offered.id, this.offered.through, this.offered.bytes.length));
  }

  private onSnapshotRequest(peer: string, id: Uint8Array, offset: number, length: number): void {
    const o = this.offered;
    if (o === undefined || !bytesEqual(o.id, id) || offset + length > o.bytes.length) {
      this.send(peer, encodeSnapshotChunk(id, offset, new Uint8Array(0))); // gone: the peer asks anew
      return;
    }
    this.send(peer, encodeSnapshotChunk(id, offset, o.bytes.subarray(offset, offset + length)));
  }

  private onSnapshotOffer(peer: string, link: Peer, id: Uint8Array, through: number, total: number): void {
    if (!link.streaming || link.reanchoring !== undefined) return; // not asked for
    if (link.transfer !== undefined && bytesEqual(link.transfer.id, id)) return; // the same offer again
    if (total > this.options.maxSnapshotBytes) {
      link.streaming = false;
      link.transfer = undefined;
      this.emit({ type: 'protocolError', peer, reason: `a snapshot of ${total} bytes exceeds maxSnapshotBytes (${this.options.maxSnapshotBytes})` });
      return;
    }
    link.transfer = { id, through, bytes: new Uint8Array(total), next: 0, received: 0, asked: new Map() };
    this.emit({ type: 'snapshotOffered', peer, through, bytes: total });
    this.askChunks(peer, link);
    if (total === 0) this.finishTransfer(peer, link, link.transfer);
  }

  /** Keeps up to SNAPSHOT_WINDOW chunk requests out; asks again for any unanswered too long. */
  private askChunks(peer: string, link: Peer): void {
    const t = link.transfer!;
    for (const [offset, at] of t.asked) {
      if (this.now - at < this.options.requestRetryMs) continue;
      t.asked.set(offset, this.now);
      this.send(peer, encodeSnapshotRequest(t.id, offset, Math.min(MAX_SNAPSHOT_CHUNK_BYTES, t.bytes.length - offset)));
    }
    while (t.asked.size < SNAPSHOT_WINDOW && t.next < t.bytes.length) {
      const length = Math.min(MAX_SNAPSHOT_CHUNK_BYTES, t.bytes.length - t.next);
      t.asked.set(t.next, this.now);
      this.send(peer, encodeSnapshotRequest(t.id, t.next, length));
      t.next += length;
    }
  }

  private onSnapshotChunk(peer: string, link: Peer, id: Uint8Array, offset: number, bytes: Uint8Array): void {
    const t = link.transfer;
    if (t === undefined || !bytesEqual(t.id, id) || !t.asked.has(offset)) return; // stale or duplicated
    if (bytes.length === 0) {
      // The peer took a newer snapshot: ask for the log again, which brings the new offer.
      link.transfer = undefined;
      this.askLog(peer, link);
      return;
    }
    if (bytes.length !== Math.min(MAX_SNAPSHOT_CHUNK_BYTES, t.bytes.length - offset)) {
      link.transfer = undefined;
      link.streaming = false;
      this.emit({ type: 'protocolError', peer, reason: `a snapshot chunk at ${offset} of ${bytes.length} bytes, not the length asked for` });
      return;
    }
    t.asked.delete(offset);
    t.bytes.set(bytes, offset);
    t.received += bytes.length;
    link.streamAskedAt = this.now;
    if (t.received < t.bytes.length) {
      this.askChunks(peer, link);
      return;
    }
    this.finishTransfer(peer, link, t);
  }

  private finishTransfer(peer: string, link: Peer, t: SnapshotTransfer): void {
    link.transfer = undefined;
    if (!bytesEqual(hash(t.bytes), t.id)) {
      link.streaming = false;
      this.emit({ type: 'protocolError', peer, reason: 'a snapshot does not match its BLAKE3 id' });
      return;
    }
    link.reanchoring = { through: t.through };
    this.actions.push({ kind: 'reanchor', peer, snapshot: t.bytes, through: t.through });
  }

  /**
   * The host reanchored on `peer`'s snapshot; `ids` are the facts it added (or all it holds).
   * The stream from that peer goes on after the snapshot.
   */
  reanchored(peer: string, ids: Iterable<Uint8Array>): void {
    const added = [...ids];
    // Facts of the snapshot that were waiting here for deps are in the kernel now: they must not
    // be handed over when marking their deps known releases them.
    for (const id of added) this.dropPending(hexOf(id));
    for (const id of added) this.markKnown(hexOf(id), id);
    const link = this.peers.get(peer);
    if (link?.reanchoring === undefined) return;
    link.cursor = link.reanchoring.through + 1;
    link.reanchoring = undefined;
    if (link.streaming) this.askLog(peer, link);
  }

  /** The host could not reanchor on `peer`'s snapshot (it does not fit the kernel). */
  reanchorFailed(peer: string, reason: string): void {
    const link = this.peers.get(peer);
    if (link !== undefined) {
      link.reanchoring = undefined;
      link.streaming = false;
    }
    this.emit({ type: 'protocolError', peer, reason: `reanchor failed: ${reason}` });
  }

  // ---------------------------------------------------------------------------------- helpers

  private startRound(peer: string, link: Peer): void {
    link.round = { cells: new Int32Array(SKETCH_CELL_WORDS), received: 0, asked: 1, whole: false, pushed: false };
    this.send(peer, encodeSketchRequest(0, 1));
  }

  /**
   * More differences than a sketch decodes: stream the peer's log, and tell it (an empty
   * SketchPush) to stream ours — the difference may well run both ways, and its own rounds would
   * only find that out after another full sketch each. Its cursor on our log keeps a repeated
   * stream from starting over.
   */
  private sketchExhausted(peer: string, link: Peer): void {
    this.emit({ type: 'sketchExhausted', peer });
    this.send(peer, encodeSketchCells(0, new Int32Array(0), true));
    this.startStream(peer, link);
  }

  /** Cells to ask for once cell 0 showed a difference (see onSketchCells). */
  private firstPrefix(link: Peer, cell0: Int32Array): number {
    const countDifference = Math.abs(cell0[SKETCH_CELL_WORDS - 1]! - this.sketch.size);
    const expected = Math.max(1, countDifference, link.lastDifference);
    return Math.max(this.options.firstSketchCells, Math.ceil(CELLS_PER_DIFFERENCE * expected) + PREFIX_SLACK_CELLS);
  }

  /** Hands a fact whose deps are all admitted to the kernel. */
  private handOver(fact: WireFact, from: string, key: string): void {
    this.admitting.add(key);
    const hops = this.arrivals.get(key)?.hops;
    this.actions.push(hops === undefined ? { kind: 'admit', fact, from } : { kind: 'admit', fact, from, hops });
    // Facts waiting for this one follow it at once, without waiting for its answer: the kernel
    // admits them after it (a chain of facts is handed over in one go, not one per round trip).
    this.releaseWaiters(key);
  }

  /** Whether a fact is admitted, being admitted, waiting for deps, or refused here: nothing to fetch. */
  private seen(key: string): boolean {
    return this.known.has(key) || this.admitting.has(key) || this.pending.has(key) || this.refused.has(key);
  }

  private markKnown(key: string, id: Uint8Array): void {
    if (this.known.has(key)) return;
    this.known.add(key);
    this.sketch.add(id);
    this.requested.delete(key);
    this.releaseWaiters(key);
  }

  /** Hands over the pending facts that waited only for `key`. */
  private releaseWaiters(key: string): void {
    const waiters = this.waiting.get(key);
    if (waiters === undefined) return;
    this.waiting.delete(key);
    for (const w of waiters) {
      const p = this.pending.get(w);
      if (p === undefined) continue;
      p.missing.delete(key);
      if (p.missing.size === 0) {
        this.pending.delete(w);
        this.handOver(p.fact, p.from, w);
      }
    }
  }

  private request(peer: string, ids: readonly Uint8Array[]): void {
    const fresh: Uint8Array[] = [];
    for (const id of ids) {
      const key = hexOf(id);
      if (this.requested.has(key)) continue;
      this.requested.set(key, this.now);
      fresh.push(id);
    }
    for (let i = 0; i < fresh.length; i += MAX_REQUESTED_IDS) this.send(peer, encodeFactRequest(fresh.slice(i, i + MAX_REQUESTED_IDS)));
  }

  /** Requests again what was asked for and never came, from the peer a waiting fact came from. */
  /** Requests the ids a round found missing that have still not come. */
  private requestDeferred(): void {
    const due = new Map<string, Uint8Array[]>();
    for (const [key, d] of this.deferred) {
      if (d.at > this.now) continue;
      this.deferred.delete(key);
      if (this.seen(key) || !this.peers.get(d.peer)?.ready) continue;
      let list = due.get(d.peer);
      if (list === undefined) due.set(d.peer, (list = []));
      list.push(d.id);
    }
    for (const [peer, ids] of due) this.request(peer, ids);
  }

  private retryRequests(): void {
    const again = new Map<string, Uint8Array[]>();
    for (const [dep, at] of this.requested) {
      if (this.now - at < this.options.requestRetryMs) continue;
      this.requested.delete(dep);
      const waiter = this.waiting.get(dep);
      const from = waiter === undefined ? undefined : this.pending.get(waiter.values().next().value ?? '')?.from;
      if (from === undefined || !this.peers.get(from)?.ready) continue;
      let list = again.get(from);
      if (list === undefined) again.set(from, (list = []));
      list.push(Buffer.from(dep, 'hex'));
    }
    for (const [peer, ids] of again) this.request(peer, ids.map((b) => new Uint8Array(b)));
  }

  private queuePush(peer: string, link: Peer, fact: WireFact): void {
    const bytes = 40 + 32 * fact.deps.length + fact.payload.length;
    if (link.outboxBytes + bytes > FACTS_PER_FRAME_BUDGET) this.flushOutbox(peer, link);
    link.outbox.push(fact);
    link.outboxBytes += bytes;
  }

  private queueTree(peer: string, link: Peer, origin: string, hops: number, fact: WireFact): void {
    const bytes = 40 + 32 * fact.deps.length + fact.payload.length;
    if (link.treeOutboxBytes + bytes > FACTS_PER_FRAME_BUDGET) this.flushTree(peer, link);
    const key = `${origin}\0${hops}`;
    let facts = link.treeOutbox.get(key);
    if (facts === undefined) link.treeOutbox.set(key, (facts = []));
    facts.push(fact);
    link.treeOutboxBytes += bytes;
  }

  private flushTree(peer: string, link: Peer): void {
    const split = (key: string): [string, number] => {
      const at = key.lastIndexOf('\0');
      return [key.slice(0, at), Number(key.slice(at + 1))];
    };
    for (const [key, facts] of link.treeOutbox) this.send(peer, encodeTreeFacts(...split(key), facts));
    for (const [key, ids] of link.ihaveOutbox) for (let i = 0; i < ids.length; i += MAX_REQUESTED_IDS) this.send(peer, encodeIHave(...split(key), ids.slice(i, i + MAX_REQUESTED_IDS)));
    link.treeOutbox.clear();
    link.ihaveOutbox.clear();
    link.treeOutboxBytes = 0;
  }

  private flushOutbox(peer: string, link: Peer): void {
    if (link.outbox.length === 0) return;
    this.send(peer, encodeFacts(link.outbox));
    link.outbox = [];
    link.outboxBytes = 0;
  }

  private send(peer: string, frame: Uint8Array): void {
    this.actions.push({ kind: 'send', peer, frame });
  }

  private emit(event: ReplicaEvent): void {
    this.actions.push({ kind: 'event', event });
  }
}
