/**
 * The escrow ledger: every node's rights over a bounded resource, derived from escrow facts alone
 * (escrow-facts.ts), so that every replica holding the same facts holds the same ledger.
 *
 * Why a replica always reaches the origin's answer: a node's escrow facts form a chain (each
 * depends on the node's previous one, and on the grants to it that it counted on), so a replica
 * sees the origin's spends, grants and reclaims in the origin's order, with at least the grants
 * the origin had. A node's available rights are its share, plus what it was granted and what its
 * own opposite deltas created, minus what it gave away and spent: at a replica that is never less
 * than it was at the origin, so a fact the origin accepted is accepted everywhere. And the sum of
 * every node's available rights is exactly the room left between the value and its bound in any
 * causally closed set of facts, so no replica's kernel can ever be pushed past the bound.
 *
 * The ledger checks a fact (`check`, no change) before the kernel admits it, and records it
 * (`commit`) once the kernel has; the kernel's own invariant check stays as a second line.
 */
import { bytesEqual, compareBytes, concatBytes, writeU64le } from '../core/bytes.js';
import { hash } from 'blake3-jit';
import { factId, isFactId, MAX_DEPS } from '../core/fact.js';
import { InvalidArgumentError } from '../errors.js';
import type { Invariant } from '../invariants/invariant.js';
import { describeValue } from '../describe-value.js';
import { EscrowKind, MAX_ESCROW_NODE_BYTES, Resource, type EscrowAdapter, type EscrowFact, decodeEscrowFact, encodeGenesis, escrowAdapterFor, escrowUtf8 } from './escrow-facts.js';

/** Why the ledger refuses a fact. 0 is Ok. */
export const EscrowCode = {
  Ok: 0,
  /** Not an escrow fact of this escrow's invariant (or malformed). */
  NotEscrowFact: 1,
  /** A genesis other than the one this node derives from its configuration. */
  GenesisMismatch: 2,
  /** An escrow fact before the genesis. */
  NoGenesis: 3,
  /** Not the next fact of its origin's chain (a second branch of it, or a replay). */
  Fork: 4,
  /** The origin did not hold the rights the fact uses. */
  Insufficient: 5,
  /** The origin's rights were reclaimed: its chain is closed. */
  Fenced: 6,
  /** A reclaim that does not name the reclaimed node's last escrow fact, or a grant to oneself. */
  InvalidTransfer: 7,
} as const;
export type EscrowCode = (typeof EscrowCode)[keyof typeof EscrowCode];

export const ESCROW_CODE_NAMES: readonly string[] = Object.keys(EscrowCode);

/** One node's rights, per resource ([Down, Up]). */
export interface HolderView {
  readonly node: string;
  /** Share + received + created − given. */
  readonly quota: readonly [bigint, bigint];
  /** Spent. */
  readonly used: readonly [bigint, bigint];
  /** quota − used. */
  readonly available: readonly [bigint, bigint];
  /** Escrow facts of this node so far. */
  readonly seq: number;
  readonly fenced: boolean;
}

class Holder {
  head: Uint8Array;
  seq = 0;
  readonly quota: [bigint, bigint] = [0n, 0n];
  readonly used: [bigint, bigint] = [0n, 0n];
  fenced = false;
  constructor(
    readonly node: string,
    genesis: Uint8Array,
  ) {
    this.head = genesis;
  }
}

/** A grant to this node that its chain does not depend on yet. */
export interface UnackedGrant {
  readonly id: Uint8Array;
  readonly resource: Resource;
  readonly amount: bigint;
}

export class EscrowLedger {
  readonly adapter: EscrowAdapter;
  /** The node this ledger serves (its grants are tracked until its chain depends on them). */
  readonly self: string;
  readonly genesisId: Uint8Array;
  readonly genesis: EscrowFact;
  /** [down, up] room at genesis: the totals split between the members. */
  readonly totals: readonly [bigint, bigint];
  private started = false;
  private readonly holders = new Map<string, Holder>();
  private readonly unackedGrants: UnackedGrant[] = [];
  /** The fact `check` accepted last, for `commit`. */
  private checked: EscrowFact | undefined;
  private checkedDeps: readonly Uint8Array[] = [];

