/**
 * Snapshot transfer between two replica cores, frame by frame: a LogRequest older than the
 * retained log brings an offer; chunks are fetched in a window and verified against the BLAKE3 id;
 * a forged, oversized or misshapen snapshot is refused with a protocol error and never handed to
 * the host; a snapshot the server replaced is fetched anew.
 */
import { describe, expect, it } from 'vitest';
import {
  FrameType,
  MAX_SNAPSHOT_CHUNK_BYTES,
  ReplicaCore,
  decodeFrame,
  encodeLogRequest,
  encodeSnapshotChunk,
  encodeSnapshotOffer,
  type FactSource,
  type ReplicaAction,
} from './helpers/lib.js';

const CLUSTER = new Uint8Array(16).fill(3);
const KEY = new Uint8Array(8).fill(5);

function core(name: string, source: Partial<FactSource> = {}, maxSnapshotBytes?: number): ReplicaCore {
  return new ReplicaCore(
    { nodeId: name, clusterId: CLUSTER, incarnation: 1, sketchKey: KEY, ...(maxSnapshotBytes === undefined ? {} : { maxSnapshotBytes }) },
    { get: () => undefined, logFrom: () => [], ...source },
  );
}

/** Delivers every frame between two cores until both are quiet; returns what else they did. */
function exchange(a: ReplicaCore, b: ReplicaCore, now: number, drop?: (type: number) => boolean): ReplicaAction[] {
  const other: ReplicaAction[] = [];
  for (let round = 0; round < 1000; round++) {
    let moved = false;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const action of from.drain()) {
        if (action.kind !== 'send') {
          other.push(action);
          continue;
        }
        moved = true;
        if (drop?.(action.frame[4]!) === true) continue;
        to.receive(from.nodeId, action.frame, now);
      }
    }
    if (!moved) return other;
  }
  throw new Error('the cores never went quiet');
}

/** Two linked, greeted cores; `a` is streaming `b`'s log (as after an exhausted sketch). */
function pair(snapshotBytes: Uint8Array | undefined, maxSnapshotBytes?: number): { a: ReplicaCore; b: ReplicaCore } {
  const a = core('a', {}, maxSnapshotBytes);
  const b = core('b', { retainedFrom: () => 100, snapshot: () => (snapshotBytes === undefined ? undefined : { bytes: snapshotBytes, through: 99 }) });
  a.linkUp('b', 0);
  b.linkUp('a', 0);
  exchange(a, b, 0);
  // Put `a` into streaming, as the core does when a sketch cannot decode the difference (the
  // simulator covers that path end to end; here the frames are what is under test).
  (a as unknown as { peers: Map<string, { streaming: boolean }> }).peers.get('b')!.streaming = true;
  return { a, b };
}

describe('snapshot transfer', () => {
  it('a LogRequest older than the retained log is answered by an offer; the chunks arrive whole and verified', () => {
    const snapshot = new Uint8Array(3 * MAX_SNAPSHOT_CHUNK_BYTES + 123).map((_, i) => (i * 7) & 0xff);
    const { a, b } = pair(snapshot);
    b.receive('a', encodeLogRequest(1, 10), 1);
    const offer = b.drain().find((x) => x.kind === 'send')!;
    expect(offer.kind === 'send' && decodeFrame(offer.frame).ok && (decodeFrame(offer.frame) as { frame: { type: number } }).frame.type).toBe(FrameType.SnapshotOffer);
    a.receive('b', (offer as { frame: Uint8Array }).frame, 1);
    const done = exchange(a, b, 2);
    const reanchor = done.find((x) => x.kind === 'reanchor');
    expect(reanchor).toMatchObject({ kind: 'reanchor', peer: 'b', through: 99 });
    expect(reanchor?.kind === 'reanchor' && Buffer.from(reanchor.snapshot).equals(Buffer.from(snapshot))).toBe(true);
    expect(done.some((x) => x.kind === 'event' && x.event.type === 'snapshotOffered')).toBe(true);
  });

  it('a snapshot that does not match its id is refused, never handed to the host', () => {
    const { a } = pair(undefined);
    const bytes = new Uint8Array(1000).fill(1);
    a.receive('b', encodeSnapshotOffer(new Uint8Array(32).fill(9), 99, bytes.length), 1);
    a.drain();
    a.receive('b', encodeSnapshotChunk(new Uint8Array(32).fill(9), 0, bytes), 2);
    const actions = a.drain();
    expect(actions.some((x) => x.kind === 'reanchor')).toBe(false);
    expect(actions).toContainEqual({ kind: 'event', event: { type: 'protocolError', peer: 'b', reason: 'a snapshot does not match its BLAKE3 id' } });
  });

  it('an offer beyond maxSnapshotBytes, a chunk of the wrong length, and an unsolicited offer are refused or ignored', () => {
    const big = pair(undefined, 1000).a;
    big.receive('b', encodeSnapshotOffer(new Uint8Array(32), 99, 1001), 1);
    expect(big.drain()).toContainEqual({ kind: 'event', event: { type: 'protocolError', peer: 'b', reason: 'a snapshot of 1001 bytes exceeds maxSnapshotBytes (1000)' } });

    const { a } = pair(undefined);
    a.receive('b', encodeSnapshotOffer(new Uint8Array(32), 99, 100), 1);
    a.drain();
    a.receive('b', encodeSnapshotChunk(new Uint8Array(32), 0, new Uint8Array(50)), 2);
    expect(a.drain().some((x) => x.kind === 'event' && x.event.type === 'protocolError' && x.event.reason.includes('not the length asked for'))).toBe(true);

    const quiet = core('q');
    quiet.linkUp('b', 0);
    const helloB = core('b');
    helloB.linkUp('q', 0);
    exchange(quiet, helloB, 0);
    quiet.receive('b', encodeSnapshotOffer(new Uint8Array(32), 99, 100), 1);
    expect(quiet.drain().filter((x) => x.kind === 'send' && x.frame[4] === FrameType.SnapshotRequest)).toEqual([]); // never asked for
  });

  it('a snapshot the server replaced (an empty chunk) is asked for again from the log', () => {
    const { a } = pair(undefined);
    a.receive('b', encodeSnapshotOffer(new Uint8Array(32).fill(1), 99, 100), 1);
    a.drain();
    a.receive('b', encodeSnapshotChunk(new Uint8Array(32).fill(1), 0, new Uint8Array(0)), 2);
    const sent = a.drain().filter((x) => x.kind === 'send').map((x) => (x as { frame: Uint8Array }).frame[4]);
    expect(sent).toContain(FrameType.LogRequest);
  });

  it('with no snapshot to offer, the server says its log ends and reports it', () => {
    const { b } = pair(undefined);
    b.receive('a', encodeLogRequest(1, 10), 1);
    const actions = b.drain();
    expect(actions).toContainEqual({ kind: 'event', event: { type: 'snapshotUnavailable', peer: 'a', fromSequence: 1 } });
    const frame = actions.find((x) => x.kind === 'send') as { frame: Uint8Array };
    const decoded = decodeFrame(frame.frame);
    expect(decoded.ok && decoded.frame.type === FrameType.Facts && decoded.frame.facts.length).toBe(0);
  });
});
