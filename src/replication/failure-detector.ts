/**
 * FailureDetector: who in the cluster is alive, suspected or failed, decided the SWIM way with
 * Lifeguard's refinements, as a sans-IO state machine driven by the replica core.
 *
 * - **Probes.** Every probe period one member is pinged, round robin over the member list (every
 *   member is probed within one pass, unlike a random pick). No Pong within the probe timeout (or
 *   no link to it at all): up to `indirectProbes` other linked peers are asked to ping it for us
 *   (`PingReq`); any of them forwards the target's Pong, or answers `Nack` when the target did not
 *   answer it either. No Pong by the end of the period: the member is **suspected**.
 * - **Suspicion** (Lifeguard): a suspect is declared **failed** only after a timeout that starts at
 *   `suspicionMult · log10(n) · probe period` times `suspicionMaxMult` and shrinks towards the
 *   minimum as other members independently suspect it too, so a real failure is confirmed fast
 *   and one slow observer alone cannot fail anyone quickly.
 * - **Refutation.** A member hearing that it is suspected or failed raises its refutation count
 *   and spreads `alive` again, which overrides any suspicion with a lower count. A restart (a new
 *   incarnation) overrides everything said about the previous run.
 * - **Local health** (Lifeguard): Nacks that should have come and did not, probes that failed and
 *   having to refute raise a health score (0..maxHealth) that stretches this node's own probe
 *   period and timeout: a node that is itself slow or cut off probes more patiently instead of
 *   suspecting everyone else.
 *
 * Status changes spread at once to every linked peer (`Members` frames carrying the status), and
 * the whole table goes to a probed member every `fullSyncEvery` probes, so a change whose frames
 * were lost still reaches everyone. Nothing about replication depends on this view: it tells the
 * host whom to stop dialing and tells dissemination whom to route around.
 */
import type { MemberStatus } from './frames.js';

export interface FailureDetectorOptions {
  /** Probe period in ms (default 1,000). */
  readonly probeMs?: number;
  /** A direct Ping unanswered after this long goes indirect (default 500 ms). */
  readonly probeTimeoutMs?: number;
  /** Peers asked to probe on our behalf (default 3). */
  readonly indirectProbes?: number;
  /** Lifeguard's α: the shortest suspicion is α · log10(n) probe periods (default 4). */
  readonly suspicionMult?: number;
  /** Lifeguard's β: the longest suspicion is β times the shortest (default 6). */
  readonly suspicionMaxMult?: number;
  /** Highest local health score: periods stretch up to (1 + maxHealth)× (default 8). */
  readonly maxHealth?: number;
  /** The whole member table rides along every this many probes (default 10). */
  readonly fullSyncEvery?: number;
}

/** What the detector asks of the core that hosts it. */
export interface DetectorHost {
  /** Peers with a link that completed its Hello. */
  linked(peer: string): boolean;
  linkedPeers(): Iterable<string>;
  ping(peer: string, nonce: number): void;
  pingReq(peer: string, nonce: number, target: string): void;
  pong(peer: string, nonce: number): void;
  nack(peer: string, nonce: number): void;
  /** Spread these statuses to `peer` (undefined: to every linked peer). */
  gossip(statuses: readonly MemberStatus[], peer?: string): void;
  changed(status: MemberStatus, previous: MemberStatus | undefined): void;
}

interface Probe {
  readonly target: string;
  readonly nonce: number;
  readonly sentAt: number;
  indirect: boolean;
  nacksExpected: number;
  nacks: number;
}

interface Suspicion {
  readonly since: number;
  readonly reporters: Set<string>;
}

/** A PingReq we serve: our own ping's nonce → who asked, with which nonce, until when. */
interface Relay {
  readonly requester: string;
  readonly nonce: number;
  readonly deadline: number;
}

const DEFAULTS: Required<FailureDetectorOptions> = {
  probeMs: 1_000,
  probeTimeoutMs: 500,
  indirectProbes: 3,
  suspicionMult: 4,
  suspicionMaxMult: 6,
  maxHealth: 8,
  fullSyncEvery: 10,
};

/** Lifeguard expects this many independent confirmations before a suspicion reaches its minimum. */
const EXPECTED_CONFIRMATIONS = 3;

/** SWIM's precedence of one status over another of the same member. */
export function overrides(next: MemberStatus, current: MemberStatus): boolean {
  if (next.incarnation !== current.incarnation) return next.incarnation > current.incarnation;
  if (next.state === 'alive') return next.refutations > current.refutations;
  if (next.state === 'suspect') return current.state === 'alive' ? next.refutations >= current.refutations : next.refutations > current.refutations;
  // failed
  return current.state !== 'failed' ? next.refutations >= current.refutations : false;
}

