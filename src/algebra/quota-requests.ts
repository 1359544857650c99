/**
 * The retry state machine of quota requests: a node that has exhausted its escrow asks peers for
 * quota and retries with exponential backoff until one grants it, or gives up.
 *
 * A request waits max(timeout, backoff) after each attempt, the backoff doubling from 500 ms to a
 * cap of 4 s (500, 1000, 2000, 4000, 4000 …), so peers are not stampeded. It fails after
 * `maxRetries` attempts or `maxAgeMs`. Peers that were not tried yet are asked first, in the order
 * given, then round-robin. A grant is applied once: `grant(id)` removes the request and returns it,
 * and a second grant for the same id returns undefined. Time is passed in (milliseconds), so the
 * machine is deterministic and testable; `due()` and `failed()` list requests in creation order.
 */
import { EscrowError, InvalidArgumentError } from '../errors.js';
import { MAX_ESCROW_LIMIT, type NodeId } from './escrow.js';

/** First backoff after a failed attempt. */
export const INITIAL_BACKOFF_MS = 500;
/** Backoff cap: 500 ms doubled three times. */
export const MAX_BACKOFF_MS = 4_000;

export interface QuotaRequestPolicy {
  /** Minimum wait after an attempt before the next one (default 500 ms). */
  readonly timeoutMs?: number;
  /** Attempts before the request fails (default 5). */
  readonly maxRetries?: number;
  /** Age at which the request fails (default 30 s). */
  readonly maxAgeMs?: number;
}

export class QuotaRequest {
  readonly requestId: string;
  readonly amount: bigint;
  readonly createdAt: number;
  /** Attempts made so far. */
  retries = 0;
  lastAttemptAt: number;
  /** Peers asked so far, in the order they were asked. */
  readonly tried: NodeId[] = [];

  constructor(requestId: string, amount: bigint, now: number) {
    this.requestId = requestId;
    this.amount = amount;
    this.createdAt = now;
    this.lastAttemptAt = now;
  }

  /** Backoff before the next attempt: 500 ms × 2^retries, at most 4 s. */
  backoffMs(): number {
    return Math.min(INITIAL_BACKOFF_MS * 2 ** Math.min(this.retries, 3), MAX_BACKOFF_MS);
  }

  age(now: number): number {
    return now - this.createdAt;
  }
}

export class PendingQuotaRequests {
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly maxAgeMs: number;
  private readonly requests = new Map<string, QuotaRequest>();

  constructor(policy: QuotaRequestPolicy = {}) {
    const { timeoutMs = 500, maxRetries = 5, maxAgeMs = 30_000 } = policy ?? {};
    for (const [name, v] of [['timeoutMs', timeoutMs], ['maxRetries', maxRetries], ['maxAgeMs', maxAgeMs]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    }
    this.timeoutMs = timeoutMs;
    this.maxRetries = maxRetries;
    this.maxAgeMs = maxAgeMs;
  }

  get size(): number {
    return this.requests.size;
  }

  /** Starts tracking a request for `amount` of quota. Request ids are unique while pending. */
  open(requestId: string, amount: bigint, now: number): QuotaRequest {
    if (typeof requestId !== 'string' || requestId.length === 0) throw new InvalidArgumentError('a request id is a non-empty string');
    if (typeof amount !== 'bigint' || amount <= 0n || amount > MAX_ESCROW_LIMIT) {
      throw new EscrowError('InvalidAmount', 'a request is for a positive amount up to 2^127 − 1');
    }
    checkTime(now);
    if (this.requests.has(requestId)) throw new EscrowError('DuplicateRequest', `request ${requestId} is already pending`);
    const request = new QuotaRequest(requestId, amount, now);
    this.requests.set(requestId, request);
    return request;
  }

  get(requestId: string): QuotaRequest | undefined {
    return this.requests.get(requestId);
  }

  /** The peer to ask next: the first not yet tried, else round-robin by attempt count. */
  selectPeer(requestId: string, peers: readonly NodeId[]): NodeId | undefined {
    const request = this.requests.get(requestId);
    if (request === undefined || peers.length === 0) return undefined;
    for (const peer of peers) if (!request.tried.includes(peer)) return peer;
    return peers[request.retries % peers.length];
  }

  /** Records an attempt (a request sent to `peer` at `now`). */
  recordAttempt(requestId: string, peer: NodeId, now: number): void {
    if (typeof peer !== 'string' || peer.length === 0) throw new EscrowError('InvalidNodes', 'a peer is a non-empty node id');
    const request = this.requests.get(requestId);
    if (request === undefined) throw new EscrowError('UnknownRequest', `request ${requestId} is not pending`);
    checkTime(now);
    request.retries++;
    request.lastAttemptAt = now;
    if (!request.tried.includes(peer)) request.tried.push(peer);
  }

  /** Requests to retry now: waited max(timeout, backoff) since the last attempt and not failed. */
  due(now: number): QuotaRequest[] {
    checkTime(now);
    return this.sorted().filter(
      (r) => !this.hasFailed(r, now) && now - r.lastAttemptAt >= Math.max(this.timeoutMs, r.backoffMs()),
    );
  }

  /** Requests that have used up their attempts or their time. */
  failed(now: number): QuotaRequest[] {
    checkTime(now);
    return this.sorted().filter((r) => this.hasFailed(r, now));
  }

  /** Removes and returns the failed requests. */
  pruneFailed(now: number): QuotaRequest[] {
    const failed = this.failed(now);
    for (const r of failed) this.requests.delete(r.requestId);
    return failed;
  }

  /** A grant arrived: removes the request and returns it, once; a repeated grant returns undefined. */
  grant(requestId: string): QuotaRequest | undefined {
    const request = this.requests.get(requestId);
    if (request !== undefined) this.requests.delete(requestId);
    return request;
  }

  private hasFailed(r: QuotaRequest, now: number): boolean {
    return r.retries >= this.maxRetries || r.age(now) >= this.maxAgeMs;
  }

  /** Requests in the order they were opened (a Map iterates in insertion order). */
  private sorted(): QuotaRequest[] {
    return [...this.requests.values()];
  }
}

function checkTime(now: number): void {
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new InvalidArgumentError('now must be a finite number of milliseconds');
}
