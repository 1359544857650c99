/**
 * A cluster of escrow nodes in one process, with no network at all: each node is a real kernel,
 * ledger and agent; the test moves facts and hints between them by hand, in any causal order it
 * likes, drops hints, and checks after every step what escrow promises:
 *  - no replica refuses a fact its origin accepted (every delivery is Ok or a duplicate);
 *  - on every replica the ledger's available rights sum to the room the kernel's state has left,
 *    and the quotas of a ceiling-only counter sum to the limit;
 *  - across the cluster (the union of every node's facts) the spends never exceed the bound.
 */
import {
  AdmitCode,
  BoundedCounterState,
  BoundedGCounterInvariant,
  ConservationState,
  EscrowAgent,
  EscrowLedger,
  Kernel,
  Resource,
  TotalSupplyInvariant,
  decodeEscrowFact,
  type EscrowHint,
  type EscrowPolicy,
  type Invariant,
} from '../helpers/lib.js';

export interface WorldFact {
  readonly id: Uint8Array;
  readonly deps: readonly Uint8Array[];
  readonly payload: Uint8Array;
}

export interface WorldNode {
  readonly name: string;
  readonly kernel: Kernel;
  readonly agent: EscrowAgent;
  readonly ledger: EscrowLedger;
  /** Facts in admission order. */
  readonly log: WorldFact[];
  readonly has: Set<string>;
  /** Facts this node refused (never offered to it again). */
  readonly refused: Set<string>;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export type WorldKind = 'counter' | 'supply';

export class EscrowWorld {
  readonly nodes: WorldNode[] = [];
  readonly violations: string[] = [];
  /** Hints in flight: [from, to, hint]. */
  readonly hints: [string, string, EscrowHint][] = [];
  now = 0;
  private requestCounter = 0;
  readonly initial: Uint8Array;
  private readonly invariant: () => Invariant;

