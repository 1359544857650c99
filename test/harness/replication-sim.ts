/**
 * A deterministic simulator of a replicated cluster: real kernels (GCounter, coordination-free)
 * behind real ReplicaCores, a virtual clock, and a network that loses, duplicates, delays and
 * reorders frames and can be partitioned (into up to three groups, changing at random — flapping —
 * and one time in three asymmetrically); nodes crash (losing the unsynced tail of their log) and
 * restart with a new incarnation. Everything random comes from one seeded PRNG, so a seed replays
 * exactly.
 *
 * Checked after every step: the cores never hand the kernel a fact before its deps, nor one it
 * already has (the kernel would answer CausalityViolation / DuplicateFact). Checked after healing:
 * every node holds the same set of facts and the same state, and every fact some node had made
 * durable is everywhere.
 */
import {
  AdmitCode,
  BoundedCounterState,
  BoundedGCounterInvariant,
  EscrowAgent,
  EscrowKind,
  EscrowLedger,
  FrameType,
  GCounterInvariant,
  RESTORE_IMAGE,
  Resource,
  type DomainImage,
  Kernel,
  ReplicaCore,
  decodeEscrowFact,
  factId,
  u64le,
  type ReplicaAction,
  type WireFact,
} from '../helpers/lib.js';

export interface SimulationOptions {
  readonly seed: number;
  readonly nodes: number;
  /** Virtual ms of chaos (faults on), then the cluster is healed. */
  readonly chaosMs?: number;
  /** Probability that a frame is lost / duplicated while chaos is on. */
  readonly loss?: number;
  readonly duplication?: number;
  /** Frame delay is uniform in [1, maxDelayMs] ms (reordering comes with it). */
  readonly maxDelayMs?: number;
  /** Mean ms between local admissions on the whole cluster. */
  readonly admitEveryMs?: number;
  /** Probability per ms that some node crashes / that the partition changes, while chaos is on. */
  readonly crashRate?: number;
  readonly partitionRate?: number;
  readonly antiEntropyMs?: number;
  /** Cells of each node's sketch: a small sketch forces the log-stream fallback (default 2,048). */
  readonly sketchCells?: number;
  /**
   * Every node starts linked to n0 alone and learns the others from Members frames (the host
   * links to a node when its core reports it); a restarted node dials n0 again. Default false:
   * a full mesh from the start.
   */
  readonly seedOnly?: boolean;
  /** The failure detector's probe period (virtual ms; default 100, with a 50 ms probe timeout). */
  readonly probeMs?: number;
  /**
   * Crashed nodes stay down until the end (default false: they restart). The survivors must then
   * agree that they failed, and on nothing else.
   */
  readonly permanentCrashes?: boolean;
  /** Up to this many live members, origins push to every peer; beyond, broadcast trees (default 16). */
  readonly directPushMax?: number;
  /**
   * Each node's log serves only its last this many facts (default: all); older sequences are
   * served by a snapshot (the kernel's image and, for the simulator's bookkeeping, the facts),
   * which the receiver reanchors on.
   */
  readonly retainLogFacts?: number;
  /**
   * Escrow mode: the kernels are bounded counters of this capacity, split between the nodes by an
   * escrow; local admissions are spends of 1–5 that outrun the limit, quota moves by requests and
   * grants over the same lossy links. Checked after every step: nobody's rights are overdrawn, each
   * replica's quotas sum to the limit, and the union of every fact anywhere never sells more than
   * the limit; after healing, every request is resolved and every ledger is byte-identical. Facts
   * leave their origin only once durable (as with a durable kernel), so a crash never forks a chain.
   */
  readonly escrowLimit?: bigint;
}

interface SimNode {
  readonly name: string;
  core: ReplicaCore;
  kernel: Kernel;
  /** Escrow mode: the node's agent (and ledger), and its own facts not yet durable (not yet sent). */
  agent: EscrowAgent | undefined;
  unsent: WireFact[];
  /** Admission order: the node's log; the first `synced` entries are durable. */
  log: WireFact[];
  byId: Map<string, WireFact>;
  synced: number;
  up: boolean;
  incarnation: number;
}

interface InFlight {
  readonly from: string;
  readonly to: string;
  readonly frame: Uint8Array;
}

