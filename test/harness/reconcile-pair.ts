/**
 * Two replica cores that hold overlapping sets of facts meet: how many round trips and how many
 * bytes of reconciliation it takes until both hold the union. Frames are delivered whole, one
 * direction at a time, with no loss, a virtual ms apart: each pair of deliveries that carries
 * reconciliation frames is one round trip (waiting, e.g. for a deferred request, is not).
 */
import { FrameType, ReplicaCore, factId, u64le, type WireFact } from '../helpers/lib.js';

export interface PairOptions {
  readonly common: number;
  readonly onlyA: number;
  readonly onlyB: number;
  readonly sketchCells?: number;
  readonly payloadBytes?: number;
}

export interface PairReport {
  readonly differences: number;
  readonly roundTrips: number;
  /** Bytes of every reconciliation frame (sketch, requests, facts, log), both ways. */
  readonly bytes: number;
  /** Bytes of the fact records themselves within `bytes`. */
  readonly recordBytes: number;
  readonly byType: Record<string, number>;
  readonly converged: boolean;
}

const FRAME_NAMES = new Map<number, string>(Object.entries(FrameType).map(([name, type]) => [type, name]));
/** Frames of the handshake and membership, not of reconciliation. */
const NOT_RECONCILIATION = new Set(['Hello', 'Members', 'Ping', 'Pong']);

export function reconcilePair(o: PairOptions): PairReport {
  const payloadBytes = o.payloadBytes ?? 32;
  let counter = 0;
  const make = (): WireFact => {
    const payload = new Uint8Array(payloadBytes);
    payload.set(u64le(BigInt(++counter)));
    return { id: factId([], payload), deps: [], payload };
  };
  const common = Array.from({ length: o.common }, make);
  const side = (extra: number): { log: WireFact[]; byId: Map<string, WireFact> } => {
    const log = [...common, ...Array.from({ length: extra }, make)];
    return { log, byId: new Map(log.map((f) => [Buffer.from(f.id).toString('hex'), f])) };
  };
  const nodes = { a: side(o.onlyA), b: side(o.onlyB) };
  const cores = {} as Record<'a' | 'b', ReplicaCore>;
  for (const name of ['a', 'b'] as const) {
    const n = nodes[name];
    cores[name] = new ReplicaCore(
      { nodeId: name, clusterId: new Uint8Array(16), incarnation: 1, sketchKey: new Uint8Array(8).fill(1), ...(o.sketchCells === undefined ? {} : { sketchCells: o.sketchCells }) },
      { get: (id) => n.byId.get(Buffer.from(id).toString('hex')), logFrom: (from, max) => n.log.slice(from - 1, from - 1 + max) },
    );
    for (const f of n.log) cores[name].admittedLocally(f);
  }
  const byType: Record<string, number> = {};
  let bytes = 0;
  let recordBytes = 0;
  let roundTrips = 0;
  cores.a.linkUp('b', 0);
  cores.b.linkUp('a', 0);
  const summary = (c: ReplicaCore): string => Buffer.from(c.setSummary().buffer).toString('hex');
  // One virtual ms per step: requests a round defers (by the graft timeout) come due.
  for (let step = 0; step < 20_000; step++) {
    if (step % 2 === 0) for (const c of [cores.a, cores.b]) c.tick(step / 2);
    const from = step % 2 === 0 ? 'a' : 'b';
    const to = from === 'a' ? 'b' : 'a';
    let sent = 0;
    for (const action of cores[from].drain()) {
      if (action.kind === 'admit') {
        const n = nodes[from];
        n.log.push(action.fact);
        n.byId.set(Buffer.from(action.fact.id).toString('hex'), action.fact);
        cores[from].admitResult(action.fact, action.from, 0);
        continue;
      }
      if (action.kind !== 'send') continue;
      const type = FRAME_NAMES.get(action.frame[4]!) ?? 'other';
      if (!NOT_RECONCILIATION.has(type)) {
        sent++;
        byType[type] = (byType[type] ?? 0) + action.frame.length;
        bytes += action.frame.length;
        if (type === 'Facts' || type === 'TreeFacts') recordBytes += action.frame.length - 8 - 12; // the frame's own header and counts
      }
      cores[to].receive(from, action.frame, step / 2);
    }
    // A round trip: a's frames then b's answers (counted when something reconciling moved).
    if (from === 'b' && sent > 0) roundTrips++;
    const quiet = step > 4 && summary(cores.a) === summary(cores.b) && nodes.a.log.length === nodes.b.log.length;
    if (quiet) return { differences: o.onlyA + o.onlyB, roundTrips, bytes, recordBytes, byType, converged: true };
  }
  return { differences: o.onlyA + o.onlyB, roundTrips, bytes, recordBytes, byType, converged: false };
}
