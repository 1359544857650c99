/**
 * Whatever keeps a caller's bytes keeps its own copy. Node's `Buffer#slice` returns a view, not a
 * copy, so every API that accepts a Uint8Array is also exercised with Buffers (including small
 * ones, which Node carves out of a shared pool at a non-zero byte offset), and the caller's memory
 * is overwritten afterwards, as a reused receive buffer would be.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AlgebraicClass,
  ConservationState,
  GraphState,
  Kernel,
  LWWState,
  TotalSupplyInvariant,
  createFact,
  decodeFact,
  encodeFact,
  factId,
  i128le,
  toHex,
  verifyFactId,
  type Fact,
  type Invariant,
} from './helpers/lib.js';

/** The same bytes in a Buffer that shares a larger allocation (as a network read would). */
function pooled(bytes: Uint8Array): Buffer {
  const backing = Buffer.alloc(bytes.length + 24, 0xaa);
  bytes.forEach((b, i) => (backing[11 + i] = b));
  return backing.subarray(11, 11 + bytes.length);
}

function snapshotOf(fact: Fact): string {
  return [toHex(fact.id), ...fact.deps.map(toHex), toHex(fact.payload)].join('|');
}

const balance = (k: Kernel<TotalSupplyInvariant>): bigint => ConservationState.fromCell(k.state).balance;

describe('facts own their bytes', () => {
  it('createFact copies Buffer deps and payload', () => {
    const dep = pooled(new Uint8Array(32).fill(3));
    const payload = pooled(i128le(7n));
    const fact = createFact([dep], payload);
    const before = snapshotOf(fact);
    dep.fill(0xee);
    payload.fill(0x63);
    expect(snapshotOf(fact)).toBe(before);
    expect(verifyFactId(fact)).toBe(true);
  });

  it('decodeFact copies out of a Buffer that is then reused', () => {
    const seven = createFact([], i128le(7n));
    const ninetyNine = createFact([], i128le(99n));
    const receive = Buffer.alloc(encodeFact(seven).length);
    receive.set(encodeFact(seven));
    const fact = decodeFact(receive); // verified: id is the content address of payload 7
    receive.set(encodeFact(ninetyNine)); // the receive buffer is reused for the next frame
    expect(verifyFactId(fact)).toBe(true);
    expect(toHex(fact.payload)).toBe(toHex(i128le(7n)));
    const k = new Kernel(new TotalSupplyInvariant(), { indexCapacity: 16 });
    k.admit(fact);
    expect(balance(k)).toBe(7n); // never 99 under the id of 7
  });

  it('the replicated path verifies and admits its own copy, not the caller’s memory', () => {
    let seen: Uint8Array | undefined;
    const spy: Invariant = {
      algebraicClass: AlgebraicClass.Commutative,
      apply(payload) {
        seen = payload;
        return 0;
      },
    };
    const fact = createFact([], new Uint8Array([1, 2, 3]));
    const payload = pooled(fact.payload);
    const k = new Kernel(spy, { indexCapacity: 16 });
    expect(k.tryAdmitReplicatedRaw(pooled(fact.id), [], payload)).toBe(0);
    expect(seen!.buffer).not.toBe(payload.buffer);
  });

  it('state objects copy the bytes they keep', () => {
    const value = pooled(new Uint8Array(32).fill(5));
    const lww = new LWWState(value, 1n, 2n);
    value.fill(6);
    expect(lww.value).toEqual(new Uint8Array(32).fill(5));
    expect(LWWState.fromCell(pooled(lww.toBytes())).value.buffer.byteLength).toBe(32);

    const adjacency = pooled(new GraphState(4).toBytes().subarray(0, 32));
    adjacency[0] = 0b10;
    const graph = new GraphState(4, {}, adjacency);
    adjacency.fill(0xff);
    expect(graph.toBytes()[0]).toBe(0b10);
  });

  it('property: the public fact functions treat a Buffer exactly like a Uint8Array, and keep no view of it', () => {
    const id = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(
      fc.property(fc.array(id, { maxLength: 5 }), fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 255 }), (deps, payload, garbage) => {
        const depBufs = deps.map(pooled);
        const payloadBuf = pooled(payload);
        const plain = createFact(deps, payload);
        expect(toHex(factId(depBufs, payloadBuf))).toBe(toHex(plain.id));

        const fromBuffers = createFact(depBufs, payloadBuf);
        expect(snapshotOf(fromBuffers)).toBe(snapshotOf(plain));

        const encoded = pooled(encodeFact(plain));
        const decoded = decodeFact(encoded);
        expect(snapshotOf(decoded)).toBe(snapshotOf(plain));

        // A fact made of Buffers verifies and encodes like any other.
        const bufferFact: Fact = { id: pooled(plain.id), deps: plain.deps.map(pooled), payload: pooled(plain.payload) };
        expect(verifyFactId(bufferFact)).toBe(true);
        expect(toHex(encodeFact(bufferFact))).toBe(toHex(encodeFact(plain)));

        for (const b of [...depBufs, payloadBuf, encoded]) b.fill(garbage);
        expect(snapshotOf(fromBuffers)).toBe(snapshotOf(plain));
        expect(snapshotOf(decoded)).toBe(snapshotOf(plain));
        expect(verifyFactId(fromBuffers)).toBe(true);
        expect(verifyFactId(decoded)).toBe(true);
        // Plain Uint8Arrays out, whatever came in.
        for (const bytes of [decoded.id, decoded.payload, ...decoded.deps, fromBuffers.payload, ...fromBuffers.deps]) {
          expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
        }
      }),
      { numRuns: 200 },
    );
  });
});