  constructor(adapter: EscrowAdapter, self: string, genesisId: Uint8Array, private readonly genesisPayload: Uint8Array) {
    const genesis = decodeEscrowFact(adapter, genesisPayload);
    if (genesis?.kind !== EscrowKind.Genesis) throw new Error('not a genesis payload');
    this.adapter = adapter;
    this.self = self;
    this.genesisId = genesisId;
    this.genesis = genesis;
    this.totals = adapter.room(genesis.initialState);
  }

  /**
   * The ledger of node `self` for an escrow over `invariant` split between `members`, starting
   * from `initialState` (the kernel's state before any fact): every node configured alike derives
   * the same genesis fact. Throws InvalidArgument for an invariant escrow does not support.
   */
  static create(invariant: Invariant, self: string, members: readonly string[], initialState: Uint8Array): EscrowLedger {
    if (typeof self !== 'string' || self.length === 0 || escrowUtf8.encode(self).length > MAX_ESCROW_NODE_BYTES) {
      throw new InvalidArgumentError(`a node id is 1 to ${MAX_ESCROW_NODE_BYTES} UTF-8 bytes, got ${describeValue(self)}`);
    }
    const adapter = escrowAdapterFor(invariant);
    if (adapter === undefined) {
      throw new InvalidArgumentError(`escrow supports BoundedGCounterInvariant and TotalSupplyInvariant, not ${describeValue(invariant)}`);
    }
    const payload = encodeGenesis(adapter, members, initialState);
    return new EscrowLedger(adapter, self, factId([], payload), payload);
  }

  /** The genesis fact (admit it first: every node admits the same one, dedup keeps one). */
  genesisFact(): { id: Uint8Array; deps: Uint8Array[]; payload: Uint8Array } {
    return { id: this.genesisId, deps: [], payload: this.genesisPayload };
  }

  /** Whether the genesis has been committed. */
  get isStarted(): boolean {
    return this.started;
  }

  /** Grants to this node its chain does not depend on yet (the next local fact should). */
  get unacked(): readonly UnackedGrant[] {
    return this.unackedGrants;
  }

  /** The chain head and next seq of `node` (the genesis and 1 for a node with no escrow fact yet). */
  head(node: string): { readonly head: Uint8Array; readonly seq: number } {
    const h = this.holders.get(node);
    return h === undefined ? { head: this.genesisId, seq: 1 } : { head: h.head, seq: h.seq + 1 };
  }

  /** Whether `node`'s rights were reclaimed (its chain is closed). */
  isFenced(node: string): boolean {
    return this.holders.get(node)?.fenced === true;
  }

  /** Rights `node` has available of `resource`, as this replica knows them. */
  available(node: string, resource: Resource): bigint {
    const h = this.holders.get(node);
    return h === undefined ? 0n : h.quota[resource] - h.used[resource];
  }

  /**
   * What this node can spend of `resource` in a fact whose deps are `deps`: its available rights
   * without the grants the fact does not depend on (a replica might not have them yet).
   */
  spendable(resource: Resource, deps: readonly Uint8Array[]): bigint {
    let a = this.available(this.self, resource);
    for (const g of this.unackedGrants) if (g.resource === resource && !deps.some((d) => bytesEqual(d, g.id))) a -= g.amount;
    return a;
  }

  holder(node: string): HolderView | undefined {
    const h = this.holders.get(node);
    if (h === undefined) return undefined;
    return {
      node,
      quota: [h.quota[0], h.quota[1]],
      used: [h.used[0], h.used[1]],
      available: [h.quota[0] - h.used[0], h.quota[1] - h.used[1]],
      seq: h.seq,
      fenced: h.fenced,
    };
  }

  /** Every holder, by node id. */
  holdersView(): HolderView[] {
    return [...this.holders.keys()].sort().map((n) => this.holder(n)!);
  }