/** The simulator's snapshot: the kernel image and the facts behind it, as JSON (opaque to the core). */
function encodeSnapshot(image: DomainImage, facts: readonly WireFact[]): Uint8Array {
  const b64 = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
  const json = {
    cells: b64(image.cells),
    clock: b64(image.clock),
    heads: b64(image.heads),
    headStart: image.headStart,
    headCount: image.headCount,
    popcount: image.popcount,
    ids: b64(image.ids),
    facts: facts.map((f) => [b64(f.id), f.deps.map(b64), b64(f.payload)]),
  };
  return new Uint8Array(Buffer.from(JSON.stringify(json)));
}

function decodeSnapshot(bytes: Uint8Array): { image: DomainImage; facts: WireFact[] } {
  const j = JSON.parse(Buffer.from(bytes).toString()) as { cells: string; clock: string; heads: string; headStart: number; headCount: number; popcount: number; ids: string; facts: [string, string[], string][] };
  const u8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
  return {
    image: { cells: u8(j.cells), clock: u8(j.clock), heads: u8(j.heads), headStart: j.headStart, headCount: j.headCount, popcount: j.popcount, ids: u8(j.ids) },
    facts: j.facts.map(([id, deps, payload]) => ({ id: u8(id), deps: deps.map(u8), payload: u8(payload) })),
  };
}

const FRAME_NAMES = new Map<number, string>(Object.entries(FrameType).map(([name, type]) => [type, name]));
const hex = (id: Uint8Array): string => Buffer.from(id).toString('hex');
const CLUSTER = new Uint8Array(16).fill(0xc1);
const SKETCH_KEY = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]);
/** A node fsyncs its log this often (virtual ms): what a crash can lose is at most this much. */
const SYNC_EVERY_MS = 5;

export interface SimulationReport {
  readonly seed: number;
  readonly facts: number;
  readonly frames: number;
  readonly bytes: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly convergedAfterHealMs: number;
  readonly streams: number;
  /** Reanchors on a peer's snapshot (its log no longer reached back far enough). */
  readonly reanchors: number;
  /** Frames and bytes sent, by frame type. */
  readonly byType: Record<string, { frames: number; bytes: number }>;
  /** Facts delivered by push or down a tree, by the hops they took (index = hops). */
  readonly hops: number[];
  /** Facts delivered by repair (requested deps, sketch rounds, log streams, grafts excepted). */
  readonly repaired: number;
  /** Times a node declared failed a run of a node that was up at that moment. */
  readonly falseFailures: number;
  /** Virtual ms from healing until every node saw every live node alive and every dead one failed. */
  readonly membershipSettledMs: number;
  readonly violations: string[];
  /** Escrow mode: what the cluster sold of its limit, spends accepted and refused, grants made. */
  readonly escrow?: { readonly sold: bigint; readonly limit: bigint; readonly accepted: number; readonly refused: number; readonly grants: number; readonly settledMs: number };
}

export class Simulation {
  private o: Required<SimulationOptions>;
  private readonly nodes: SimNode[] = [];
  /** Frames in flight, by the virtual ms they arrive (in sending order within one ms). */
  private queue = new Map<number, InFlight[]>();
  private inFlight = 0;
  private now = 0;
  private rng: number;
  private chaos = true;
  /** Node index → partition group; frames cross only within a group. */
  private group: number[];
  private readonly durable = new Set<string>();
  readonly violations: string[] = [];
  private frames = 0;
  /** Log streams that ran because a sketch could not decode a difference. */
  streams = 0;
  private bytes = 0;
  private crashes = 0;
  private falseFailures = 0;
  private reanchors = 0;
  private readonly byType: Record<string, { frames: number; bytes: number }> = {};
  private readonly hops: number[] = [];
  private repaired = 0;
  private partitions = 0;
  private created = 0;

