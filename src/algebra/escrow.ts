/**
 * Escrow: a bounded resource (stock, a quota, a balance above a floor) split between nodes so that
 * each can spend its share without asking anyone.
 *
 * `EscrowManager` is the ledger of every node's allocation — the local part. Its invariant, kept
 * by every operation and checked by the property tests: the quotas always sum to the global limit,
 * and no node has used more than its quota, so the nodes together never exceed the limit. Moving
 * quota between nodes over the network (requests, grants, exactly-once application) builds on it.
 *
 * Amounts are positive bigints; every refusal is an `EscrowError` with a stable code, and a refused
 * operation changes nothing. (The upstream ledger accepted negative amounts, which inverted every
 * operation, let a node release more than it had used, and divided by zero on an empty node list.)
 */
import { EscrowError } from '../errors.js';
import { describeValue } from '../describe-value.js';

export type NodeId = string;

/** One node's share. */
export interface EscrowAllocation {
  readonly node: NodeId;
  /** Granted share of the global limit. */
  readonly quota: bigint;
  /** Consumed out of the quota. */
  readonly used: bigint;
  /** quota − used. */
  readonly available: bigint;
}

interface Share {
  quota: bigint;
  used: bigint;
}

/** Largest global limit: amounts are i128 on the wire and in TotalSupply states. */
export const MAX_ESCROW_LIMIT = (1n << 127n) - 1n;

export class EscrowManager {
  readonly globalLimit: bigint;
  private readonly shares = new Map<NodeId, Share>();

  constructor(globalLimit: bigint) {
    checkAmount(globalLimit, 'global limit');
    this.globalLimit = globalLimit;
  }

  /**
   * Splits the global limit between `nodes` as evenly as integers allow: each gets ⌊limit / n⌋ and
   * the first (limit mod n) get one more (1000 over 3 → 334, 333, 333). Nodes are distinct,
   * non-empty strings; the ledger can be initialised once.
   */
  initialize(nodes: readonly NodeId[]): void {
    if (this.shares.size > 0) throw new EscrowError('AlreadyInitialized', 'the escrow is already split between nodes');
    if (!Array.isArray(nodes) || nodes.length === 0) throw new EscrowError('InvalidNodes', 'at least one node is needed');
    const seen = new Set<NodeId>();
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i];
      if (typeof node !== 'string' || node.length === 0) throw new EscrowError('InvalidNodes', `node ${i} is not a non-empty string`);
      if (seen.has(node)) throw new EscrowError('InvalidNodes', `node ${node} is listed twice`);
      seen.add(node);
    }
    const n = BigInt(nodes.length);
    const base = this.globalLimit / n;
    const extra = this.globalLimit % n;
    nodes.forEach((node, i) => this.shares.set(node, { quota: base + (BigInt(i) < extra ? 1n : 0n), used: 0n }));
  }

  /** The nodes, in initialisation order. */
  nodes(): NodeId[] {
    return [...this.shares.keys()];
  }

  allocation(node: NodeId): EscrowAllocation {
    const s = this.share(node);
    return { node, quota: s.quota, used: s.used, available: s.quota - s.used };
  }

  available(node: NodeId): bigint {
    const s = this.share(node);
    return s.quota - s.used;
  }

  /** Consumes `amount` of `node`'s share if it has that much available; returns whether it did. */
  tryConsume(node: NodeId, amount: bigint): boolean {
    checkAmount(amount, 'amount');
    const s = this.share(node);
    if (amount > s.quota - s.used) return false;
    s.used += amount;
    return true;
  }

  /** Consumes `amount` of `node`'s share, or throws `InsufficientEscrow`. */
  consume(node: NodeId, amount: bigint): void {
    if (!this.tryConsume(node, amount)) {
      const available = this.available(node);
      throw new EscrowError('InsufficientEscrow', `node ${node} has ${available} available, ${amount} requested`, { requested: amount, available });
    }
  }

  /** Gives back `amount` that `node` consumed (e.g. a cancelled order); at most what it used. */
  release(node: NodeId, amount: bigint): void {
    checkAmount(amount, 'amount');
    const s = this.share(node);
    if (amount > s.used) throw new EscrowError('ReleaseExceedsUsage', `node ${node} used ${s.used}, cannot release ${amount}`);
    s.used -= amount;
  }

  /** Moves `amount` of available quota from one node to another (a quota grant). */
  transfer(from: NodeId, to: NodeId, amount: bigint): void {
    checkAmount(amount, 'amount');
    const source = this.share(from);
    const target = this.share(to);
    if (from === to) throw new EscrowError('InvalidTransfer', `node ${from} cannot transfer to itself`);
    const available = source.quota - source.used;
    if (amount > available) {
      throw new EscrowError('InsufficientEscrow', `node ${from} has ${available} available, ${amount} requested`, { requested: amount, available });
    }
    source.quota -= amount;
    target.quota += amount;
  }

  /**
   * Redistributes all unused quota evenly: every node keeps what it used and gets ⌊unused / n⌋
   * available, the first (unused mod n) nodes one more.
   */
  rebalance(): void {
    if (this.shares.size === 0) throw new EscrowError('NotInitialized', 'the escrow has no nodes yet');
    const n = BigInt(this.shares.size);
    const unused = this.totalAvailable();
    const base = unused / n;
    const extra = unused % n;
    let i = 0n;
    for (const s of this.shares.values()) {
      s.quota = s.used + base + (i < extra ? 1n : 0n);
      i++;
    }
  }

  /** Σ quota — always the global limit once initialised. */
  totalAllocated(): bigint {
    let t = 0n;
    for (const s of this.shares.values()) t += s.quota;
    return t;
  }

  totalUsed(): bigint {
    let t = 0n;
    for (const s of this.shares.values()) t += s.used;
    return t;
  }

  totalAvailable(): bigint {
    return this.totalAllocated() - this.totalUsed();
  }

  private share(node: NodeId): Share {
    const s = this.shares.get(node);
    if (s === undefined) {
      if (this.shares.size === 0) throw new EscrowError('NotInitialized', 'the escrow has no nodes yet');
      throw new EscrowError('UnknownNode', `node ${describeValue(node)} holds no escrow`);
    }
    return s;
  }
}

function checkAmount(amount: bigint, what: string): void {
  if (typeof amount !== 'bigint' || amount <= 0n || amount > MAX_ESCROW_LIMIT) {
    throw new EscrowError('InvalidAmount', `${what} must be a positive bigint up to 2^127 − 1, got ${describeValue(amount)}`);
  }
}
