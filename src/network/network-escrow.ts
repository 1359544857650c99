/**
 * Escrow on a NetworkingKernel: the bounded invariant's rights split between the cluster's nodes
 * (docs/ESCROW.md). Spending uses this node's own rights at memory speed and never waits for the
 * network; when they run low a request goes to the richest peer the ledger knows of, in the
 * background, and the grant comes back as a fact through ordinary replication.
 */
import { AdmitCode } from '../codes.js';
import type { FactId } from '../core/fact.js';
import { AdmitError, EscrowError, InvalidArgumentError } from '../errors.js';
import { describeValue } from '../describe-value.js';
import { EscrowAgent, type EscrowCounters, type EscrowHint, type EscrowPolicy } from '../algebra/escrow-agent.js';
import { EscrowLedger, ESCROW_CODE_NAMES, type HolderView } from '../algebra/escrow-ledger.js';
import { Resource } from '../algebra/escrow-facts.js';
import type { KernelBase } from '../kernels/kernel-base.js';
import { DurableKernel, type AckMode } from '../kernels/durable-kernel.js';

/** `NetworkingOptions.escrow`: who shares the bound, and how eagerly quota moves. */
export interface EscrowOptions extends EscrowPolicy {
  /**
   * The node ids the bound is split between at the start, evenly (the same list on every node;
   * order does not matter). Other nodes may join with no rights and receive grants.
   */
  readonly members: readonly string[];
  /** How often requests are retried and timed out, ms (default 50). */
  readonly tickMs?: number;
}

/** Figures of one node's escrow (`net.escrow.stats()`, and the `ctfs_escrow_*` metrics). */
export interface EscrowStats extends Omit<EscrowCounters, 'grantLatencies'> {
  /** This node's available rights, per resource ([down, up]). */
  readonly available: readonly [bigint, bigint];
  readonly openRequests: number;
  /** Grant latency (request opened → grant admitted here), ms, over the last 1,024 grants. */
  readonly grantLatencyMs: { readonly p50: number; readonly p99: number; readonly count: number };
}

const DEFAULT_TICK_MS = 50;

export class NetworkEscrow {
  readonly ledger: EscrowLedger;
  /** @internal */
  readonly agent: EscrowAgent;
  private ack: AckMode | undefined;
  private readonly timer: NodeJS.Timeout;

  /** @internal Built by NetworkingKernel.start. */
  constructor(
    private readonly kernel: KernelBase,
    ledger: EscrowLedger,
    options: EscrowOptions,
    send: (node: string, hint: EscrowHint) => boolean,
    reachable: () => readonly string[],
  ) {
    this.ledger = ledger;
    const durable = kernel instanceof DurableKernel ? kernel : undefined;
    this.agent = new EscrowAgent(
      ledger,
      {
        admit: (id, deps, payload) => (durable !== undefined ? durable.tryAdmitRaw(id, deps, payload, this.ack) : kernel.tryAdmitRaw(id, deps, payload)),
        send,
        reachable,
        requestId: () => crypto.getRandomValues(new Uint8Array(16)),
      },
      options,
    );
    const tickMs = options.tickMs ?? DEFAULT_TICK_MS;
    if (!Number.isSafeInteger(tickMs) || tickMs < 1) throw new InvalidArgumentError(`escrow.tickMs must be a positive integer, got ${describeValue(tickMs)}`);
    this.timer = setInterval(() => this.agent.tick(performance.now()), tickMs);
    this.timer.unref();
  }

  /**
   * Admits a bounded fact of this node: `payload` starts with the invariant's delta (8 bytes u64
   * for a BoundedGCounter, 16 bytes i128 for a TotalSupply; the application's own bytes may
   * follow), `deps` are the caller's (at most 15). Returns `AdmitCode.Ok` (the fact's id is then
   * `lastId`), `AdmitCode.EscrowExhausted` when this node's rights fall short (a request for more
   * has started; nothing was applied), or the kernel's code. A durable kernel takes its ack mode.
   */
  tryAdmitSpend(payload: Uint8Array, deps: readonly FactId[] = [], ackMode?: AckMode): number {
    this.ack = ackMode;
    return this.agent.tryAdmitSpend(payload, deps, performance.now());
  }

  /** The id of the last fact this node admitted through escrow (spend, grant, reclaim). */
  get lastId(): FactId | undefined {
    return this.agent.lastId;
  }

  /** `tryAdmitSpend`, throwing: `EscrowExhausted` (an EscrowError with the figures) or an AdmitError. Returns the fact's id. */
  admitSpend(payload: Uint8Array, deps: readonly FactId[] = [], ackMode?: AckMode): FactId {
    const code = this.tryAdmitSpend(payload, deps, ackMode);
    if (code === AdmitCode.Ok) return this.agent.lastId!;
    throw this.error(code, payload);
  }