  constructor(options: SimulationOptions) {
    this.o = {
      chaosMs: 3_000,
      loss: 0.1,
      duplication: 0.05,
      maxDelayMs: 20,
      admitEveryMs: 4,
      crashRate: 0.002,
      partitionRate: 0.002,
      antiEntropyMs: 200,
      sketchCells: 2048,
      seedOnly: false,
      probeMs: 100,
      permanentCrashes: false,
      directPushMax: 16,
      retainLogFacts: Number.POSITIVE_INFINITY,
      escrowLimit: 0n,
      ...options,
    };
    // The simulator's snapshots carry no ledger: escrow runs keep whole logs.
    if (this.o.escrowLimit > 0n) this.o = { ...this.o, retainLogFacts: Number.POSITIVE_INFINITY };
    this.rng = (options.seed >>> 0) || 1;
    this.group = new Array<number>(options.nodes).fill(0);
    for (let i = 0; i < options.nodes; i++) this.nodes.push(this.boot(`n${i}`, 1, []));
    if (this.o.seedOnly) for (const n of this.nodes.slice(1)) this.link(this.nodes[0]!, n);
    else for (let i = 0; i < this.nodes.length; i++) for (let j = i + 1; j < this.nodes.length; j++) this.link(this.nodes[i]!, this.nodes[j]!);
    for (const n of this.nodes) this.run(n);
  }

  /** Pairs of node indexes with a link open both ways ("i-j", i < j). */
  private readonly links = new Set<string>();

  private pair(a: SimNode, b: SimNode): string {
    const [i, j] = [this.nodes.indexOf(a), this.nodes.indexOf(b)].sort((x, y) => x - y);
    return `${i}-${j}`;
  }

  /** Opens a link between two live nodes, both ways (a TCP connection), unless one is open. */
  private link(a: SimNode, b: SimNode): void {
    if (a === b || !a.up || !b.up || this.links.has(this.pair(a, b))) return;
    this.links.add(this.pair(a, b));
    a.core.linkUp(b.name, this.now);
    b.core.linkUp(a.name, this.now);
  }

  /** xorshift32 in [0, 1). */
  private random(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng / 2 ** 32;
  }

  private get escrow(): boolean {
    return this.o.escrowLimit > 0n;
  }

  private newKernel(): Kernel {
    if (!this.escrow) return new Kernel(new GCounterInvariant(), { indexCapacity: 1 << 16 });
    return Kernel.withState(new BoundedGCounterInvariant(), new BoundedCounterState(0n, this.o.escrowLimit).toBytes(), { indexCapacity: 1 << 16 });
  }

  private newAgent(node: SimNode): EscrowAgent {
    const names = Array.from({ length: this.o.nodes }, (_, i) => `n${i}`);
    const ledger = EscrowLedger.create(node.kernel.invariant, node.name, names, new BoundedCounterState(0n, this.o.escrowLimit).toBytes());
    return new EscrowAgent(ledger, {
      admit: (id, deps, payload) => {
        const code = node.kernel.tryAdmitRaw(id, deps, payload);
        if (code === AdmitCode.Ok) {
          // The agent's deps and payload are scratch: keep copies.
          const fact = { id, deps: [...deps], payload: payload.slice() };
          this.append(node, fact);
          this.countFact(fact, 1);
          node.unsent.push(fact);
        }
        return code;
      },
      send: (to, hint) => node.core.sendQuota(to, hint.type === 'request', hint.requestId, hint.resource, hint.type === 'request' ? hint.amount : hint.available),
      reachable: () => node.core.readyNodes(),
      requestId: () => {
        const id = new Uint8Array(16);
        const v = new DataView(id.buffer);
        for (let i = 0; i < 4; i++) v.setUint32(4 * i, Math.floor(this.random() * 2 ** 32));
        return id;
      },
    }, { maxRetries: 4 });
  }

  private boot(name: string, incarnation: number, log: WireFact[]): SimNode {
    const kernel = this.newKernel();
    const core = new ReplicaCore(
      {
        nodeId: name,
        address: `sim://${name}`,
        clusterId: CLUSTER,
        incarnation,
        sketchKey: SKETCH_KEY,
        antiEntropyMs: this.o.antiEntropyMs,
        sketchCells: this.o.sketchCells,
        firstSketchCells: Math.min(16, this.o.sketchCells),
        failureDetector: { probeMs: this.o.probeMs, probeTimeoutMs: this.o.probeMs / 2 },
        directPushMax: this.o.directPushMax,
        // Two of the slowest one-way delays and a little: a copy down the tree has had its chance.
        graftTimeoutMs: 2 * this.o.maxDelayMs + 10,
      },
      {
        get: (id) => node.byId.get(hex(id)),
        logFrom: (from, max) => node.log.slice(Math.max(from, this.retainedFrom(node)) - 1, from - 1 + max),
        retainedFrom: () => this.retainedFrom(node),
        snapshot: () => ({ bytes: encodeSnapshot(node.kernel.historyImage(), node.log), through: node.log.length }),
      },
    );
    const node: SimNode = { name, core, kernel, agent: undefined, unsent: [], log: [], byId: new Map(), synced: 0, up: true, incarnation };
    if (this.escrow) {
      node.agent = this.newAgent(node);
      // The genesis first (every node derives the same one), unless the log starts with it.
      if (log.length === 0) {
        const g = node.agent.ledger.genesisFact();
        log = [g];
      }
    }
    // Recovery: the durable log is replayed into a fresh kernel; the core learns it as known.
    for (const f of log) {
      const code = kernel.tryAdmitRaw(f.id, f.deps, f.payload);
      if (code !== AdmitCode.Ok) this.violations.push(`${name} could not replay its own log: code ${code}`);
      const escrow = node.agent?.replay(f.id, f.deps, f.payload);
      if (escrow !== undefined && escrow !== 0) this.violations.push(`${name}'s ledger could not replay its own log: escrow code ${escrow}`);
      node.log.push(f);
      node.byId.set(hex(f.id), f);
      core.admittedLocally(f);
    }
    node.synced = node.log.length;
    return node;
  }

