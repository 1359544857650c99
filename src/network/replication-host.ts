/**
 * ReplicationHost: the replication worker's whole job. It owns every socket and one ReplicaCore,
 * and connects the two to the admitting thread's rings:
 *
 *   kernel ──Local/answers──▶ toNet ring ──▶ host ──▶ core ──frames──▶ sockets
 *   kernel ◀──Admit──────── toKernel ring ◀── host ◀── core ◀──frames── sockets
 *
 * Frames are cut by length, authenticated by the link (TLS), decoded and checked by the core, and
 * every received fact's content address is verified here, so the admitting thread does only the
 * exact admission. Nothing here ever waits on the admitting thread: a full toKernel ring queues
 * hand-overs in a bounded backlog (then sockets stop being read: TCP pushes back on the peers),
 * and a slow peer's link drops fact frames beyond a bound instead of growing (reconciliation
 * brings it what it missed).
 */
import type net from 'node:net';
import { AdmitCode } from '../codes.js';
import { bytesEqual } from '../core/bytes.js';
import { factId } from '../core/fact.js';
import { SpscRing } from '../core/spsc-ring.js';
import { waitAsync } from '../core/wait-async.js';
import { DurabilityControl, LogStatus } from '../persistence/durability-control.js';
import { listSegments } from '../persistence/data-dir.js';
import { scanLog } from '../persistence/wal-scan.js';
import { copyRecordFact } from '../persistence/wal-record.js';
import { FrameType, type WireFact } from '../replication/frames.js';
import { ReplicaCore, type ReplicaAction } from '../replication/replica-core.js';
import { ByteSlab } from './byte-slab.js';
import { FactStore } from './fact-store.js';
import { parseAddress } from './address.js';
import { Fifo } from '../core/fifo.js';
import { FrameSplitter } from './frame-splitter.js';
import { createLinkServer, dialLink } from './link-security.js';
import { RecordKind, copyFact, readHeader, recordBytes, writeFactRecord, type RecordHeader } from './ring-records.js';
import { ReplicationStats, Stat, type RejectReason } from './replication-stats.js';
import type { FromWorker, PeerState, PeerStatus, ReplicationWorkerData, ToWorker } from './worker-protocol.js';

/** The core's clock and the flushing of pushes run this often when nothing else wakes the host. */
const TICK_MS = 5;
/**
 * Hand-overs queued beyond the toKernel ring before sockets stop being read: about a second of
 * admissions at full speed, a few tens of MB at most.
 */
const MAX_BACKLOG = 65_536;
/**
 * While local facts wait for the WAL's fsync, the host sleeps on the durable watermark too (the
 * persistence worker notifies it after every fsync), at most this long between looks.
 */
const DURABLE_WAIT_MS = 50;
/** The ring wait: it wakes on any record; the timeout only bounds a lost wake-up. */
const RING_WAIT_MS = 1000;
/** Peer status is posted to the admitting thread at most this often (and on every change of state). */
const STATUS_EVERY_MS = 250;

interface Link {
  readonly name: string;
  readonly socket: net.Socket;
  readonly direction: 'out' | 'in';
  /** The address dialled (out) or the remote address (in). */
  readonly address: string;
  readonly splitter: FrameSplitter;
  state: PeerState;
  nodeId: string | undefined;
  incarnation: number | undefined;
  bytesIn: number;
  bytesOut: number;
  closing: boolean;
}

/** A fact handed to the kernel, and the link it came from (the core wants both back with the answer). */
interface HandOver {
  readonly fact: WireFact;
  readonly from: string;
}

interface Dial {
  attempts: number;
  timer: NodeJS.Timeout | undefined;
  link: string | undefined;
  lastError: string | undefined;
  /** The node this address turned out to be (learnt from its Hello). */
  nodeId: string | undefined;
}