  /** Σ over holders of quota, used and available, per resource. */
  sums(): { quota: [bigint, bigint]; used: [bigint, bigint]; available: [bigint, bigint] } {
    const quota: [bigint, bigint] = [0n, 0n];
    const used: [bigint, bigint] = [0n, 0n];
    for (const h of this.holders.values()) {
      for (const r of [0, 1] as const) {
        quota[r] += h.quota[r];
        used[r] += h.used[r];
      }
    }
    return { quota, used, available: [quota[0] - used[0], quota[1] - used[1]] };
  }

  /**
   * Checks an escrow fact against the ledger without changing it: `EscrowCode.Ok` or why not.
   * On Ok the decoded fact is kept for `commit`.
   */
  check(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): EscrowCode {
    this.checked = undefined;
    if (!isFactId(id) || !Array.isArray(deps) || deps.length > MAX_DEPS || !deps.every(isFactId)) return EscrowCode.NotEscrowFact;
    const f = decodeEscrowFact(this.adapter, payload);
    if (f === undefined || f.adapter !== this.adapter.code) return EscrowCode.NotEscrowFact;
    const code = this.checkDecoded(id, deps, f);
    if (code === EscrowCode.Ok) {
      this.checked = f;
      this.checkedDeps = deps;
    }
    return code;
  }

  private checkDecoded(id: Uint8Array, deps: readonly Uint8Array[], f: EscrowFact): EscrowCode {
    if (f.kind === EscrowKind.Genesis) return bytesEqual(id, this.genesisId) ? EscrowCode.Ok : EscrowCode.GenesisMismatch;
    if (!this.started) return EscrowCode.NoGenesis;
    const origin = this.holders.get(f.origin);
    const head = origin?.head ?? this.genesisId;
    if (origin?.fenced === true) return EscrowCode.Fenced;
    if (f.seq !== (origin?.seq ?? 0) + 1 || !includes(deps, head)) return EscrowCode.Fork;
    const available = (r: Resource): bigint => (f.origin === this.self ? this.spendable(r, deps) : this.available(f.origin, r));
    switch (f.kind) {
      case EscrowKind.Spend:
        if (f.delta > 0n && available(Resource.Up) < f.delta) return EscrowCode.Insufficient;
        if (f.delta < 0n && available(Resource.Down) < -f.delta) return EscrowCode.Insufficient;
        return EscrowCode.Ok;
      case EscrowKind.Grant:
        if (f.target === f.origin) return EscrowCode.InvalidTransfer;
        return available(f.resource) < f.amount ? EscrowCode.Insufficient : EscrowCode.Ok;
      case EscrowKind.Reclaim: {
        if (f.target === f.origin) return EscrowCode.InvalidTransfer;
        const target = this.holders.get(f.target);
        if (target?.fenced === true) return EscrowCode.Fenced;
        const targetHead = target?.head ?? this.genesisId;
        return bytesEqual(targetHead, f.lastFact) && includes(deps, f.lastFact) ? EscrowCode.Ok : EscrowCode.InvalidTransfer;
      }
      default:
        return EscrowCode.NotEscrowFact;
    }
  }

  /** Records the fact `check` accepted last, now that the kernel admitted it as `id`. */
  commit(id: Uint8Array): void {
    const f = this.checked;
    if (f === undefined) throw new Error('commit without a successful check');
    this.checked = undefined;
    if (f.kind === EscrowKind.Genesis) {
      if (!this.started) this.start(f);
      return;
    }
    const origin = this.holderOf(f.origin);
    switch (f.kind) {
      case EscrowKind.Spend:
        if (f.delta > 0n) {
          origin.used[Resource.Up] += f.delta;
          origin.quota[Resource.Down] += f.delta;
        } else if (f.delta < 0n) {
          origin.used[Resource.Down] -= f.delta;
          origin.quota[Resource.Up] -= f.delta;
        }
        break;
      case EscrowKind.Grant: {
        origin.quota[f.resource] -= f.amount;
        this.holderOf(f.target).quota[f.resource] += f.amount;
        if (f.target === this.self) this.unackedGrants.push({ id, resource: f.resource, amount: f.amount });
        break;
      }
      case EscrowKind.Reclaim: {
        const target = this.holderOf(f.target);
        for (const r of [Resource.Down, Resource.Up] as const) {
          const left = target.quota[r] - target.used[r];
          target.quota[r] -= left;
          origin.quota[r] += left;
        }
        target.fenced = true;
        break;
      }
    }
    origin.head = id;
    origin.seq = f.seq;
    if (f.origin === this.self && this.unackedGrants.length > 0) {
      const deps = this.checkedDeps;
      for (let i = this.unackedGrants.length - 1; i >= 0; i--) if (includes(deps, this.unackedGrants[i]!.id)) this.unackedGrants.splice(i, 1);
    }
    this.checkedDeps = [];
  }