  constructor(
    readonly kind: WorldKind,
    names: readonly string[],
    readonly limit: bigint,
    policy: EscrowPolicy = {},
  ) {
    // A counter: value 0 of capacity `limit`. A supply: balance `limit` within [0, 2·limit].
    this.initial = kind === 'counter' ? new BoundedCounterState(0n, limit).toBytes() : new ConservationState(limit, 0n, 2n * limit).toBytes();
    this.invariant = kind === 'counter' ? () => new BoundedGCounterInvariant() : () => new TotalSupplyInvariant();
    for (const name of names) {
      const invariant = this.invariant();
      const kernel = Kernel.withState(invariant, this.initial, { indexCapacity: 1 << 12 });
      const ledger = EscrowLedger.create(invariant, name, names, this.initial);
      const node: WorldNode = {
        name,
        kernel,
        ledger,
        log: [],
        has: new Set(),
        refused: new Set(),
        agent: undefined as unknown as EscrowAgent,
      };
      const admit = (id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number => {
        const code = kernel.tryAdmitRaw(id, deps, payload);
        // The agent's deps and payload are scratch: keep copies.
        if (code === AdmitCode.Ok) this.record(node, { id, deps: [...deps], payload: payload.slice() });
        return code;
      };
      (node as { agent: EscrowAgent }).agent = new EscrowAgent(
        ledger,
        {
          admit,
          send: (to, hint) => {
            this.hints.push([name, to, hint]);
            return true;
          },
          reachable: () => names.filter((n) => n !== name),
          requestId: () => {
            const id = new Uint8Array(16);
            new DataView(id.buffer).setUint32(0, ++this.requestCounter, true);
            return id;
          },
        },
        policy,
      );
      const genesis = ledger.genesisFact();
      const code = node.agent.admitRemote(genesis.id, genesis.deps, genesis.payload, 0, () => admit(genesis.id, genesis.deps, genesis.payload), () => false);
      if (code !== AdmitCode.Ok) this.violations.push(`${name}: genesis refused with ${code}`);
      this.nodes.push(node);
    }
  }

  private record(node: WorldNode, fact: WorldFact): void {
    node.log.push(fact);
    node.has.add(hex(fact.id));
  }

  node(name: string): WorldNode {
    return this.nodes.find((n) => n.name === name)!;
  }

  /** A spend of `delta` on node `i`: the payload is the delta (and a little app data). */
  spend(i: number, delta: bigint): number {
    const node = this.nodes[i]!;
    const payload = new Uint8Array(node.agent.adapter.deltaBytes + 3);
    node.agent.adapter.writeDelta(payload, delta);
    payload.set([7, 7, 7], node.agent.adapter.deltaBytes);
    return node.agent.tryAdmitSpend(payload, [], this.now);
  }

  /**
   * Delivers to node `to` the first fact of node `from`'s log it lacks whose deps it has (the
   * log is in causal order, so one always exists when anything is missing and `pick` skips none).
   * `pick` chooses among the deliverable ones. Returns whether a fact moved.
   */
  deliver(to: number, from: number, pick = 0): boolean {
    const target = this.nodes[to]!;
    const source = this.nodes[from]!;
    const ready = source.log.filter((f) => !target.has.has(hex(f.id)) && !target.refused.has(hex(f.id)) && f.deps.every((d) => target.has.has(hex(d))));
    if (ready.length === 0) return false;
    const f = ready[pick % ready.length]!;
    const code = target.agent.admitRemote(f.id, f.deps, f.payload, this.now, () => {
      const c = target.kernel.tryAdmitRaw(f.id, f.deps, f.payload);
      if (c === AdmitCode.Ok) this.record(target, f);
      return c;
    }, () => target.has.has(hex(f.id)));
    if (code !== AdmitCode.Ok) {
      target.refused.add(hex(f.id));
      const decoded = decodeEscrowFact(target.agent.adapter, f.payload);
      this.violations.push(`${target.name} refused ${decoded?.origin}'s fact #${decoded?.seq} (kind ${decoded?.kind}) with code ${code}, ledger ${target.agent.lastRefusal}`);
    }
    return true;
  }

  /** Delivers (or, with `drop`, loses) the hint at `index`. */
  hint(index: number, drop: boolean): void {
    const [[from, to, hint]] = this.hints.splice(index % this.hints.length, 1) as [[string, string, EscrowHint]];
    if (!drop) this.node(to).agent.onHint(from, hint, this.now);
  }

  tick(ms: number): void {
    this.now += ms;
    for (const n of this.nodes) n.agent.tick(this.now);
  }

  /** Delivers every fact everywhere. */
  syncAll(): void {
    let moved = true;
    while (moved) {
      moved = false;
      for (let i = 0; i < this.nodes.length; i++) for (let j = 0; j < this.nodes.length; j++) if (i !== j) while (this.deliver(i, j)) moved = true;
    }
  }

  /** The checks of the module comment; returns the violations found so far. */
  check(): string[] {
    const out = this.violations;
    for (const n of this.nodes) {
      const sums = n.ledger.sums();
      const room = n.agent.adapter.room(n.kernel.state.bytes);
      if (sums.available[0] !== room[0] || sums.available[1] !== room[1]) {
        out.push(`${n.name}: the ledger's available rights [${sums.available}] are not the kernel's room [${room}]`);
      }
      if (this.kind === 'counter' && sums.quota[Resource.Up] !== this.limit) out.push(`${n.name}: quotas sum to ${sums.quota[Resource.Up]}, not ${this.limit}`);
      for (const h of n.ledger.holdersView()) {
        if (h.available[0] < 0n || h.available[1] < 0n) out.push(`${n.name}: ${h.node} is overdrawn [${h.available}]`);
      }
    }
    // The union of every node's spends: what the cluster sold, whoever has heard of it.
    const seen = new Set<string>();
    let sum = 0n;
    for (const n of this.nodes) {
      for (const f of n.log) {
        const key = hex(f.id);
        if (seen.has(key)) continue;
        seen.add(key);
        const d = decodeEscrowFact(n.agent.adapter, f.payload);
        if (d === undefined) continue;
        sum += d.delta;
      }
    }
    if (this.kind === 'counter' && sum > this.limit) out.push(`the cluster sold ${sum} of ${this.limit}`);
    // Any union of causally closed sets is one: its balance must be within the bounds too.
    if (this.kind === 'supply' && (this.limit + sum < 0n || this.limit + sum > 2n * this.limit)) out.push(`the cluster's balance is ${this.limit + sum}, outside [0, ${2n * this.limit}]`);
    return out;
  }

  /** Ledger digests and kernel states, per node (equal after `syncAll`). */
  fingerprints(): string[] {
    return this.nodes.map((n) => `${hex(n.ledger.digest())}/${hex(n.kernel.state.bytes)}/${n.log.length}`);
  }
}
