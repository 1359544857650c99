/**
 * Replication frames: every frame decodes to what was encoded; decoding is total (random,
 * truncated and crafted bytes give a fault or `Incomplete`, never an exception); decoded frames
 * own their bytes; limits hold on both sides.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_HEADER_BYTES,
  FrameType,
  MAX_FRAME_BYTES,
  MAX_REQUESTED_IDS,
  decodeFrame,
  encodeFactRequest,
  encodeFacts,
  encodeHello,
  encodeLogRequest,
  encodeMembers,
  encodeGraft,
  encodeIHave,
  encodeNack,
  encodeQuota,
  encodePing,
  encodePingReq,
  encodePrune,
  encodeTreeFacts,
  encodeSnapshotChunk,
  encodeSnapshotOffer,
  encodeSnapshotRequest,
  encodeSketchCells,
  encodeSketchRequest,
  type Frame,
} from './helpers/lib.js';

const id = fc.uint8Array({ minLength: 32, maxLength: 32 });
const fact = fc.record({ id, deps: fc.array(id, { maxLength: 16 }), payload: fc.uint8Array({ maxLength: 300 }) });
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const nodeId = fc.string({ minLength: 1, maxLength: 16 });
const hops = fc.integer({ min: 0, max: 255 });

/** Every kind of frame, with what it should decode to. */
const frames: fc.Arbitrary<{ bytes: Uint8Array; expected: Frame }> = fc.oneof(
  fc
    .record({ clusterId: fc.uint8Array({ minLength: 16, maxLength: 16 }), nodeId: fc.string({ minLength: 1, maxLength: 16 }), incarnation: u53, address: fc.string({ maxLength: 40 }), minVersion: fc.constant(1), maxVersion: fc.integer({ min: 1, max: 255 }) })
    .map((h) => ({ bytes: encodeHello(h), expected: { type: FrameType.Hello, ...h } as Frame })),
  fc.record({ facts: fc.array(fact, { maxLength: 8 }), firstSequence: u53 }).map(({ facts, firstSequence }) => ({ bytes: encodeFacts(facts, firstSequence), expected: { type: FrameType.Facts, firstSequence, facts } as Frame })),
  fc.array(id, { maxLength: 40 }).map((ids) => ({ bytes: encodeFactRequest(ids), expected: { type: FrameType.FactRequest, ids } as Frame })),
  fc.tuple(fc.nat(), fc.nat()).map(([firstCell, cellCount]) => ({ bytes: encodeSketchRequest(firstCell, cellCount), expected: { type: FrameType.SketchRequest, firstCell, cellCount } as Frame })),
  fc.tuple(fc.nat(), fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 5 * 11 })).map(([firstCell, words]) => {
    const cells = Int32Array.from(words.slice(0, words.length - (words.length % 11)));
    return { bytes: encodeSketchCells(firstCell, cells), expected: { type: FrameType.SketchCells, firstCell, cells } as Frame };
  }),
  fc.tuple(u53, fc.nat()).map(([fromSequence, maxFacts]) => ({ bytes: encodeLogRequest(fromSequence, maxFacts), expected: { type: FrameType.LogRequest, fromSequence, maxFacts } as Frame })),
  fc.tuple(u53, fc.boolean()).map(([nonce, pong]) => ({ bytes: encodePing(nonce, pong), expected: { type: pong ? FrameType.Pong : FrameType.Ping, nonce } as Frame })),
  fc
    .array(
      fc.record({
        nodeId: fc.string({ minLength: 1, maxLength: 16 }),
        address: fc.string({ maxLength: 40 }),
        incarnation: u53,
        refutations: fc.nat(),
        state: fc.constantFrom('alive' as const, 'suspect' as const, 'failed' as const),
        reporter: fc.string({ maxLength: 16 }),
      }),
      { maxLength: 6 },
    )
    .map((members) => ({ bytes: encodeMembers(members), expected: { type: FrameType.Members, members } as Frame })),
  fc.tuple(u53, fc.string({ minLength: 1, maxLength: 16 })).map(([nonce, target]) => ({ bytes: encodePingReq(nonce, target), expected: { type: FrameType.PingReq, nonce, target } as Frame })),
  u53.map((nonce) => ({ bytes: encodeNack(nonce), expected: { type: FrameType.Nack, nonce } as Frame })),
  fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 1 }), fc.bigInt({ min: 1n, max: (1n << 128n) - 1n }), fc.boolean()).map(([requestId, resource, amount, request]) => {
    const type = request ? FrameType.QuotaRequest : FrameType.QuotaDenial;
    return { bytes: encodeQuota(type, requestId, resource, amount), expected: { type, requestId, resource, amount } as Frame };
  }),
  fc.tuple(nodeId, hops, fc.array(fact, { maxLength: 4 })).map(([origin, h, facts]) => ({ bytes: encodeTreeFacts(origin, h, facts), expected: { type: FrameType.TreeFacts, origin, hops: h, facts } as Frame })),
  fc.tuple(nodeId, hops, fc.array(id, { maxLength: 8 })).map(([origin, h, ids]) => ({ bytes: encodeIHave(origin, h, ids), expected: { type: FrameType.IHave, origin, hops: h, ids } as Frame })),
  fc.tuple(nodeId, hops, fc.array(id, { maxLength: 8 })).map(([origin, h, ids]) => ({ bytes: encodeGraft(origin, h, ids), expected: { type: FrameType.Graft, origin, hops: h, ids } as Frame })),
  nodeId.map((origin) => ({ bytes: encodePrune(origin), expected: { type: FrameType.Prune, origin } as Frame })),
  fc.tuple(id, u53, u53).map(([snapshotId, through, totalBytes]) => ({ bytes: encodeSnapshotOffer(snapshotId, through, totalBytes), expected: { type: FrameType.SnapshotOffer, snapshotId, through, totalBytes } as Frame })),
  fc.tuple(id, u53, fc.integer({ min: 1, max: 512 * 1024 })).map(([snapshotId, offset, length]) => ({ bytes: encodeSnapshotRequest(snapshotId, offset, length), expected: { type: FrameType.SnapshotRequest, snapshotId, offset, length } as Frame })),
  fc.tuple(id, u53, fc.uint8Array({ maxLength: 300 })).map(([snapshotId, offset, bytes]) => ({ bytes: encodeSnapshotChunk(snapshotId, offset, bytes), expected: { type: FrameType.SnapshotChunk, snapshotId, offset, bytes } as Frame })),
);

