/**
 * The replication worker's parts that need no thread or socket: the frame splitter (any chunking
 * of a stream gives back the same frames; a bad length word ends the link), the fact store (every
 * fact found by id and served in order, whatever its size), and the outbound log (records reach
 * the worker in admission order, with nothing dropped, however often the ring is full).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ByteSlab,
  FactStore,
  Fifo,
  FrameSplitter,
  GCounterInvariant,
  Kernel,
  MAX_FRAME_BYTES,
  OutboundLog,
  RECORD_LOG,
  RecordKind,
  SpscRing,
  copyFact,
  deriveClusterId,
  derivePsk,
  encodeFacts,
  factId,
  readHeader,
  setDigest,
  toHex,
  u64le,
  type RecordHeader,
  type WireFact,
} from './helpers/lib.js';

const fact = (seed: number, deps: Uint8Array[] = [], payloadBytes = 16): WireFact => {
  const payload = new Uint8Array(payloadBytes);
  new DataView(payload.buffer).setUint32(0, seed, true);
  if (payloadBytes >= 8) new DataView(payload.buffer).setUint32(4, seed ^ 0x5bd1e995, true);
  return { id: factId(deps, payload), deps, payload };
};

describe('FrameSplitter', () => {
  it('gives back every frame whatever the chunking (a property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 30 }), (factCounts, cuts) => {
        const frames = factCounts.map((n, i) => encodeFacts(Array.from({ length: n }, (_, k) => fact(i * 100 + k, [], 8 + ((i * 37 + k) % 300)))));
        const stream = Buffer.concat(frames);
        const splitter = new FrameSplitter();
        const out: string[] = [];
        let at = 0;
        let c = 0;
        while (at < stream.length) {
          const n = Math.min(cuts[c++ % cuts.length]!, stream.length - at);
          expect(splitter.push(stream.subarray(at, at + n), (f) => out.push(toHex(f)))).toBeUndefined();
          at += n;
        }
        expect(out).toEqual(frames.map((f) => toHex(f)));
        expect(splitter.heldBytes).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('ends the link on a length word out of range, after delivering the frames before it', () => {
    const good = encodeFacts([fact(1)]);
    const huge = Buffer.alloc(8);
    huge.writeUInt32LE(MAX_FRAME_BYTES + 1, 0);
    const seen: number[] = [];
    expect(new FrameSplitter().push(Buffer.concat([good, huge]), (f) => seen.push(f.length))).toBe('FrameTooLarge');
    expect(seen).toEqual([good.length]);
    const tiny = Buffer.from([7, 0, 0, 0]);
    expect(new FrameSplitter().push(tiny, () => undefined)).toBe('FrameTooSmall');
  });
});

describe('FactStore', () => {
  it('finds every fact by id, none it does not hold, and serves the log in order', () => {
    const store = new FactStore();
    const facts: WireFact[] = [];
    let prev: Uint8Array[] = [];
    // Enough facts to grow the id table twice; a few 64 KiB payloads cross chunk boundaries.
    for (let i = 0; i < 140_000; i++) {
      const f = fact(i, prev, i % 20_000 === 7 ? 65_536 : 24);
      facts.push(f);
      expect(store.append(f)).toBe(i + 1);
      prev = [f.id];
    }
    expect(store.size).toBe(facts.length);
    for (let i = 0; i < facts.length; i += 997) {
      const got = store.get(facts[i]!.id)!;
      expect(toHex(got.id)).toBe(toHex(facts[i]!.id));
      expect(got.deps.map(toHex)).toEqual(facts[i]!.deps.map(toHex));
      expect(toHex(got.payload)).toBe(toHex(facts[i]!.payload));
      expect(store.sequenceOf(facts[i]!.id)).toBe(i + 1);
    }
    for (let i = 0; i < 1000; i++) expect(store.has(fact(10_000_000 + i).id)).toBe(false);
    const tail = store.logFrom(facts.length - 2, 10);
    expect(tail.map((f) => toHex(f.id))).toEqual(facts.slice(-3).map((f) => toHex(f.id)));
    expect(store.logFrom(facts.length + 1, 10)).toEqual([]);
  });

  it('starts where the retained log starts', () => {
    const store = new FactStore(501);
    expect(store.append(fact(1))).toBe(501);
    expect(store.retainedFrom()).toBe(501);
    expect(store.logFrom(1, 5).length).toBe(1);
  });
});

describe('OutboundLog', () => {
  /** Drains the ring like the worker: every record's kind, and the fact of Local records. */
  function drain(ring: SpscRing, out: string[], slab: ByteSlab): void {
    const h: RecordHeader = { kind: 0, depCount: 0, code: 0, sequence: 0, payloadLength: 0 };
    let tail = ring.tail();
    const head = ring.head();
    while (tail !== head) {
      const start = ring.messageStart(tail);
      const offset = ring.offsetOf(start);
      readHeader(ring, offset, h);
      out.push(h.kind === RecordKind.Local ? `L${toHex(copyFact(ring, offset, h, slab).id).slice(0, 12)}` : h.kind === RecordKind.Admitted ? 'A' : `R${h.code}`);
      tail = (start + ring.lengthAt(offset)) | 0;
    }
    ring.release(tail);
  }

  it('hands the worker every record in order, queueing instead of dropping when the ring is full (a property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.constant('local' as const), fc.constant('drain' as const), fc.constant('answer' as const), fc.constant('refuse' as const)), { minLength: 1, maxLength: 400 }), async (steps) => {
        const ring = new SpscRing({ capacity: 4096 });
        const log = new OutboundLog(ring, undefined);
        const kernel = new Kernel(new GCounterInvariant());
        kernel[RECORD_LOG] = log;
        const expected: string[] = [];
        const seen: string[] = [];
        const slab = new ByteSlab();
        let n = 0;
        for (const step of steps) {
          if (step === 'drain') drain(ring, seen, slab);
          else if (step === 'local') {
            const f = fact(n++, [], 200);
            expect(kernel.tryAdmitRaw(f.id, f.deps, f.payload)).toBe(0);
            expect(log.queued >= 0).toBe(true);
            expected.push(`L${toHex(f.id).slice(0, 12)}`);
          } else if (log.roomForAnswer()) {
            if (step === 'answer') {
              const f = fact(n++, [], 8);
              log.answering = true;
              expect(kernel.tryAdmitRaw(f.id, f.deps, f.payload)).toBe(0);
              log.answering = false;
              expected.push('A');
            } else {
              log.refused(2);
              expected.push('R2');
            }
          }
          log.publish();
        }
        while (!log.flushOverflow()) drain(ring, seen, slab);
        log.publish();
        drain(ring, seen, slab);
        log.stop();
        expect(seen).toEqual(expected);
      }),
      { numRuns: 60 },
    );
  });
});

