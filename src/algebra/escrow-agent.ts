/**
 * One node's side of escrow: spends its own rights at memory speed, asks peers for more when it
 * runs low, answers their requests with grants (or denials), and keeps the ledger in step with
 * every escrow fact the kernel admits. Sans-IO: the host admits facts into its kernel, carries
 * requests and denials to peers, and tells the time; the simulator and the replication worker's
 * host drive the same code.
 *
 * Requests and denials are hints: losing, repeating or reordering them never moves a right. Only
 * facts do — a grant is a fact of the grantor, replicated and deduplicated like any other, so it
 * is applied exactly once everywhere, and a grantor answers a repeated request with nothing new.
 */
import { AdmitCode } from '../codes.js';
import { bytesEqual, toHex } from '../core/bytes.js';
import { MAX_DEPS, MAX_PAYLOAD_BYTES, factId, isFactId } from '../core/fact.js';
import { PendingQuotaRequests, type QuotaRequestPolicy } from './quota-requests.js';
import { EscrowKind, Resource, REQUEST_ID_BYTES, decodeEscrowFact, encodeGrant, encodeReclaim, escrowUtf8, spendBytes, writeSpend, type EscrowAdapter } from './escrow-facts.js';
import { EscrowCode, EscrowLedger } from './escrow-ledger.js';

/** A hint between two nodes' agents (carried by QuotaRequest / QuotaDenial frames). */
export type EscrowHint =
  | { readonly type: 'request'; readonly requestId: Uint8Array; readonly resource: Resource; readonly amount: bigint }
  | { readonly type: 'denial'; readonly requestId: Uint8Array; readonly resource: Resource; readonly available: bigint };

export interface EscrowHost {
  /**
   * Admits a fact this node made into its kernel; returns the AdmitCode. The deps array and the
   * payload are the agent's scratch, valid during the call only: copy them to keep them.
   */
  admit(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number;
  /** Sends a hint to `node`; false if there is no open link to it (the hint is simply lost). */
  send(node: string, hint: EscrowHint): boolean;
  /** Node ids with an open link now. */
  reachable(): readonly string[];
  /** 16 bytes no other request of this cluster will use. */
  requestId(): Uint8Array;
}

export interface EscrowPolicy extends QuotaRequestPolicy {
  /**
   * Below this many rights of a resource, ask a peer for more in the background (default: a tenth
   * of this node's genesis share, at least 1).
   */
  readonly lowWater?: bigint;
  /** How much to ask for beyond what is needed (default: half of this node's genesis share, at least 1). */
  readonly refill?: bigint;
}

/** Counters of one agent (metrics and `stats()`). */
export interface EscrowCounters {
  spends: number;
  exhausted: number;
  requestsSent: number;
  requestsReceived: number;
  requestsFailed: number;
  grantsMade: number;
  grantsReceived: number;
  denialsSent: number;
  denialsReceived: number;
  /** Remote escrow facts the ledger refused, by reason. */
  refused: number;
  /** Grant latencies (ms, request opened → grant admitted here), most recent first, at most 1,024. */
  readonly grantLatencies: number[];
}

interface OpenRequest {
  readonly id: Uint8Array;
  readonly key: string;
  readonly resource: Resource;
  readonly openedAt: number;
}

/** Ledger refusal → admission code. */
export const ESCROW_REFUSED = AdmitCode.InvariantViolation;
const LATENCY_SAMPLES = 1024;

export class EscrowAgent {
  readonly ledger: EscrowLedger;
  readonly adapter: EscrowAdapter;
  readonly self: string;
  private readonly originBytes: Uint8Array;
  private readonly pending: PendingQuotaRequests;
  private readonly open = new Map<string, OpenRequest>();
  private readonly openByResource: (OpenRequest | undefined)[] = [undefined, undefined];
  /** Requests answered with a grant, by requester and request id: a repeat gets nothing new. */
  private readonly answered = new Set<string>();
  private readonly lowWater: [bigint, bigint];
  private readonly refill: [bigint, bigint];
  private waiters: { resource: Resource; need: bigint; until: number; resolve: (ok: boolean) => void }[] = [];
  /** Spends are written here (grown when needed) and handed over as a view: no allocation per spend. */
  private scratch = new Uint8Array(256);
  private scratchView = this.scratch.subarray(0, 0);
  private readonly depsScratch: Uint8Array[] = [];
  /** The id of the last fact this node admitted through `tryAdmitSpend`. */
  lastId: Uint8Array | undefined;
  /** Why the last `tryAdmitSpend` failed, when it was the ledger (an EscrowCode). */
  lastRefusal: EscrowCode = EscrowCode.Ok;
  readonly counters: EscrowCounters = {
    spends: 0,
    exhausted: 0,
    requestsSent: 0,
    requestsReceived: 0,
    requestsFailed: 0,
    grantsMade: 0,
    grantsReceived: 0,
    denialsSent: 0,
    denialsReceived: 0,
    refused: 0,
    grantLatencies: [],
  };