export class ReplicationHost {
  private core!: ReplicaCore;
  private readonly store: FactStore;
  private readonly toNet: SpscRing;
  private readonly toKernel: SpscRing;
  private readonly stats: ReplicationStats;
  private readonly durable: DurabilityControl | undefined;
  private readonly links = new Map<string, Link>();
  /** Addresses this node keeps dialling: the configured peers and the members it learnt. */
  private readonly dials = new Map<string, Dial>();
  /** Facts handed to the kernel, oldest first, matched to its answers by order. */
  private readonly handed = new Fifo<HandOver>();
  /** Hand-overs waiting for room in the toKernel ring. */
  private readonly backlog = new Fifo<HandOver>();
  private readingPaused = false;
  /** Local facts not yet fsynced (durable kernels), in order, with their WAL sequences. */
  private readonly awaiting = new Fifo<{ fact: WireFact; sequence: number }>();
  private server: net.Server | undefined;
  /** The address peers are told to dial (the bound one unless `advertise` says otherwise). */
  private address = '';
  private linkCounter = 0;
  private closed = false;
  private ticker: NodeJS.Timeout | undefined;
  private statusDirty = true;
  private lastStatusAt = 0;
  private readonly header: RecordHeader = { kind: 0, depCount: 0, code: 0, sequence: 0, payloadLength: 0 };
  private readonly slab = new ByteSlab();

  constructor(
    private readonly data: ReplicationWorkerData,
    private readonly post: (message: FromWorker) => void,
  ) {
    this.toNet = SpscRing.attach(data.toNet);
    this.toKernel = SpscRing.attach(data.toKernel);
    this.stats = new ReplicationStats(data.stats);
    this.durable = data.durable === undefined ? undefined : new DurabilityControl(data.durable.control);
    this.store = new FactStore(this.firstRetainedSequence());
  }

  /** The protocol core, once the bound address (which it tells peers) is known. */
  private createCore(address: string): ReplicaCore {
    const data = this.data;
    return new ReplicaCore(
      {
        nodeId: data.nodeId,
        clusterId: data.clusterId,
        incarnation: data.incarnation,
        sketchKey: data.sketchKey,
        sketchCells: data.tuning.sketchCells,
        antiEntropyMs: data.tuning.antiEntropyMs,
        maxPending: data.tuning.maxPending,
        failureDetector: data.tuning.probeMs === undefined ? undefined : { probeMs: data.tuning.probeMs, probeTimeoutMs: Math.max(1, Math.floor(data.tuning.probeMs / 2)) },
        verifyFact: (fact) => bytesEqual(factId(fact.deps, fact.payload), fact.id),
        address,
      },
      this.store,
    );
  }

  /** The first sequence the WAL still holds (older facts were compacted into a checkpoint). */
  private firstRetainedSequence(): number {
    if (this.data.durable === undefined) return 1;
    const segments = listSegments(this.data.durable.dir);
    return segments.length === 0 ? this.data.durable.through + 1 : segments[0]!.firstSequence;
  }

  /** Loads the kernel's history, listens, dials the peers; resolves with the bound address. */
  async start(): Promise<string> {
    const { host, port } = parseAddress(this.data.listen);
    const server = createLinkServer(
      this.data.security,
      (socket) => this.adopt(socket, 'in', `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`),
      () => this.stats.reject('Handshake'),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => undefined);
    const bound = server.address() as net.AddressInfo;
    const boundAddress = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
    this.address = this.data.advertise ?? boundAddress;
    this.core = this.createCore(this.address);
    this.loadHistory();
    for (const peer of this.data.peers) this.addPeer(peer);
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    void this.consume();
    return boundAddress;
  }