  private retainedFrom(node: SimNode): number {
    return Math.max(1, node.log.length - this.o.retainLogFacts + 1);
  }

  /**
   * Reanchors `node` on a peer's snapshot the way a host does: the kernel takes the image, then
   * re-admits this node's facts the snapshot lacks, in their order. The log becomes the snapshot's
   * facts then those, all durable (a reanchor waits for durability and writes a checkpoint).
   */
  private reanchor(node: SimNode, peer: string, bytes: Uint8Array): void {
    this.reanchors++;
    const { image, facts } = decodeSnapshot(bytes);
    const inSnapshot = new Set(facts.map((f) => hex(f.id)));
    const extras = node.log.filter((f) => !inSnapshot.has(hex(f.id)));
    const added = facts.filter((f) => !node.byId.has(hex(f.id)));
    const kernel = new Kernel(new GCounterInvariant(), { indexCapacity: 1 << 16 });
    kernel[RESTORE_IMAGE](image);
    for (const f of extras) {
      const code = kernel.tryAdmitRaw(f.id, f.deps, f.payload);
      if (code !== AdmitCode.Ok) this.violations.push(`${node.name} could not re-admit its own fact after a reanchor: code ${code}`);
    }
    node.kernel = kernel;
    node.log = [...facts, ...extras];
    node.byId = new Map(node.log.map((f) => [hex(f.id), f]));
    node.synced = node.log.length;
    node.core.reanchored(peer, added.map((f) => f.id));
  }

  /** Performs a node's pending actions. */
  private run(node: SimNode): void {
    let actions: ReplicaAction[];
    while ((actions = node.core.drain()).length > 0) {
      for (const a of actions) {
        if (a.kind === 'send') this.transmit(node.name, a.peer, a.frame);
        else if (a.kind === 'reanchor') this.reanchor(node, a.peer, a.snapshot);
        else if (a.kind === 'admit') {
          if (a.hops === undefined) this.repaired++;
          else this.hops[a.hops] = (this.hops[a.hops] ?? 0) + 1;
          this.admit(node, a.fact, a.from);
        } else if (a.event.type === 'sketchExhausted') this.streams++;
        else if (a.event.type === 'quota') {
          const e = a.event;
          node.agent?.onHint(e.nodeId, e.request ? { type: 'request', requestId: e.requestId, resource: e.resource as Resource, amount: e.amount } : { type: 'denial', requestId: e.requestId, resource: e.resource as Resource, available: e.amount }, this.now);
        }
        else if (a.event.type === 'memberStatus') {
          const { member } = a.event;
          const named = this.nodes.find((n) => n.name === member.nodeId);
          if (member.state === 'failed' && named?.up === true && named.incarnation === member.incarnation) this.falseFailures++;
        } else if (a.event.type === 'memberDiscovered') {
          const { nodeId } = a.event.member;
          const other = this.nodes.find((n) => n.name === nodeId);
          if (other !== undefined) {
            this.link(node, other);
            this.run(other);
          }
        }
      }
    }
  }