  constructor(
    ledger: EscrowLedger,
    private readonly host: EscrowHost,
    policy: EscrowPolicy = {},
  ) {
    this.ledger = ledger;
    this.adapter = ledger.adapter;
    this.self = ledger.self;
    this.originBytes = escrowUtf8.encode(this.self);
    this.pending = new PendingQuotaRequests(policy);
    const members = Math.max(1, ledger.genesis.members.length);
    const share = (r: Resource): bigint => ledger.totals[r] / BigInt(members);
    const atLeastOne = (v: bigint): bigint => (v < 1n ? 1n : v);
    this.lowWater = [policy.lowWater ?? atLeastOne(share(0) / 10n), policy.lowWater ?? atLeastOne(share(1) / 10n)];
    this.refill = [policy.refill ?? atLeastOne(share(0) / 2n), policy.refill ?? atLeastOne(share(1) / 2n)];
  }

  /** Rights of `resource` this node can spend now. */
  available(resource: Resource = Resource.Up): bigint {
    // Every grant it holds counts: the next spend depends on them all (spendable with every
    // unacknowledged grant as a dep is exactly the ledger's figure).
    return this.ledger.available(this.self, resource);
  }

  /** Requests this node has open, oldest first. */
  requests(): { requestId: string; resource: Resource; amount: bigint; attempts: number; ageMs: number; tried: string[] }[] {
    return [...this.open.values()].map((o) => {
      const r = this.pending.get(o.key)!;
      return { requestId: o.key, resource: o.resource, amount: r.amount, attempts: r.retries, ageMs: r.age(this.now), tried: [...r.tried] };
    });
  }

  private now = 0;

  // ----------------------------------------------------------------------------- local facts

  /**
   * Admits a bounded fact of this node: `payload` starts with the invariant's delta (its own bytes
   * may follow), `deps` are the caller's (at most MAX_DEPS − 1: the chain takes one). Uses this
   * node's rights only, never waits: `AdmitCode.EscrowExhausted` when they fall short (a request
   * is started in the background), else the kernel's code.
   */
  tryAdmitSpend(payload: Uint8Array, deps: readonly Uint8Array[], now: number): number {
    const D = this.adapter.deltaBytes;
    if (!(payload instanceof Uint8Array) || payload.length < D || !Array.isArray(deps)) return AdmitCode.MalformedFact;
    if (payload.length + 16 + this.originBytes.length > MAX_PAYLOAD_BYTES) return AdmitCode.PayloadTooLarge;
    if (deps.length > MAX_DEPS - 1) return AdmitCode.MalformedFact;
    for (let i = 0; i < deps.length; i++) if (!isFactId(deps[i])) return AdmitCode.MalformedFact;
    this.now = now;
    const delta = this.adapter.readDelta(payload);
    const resource = delta < 0n ? Resource.Down : Resource.Up;
    const need = delta < 0n ? -delta : delta;
    if (this.ledger.isFenced(this.self)) {
      // Reclaimed: every other replica refuses this node's escrow facts from now on.
      this.lastRefusal = EscrowCode.Fenced;
      return ESCROW_REFUSED;
    }
    const own = this.ledger.own;
    const all = this.chainDeps(own.head, deps, this.depsScratch);
    const unacked = this.ledger.unacked.length > 0;
    if (need > 0n) {
      const have = unacked ? this.ledger.spendable(resource, all) : own.quota[resource] - own.used[resource];
      if (have < need) {
        this.counters.exhausted++;
        this.ask(resource, need - have);
        return AdmitCode.EscrowExhausted;
      }
    }
    const escrowPayload = this.spendPayload(payload, own.seq + 1);
    const id = factId(all, escrowPayload);
    const code = this.host.admit(id, all, escrowPayload);
    if (code !== AdmitCode.Ok) return code;
    this.ledger.commitLocalSpend(id, delta, all);
    this.lastId = id;
    this.counters.spends++;
    if (this.openByResource[resource] === undefined) {
      const left = unacked ? this.ledger.spendable(resource, []) : own.quota[resource] - own.used[resource];
      if (left < this.lowWater[resource]) this.ask(resource, 0n);
    }
    return AdmitCode.Ok;
  }

