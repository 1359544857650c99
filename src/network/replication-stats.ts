/**
 * Counters of the replication worker in shared memory: the worker writes them (it is their only
 * writer, so plain stores suffice: an aligned double is never torn on the platforms Node runs
 * on), the admitting thread reads them for metrics without a message.
 */
export const Stat = {
  BytesIn: 0,
  BytesOut: 1,
  FramesIn: 2,
  FramesOut: 3,
  /** Facts the kernel admitted from the network. */
  FactsAdmitted: 4,
  /** Facts handed to the kernel that it refused (with a code other than DuplicateFact). */
  FactsRefused: 5,
  /** Facts in Facts frames sent (pushes, answers to requests, log streams). */
  FactsSent: 6,
  /** Facts waiting for their deps (a gauge). */
  Pending: 7,
  /** Anti-entropy rounds that decoded, and the differences they found (both directions). */
  Rounds: 8,
  Differences: 9,
  /** Fact frames not written because the peer's link had `maxLinkBufferBytes` queued. */
  SlowPeerDrops: 10,
  /** Local facts the worker holds until the WAL has fsynced them (a gauge). */
  AwaitingDurable: 11,
  /** Facts handed to the kernel and not answered yet, plus those waiting for ring room (a gauge). */
  InFlight: 12,
  /** Links opened (dialled or accepted and authenticated) and closed. */
  LinksOpened: 13,
  LinksClosed: 14,
  /** Facts in the worker's log (what it serves peers) and its bytes (gauges). */
  LogFacts: 15,
  LogBytes: 16,
} as const;

/** Why a connection was closed by this node: every one counted under its reason. */
export const REJECT_REASONS = ['Handshake', 'FrameTooLarge', 'FrameTooSmall', 'MalformedFrame', 'ForgedFact', 'OtherCluster', 'ProtocolError', 'Duplicate', 'SelfLink'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

const REJECT_BASE = 32;
const STAT_SLOTS = REJECT_BASE + REJECT_REASONS.length;

export class ReplicationStats {
  readonly buffer: SharedArrayBuffer;
  readonly values: Float64Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(STAT_SLOTS * 8);
    this.values = new Float64Array(this.buffer);
  }

  add(stat: number, by = 1): void {
    this.values[stat]! += by;
  }

  set(stat: number, value: number): void {
    this.values[stat] = value;
  }

  get(stat: number): number {
    return this.values[stat]!;
  }

  reject(reason: RejectReason): void {
    this.values[REJECT_BASE + REJECT_REASONS.indexOf(reason)]! += 1;
  }

  rejected(): Record<RejectReason, number> {
    const out = {} as Record<RejectReason, number>;
    REJECT_REASONS.forEach((r, i) => (out[r] = this.values[REJECT_BASE + i]!));
    return out;
  }
}