  /** A durable kernel's facts through `through`, read back from its WAL: what this node already has. */
  private loadHistory(): void {
    const durable = this.data.durable;
    if (durable === undefined || this.store.nextSequence > durable.through) return;
    scanLog(durable.dir, {
      fromSequence: this.store.nextSequence,
      salvage: true,
      visit: (bytes, words, offset, sequence) => {
        if (sequence < this.store.nextSequence || sequence > durable.through) return;
        const fact = copyRecordFact(bytes, words, offset);
        this.store.append(fact);
        this.core.admittedLocally(fact);
      },
    });
    this.core.drain();
    this.noteLog();
  }

  // ------------------------------------------------------------------------- the kernel's ring

  /** Reads the toNet ring until closed: local facts and the kernel's answers. */
  private async consume(): Promise<void> {
    const ring = this.toNet;
    while (!this.closed) {
      if (!this.drainToNet()) {
        // One ring wait at a time, kept across turns (two would fight over the ring's sleep flag),
        // raced against the durable watermark while local facts wait for their fsync.
        this.ringWait ??= ring.waitForDataAsync(ring.tail(), RING_WAIT_MS).finally(() => (this.ringWait = undefined));
        const durable = this.awaiting.size > 0 ? this.durableWatermarkWait() : undefined;
        await (durable === undefined ? this.ringWait : Promise.race([this.ringWait, durable]));
        // Facts the fsync just released go out now, not at the next tick (up to 5 ms later).
        if (this.releaseDurable()) {
          this.core.tick(Date.now());
          this.perform();
        }
        if (ring.closed && ring.head() === ring.tail()) break;
        continue;
      }
      this.releaseDurable();
      this.feedKernel();
      this.core.tick(Date.now());
      this.perform();
      // Let the event loop run between drains: while the admitting thread keeps the ring busy,
      // this loop would otherwise never await, and sockets and messages (peers' frames, quota
      // requests) would wait until the writer paused.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Handles every record the toNet ring holds; false if it held none. */
  private drainToNet(): boolean {
    const ring = this.toNet;
    let tail = ring.tail();
    const head = ring.head();
    if (tail === head) return false;
    while (tail !== head) {
      const start = ring.messageStart(tail);
      const offset = ring.offsetOf(start);
      const bytes = ring.lengthAt(offset);
      this.onRecord(offset);
      tail = (start + bytes) | 0;
    }
    ring.release(tail);
    return true;
  }

  private onRecord(offset: number): void {
    const h = readHeader(this.toNet, offset, this.header);
    if (h.kind === RecordKind.Local) {
      const fact = copyFact(this.toNet, offset, h, this.slab);
      if (this.durable !== undefined && h.sequence > this.durable.durable) {
        // A fact leaves this node only once it is in the WAL for good: a peer must never hold a
        // fact its origin could forget in a crash.
        this.awaiting.push({ fact, sequence: h.sequence });
        this.stats.set(Stat.AwaitingDurable, this.awaiting.size);
      } else this.admittedLocally(fact);
      return;
    }
    const handed = this.handed.shift();
    if (handed === undefined) return; // cannot happen: answers follow hand-overs one for one
    if (h.kind === RecordKind.Admitted) {
      this.store.append(handed.fact);
      this.stats.add(Stat.FactsAdmitted);
      this.core.admitResult(handed.fact, handed.from, AdmitCode.Ok);
    } else {
      if (h.code !== AdmitCode.DuplicateFact) this.stats.add(Stat.FactsRefused);
      this.core.admitResult(handed.fact, handed.from, h.code);
    }
    this.stats.set(Stat.InFlight, this.handed.size + this.backlog.size);
  }

  private admittedLocally(fact: WireFact): void {
    this.store.append(fact);
    this.core.admittedLocally(fact);
  }

  private ringWait: Promise<boolean> | undefined;

  /**
   * Resolves when the durable watermark moves (or after DURABLE_WAIT_MS), so a fact is sent as
   * soon as its fsync completes; at once when the next waiting fact is already durable; undefined
   * when the log has failed (nothing more will become durable).
   */
  private durableWatermarkWait(): Promise<unknown> | undefined {
    const control = this.durable;
    if (control === undefined || control.status === LogStatus.Failed) return undefined;
    const seen = Atomics.load(control.ctl, control.durableWord);
    if ((this.awaiting.peek()?.sequence ?? Infinity) <= control.durable) return Promise.resolve();
    return waitAsync(control.ctl, control.durableWord, seen, DURABLE_WAIT_MS);
  }

  /** Hands the core every local fact the WAL has fsynced since; returns whether there was any. */
  private releaseDurable(): boolean {
    if (this.durable === undefined || this.awaiting.size === 0) return false;
    if (this.durable.status === LogStatus.Failed) return false; // never durable: never sent
    const durable = this.durable.durable;
    let released = false;
    while ((this.awaiting.peek()?.sequence ?? Infinity) <= durable) {
      this.admittedLocally(this.awaiting.shift()!.fact);
      released = true;
    }
    this.stats.set(Stat.AwaitingDurable, this.awaiting.size);
    return released;
  }

  private noteLog(): void {
    this.stats.set(Stat.LogFacts, this.store.size);
    this.stats.set(Stat.LogBytes, this.store.bytes);
  }

  /** Moves hand-overs from the backlog into the toKernel ring while it has room. */
  private feedKernel(): void {
    if (this.backlog.size === 0) return;
    const ring = this.toKernel;
    let moved = 0;
    for (let next = this.backlog.peek(); next !== undefined; next = this.backlog.peek()) {
      const { fact } = next;
      const bytes = recordBytes(fact.deps.length, fact.payload.length);
      const at = ring.reserve(bytes);
      if (at < 0) break;
      writeFactRecord(ring.bytes, at, bytes, RecordKind.Admit, 0, fact.id, fact.deps, fact.payload);
      ring.commit();
      this.handed.push(this.backlog.shift()!);
      moved++;
    }
    if (moved > 0) ring.publish();
    if (this.readingPaused && this.backlog.size < MAX_BACKLOG / 2) this.setReading(true);
  }

  private setReading(on: boolean): void {
    this.readingPaused = !on;
    for (const link of this.links.values()) {
      if (on) link.socket.resume();
      else link.socket.pause();
    }
  }

  // ------------------------------------------------------------------------------- the core

  private tick(): void {
    if (this.closed) return;
    this.releaseDurable();
    this.feedKernel();
    this.core.tick(Date.now());
    this.perform();
    const now = Date.now();
    if (this.statusDirty && now - this.lastStatusAt >= STATUS_EVERY_MS) this.postStatus(now);
    this.stats.set(Stat.Pending, this.core.pendingCount);
    this.noteLog();
  }

  /** Carries out what the core asked for. */
  private perform(): void {
    let actions: ReplicaAction[];
    const corked = new Set<net.Socket>();
    while ((actions = this.core.drain()).length > 0) {
      for (const a of actions) {
        if (a.kind === 'send') this.send(a.peer, a.frame, corked);
        else if (a.kind === 'admit') this.backlog.push({ fact: a.fact, from: a.from });
        else if (a.kind === 'reanchor') this.core.reanchorFailed(a.peer, 'this node cannot reanchor on a snapshot yet');
        else this.onEvent(a.event);
      }
    }
    for (const socket of corked) socket.uncork();
    if (this.backlog.size > 0) {
      this.feedKernel();
      if (!this.readingPaused && this.backlog.size >= MAX_BACKLOG) this.setReading(false);
    }
  }

  private send(name: string, frame: Uint8Array, corked: Set<net.Socket>): void {
    const link = this.links.get(name);
    if (link === undefined || link.closing || link.socket.destroyed) return;
    const type = frame[4];
    const carriesFacts = type === FrameType.Facts || type === FrameType.TreeFacts;
    if (carriesFacts && link.socket.writableLength > this.data.tuning.maxLinkBufferBytes) {
      this.stats.add(Stat.SlowPeerDrops);
      return;
    }
    if (!corked.has(link.socket)) {
      link.socket.cork();
      corked.add(link.socket);
    }
    link.socket.write(frame);
    link.bytesOut += frame.length;
    this.stats.add(Stat.BytesOut, frame.length);
    this.stats.add(Stat.FramesOut);
    // The fact count (u16): after the header (8) and the first sequence (8) in a Facts frame;
    // after the header, origin length (1), hops (1) and origin in a TreeFacts frame.
    const countAt = type === FrameType.Facts ? 16 : type === FrameType.TreeFacts ? 10 + frame[8]! : 0;
    if (countAt > 0) this.stats.add(Stat.FactsSent, frame[countAt]! | (frame[countAt + 1]! << 8));
  }

  private onEvent(event: Extract<ReplicaAction, { kind: 'event' }>['event']): void {
    switch (event.type) {
      case 'peerReady':
      case 'peerRestarted':
        return this.onPeerReady(event.peer, event.nodeId, event.incarnation);
      case 'protocolError': {
        const reason: RejectReason = event.reason.startsWith('ForgedFact') ? 'ForgedFact' : event.reason.startsWith('a node of another cluster') ? 'OtherCluster' : /^[A-Z][A-Za-z]+:/.test(event.reason) ? 'MalformedFrame' : 'ProtocolError';
        return this.closeLink(event.peer, reason, event.reason);
      }
      case 'reconciled':
        this.stats.add(Stat.Rounds);
        this.stats.add(Stat.Differences, event.theirs + event.ours);
        return;
      case 'memberDiscovered': {
        const { nodeId, address } = event.member;
        if (nodeId !== this.data.nodeId && address !== '' && !this.readyNode(nodeId)) this.addPeer(address);
        return;
      }
      case 'memberStatus':
        this.statusDirty = true;
        return;
      case 'quota':
        this.post({ type: 'quota', nodeId: event.nodeId, request: event.request, requestId: event.requestId, resource: event.resource, amount: event.amount });
        return;
      default:
        return;
    }
  }

  private readyNode(nodeId: string): Link | undefined {
    for (const link of this.links.values()) if (link.nodeId === nodeId && link.state === 'ready' && !link.closing) return link;
    return undefined;
  }

  /**
   * A link's Hello checked out. Two nodes that dial each other end up with two links: both keep
   * the one dialled by the node with the smaller id, so they close the same one.
   */
  private onPeerReady(name: string, nodeId: string, incarnation: number): void {
    const link = this.links.get(name);
    if (link === undefined) return;
    if (nodeId === this.data.nodeId) {
      this.closeLink(name, 'SelfLink', 'a link to this node itself');
      return;
    }
    const other = this.readyNode(nodeId);
    link.nodeId = nodeId;
    link.incarnation = incarnation;
    link.state = 'ready';
    if (link.direction === 'out') {
      const dial = this.dials.get(link.address);
      if (dial !== undefined) {
        dial.attempts = 0;
        dial.lastError = undefined;
        dial.nodeId = nodeId;
      }
    }
    this.statusDirty = true;
    if (other !== undefined && other !== link) {
      const keepOut = this.data.nodeId < nodeId;
      const drop = (link.direction === 'out') === keepOut ? other : link;
      this.closeLink(drop.name, 'Duplicate', 'a second link to the same node');
    }
  }

  // ------------------------------------------------------------------------------ sockets

  addPeer(address: string): void {
    if (this.closed || this.dials.has(address) || address === this.address) return;
    this.dials.set(address, { attempts: 0, timer: undefined, link: undefined, lastError: undefined, nodeId: undefined });
    this.dial(address);
    this.statusDirty = true;
  }

  removePeer(address: string): void {
    const dial = this.dials.get(address);
    if (dial === undefined) return;
    this.dials.delete(address);
    if (dial.timer !== undefined) clearTimeout(dial.timer);
    if (dial.link !== undefined) this.closeLink(dial.link, undefined, 'peer removed');
    this.statusDirty = true;
  }

  private dial(address: string): void {
    const dial = this.dials.get(address);
    if (dial === undefined || this.closed) return;
    dial.timer = undefined;
    // A node already linked the other way needs no second link (it would be closed as a duplicate).
    if (dial.nodeId !== undefined && this.readyNode(dial.nodeId) !== undefined) {
      // Looked at again when that link closes (onClose), and now and then in case it never does.
      dial.timer = setTimeout(() => this.dial(address), this.data.tuning.reconnectMaxMs);
      dial.timer.unref?.();
      return;
    }
    const { host, port } = parseAddress(address);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      dial.lastError = `not a host:port address: ${address}`;
      return;
    }
    const socket = dialLink(this.data.security, host, port, () => {
      const link = this.links.get(name);
      if (link === undefined) return;
      link.state = 'handshaking';
      this.core.linkUp(name, Date.now());
      this.perform();
    });
    const name = this.adopt(socket, 'out', address, true);
    dial.link = name;
  }

  private redialLater(address: string, dial: Dial): void {
    if (this.closed || !this.dials.has(address) || dial.timer !== undefined) return;
    const { reconnectMinMs, reconnectMaxMs } = this.data.tuning;
    const delay = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(dial.attempts, 16));
    dial.attempts++;
    // ±25% jitter, so nodes that lost each other at once do not redial in lockstep.
    dial.timer = setTimeout(() => this.dial(address), Math.round(delay * (0.75 + Math.random() * 0.5)));
    dial.timer.unref?.();
  }