  /** The spend's bytes in the scratch buffer, as a view of exactly its length. */
  private spendPayload(payload: Uint8Array, seq: number): Uint8Array {
    const length = spendBytes(payload.length, this.originBytes);
    if (length > this.scratch.length) this.scratch = new Uint8Array(Math.max(length, 2 * this.scratch.length));
    if (this.scratchView.length !== length || this.scratchView.buffer !== this.scratch.buffer) this.scratchView = this.scratch.subarray(0, length);
    writeSpend(this.scratchView, this.adapter, this.originBytes, seq, payload);
    return this.scratchView;
  }

  /** The head, the grants not yet depended on (as many as fit), then the caller's deps. */
  private chainDeps(head: Uint8Array, deps: readonly Uint8Array[], into: Uint8Array[] = []): Uint8Array[] {
    const all = into;
    all.length = 0;
    all.push(head);
    const unacked = this.ledger.unacked;
    for (let i = 0; i < unacked.length && all.length + deps.length < MAX_DEPS; i++) all.push(unacked[i]!.id);
    for (let i = 0; i < deps.length; i++) if (!all.some((d) => bytesEqual(d, deps[i]!))) all.push(deps[i]!);
    return all;
  }

  /** Admits a fact this node made that only moves rights (grant, reclaim): checked by the ledger like a remote one. */
  private admitTransfer(build: (seq: number) => Uint8Array, extraDeps: readonly Uint8Array[] = []): number {
    const { head, seq } = this.ledger.head(this.self);
    const deps = this.chainDeps(head, extraDeps);
    const payload = build(seq);
    const id = factId(deps, payload);
    const escrow = this.ledger.check(id, deps, payload);
    if (escrow !== EscrowCode.Ok) {
      this.lastRefusal = escrow;
      return escrow === EscrowCode.Insufficient ? AdmitCode.EscrowExhausted : ESCROW_REFUSED;
    }
    const code = this.host.admit(id, deps, payload);
    if (code === AdmitCode.Ok) {
      this.ledger.commit(id);
      this.lastId = id;
    }
    return code;
  }

  /** Gives `amount` of this node's `resource` rights to `node` (an unsolicited grant). */
  tryAdmitGrant(node: string, amount: bigint, resource: Resource = Resource.Up, requestId: Uint8Array = new Uint8Array(REQUEST_ID_BYTES)): number {
    const code = this.admitTransfer((seq) => encodeGrant(this.adapter, this.self, seq, node, resource, amount, requestId));
    if (code === AdmitCode.Ok) this.counters.grantsMade++;
    return code;
  }

  /**
   * Takes over every right `node` still holds: an operator's action for a node that is gone for
   * good. Names `node`'s last escrow fact as this replica knows it; `node` must never admit an
   * escrow fact again (see docs/ESCROW.md for the hazard).
   */
  tryAdmitReclaim(node: string): number {
    const last = this.ledger.head(node).head;
    return this.admitTransfer((seq) => encodeReclaim(this.adapter, this.self, seq, node, last), [last]);
  }

  // ------------------------------------------------------------------------------ remote facts

  /**
   * Admits a fact received from a peer: the ledger checks an escrow fact first (any other fact is
   * refused: on an escrowed kernel every fact is one), then the kernel. `admit` is the kernel's.
   */
  admitRemote(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array, now: number, admit: () => number, isDuplicate: () => boolean): number {
    this.now = now;
    const escrow = this.ledger.check(id, deps, payload);
    if (escrow !== EscrowCode.Ok) {
      if (isDuplicate()) return AdmitCode.DuplicateFact;
      this.counters.refused++;
      this.lastRefusal = escrow;
      return ESCROW_REFUSED;
    }
    const code = admit();
    if (code !== AdmitCode.Ok) return code;
    this.ledger.commit(id);
    this.afterRemote(payload);
    return AdmitCode.Ok;
  }

  /** Replays a fact from this node's own log at start (the kernel already holds it). */
  replay(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): EscrowCode {
    const code = this.ledger.check(id, deps, payload);
    if (code === EscrowCode.Ok) this.ledger.commit(id);
    return code;
  }

  private afterRemote(payload: Uint8Array): void {
    const f = decodeEscrowFact(this.adapter, payload);
    if (f?.kind !== EscrowKind.Grant || f.target !== this.self) return;
    this.counters.grantsReceived++;
    const key = toHex(f.requestId);
    const open = this.open.get(key);
    const outcome = this.pending.grant(key, f.origin);
    if (open !== undefined && outcome.status === 'applied') {
      this.close(open);
      this.counters.grantLatencies.unshift(this.now - open.openedAt);
      if (this.counters.grantLatencies.length > LATENCY_SAMPLES) this.counters.grantLatencies.pop();
    }
    this.wake();
  }

  // ---------------------------------------------------------------------------------- requests