  /**
   * This node's own record, for the spend fast path (`own.head`, `own.seq`, its rights): read it,
   * do not change it but through `commitLocalSpend`.
   */
  get own(): { readonly head: Uint8Array; readonly seq: number; readonly quota: readonly [bigint, bigint]; readonly used: readonly [bigint, bigint]; readonly fenced: boolean } {
    return this.holderOf(this.self);
  }

  /**
   * A local spend the caller has checked against `spendable` and the kernel has admitted: the
   * fast path (no decoding, no allocation). Same effect as `commit` of that fact.
   */
  commitLocalSpend(id: Uint8Array, delta: bigint, deps: readonly Uint8Array[]): void {
    const own = this.holderOf(this.self);
    if (delta > 0n) {
      own.used[Resource.Up] += delta;
      own.quota[Resource.Down] += delta;
    } else if (delta < 0n) {
      own.used[Resource.Down] -= delta;
      own.quota[Resource.Up] -= delta;
    }
    own.head = id;
    own.seq++;
    if (this.unackedGrants.length > 0) {
      for (let i = this.unackedGrants.length - 1; i >= 0; i--) if (includes(deps, this.unackedGrants[i]!.id)) this.unackedGrants.splice(i, 1);
    }
  }

  private start(genesis: EscrowFact): void {
    this.started = true;
    const members = genesis.members;
    const n = BigInt(members.length);
    members.forEach((node, i) => {
      const h = this.holderOf(node);
      for (const r of [Resource.Down, Resource.Up] as const) h.quota[r] = this.totals[r] / n + (BigInt(i) < this.totals[r] % n ? 1n : 0n);
    });
  }

  private holderOf(node: string): Holder {
    let h = this.holders.get(node);
    if (h === undefined) this.holders.set(node, (h = new Holder(node, this.genesisId)));
    return h;
  }

  /**
   * The ledger's canonical bytes (docs/FORMATS.md §10): the genesis id, then the holders sorted by
   * id, each with its seq, head, quotas, used and whether it is fenced. Equal on two replicas
   * exactly when their ledgers are.
   */
  encode(): Uint8Array {
    const nodes = [...this.holders.values()].map((h) => ({ h, nb: escrowUtf8.encode(h.node) })).sort((a, b) => compareBytes(a.nb, b.nb));
    const parts: Uint8Array[] = [this.genesisId];
    for (const { h, nb } of nodes) {
      const fixed = new Uint8Array(8 + 32 + 4 * 16 + 1);
      writeU64le(fixed, 0, h.seq);
      fixed.set(h.head, 8);
      let at = 40;
      for (const v of [h.quota[0], h.quota[1], h.used[0], h.used[1]]) {
        writeI128(fixed, at, v);
        at += 16;
      }
      fixed[at] = h.fenced ? 1 : 0;
      parts.push(Uint8Array.of(nb.length), nb, fixed);
    }
    return concatBytes(parts);
  }

  /** BLAKE3 of `encode()`. */
  digest(): Uint8Array {
    return hash(this.encode());
  }
}

/** Two's complement, 16 bytes little-endian (amounts stay within ±2^127 here). */
function writeI128(out: Uint8Array, at: number, v: bigint): void {
  const u = BigInt.asUintN(128, v);
  writeU64le(out, at, u & 0xffff_ffff_ffff_ffffn);
  writeU64le(out, at + 8, u >> 64n);
}

function includes(deps: readonly Uint8Array[], id: Uint8Array): boolean {
  for (let i = 0; i < deps.length; i++) if (bytesEqual(deps[i]!, id)) return true;
  return false;
}