  /** Takes a socket under management; returns its link name. Accepted links are up at once. */
  private adopt(socket: net.Socket, direction: 'out' | 'in', address: string, dialled = false): string {
    const name = `${direction}:${address}#${++this.linkCounter}`;
    const link: Link = { name, socket, direction, address, splitter: new FrameSplitter(), state: dialled ? 'connecting' : 'handshaking', nodeId: undefined, incarnation: undefined, bytesIn: 0, bytesOut: 0, closing: false };
    this.links.set(name, link);
    this.stats.add(Stat.LinksOpened);
    this.statusDirty = true;
    socket.on('data', (chunk: Buffer) => this.onData(link, chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const dial = direction === 'out' ? this.dials.get(address) : undefined;
      if (dial !== undefined) dial.lastError = error.code ?? error.message;
      if (direction === 'out' && link.state === 'connecting' && (error.code === 'ERR_SSL_SSLV3_ALERT_ILLEGAL_PARAMETER' || /ssl|tls/i.test(error.code ?? ''))) this.stats.reject('Handshake');
    });
    socket.on('close', () => this.onClose(link));
    if (this.readingPaused) socket.pause();
    if (!dialled) {
      this.core.linkUp(name, Date.now());
      this.perform();
    }
    return name;
  }

  private onData(link: Link, chunk: Buffer): void {
    if (link.closing) return;
    link.bytesIn += chunk.length;
    this.stats.add(Stat.BytesIn, chunk.length);
    const now = Date.now();
    const fault = link.splitter.push(chunk, (frame) => {
      this.stats.add(Stat.FramesIn);
      this.core.receive(link.name, frame, now);
    });
    if (fault !== undefined) this.closeLink(link.name, fault, `${fault} from ${link.address}`);
    this.perform();
  }