export class FailureDetector {
  private readonly o: Required<FailureDetectorOptions>;
  private readonly table = new Map<string, MemberStatus>();
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly relays = new Map<number, Relay>();
  private probe: Probe | undefined;
  private nextProbeAt = 0;
  private rotation: string[] = [];
  private rotationAt = 0;
  private nonce = 0;
  private probes = 0;
  /** Lifeguard's local health multiplier score. */
  private health = 0;
  private passes = 0;
  private readonly selfHash: number;

  constructor(
    private self: MemberStatus,
    private readonly host: DetectorHost,
    options: FailureDetectorOptions = {},
  ) {
    this.o = { ...DEFAULTS, ...options };
    this.table.set(self.nodeId, self);
    let h = 0x811c9dc5; // FNV-1a over the node id's UTF-16 units: any spread will do
    for (let i = 0; i < self.nodeId.length; i++) h = Math.imul(h ^ self.nodeId.charCodeAt(i), 0x01000193);
    this.selfHash = h >>> 0;
  }

  get healthScore(): number {
    return this.health;
  }

  get selfStatus(): MemberStatus {
    return this.self;
  }

  status(nodeId: string): MemberStatus | undefined {
    return this.table.get(nodeId);
  }

  statuses(): MemberStatus[] {
    return [...this.table.values()];
  }

  /** Members not known to have failed, this node included. */
  get liveCount(): number {
    let n = 0;
    for (const s of this.table.values()) if (s.state !== 'failed') n++;
    return n;
  }

  /**
   * Applies what `from` said. Where it is behind (it says less than this node knows of a
   * member), it is told the newer status at once: a verdict it missed (say, a refutation that
   * went to other peers) reaches it now rather than on some later full sync.
   */
  learnFrom(from: string, statuses: readonly MemberStatus[], now: number): void {
    const newer: MemberStatus[] = [];
    for (const status of statuses) {
      this.learn(status, now);
      const known = this.table.get(status.nodeId);
      if (known !== undefined && overrides(known, status)) newer.push(known);
    }
    if (newer.length > 0 && from !== '') this.host.gossip(newer, from);
  }

  /**
   * Applies what a peer said (or what a Hello showed). Returns true when it changed this node's
   * view; a status about this node that would override it is refuted instead.
   */
  learn(status: MemberStatus, now: number): boolean {
    if (status.nodeId === this.self.nodeId) {
      if (status.state !== 'alive' && status.incarnation === this.self.incarnation && status.refutations >= this.self.refutations) {
        this.self = { ...this.self, refutations: status.refutations + 1 };
        this.table.set(this.self.nodeId, this.self);
        this.raiseHealth();
        this.host.gossip([this.self]);
      }
      return false;
    }
    const current = this.table.get(status.nodeId);
    // A member first heard of through its Hello has no address yet: the first status that brings
    // one fills it in, whatever it says of the member's health.
    if (current !== undefined && current.address === '' && status.address !== '' && status.incarnation === current.incarnation) {
      const filled = { ...current, address: status.address };
      this.table.set(status.nodeId, filled);
      this.host.changed(filled, current);
      this.host.gossip([filled]);
    }
    if (current !== undefined && !overrides(status, this.table.get(status.nodeId)!)) {
      // One more member suspecting the same run: Lifeguard's independent confirmation.
      if (status.state === 'suspect' && current.state === 'suspect' && status.refutations === current.refutations && status.incarnation === current.incarnation) {
        const s = this.suspicions.get(status.nodeId);
        if (s !== undefined && status.reporter !== '' && !s.reporters.has(status.reporter)) {
          s.reporters.add(status.reporter);
          this.host.gossip([status]);
        }
      }
      return false;
    }
    // Keep an address we know if the status brings none (a Hello carries none).
    this.apply(status.address === '' && current !== undefined && current.incarnation === status.incarnation ? { ...status, address: current.address } : status, current, now);
    return true;
  }

  private apply(status: MemberStatus, current: MemberStatus | undefined, now: number): void {
    this.table.set(status.nodeId, status);
    if (status.state === 'suspect') this.suspicions.set(status.nodeId, { since: now, reporters: new Set(status.reporter === '' ? [] : [status.reporter]) });
    else this.suspicions.delete(status.nodeId);
    this.host.changed(status, current);
    this.host.gossip([status]);
  }

  /** A Pong arrived: ends our probe if it answers it; forwards it if it answers a ping we relay. */
  onPong(nonce: number): void {
    const relay = this.relays.get(nonce);
    if (relay !== undefined) {
      this.relays.delete(nonce);
      this.host.pong(relay.requester, relay.nonce);
      return;
    }
    if (this.probe !== undefined && this.probe.nonce === nonce) {
      this.probe = undefined;
      if (this.health > 0) this.health--;
    }
  }

  onNack(nonce: number): void {
    if (this.probe !== undefined && this.probe.nonce === nonce) this.probe.nacks++;
  }