describe('replication frames', () => {
  it('decode(encode(frame)) is the frame, and a stream of frames decodes one by one', () => {
    fc.assert(
      fc.property(fc.array(frames, { minLength: 1, maxLength: 5 }), (list) => {
        const stream = new Uint8Array(list.reduce((n, f) => n + f.bytes.length, 0));
        let at = 0;
        for (const f of list) {
          stream.set(f.bytes, at);
          at += f.bytes.length;
        }
        at = 0;
        for (const f of list) {
          const r = decodeFrame(stream.subarray(at));
          expect(r.ok).toBe(true);
          if (!r.ok) return;
          expect(r.frame).toEqual(f.expected);
          expect(r.bytes).toBe(f.bytes.length);
          at += r.bytes;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('every prefix of a frame is Incomplete with the bytes it needs, never a fault or a frame', () => {
    fc.assert(
      fc.property(frames, ({ bytes }) => {
        for (let n = 0; n < bytes.length; n++) {
          const r = decodeFrame(bytes.subarray(0, n));
          expect(r).toEqual({ ok: false, fault: 'Incomplete', needed: n < FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES : bytes.length });
        }
      }),
      { numRuns: 100 },
    );
  });

  it('is total: random bytes and frames with random bytes flipped never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const r = decodeFrame(bytes);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(frames, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), ({ bytes }, flips) => {
        const damaged = bytes.slice();
        for (const [at, x] of flips) damaged[at % damaged.length] = damaged[at % damaged.length]! ^ x;
        const r = decodeFrame(damaged);
        expect(typeof r.ok).toBe('boolean');
        if (!r.ok && r.fault !== 'Incomplete') expect(r.detail.length).toBeGreaterThan(0);
      }),
      { numRuns: 2000 },
    );
  });

  it('decoded frames own their bytes: reusing the receive buffer changes nothing', () => {
    const f = { id: new Uint8Array(32).fill(7), deps: [new Uint8Array(32).fill(8)], payload: new Uint8Array([1, 2, 3]) };
    const buffer = Buffer.from(encodeFacts([f], 5));
    const r = decodeFrame(buffer);
    buffer.fill(0xee);
    expect(r.ok && r.frame.type === FrameType.Facts && r.frame.facts[0]).toEqual(f);
  });

  it('names what is wrong with crafted frames', () => {
    const hello = encodeHello({ clusterId: new Uint8Array(16), nodeId: 'a', incarnation: 1 });
    const set = (bytes: Uint8Array, at: number, v: number): Uint8Array => {
      const b = bytes.slice();
      b[at] = v;
      return b;
    };
    const fault = (bytes: Uint8Array): string => {
      const r = decodeFrame(bytes);
      return r.ok ? 'ok' : r.fault;
    };
    const u32 = (v: number): Uint8Array => new Uint8Array(new Uint32Array([v]).buffer);
    const withLength = (bytes: Uint8Array, length: number): Uint8Array => {
      const b = bytes.slice();
      b.set(u32(length), 0);
      return b;
    };
    expect(fault(withLength(hello, 4))).toBe('FrameTooSmall');
    expect(fault(withLength(hello, MAX_FRAME_BYTES + 1))).toBe('FrameTooLarge');
    expect(fault(set(hello, 5, 2))).toBe('UnsupportedVersion');
    expect(fault(set(hello, 6, 1))).toBe('ReservedNotZero');
    expect(fault(set(hello, 4, 0x7f))).toBe('UnknownType');
    expect(fault(set(hello, 4, 0x1f))).toBe('UnknownType'); // reserved for membership, not yet spoken
    expect(fault(set(hello, 8 + 16 + 8, 2))).toBe('BadVersionRange'); // min 2 > max 1
    expect(fault(set(hello, 8 + 16 + 10, 0))).toBe('BadNodeId');
    expect(fault(set(hello, 8 + 16 + 12, 0xff))).toBe('BadNodeId'); // not UTF-8
    const helloAt = encodeHello({ clusterId: new Uint8Array(16), nodeId: 'a', incarnation: 1, address: 'h:1' });
    expect(fault(set(helloAt, 8 + 16 + 13, 0xff))).toBe('BadNodeId'); // an address that is not UTF-8
    expect(fault(set(helloAt, 8 + 16 + 11, 9))).toBe('BadLength'); // an address longer than the body
    expect(fault(set(hello, 8 + 16 + 7, 0xff))).toBe('BadNumber'); // incarnation beyond 2^53
    const request = encodeFactRequest([new Uint8Array(32)]);
    expect(fault(set(set(request, 8, (MAX_REQUESTED_IDS + 1) & 0xff), 9, (MAX_REQUESTED_IDS + 1) >> 8))).toBe('TooManyItems');
    expect(fault(set(request, 8, 2))).toBe('BadLength');
    const facts = encodeFacts([{ id: new Uint8Array(32), deps: [], payload: new Uint8Array(4) }]);
    expect(fault(set(facts, 20, 17))).toBe('TooManyDeps');
    expect(fault(set(facts, 24, 0x02))).toBe('PayloadTooLarge'); // payload length 0x02_00_00_04
    expect(fault(set(facts, 16, 0xff))).toBe('BadLength'); // 255 facts cannot fit
    expect(fault(withLength(facts, facts.length - 1))).toBe('BadLength');
    const ping = encodePing(9);
    expect(fault(new Uint8Array([...withLength(ping, ping.length + 1), 0]))).toBe('BadLength'); // a byte after the body
    const members = encodeMembers([{ nodeId: 'a', address: 'h:1', incarnation: 1, refutations: 0, state: 'suspect', reporter: 'b' }]);
    expect(fault(set(members, 8 + 4 + 12, 3))).toBe('BadNumber'); // no state 3
    expect(fault(set(members, 8 + 4 + 13, 0))).toBe('BadNodeId'); // an empty node id
    expect(fault(set(members, 8 + 4 + 15, 65))).toBe('BadNodeId'); // a reporter id too long
    expect(fault(set(members, 8, 200))).toBe('BadLength'); // 200 members cannot fit
    const pingReq = encodePingReq(3, 'n1');
    expect(fault(set(pingReq, 16, 0))).toBe('BadNodeId');
    expect(fault(set(pingReq, 17, 1))).toBe('ReservedNotZero');
    expect(fault(set(pingReq, 18, 0xff))).toBe('BadNodeId'); // not UTF-8
    const ihave = encodeIHave('n1', 2, [new Uint8Array(32)]);
    expect(fault(set(ihave, 8, 0))).toBe('BadNodeId'); // an empty origin
    expect(fault(set(ihave, 8 + 4, 5))).toBe('BadLength'); // 5 ids in the room of one
    expect(fault(set(encodePrune('n1'), 8, 3))).toBe('BadLength'); // an origin longer than the body
    expect(fault(set(encodeTreeFacts('n1', 1, []), 12, 9))).toBe('BadLength'); // 9 facts in no room
    const chunk = encodeSnapshotChunk(new Uint8Array(32), 0, new Uint8Array(10));
    expect(fault(set(chunk, 8 + 32 + 8, 11))).toBe('BadLength'); // says 11 bytes, carries 10
    expect(fault(set(set(chunk, 8 + 32 + 8, 0), 8 + 32 + 10, 0x10))).toBe('BadLength'); // a chunk beyond 512 KiB
    expect(fault(set(encodeSnapshotRequest(new Uint8Array(32), 0, 1), 8 + 32 + 8, 0))).toBe('BadLength'); // asks for 0 bytes
  });

  it('encoders refuse what the decoder would refuse, with typed errors', () => {
    const bad = (f: () => unknown): void => expect(f).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
    bad(() => encodeHello({ clusterId: new Uint8Array(15), nodeId: 'a', incarnation: 0 }));
    bad(() => encodeHello({ clusterId: new Uint8Array(16), nodeId: '', incarnation: 0 }));
    bad(() => encodeHello({ clusterId: new Uint8Array(16), nodeId: 'x'.repeat(65), incarnation: 0 }));
    bad(() => encodeHello({ clusterId: new Uint8Array(16), nodeId: 'a', incarnation: -1 }));
    bad(() => encodeHello({ clusterId: new Uint8Array(16), nodeId: 'a', incarnation: 0, address: 'x'.repeat(256) }));
    bad(() => encodeHello({ clusterId: new Uint8Array(16), nodeId: 'a', incarnation: 0, minVersion: 2, maxVersion: 1 }));
    bad(() => encodeFacts([{ id: new Uint8Array(31), deps: [], payload: new Uint8Array(0) }]));
    bad(() => encodeFacts([{ id: new Uint8Array(32), deps: Array.from({ length: 17 }, () => new Uint8Array(32)), payload: new Uint8Array(0) }]));
    bad(() => encodeFacts([{ id: new Uint8Array(32), deps: [], payload: new Uint8Array(65_537) }]));
    bad(() => encodeFacts(Array.from({ length: 20 }, () => ({ id: new Uint8Array(32), deps: [], payload: new Uint8Array(65_536) })))); // > 1 MiB
    bad(() => encodeFactRequest(Array.from({ length: MAX_REQUESTED_IDS + 1 }, () => new Uint8Array(32))));
    bad(() => encodeSketchRequest(-1, 1));
    bad(() => encodeSketchCells(0, new Int32Array(10)));
    bad(() => encodeLogRequest(2 ** 53, 1));
    bad(() => encodePing(Number.NaN));
    const member = { nodeId: 'a', address: '', incarnation: 0, refutations: 0, state: 'alive' as const, reporter: '' };
    bad(() => encodeMembers([{ ...member, state: 'gone' as never }]));
    bad(() => encodeMembers([{ ...member, refutations: -1 }]));
    bad(() => encodeMembers([{ ...member, reporter: 'x'.repeat(65) }]));
    bad(() => encodePingReq(1, ''));
    bad(() => encodeNack(-1));
    bad(() => encodeQuota(FrameType.QuotaRequest, new Uint8Array(16), 0, 0n));
    bad(() => encodeQuota(FrameType.QuotaRequest, new Uint8Array(15), 0, 1n));
    bad(() => encodeQuota(FrameType.QuotaDenial, new Uint8Array(16), 2, 0n));
    bad(() => encodeQuota(FrameType.QuotaDenial, new Uint8Array(16), 0, 1n << 128n));
    bad(() => encodeTreeFacts('', 1, []));
    bad(() => encodeTreeFacts('n', 256, []));
    bad(() => encodeIHave('n', 1, Array.from({ length: MAX_REQUESTED_IDS + 1 }, () => new Uint8Array(32))));
    bad(() => encodeGraft('n', -1, []));
    bad(() => encodePrune('x'.repeat(65)));
    bad(() => encodeSnapshotOffer(new Uint8Array(31), 0, 0));
    bad(() => encodeSnapshotRequest(new Uint8Array(32), 0, 0));
    bad(() => encodeSnapshotRequest(new Uint8Array(32), 0, 512 * 1024 + 1));
    bad(() => encodeSnapshotChunk(new Uint8Array(32), 0, new Uint8Array(512 * 1024 + 1)));
  });
});