  private closeLink(name: string, reason: RejectReason | undefined, detail: string): void {
    const link = this.links.get(name);
    if (link === undefined || link.closing) return;
    link.closing = true;
    if (reason !== undefined) this.stats.reject(reason);
    if (link.direction === 'out') {
      const dial = this.dials.get(link.address);
      if (dial !== undefined) dial.lastError = detail;
    }
    link.socket.destroy();
  }

  private onClose(link: Link): void {
    if (!this.links.delete(link.name)) return;
    this.stats.add(Stat.LinksClosed);
    this.statusDirty = true;
    this.core.linkDown(link.name);
    this.perform();
    if (link.direction === 'out') {
      const dial = this.dials.get(link.address);
      if (dial !== undefined && dial.link === link.name) {
        dial.link = undefined;
        this.redialLater(link.address, dial);
      }
    }
    // Addresses that stood back because their node was reachable through this link dial again.
    if (link.nodeId !== undefined && this.readyNode(link.nodeId) === undefined) {
      for (const [address, dial] of this.dials) if (dial.nodeId === link.nodeId && dial.link === undefined && dial.timer === undefined) this.dial(address);
    }
  }

  // ------------------------------------------------------------------------------ status

  private postStatus(now: number): void {
    this.statusDirty = false;
    this.lastStatusAt = now;
    this.post({ type: 'peers', peers: this.peerStatus() });
  }

