/**
 * The retry state machine of quota requests: a node that has exhausted its escrow asks peers for
 * quota and retries with exponential backoff until one grants it, or gives up.
 *
 * A new request is due at once. After its r-th attempt it waits max(timeout, backoff), the backoff
 * doubling from 500 ms to a cap of 4 s (500, 1000, 2000, 4000, 4000 …), so peers are not
 * stampeded. It fails once it has made `maxRetries` attempts and the last one has had its wait to
 * be answered, or at `maxAgeMs`. Peers not tried yet are asked first, in the order given, then
 * round-robin.
 *
 * Grants carry real quota (the grantor gave it up), so none may be lost or applied twice:
 * `grant(id, grantor)` answers `applied` for the first grant of a pending request, `late` for one
 * that arrives after the request failed (apply it: the quota is real), `extra` when a second peer
 * also granted (apply it or give it back), `duplicate` for the same grant again (ignore it), and
 * `unknown` otherwise. A grantor answering a retry resends its original grant (same request id):
 * a new grant from the same grantor for the same request counts as a duplicate. Finished request
 * ids are remembered — the last 100,000 of them — and cannot be reopened while remembered. Time is passed in (milliseconds), so the machine is deterministic; `due()` and
 * `failed()` list requests in the order they were opened.
 */
import { EscrowError, InvalidArgumentError } from '../errors.js';
import { MAX_ESCROW_LIMIT, type NodeId } from './escrow.js';
import { optionsObject } from '../core/options.js';

/** First backoff after a failed attempt. */
export const INITIAL_BACKOFF_MS = 500;
/** Backoff cap: 500 ms doubled three times. */
export const MAX_BACKOFF_MS = 4_000;
/** Finished request ids remembered to recognise late, extra and duplicate grants. */
const FINISHED_MEMORY = 100_000;

/** What a grant means for the requester; see `PendingQuotaRequests.grant`. */
export type GrantOutcome =
  | { readonly status: 'applied' | 'late' | 'extra'; readonly request: QuotaRequest }
  | { readonly status: 'duplicate' | 'unknown' };

interface Finished {
  readonly request: QuotaRequest;
  readonly state: 'granted' | 'failed';
  readonly grantors: Set<NodeId>;
}

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
    checkRequest(requestId, amount);
    checkTime(now);
    this.requestId = requestId;
    this.amount = amount;
    this.createdAt = now;
    this.lastAttemptAt = now;
  }

  /** Backoff after the latest attempt: 0 before the first, then 500 ms × 2^(attempts − 1), at most 4 s. */
  backoffMs(): number {
    if (this.retries === 0) return 0;
    return Math.min(INITIAL_BACKOFF_MS * 2 ** Math.min(this.retries - 1, 3), MAX_BACKOFF_MS);
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
  private readonly finished = new Map<string, Finished>();

  constructor(policy: QuotaRequestPolicy = {}) {
    const { timeoutMs = 500, maxRetries = 5, maxAgeMs = 30_000 } = optionsObject(policy, 'policy');
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
    checkRequest(requestId, amount);
    checkTime(now);
    if (this.requests.has(requestId) || this.finished.has(requestId)) {
      throw new EscrowError('DuplicateRequest', `request ${requestId} is pending or was already used`);
    }
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

  /** A peer said it has nothing to give: the request is due again at once (to the next peer). */
  expedite(requestId: string, now: number): void {
    const request = this.requests.get(requestId);
    if (request === undefined) return;
    checkTime(now);
    request.lastAttemptAt = now - Math.max(this.timeoutMs, request.backoffMs());
  }

  /** Requests to send now: new ones, and those that waited max(timeout, backoff) since their last attempt. */
  due(now: number): QuotaRequest[] {
    checkTime(now);
    return this.sorted().filter((r) => !this.hasFailed(r, now) && (r.retries === 0 || this.waited(r, now)));
  }

  /** Requests that have used up their attempts or their time. */
  failed(now: number): QuotaRequest[] {
    checkTime(now);
    return this.sorted().filter((r) => this.hasFailed(r, now));
  }

  /** Removes and returns the failed requests (a grant that still arrives for one is `late`). */
  pruneFailed(now: number): QuotaRequest[] {
    const failed = this.failed(now);
    for (const r of failed) this.finish(r, 'failed');
    return failed;
  }

  /** A grant of request `requestId` arrived from `grantor`: what it means (see the module comment). */
  grant(requestId: string, grantor: NodeId): GrantOutcome {
    if (typeof grantor !== 'string' || grantor.length === 0) throw new EscrowError('InvalidNodes', 'a grantor is a non-empty node id');
    const request = this.requests.get(requestId);
    if (request !== undefined) {
      this.finish(request, 'granted').grantors.add(grantor);
      return { status: 'applied', request };
    }
    const done = this.finished.get(requestId);
    if (done === undefined) return { status: 'unknown' };
    if (done.grantors.has(grantor)) return { status: 'duplicate' };
    done.grantors.add(grantor);
    return { status: done.state === 'failed' && done.grantors.size === 1 ? 'late' : 'extra', request: done.request };
  }

  private finish(request: QuotaRequest, state: 'granted' | 'failed'): Finished {
    this.requests.delete(request.requestId);
    const done: Finished = { request, state, grantors: new Set() };
    this.finished.set(request.requestId, done);
    if (this.finished.size > FINISHED_MEMORY) this.finished.delete(this.finished.keys().next().value!);
    return done;
  }

  private waited(r: QuotaRequest, now: number): boolean {
    return now - r.lastAttemptAt >= Math.max(this.timeoutMs, r.backoffMs());
  }

  /** Out of attempts (and the last one, if any, had its time to be answered), or too old. */
  private hasFailed(r: QuotaRequest, now: number): boolean {
    return (r.retries >= this.maxRetries && (r.retries === 0 || this.waited(r, now))) || r.age(now) >= this.maxAgeMs;
  }

  /** Requests in the order they were opened (a Map iterates in insertion order). */
  private sorted(): QuotaRequest[] {
    return [...this.requests.values()];
  }
}

function checkRequest(requestId: string, amount: bigint): void {
  if (typeof requestId !== 'string' || requestId.length === 0) throw new InvalidArgumentError('a request id is a non-empty string');
  if (typeof amount !== 'bigint' || amount <= 0n || amount > MAX_ESCROW_LIMIT) {
    throw new EscrowError('InvalidAmount', 'a request is for a positive amount up to 2^127 − 1');
  }
}

function checkTime(now: number): void {
  if (typeof now !== 'number' || !Number.isFinite(now)) throw new InvalidArgumentError('now must be a finite number of milliseconds');
}