  /**
   * Spends, waiting up to `timeoutMs` (default 5,000) for quota from peers when this node's own
   * rights fall short. Rejects with `EscrowExhausted` when none came in time, or as soon as the
   * request for it failed (every peer asked denied it, or its attempts ran out): asking again at
   * once would only find the same peers just as empty.
   */
  async admitSpendAsync(payload: Uint8Array, deps: readonly FactId[] = [], options: { timeoutMs?: number; ackMode?: AckMode } = {}): Promise<FactId> {
    const timeoutMs = options.timeoutMs ?? 5_000;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const code = this.tryAdmitSpend(payload, deps, options.ackMode);
      if (code === AdmitCode.Ok) return this.agent.lastId!;
      const left = deadline - performance.now();
      if (code !== AdmitCode.EscrowExhausted || left <= 0) throw this.error(code, payload);
      const delta = this.agent.adapter.readDelta(payload);
      const resource = delta < 0n ? Resource.Down : Resource.Up;
      let timer: NodeJS.Timeout | undefined;
      const arrived = await Promise.race([
        this.agent.waitFor(resource, delta < 0n ? -delta : delta, deadline),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), left))),
      ]);
      clearTimeout(timer);
      if (!arrived) throw this.error(AdmitCode.EscrowExhausted, payload);
    }
  }

  private error(code: number, payload: Uint8Array): Error {
    if (code === AdmitCode.EscrowExhausted) {
      const delta = this.agent.adapter.readDelta(payload);
      const resource = delta < 0n ? Resource.Down : Resource.Up;
      const available = this.available(resource);
      const open = this.agent.requests().length;
      return new EscrowError('EscrowExhausted', `node ${this.agent.self} has ${available} of the ${delta < 0n ? 'down' : 'up'} rights available, ${delta < 0n ? -delta : delta} needed; ${open} request(s) for more open`, { requested: delta < 0n ? -delta : delta, available });
    }
    const refusal = this.agent.lastRefusal;
    return new AdmitError(code, 0, refusal !== 0 ? `escrow refused it: ${ESCROW_CODE_NAMES[refusal]}` : undefined);
  }

  /** This node's rights of `resource` (default up: what increments use) it can spend now. */
  available(resource: Resource = Resource.Up): bigint {
    return this.agent.available(resource);
  }

  /** Every node's rights as this replica knows them (the global view). */
  view(): HolderView[] {
    return this.ledger.holdersView();
  }

  /** This node's open requests for quota. */
  requests(): ReturnType<EscrowAgent['requests']> {
    return this.agent.requests();
  }

  /** Gives `amount` of this node's rights to `node` (a grant no one asked for). Returns the grant's id. */
  grant(node: string, amount: bigint, resource: Resource = Resource.Up): FactId {
    const code = this.agent.tryAdmitGrant(node, amount, resource);
    if (code === AdmitCode.Ok) return this.agent.lastId!;
    if (code === AdmitCode.EscrowExhausted) throw new EscrowError('EscrowExhausted', `node ${this.agent.self} has ${this.available(resource)} available, cannot grant ${amount}`, { requested: amount, available: this.available(resource) });
    throw this.error(code, new Uint8Array(16));
  }

  /**
   * An operator's action for a node that is gone for good: takes over every right `node` still
   * holds, naming its last escrow fact this replica knows. Fence the node first (stop it, and keep
   * it from coming back under that id): docs/ESCROW.md explains what happens if it returns.
   */
  reclaim(node: string): FactId {
    if (typeof node !== 'string' || node.length === 0) throw new InvalidArgumentError(`reclaim takes a node id, got ${describeValue(node)}`);
    const code = this.agent.tryAdmitReclaim(node);
    if (code === AdmitCode.Ok) return this.agent.lastId!;
    throw this.error(code, new Uint8Array(16));
  }

  /** BLAKE3 of the ledger's canonical bytes: equal on replicas holding the same escrow facts. */
  digest(): Uint8Array {
    return this.ledger.digest();
  }

  stats(): EscrowStats {
    const { grantLatencies, ...counters } = this.agent.counters;
    const sorted = [...grantLatencies].sort((a, b) => a - b);
    const at = (q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return {
      ...counters,
      available: [this.available(Resource.Down), this.available(Resource.Up)],
      openRequests: this.agent.requests().length,
      grantLatencyMs: { p50: at(0.5), p99: at(0.99), count: sorted.length },
    };
  }

  /** @internal */
  onHint(from: string, hint: EscrowHint): void {
    this.agent.onHint(from, hint, performance.now());
  }

  /** @internal Admits a fact from a peer: ledger first, then the kernel. */
  admitRemote(id: FactId, deps: readonly FactId[], payload: Uint8Array): number {
    const kernel = this.kernel;
    return this.agent.admitRemote(id, deps, payload, performance.now(), () => kernel.tryAdmitRaw(id, deps, payload), () => kernel.contains(id));
  }

  /** @internal */
  close(): void {
    clearInterval(this.timer);
    this.agent.cancelWaits();
  }
}