describe('Fifo', () => {
  it('gives items back in the order they came, through any mix of pushes and shifts (a property)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.nat(), fc.constant(-1)), { maxLength: 5000 }), (steps) => {
        const fifo = new Fifo<number>();
        const model: number[] = [];
        for (const step of steps) {
          if (step >= 0) {
            fifo.push(step);
            model.push(step);
          } else {
            expect(fifo.peek()).toBe(model[0]);
            expect(fifo.shift()).toBe(model.shift());
          }
          expect(fifo.size).toBe(model.length);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('derived keys and the set digest', () => {
  it('derive different keys from different secrets and cluster names, the same from the same', () => {
    const s = new TextEncoder().encode('a secret of sixteen bytes');
    expect(toHex(derivePsk(s))).toBe(toHex(derivePsk(s.slice())));
    expect(toHex(derivePsk(s))).not.toBe(toHex(derivePsk(new TextEncoder().encode('another secret, 16+'))));
    expect(deriveClusterId('ctfs').length).toBe(16);
    expect(toHex(deriveClusterId('ctfs'))).not.toBe(toHex(deriveClusterId('ctfs2')));
  });

  it('a set digest does not depend on the order facts came in; a history digest may', () => {
    const facts = Array.from({ length: 40 }, (_, i) => ({ id: factId([], u64le(BigInt(i + 1))), payload: u64le(BigInt(i + 1)) }));
    const a = new Kernel(new GCounterInvariant());
    const b = new Kernel(new GCounterInvariant());
    for (const f of facts) a.admitRaw(f.id, [], f.payload);
    for (const f of [...facts].reverse()) b.admitRaw(f.id, [], f.payload);
    expect(toHex(setDigest(a.historyImage()))).toBe(toHex(setDigest(b.historyImage())));
    expect(toHex(a.digest())).not.toBe(toHex(b.digest()));
    const c = new Kernel(new GCounterInvariant());
    for (const f of facts.slice(1)) c.admitRaw(f.id, [], f.payload);
    expect(toHex(setDigest(c.historyImage()))).not.toBe(toHex(setDigest(a.historyImage())));
  });
});