  /** Starts a request for `need` more of `resource` (plus the refill), unless one is open. */
  private ask(resource: Resource, need: bigint): void {
    if (this.openByResource[resource] !== undefined) return;
    const amount = need + this.refill[resource];
    const id = this.host.requestId();
    const key = toHex(id);
    this.pending.open(key, amount, this.now);
    const open = { id, key, resource, openedAt: this.now };
    this.open.set(key, open);
    this.openByResource[resource] = open;
    this.pump();
  }

  private close(open: OpenRequest): void {
    this.open.delete(open.key);
    if (this.openByResource[open.resource] === open) this.openByResource[open.resource] = undefined;
  }

  /** Sends what is due and fails what is out of time. Call it every few ms (the host's timer). */
  tick(now: number): void {
    this.now = now;
    if (this.waiters.some((w) => w.until <= now)) this.wake();
    this.pump();
  }

  private pump(): void {
    for (const r of this.pending.pruneFailed(this.now)) {
      const open = this.open.get(r.requestId);
      if (open !== undefined) this.close(open);
      this.counters.requestsFailed++;
      this.wake(true);
    }
    if (this.open.size === 0) return;
    const reachable = this.host.reachable().filter((n) => n !== this.self && this.ledger.holder(n)?.fenced !== true);
    for (const r of this.pending.due(this.now)) {
      const open = this.open.get(r.requestId)!;
      // Richest known first (the ledger's view of each peer's available rights).
      const peers = [...reachable].sort((a, b) => {
        const d = this.ledger.available(b, open.resource) - this.ledger.available(a, open.resource);
        return d > 0n ? 1 : d < 0n ? -1 : a < b ? -1 : 1;
      });
      const peer = this.pending.selectPeer(r.requestId, peers);
      if (peer === undefined) continue;
      this.pending.recordAttempt(r.requestId, peer, this.now);
      if (this.host.send(peer, { type: 'request', requestId: open.id, resource: open.resource, amount: r.amount })) this.counters.requestsSent++;
    }
  }

  /** A hint from `from` arrived. */
  onHint(from: string, hint: EscrowHint, now: number): void {
    this.now = now;
    if (hint.type === 'denial') {
      const key = toHex(hint.requestId);
      if (!this.open.has(key)) return;
      this.counters.denialsReceived++;
      this.pending.expedite(key, now);
      this.pump();
      return;
    }
    this.counters.requestsReceived++;
    const key = `${from}\0${toHex(hint.requestId)}`;
    if (this.ledger.isFenced(from)) return; // reclaimed: rights given to it would be stranded
    // Answered before: the grant is a fact and replication delivers it; nothing new to give.
    if (this.answered.has(key)) return;
    const have = this.available(hint.resource);
    if (have <= 0n) {
      this.counters.denialsSent++;
      this.host.send(from, { type: 'denial', requestId: hint.requestId, resource: hint.resource, available: have < 0n ? 0n : have });
      return;
    }
    // Keep enough to stay above the low-water mark when there is plenty; near the end give half
    // (rounded up), so the last rights still move to whoever is selling.
    const surplus = have - this.lowWater[hint.resource];
    const give = surplus >= hint.amount ? hint.amount : minBig(hint.amount, (have + 1n) / 2n);
    const code = this.tryAdmitGrant(from, give, hint.resource, hint.requestId);
    if (code === AdmitCode.Ok) {
      this.answered.add(key);
      if (this.answered.size > 100_000) this.answered.delete(this.answered.values().next().value!);
    } else {
      this.counters.denialsSent++;
      this.host.send(from, { type: 'denial', requestId: hint.requestId, resource: hint.resource, available: 0n });
    }
  }

  // ------------------------------------------------------------------------------------ waiting

  /**
   * Resolves true once this node can spend `need` of `resource`, false when the request for it
   * fails, or at the first tick from `until` on (the agent's clock): a caller that stops waiting
   * leaves nothing behind that keeps asking.
   */
  waitFor(resource: Resource, need: bigint, until: number): Promise<boolean> {
    if (this.available(resource) >= need) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiters.push({ resource, need, until, resolve });
      this.ask(resource, need - this.available(resource));
    });
  }

  /** Gives up every wait (closing). */
  cancelWaits(): void {
    for (const w of this.waiters.splice(0)) w.resolve(false);
  }

  private wake(failed = false): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.available(w.resource) >= w.need) w.resolve(true);
      else if ((failed && this.openByResource[w.resource] === undefined) || w.until <= this.now) w.resolve(false);
      else still.push(w);
    }
    this.waiters = still;
    // Someone still waits and nothing is asked for them: ask again.
    for (const w of this.waiters) this.ask(w.resource, w.need - this.available(w.resource));
  }
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