  private admit(node: SimNode, fact: WireFact, from: string): void {
    const agent = node.agent;
    const code =
      agent === undefined
        ? node.kernel.tryAdmitRaw(fact.id, fact.deps, fact.payload)
        : agent.admitRemote(fact.id, fact.deps, fact.payload, this.now, () => node.kernel.tryAdmitRaw(fact.id, fact.deps, fact.payload), () => node.byId.has(hex(fact.id)));
    if (agent !== undefined && code !== AdmitCode.Ok && code !== AdmitCode.DuplicateFact) {
      const d = decodeEscrowFact(agent.adapter, fact.payload);
      this.violations.push(`${node.name} refused ${d?.origin}'s escrow fact #${d?.seq} (kind ${d?.kind}): code ${code}, ledger ${agent.lastRefusal} (t=${this.now})`);
    }
    if (agent !== undefined && code === AdmitCode.Ok) this.countFact(fact, 1);
    if (code === AdmitCode.CausalityViolation) this.violations.push(`${node.name} was handed ${hex(fact.id).slice(0, 8)} before its deps (t=${this.now})`);
    if (code === AdmitCode.DuplicateFact) this.violations.push(`${node.name} was handed ${hex(fact.id).slice(0, 8)} twice (t=${this.now})`);
    if (code === AdmitCode.Ok) this.append(node, fact);
    node.core.admitResult(fact, from, code);
  }

  private append(node: SimNode, fact: WireFact): void {
    node.log.push(fact);
    node.byId.set(hex(fact.id), fact);
  }