  peerStatus(): PeerStatus[] {
    const members = new Map(this.core.knownMembers().map((m) => [m.nodeId, m]));
    const out: PeerStatus[] = [];
    const dialled = new Set<string>();
    for (const [address, dial] of this.dials) {
      // A node this address reached that is linked the other way: that link is this peer's.
      const covering = dial.link === undefined && dial.nodeId !== undefined ? this.readyNode(dial.nodeId) : undefined;
      const link = covering ?? (dial.link === undefined ? undefined : this.links.get(dial.link));
      if (link !== undefined) dialled.add(link.name);
      const nodeId = link?.nodeId ?? dial.nodeId;
      out.push({
        address,
        nodeId,
        direction: 'out',
        state: link?.state ?? 'backoff',
        member: nodeId === undefined ? undefined : members.get(nodeId)?.state,
        incarnation: link?.incarnation,
        bytesIn: link?.bytesIn ?? 0,
        bytesOut: link?.bytesOut ?? 0,
        attempts: dial.attempts,
        lastError: covering === undefined ? dial.lastError : undefined,
      });
    }
    for (const link of this.links.values()) {
      if (link.direction !== 'in' || dialled.has(link.name)) continue;
      out.push({
        address: link.address,
        nodeId: link.nodeId,
        direction: 'in',
        state: link.state,
        member: link.nodeId === undefined ? undefined : members.get(link.nodeId)?.state,
        incarnation: link.incarnation,
        bytesIn: link.bytesIn,
        bytesOut: link.bytesOut,
        attempts: 0,
        lastError: undefined,
      });
    }
    return out;
  }