  /** `requester` asks us to ping `target` for it. */
  onPingReq(requester: string, nonce: number, target: string, now: number): void {
    if (target === this.self.nodeId) {
      this.host.pong(requester, nonce); // we are the target: that is an answer too
      return;
    }
    if (!this.host.linked(target)) {
      this.host.nack(requester, nonce);
      return;
    }
    const mine = this.nextNonce();
    this.relays.set(mine, { requester, nonce, deadline: now + this.scaled(this.o.probeTimeoutMs) });
    this.host.ping(target, mine);
  }

  tick(now: number): void {
    for (const [nonce, relay] of this.relays) {
      if (now < relay.deadline) continue;
      this.relays.delete(nonce);
      this.host.nack(relay.requester, relay.nonce);
    }
    const probe = this.probe;
    if (probe !== undefined && !probe.indirect && now - probe.sentAt >= this.scaled(this.o.probeTimeoutMs)) this.goIndirect(probe);
    if (now >= this.nextProbeAt) {
      if (probe !== undefined) this.probeFailed(probe, now);
      this.startProbe(now);
    }
    this.expireSuspicions(now);
  }

  private startProbe(now: number): void {
    this.nextProbeAt = now + this.scaled(this.o.probeMs);
    const target = this.nextTarget();
    if (target === undefined) return;
    const probe: Probe = { target, nonce: this.nextNonce(), sentAt: now, indirect: false, nacksExpected: 0, nacks: 0 };
    this.probe = probe;
    if (!this.host.linked(target)) {
      this.goIndirect(probe); // no direct path at all: only others can vouch for it
      return;
    }
    this.host.ping(target, probe.nonce);
    if (++this.probes % this.o.fullSyncEvery === 0) this.fullSync(target);
  }

  /**
   * Sends the whole table to the probed member and to one member believed failed that still has
   * a link: a member declared failed while only cut off is no longer probed, and this is how it
   * learns the verdict and refutes it once it can be heard again.
   */
  private fullSync(target: string): void {
    const table = this.statuses();
    this.host.gossip(table, target);
    const failed = table.filter((s) => s.state === 'failed' && this.host.linked(s.nodeId));
    if (failed.length > 0) this.host.gossip(table, failed[this.probes % failed.length]!.nodeId);
  }

  /** Round robin over the members other than this node and those known failed. */
  private nextTarget(): string | undefined {
    if (this.rotationAt >= this.rotation.length) {
      const ids = [...this.table.values()].filter((s) => s.nodeId !== this.self.nodeId && s.state !== 'failed').map((s) => s.nodeId);
      // Each pass starts at a different place, and differently on each node, so that members do
      // not all probe the same one at once (SWIM shuffles; the core has no randomness of its own).
      const start = ids.length === 0 ? 0 : (this.passes++ + this.selfHash) % ids.length;
      this.rotation = [...ids.slice(start), ...ids.slice(0, start)];
      this.rotationAt = 0;
    }
    while (this.rotationAt < this.rotation.length) {
      const id = this.rotation[this.rotationAt++]!;
      const s = this.table.get(id);
      if (s !== undefined && s.state !== 'failed') return id;
    }
    return undefined;
  }

  private goIndirect(probe: Probe): void {
    probe.indirect = true;
    for (const peer of this.host.linkedPeers()) {
      if (probe.nacksExpected >= this.o.indirectProbes) break;
      if (peer === probe.target) continue;
      const s = this.table.get(peer);
      if (s !== undefined && s.state !== 'alive') continue;
      this.host.pingReq(peer, probe.nonce, probe.target);
      probe.nacksExpected++;
    }
  }

  private probeFailed(probe: Probe, now: number): void {
    this.probe = undefined;
    // Lifeguard: helpers that did not even Nack suggest the fault is on our side.
    if (probe.nacks < probe.nacksExpected) this.raiseHealth();
    const current = this.table.get(probe.target);
    if (current === undefined || current.state !== 'alive') return;
    this.apply({ ...current, state: 'suspect', reporter: this.self.nodeId }, current, now);
  }

  private expireSuspicions(now: number): void {
    if (this.suspicions.size === 0) return;
    const n = Math.max(1, this.liveCount);
    const min = this.o.suspicionMult * Math.max(1, Math.log10(n)) * this.o.probeMs;
    const max = this.o.suspicionMaxMult * min;
    for (const [id, s] of this.suspicions) {
      const c = s.reporters.size - 1;
      // (Exactly the minimum once enough confirmations came: the logarithms would miss it by an ulp.)
      const timeout = c >= EXPECTED_CONFIRMATIONS ? min : max - ((max - min) * Math.log(c + 1)) / Math.log(EXPECTED_CONFIRMATIONS + 1);
      if (now - s.since < timeout) continue;
      const current = this.table.get(id);
      if (current === undefined || current.state !== 'suspect') continue;
      this.apply({ ...current, state: 'failed', reporter: this.self.nodeId }, current, now);
    }
  }

  private raiseHealth(): void {
    if (this.health < this.o.maxHealth) this.health++;
  }

  private scaled(ms: number): number {
    return ms * (1 + this.health);
  }

  private nextNonce(): number {
    this.nonce++;
    return this.nonce;
  }
}