  private transmit(from: string, to: string, frame: Uint8Array): void {
    this.frames++;
    this.bytes += frame.length;
    const type = FRAME_NAMES.get(frame[4]!) ?? `0x${frame[4]!.toString(16)}`;
    const t = (this.byType[type] ??= { frames: 0, bytes: 0 });
    t.frames++;
    t.bytes += frame.length;
    if (this.chaos && this.random() < this.o.loss) return;
    const copies = this.chaos && this.random() < this.o.duplication ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      const at = this.now + 1 + Math.floor(this.random() * this.o.maxDelayMs);
      let bucket = this.queue.get(at);
      if (bucket === undefined) this.queue.set(at, (bucket = []));
      bucket.push({ from, to, frame });
      this.inFlight++;
    }
  }

  private nodeNamed(name: string): SimNode {
    return this.nodes[Number(name.slice(1))]!;
  }

  /** A local admission on a random live node: a GCounter increment depending on some of its heads. */
  private localAdmission(): void {
    const live = this.nodes.filter((n) => n.up);
    if (live.length === 0) return;
    const node = live[Math.floor(this.random() * live.length)]!;
    if (node.agent !== undefined) {
      const code = node.agent.tryAdmitSpend(u64le(1 + Math.floor(this.random() * 5)), [], this.now);
      if (code === AdmitCode.Ok) this.spendsAccepted++;
      else if (code === AdmitCode.EscrowExhausted) this.spendsRefused++;
      else this.violations.push(`${node.name} could not spend: code ${code}`);
      this.run(node);
      return;
    }
    const heads = node.kernel.frontier();
    const deps = heads.filter(() => this.random() < 0.5).slice(0, 3);
    const payload = u64le(BigInt(1 + Math.floor(this.random() * 1000)) * 1_000_000n + BigInt(this.created++));
    const fact = { id: factId(deps, payload), deps, payload };
    const code = node.kernel.tryAdmitRaw(fact.id, fact.deps, fact.payload);
    if (code !== AdmitCode.Ok) {
      this.violations.push(`${node.name} refused its own fact: code ${code}`);
      return;
    }
    this.append(node, fact);
    node.core.admittedLocally(fact);
    this.run(node);
  }

  private crash(node: SimNode): void {
    this.crashes++;
    node.up = false;
    const survivors = node.log.slice(0, node.synced);
    if (this.escrow) for (const f of node.log.slice(node.synced)) this.countFact(f, -1);
    for (const other of this.nodes) {
      if (other === node) continue;
      this.links.delete(this.pair(node, other));
      if (other.up) other.core.linkDown(node.name);
    }
    for (const [at, bucket] of this.queue) {
      const kept = bucket.filter((m) => m.to !== node.name && m.from !== node.name);
      this.inFlight -= bucket.length - kept.length;
      this.queue.set(at, kept);
    }
    if (this.o.permanentCrashes) return;
    // Restart a little later with the durable prefix and a new incarnation.
    const restartAt = this.now + 20 + Math.floor(this.random() * 100);
    this.restarts.push({ at: restartAt, index: this.nodes.indexOf(node), log: survivors, incarnation: node.incarnation + 1 });
  }

  private restarts: { at: number; index: number; log: WireFact[]; incarnation: number }[] = [];

  private restart(r: { index: number; log: WireFact[]; incarnation: number }): void {
    const node = this.boot(`n${r.index}`, r.incarnation, r.log);
    this.nodes[r.index] = node;
    // With seeds only, a restarted node dials n0, and every node redials n0 when n0 comes back.
    const dial = this.o.seedOnly ? (r.index === 0 ? this.nodes : [this.nodes[0]!]) : this.nodes;
    for (const other of dial) {
      if (other === node || !other.up) continue;
      this.link(node, other);
      this.run(other);
    }
    this.run(node);
  }

  private repartition(): void {
    this.partitions++;
    const groups = 1 + Math.floor(this.random() * 3);
    this.group = this.nodes.map(() => Math.floor(this.random() * groups));
    // One partition in three is asymmetric: frames from a lower group to a higher one still pass
    // (a one-way link fault: A hears B, B never hears A).
    this.oneWay = this.random() < 1 / 3;
  }

  /** Whether the current partition lets frames from node index `a` reach `b`. */
  private passes(a: number, b: number): boolean {
    return this.group[a] === this.group[b] || (this.oneWay && this.group[a]! < this.group[b]!);
  }

  private oneWay = false;

  private step(): void {
    this.now++;
    if (this.chaos) {
      if (this.random() < 1 / this.o.admitEveryMs) this.localAdmission();
      if (this.random() < this.o.crashRate) {
        const live = this.nodes.filter((n) => n.up);
        // With permanent crashes, a majority stays up: the failure detector needs witnesses.
        if (live.length > (this.o.permanentCrashes ? Math.floor(this.nodes.length / 2) + 1 : 1)) this.crash(live[Math.floor(this.random() * live.length)]!);
      }
      if (this.random() < this.o.partitionRate) this.repartition();
    }
    for (const r of this.restarts.filter((x) => x.at <= this.now)) this.restart(r);
    this.restarts = this.restarts.filter((x) => x.at > this.now);
    if (this.now % SYNC_EVERY_MS === 0) {
      for (const n of this.nodes) {
        if (!n.up) continue;
        for (let i = n.synced; i < n.log.length; i++) this.durable.add(hex(n.log[i]!.id));
        n.synced = n.log.length;
        // Escrow: a node's own facts leave it only once durable (a crash can then never fork its chain).
        if (n.unsent.length > 0) {
          for (const f of n.unsent.splice(0)) n.core.admittedLocally(f);
          this.run(n);
        }
      }
    }
    const due = this.queue.get(this.now) ?? [];
    this.queue.delete(this.now);
    this.inFlight -= due.length;
    for (const m of due) {
      const from = this.nodeNamed(m.from);
      const to = this.nodeNamed(m.to);
      if (!to.up || !from.up) continue;
      const a = this.nodes.indexOf(from);
      const b = this.nodes.indexOf(to);
      if (this.chaos && !this.passes(a, b)) continue;
      to.core.receive(m.from, m.frame, this.now);
      this.run(to);
    }
    for (const n of this.nodes) {
      if (!n.up) continue;
      n.core.tick(this.now);
      n.agent?.tick(this.now);
      this.run(n);
    }
    if (this.escrow) this.checkEscrow();
  }

  spendsAccepted = 0;
  spendsRefused = 0;
  /** Every escrow fact some node holds (or held durably), with how many copies: the cluster's union. */
  private readonly copies = new Map<string, { delta: bigint; copies: number }>();
  private sold = 0n;

  private countFact(fact: WireFact, change: 1 | -1): void {
    const key = hex(fact.id);
    let c = this.copies.get(key);
    if (c === undefined) {
      const d = decodeEscrowFact(this.nodes[0]?.agent?.adapter ?? this.adapterOf(), fact.payload);
      this.copies.set(key, (c = { delta: d?.kind === EscrowKind.Spend ? d.delta : 0n, copies: 0 }));
    }
    if (c.copies === 0 && change > 0) this.sold += c.delta;
    c.copies += change;
    if (c.copies === 0) this.sold -= c.delta;
  }

  private adapterOf() {
    return EscrowLedger.create(new BoundedGCounterInvariant(), 'x', ['x'], new BoundedCounterState(0n, 1n).toBytes()).adapter;
  }

  /** The escrow checks of every step (see SimulationOptions.escrowLimit). */
  private checkEscrow(): void {
    if (this.sold > this.o.escrowLimit) this.violations.push(`t=${this.now}: the cluster's facts sell ${this.sold} of ${this.o.escrowLimit}`);
    for (const n of this.nodes) {
      if (!n.up || n.agent === undefined) continue;
      const sums = n.agent.ledger.sums();
      if (sums.quota[Resource.Up] !== this.o.escrowLimit) this.violations.push(`t=${this.now}: ${n.name}'s quotas sum to ${sums.quota[Resource.Up]}`);
      const room = n.agent.adapter.room(n.kernel.state.bytes)[Resource.Up];
      if (sums.available[Resource.Up] !== room) this.violations.push(`t=${this.now}: ${n.name}'s ledger has ${sums.available[Resource.Up]} available, its kernel ${room} of room`);
    }
  }

  /** Differences between nodes after healing, described; empty when they agree. */
  private disagreement(): string[] {
    const live = this.nodes.filter((n) => n.up);
    const out: string[] = [];
    const reference = live[0]!;
    if (reference === undefined) return ['no node is up'];
    // Cheap first: sizes and the cores' set summaries.
    const summary = hex(new Uint8Array(reference.core.setSummary().buffer));
    if (live.some((n) => n.byId.size !== reference.byId.size || hex(new Uint8Array(n.core.setSummary().buffer)) !== summary)) {
      const other = live.find((n) => n.byId.size !== reference.byId.size || hex(new Uint8Array(n.core.setSummary().buffer)) !== summary)!;
      return [`${other.name} holds ${other.byId.size} facts, ${reference.name} ${reference.byId.size}`];
    }
    const ids = (n: SimNode): string => [...n.byId.keys()].sort().join();
    for (const n of live.slice(1)) {
      if (n.byId.size !== reference.byId.size || ids(n) !== ids(reference)) out.push(`${n.name} holds ${n.byId.size} facts, ${reference.name} ${reference.byId.size}`);
      else if (hex(n.kernel.state.bytes) !== hex(reference.kernel.state.bytes)) out.push(`${n.name} and ${reference.name} hold the same facts but different states`);
    }
    // A node that stays down takes its unsynced facts with it, and facts only it held are lost:
    // with permanent crashes, only facts some live node admitted must be everywhere.
    for (const id of this.durable) {
      if (this.o.permanentCrashes && !live.some((n) => n.byId.has(id))) continue;
      for (const n of live) if (!n.byId.has(id)) out.push(`${n.name} lacks durable fact ${id.slice(0, 8)}`);
    }
    return out;
  }

  /**
   * Escrow after healing: runs until no node has a request open and every live node holds the
   * same facts and a byte-identical ledger (grants made while settling are facts too).
   */
  private settleEscrow(healedAt: number, maxHealMs: number): NonNullable<SimulationReport['escrow']> {
    const open = (): number => this.nodes.reduce((n, x) => n + (x.up ? x.agent!.requests().length : 0), 0);
    const ledgers = (): number => new Set(this.nodes.filter((n) => n.up).map((n) => hex(n.agent!.ledger.digest()))).size;
    let settled = -1;
    const deadline = this.now + 2 * maxHealMs;
    while (this.now < deadline) {
      if (this.now % 10 === 0 && open() === 0 && this.disagreement().length === 0 && ledgers() === 1) {
        settled = this.now - healedAt;
        break;
      }
      this.step();
    }
    if (settled < 0) this.violations.push(`escrow not settled: ${open()} requests open, ${ledgers()} different ledgers, ${this.disagreement()[0] ?? 'facts agree'}`);
    const grants = [...this.nodes.find((n) => n.up)!.byId.values()].filter((f) => decodeEscrowFact(this.nodes[0]!.agent!.adapter, f.payload)?.kind === EscrowKind.Grant).length;
    return { sold: this.sold, limit: this.o.escrowLimit, accepted: this.spendsAccepted, refused: this.spendsRefused, grants, settledMs: settled };
  }

  /** How each live node's failure detector disagrees with the truth; empty when none does. */
  private membershipErrors(): string[] {
    const out: string[] = [];
    for (const n of this.nodes) {
      if (!n.up) continue;
      const view = new Map(n.core.knownMembers().map((m) => [m.nodeId, m]));
      for (const other of this.nodes) {
        if (other === n) continue;
        const seen = view.get(other.name);
        if (other.up && (seen?.state !== 'alive' || seen.incarnation !== other.incarnation)) out.push(`${n.name} sees ${other.name} (run ${other.incarnation}, up) as ${seen?.state ?? 'unknown'} run ${seen?.incarnation}`);
        if (!other.up && seen !== undefined && seen.state !== 'failed') out.push(`${n.name} sees ${other.name} (down) as ${seen.state}`);
      }
    }
    return out;
  }

  /**
   * After `run_`: keeps the healed, idle cluster running for `ms` virtual ms and returns the bytes
   * each node sent per virtual second meanwhile (anti-entropy with nothing to find).
   */
  idleBytesPerNodePerSecond(ms = 20_000): number {
    const before = this.bytes;
    const end = this.now + ms;
    while (this.now < end) this.step();
    return ((this.bytes - before) / this.nodes.length / ms) * 1000;
  }

  /** Runs the chaos phase, heals, and runs until every node agrees (or `maxHealMs` passes). */
  run_(maxHealMs = 20_000): SimulationReport {
    while (this.now < this.o.chaosMs) this.step();
    this.chaos = false;
    this.group = this.group.map(() => 0);
    const healedAt = this.now;
    // Restart whoever is down, at once.
    for (const r of this.restarts) r.at = this.now;
    let converged = -1;
    while (this.now - healedAt < maxHealMs) {
      this.step();
      // Checked every 10 virtual ms: comparing whole sets every ms would dominate the run.
      if (this.now % 10 === 0 && this.restarts.length === 0 && this.disagreement().length === 0) {
        converged = this.now - healedAt;
        break;
      }
    }
    if (converged < 0) this.violations.push(...this.disagreement().slice(0, 5).map((d) => `not converged ${maxHealMs} ms after healing: ${d}`));
    // Membership settles too: suspicions of live nodes refuted, nodes that stay down failed.
    let settled = -1;
    while (this.now - healedAt < 2 * maxHealMs) {
      if (this.now % 10 === 0 && this.membershipErrors().length === 0) {
        settled = this.now - healedAt;
        break;
      }
      this.step();
    }
    if (settled < 0) this.violations.push(...this.membershipErrors().slice(0, 3).map((d) => `membership not settled ${2 * maxHealMs} ms after healing: ${d}`));
    // Joined through one seed, every node must have learnt every other and linked to it.
    if (this.o.seedOnly && settled >= 0) {
      for (const n of this.nodes) {
        const known = n.core.knownMembers().length;
        if (known !== this.nodes.length) this.violations.push(`${n.name} knows ${known} of ${this.nodes.length} nodes`);
      }
      const full = (this.nodes.length * (this.nodes.length - 1)) / 2;
      if (this.links.size !== full) this.violations.push(`${this.links.size} links open, not the full mesh of ${full}`);
    }
    // A fact may stay pending only if some dep of it exists nowhere (lost with a crashed node's
    // unsynced tail, so the fact can never be admitted anywhere); anything else should have gone in.
    if (converged >= 0) {
      const everywhere = new Set(this.nodes.filter((n) => n.up).flatMap((n) => [...n.byId.keys()]));
      for (const n of this.nodes) {
        if (!n.up) continue;
        const stuck = n.core.pendingFacts().filter((f) => f.deps.every((d) => everywhere.has(hex(d))));
        if (stuck.length > 0) this.violations.push(`${n.name} still holds ${stuck.length} pending facts whose deps all exist`);
      }
    }
    const escrow = this.escrow ? this.settleEscrow(healedAt, maxHealMs) : undefined;
    return {
      escrow,
      seed: this.o.seed,
      facts: this.nodes[0]!.byId.size,
      frames: this.frames,
      bytes: this.bytes,
      crashes: this.crashes,
      partitions: this.partitions,
      convergedAfterHealMs: converged,
      streams: this.streams,
      byType: this.byType,
      reanchors: this.reanchors,
      hops: Array.from(this.hops, (n) => n ?? 0),
      repaired: this.repaired,
      falseFailures: this.falseFailures,
      membershipSettledMs: settled,
      violations: this.violations,
    };
  }
}