  handle(message: ToWorker): void {
    if (message.type === 'addPeer') this.addPeer(message.address);
    else if (message.type === 'removePeer') this.removePeer(message.address);
    else if (message.type === 'quota') {
      if (this.closed) return;
      this.core.sendQuota(message.nodeId, message.request, message.requestId, message.resource, message.amount);
      this.perform();
    } else void this.close();
  }

  /** Stops everything: what the toNet ring holds is processed first, pushes flushed, then sockets closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    // One last pass, so facts admitted just before close still go out.
    this.drainToNet();
    this.toNet.close();
    this.releaseDurable();
    this.core.tick(Date.now());
    this.perform();
    this.closed = true;
    if (this.ticker !== undefined) clearInterval(this.ticker);
    for (const dial of this.dials.values()) if (dial.timer !== undefined) clearTimeout(dial.timer);
    const closing: Promise<void>[] = [];
    for (const link of this.links.values()) {
      closing.push(new Promise((resolve) => link.socket.once('close', () => resolve())));
      link.socket.end();
      setTimeout(() => link.socket.destroy(), 200).unref();
    }
    const server = this.server;
    if (server !== undefined) closing.push(new Promise((resolve) => server.close(() => resolve())));
    await Promise.all(closing);
    this.toKernel.close();
    this.post({ type: 'closed' });
  }
}
