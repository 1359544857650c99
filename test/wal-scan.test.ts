/**
 * The crash harness reads data directories with its own scanner (test/harness/wal-scan.ts), from
 * the documented layout. Its numbers must be the library's: checked here against the library's
 * constants, and by scanning bytes the library's own encoders wrote (segment header, WAL records,
 * checkpoint), so a layout change in the library fails here instead of making the crash checks
 * read garbage.
 */
import { describe, expect, it } from 'vitest';
import { LAYOUT, scanCheckpoint, scanSegment } from './harness/wal-scan.js';
import {
  CHECKPOINT_HEADER_BYTES,
  FRONTIER_WIDTH,
  RECORD_ID_OFFSET,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  TotalSupplyInvariant,
  WAL_HEADER_BYTES,
  WAL_RECORD_MAGIC,
  checkpointFileName,
  crc32c,
  encodeCheckpoint,
  encodeSegmentHeader,
  factId,
  parseCheckpointFileName,
  parseSegmentFileName,
  recordDepCount,
  recordPayloadLength,
  recordSequence,
  sealWalRecord,
  segmentFileName,
  toHex,
  walRecordBytes,
  writeWalRecord,
  type DomainImage,
} from './helpers/lib.js';
import { fill } from './helpers/ids.js';

const lib = { crc32c, toHex };

interface RawFact {
  readonly id: Uint8Array;
  readonly deps: Uint8Array[];
  readonly payload: Uint8Array;
}

function fact(n: number, deps: Uint8Array[], appBytes: number): RawFact {
  const payload = TotalSupplyInvariant.payload(BigInt(n), new Uint8Array(appBytes).fill(n));
  return { id: factId(deps, payload), deps, payload };
}

/** A segment as the library writes it: its header, then `facts` as sealed records from `first` on. */
function segmentBytes(first: number, facts: readonly RawFact[]): { bytes: Uint8Array; offsets: number[] } {
  const header = encodeSegmentHeader({ firstSequence: first, logId: fill(7).subarray(0, 16), maxBatchBytes: 1 << 16 });
  const size = header.length + facts.reduce((n, f) => n + walRecordBytes(f.deps.length, f.payload.length), 0);
  const bytes = new Uint8Array(size);
  const words = new Uint32Array(bytes.buffer);
  bytes.set(header, 0);
  const offsets: number[] = [];
  let at = header.length;
  facts.forEach((f, i) => {
    const length = walRecordBytes(f.deps.length, f.payload.length);
    writeWalRecord(bytes, words, at, length, first + i, new Uint32Array(f.id.slice().buffer), f.deps, f.payload);
    sealWalRecord(words, at, i);
    offsets.push(at);
    at += length;
  });
  return { bytes, offsets };
}

describe("the crash harness's WAL scanner agrees with the library", () => {
  it('magic numbers, header sizes and the id offset are the library constants', () => {
    expect(LAYOUT.segment.magic).toBe(SEGMENT_MAGIC);
    expect(LAYOUT.segment.headerBytes).toBe(SEGMENT_HEADER_BYTES);
    expect(LAYOUT.record.magic).toBe(WAL_RECORD_MAGIC);
    expect(LAYOUT.record.headerBytes).toBe(WAL_HEADER_BYTES);
    expect(LAYOUT.record.idAt).toBe(RECORD_ID_OFFSET);
    expect(LAYOUT.checkpoint.headerBytes).toBe(CHECKPOINT_HEADER_BYTES);
    expect(LAYOUT.checkpoint.headsBytes).toBe(32 * FRONTIER_WIDTH);
  });

  it('file names: the library names segments and checkpoints the way the scanner matches them', () => {
    for (const n of [1, 0x1234, 2 ** 40 + 5]) {
      const seg = segmentFileName(n);
      expect(LAYOUT.segment.name.exec(seg)?.[1]).toBeDefined();
      expect(Number.parseInt(LAYOUT.segment.name.exec(seg)![1]!, 16)).toBe(parseSegmentFileName(seg));
      const ckpt = checkpointFileName(n);
      expect(Number.parseInt(LAYOUT.checkpoint.name.exec(ckpt)![1]!, 16)).toBe(parseCheckpointFileName(ckpt));
    }
  });

  it('record field offsets: the scanner reads what the library wrote, where its accessors read it', () => {
    const a = fact(1, [], 3);
    const b = fact(2, [a.id], 40);
    const c = fact(3, [a.id, b.id], 0);
    const first = 2 ** 33 + 9; // a sequence with a high word
    const { bytes, offsets } = segmentBytes(first, [a, b, c]);
    const words = new Uint32Array(bytes.buffer);
    const view = new DataView(bytes.buffer);
    const R = LAYOUT.record;
    [a, b, c].forEach((f, i) => {
      const at = offsets[i]!;
      expect(view.getUint32(at + R.lengthAt, true)).toBe(walRecordBytes(f.deps.length, f.payload.length));
      expect(view.getUint32(at + R.magicAt, true)).toBe(WAL_RECORD_MAGIC);
      expect(view.getUint16(at + R.depCountAt, true)).toBe(recordDepCount(words, at >>> 2));
      expect(view.getUint32(at + R.payloadLengthAt, true)).toBe(recordPayloadLength(words, at >>> 2));
      expect(view.getUint32(at + R.sequenceAt + 4, true) * 2 ** 32 + view.getUint32(at + R.sequenceAt, true)).toBe(recordSequence(words, at >>> 2));
    });

    const seg = scanSegment(lib, segmentFileName(first), first, bytes);
    expect(seg.headerOk).toBe(true);
    expect(seg.first).toBe(first);
    expect(seg.tailBytes).toBe(0);
    expect(seg.records).toEqual(
      [a, b, c].map((f, i) => ({ sequence: first + i, id: toHex(f.id), deps: f.deps.map(toHex), payload: toHex(f.payload), offset: offsets[i] })),
    );
  });

  it('the record CRC: a flipped bit in the last record ends the scan before it', () => {
    const facts = [fact(1, [], 3), fact(2, [], 5)];
    const { bytes, offsets } = segmentBytes(1, facts);
    const flip = offsets[1]! + WAL_HEADER_BYTES;
    bytes[flip] = bytes[flip]! ^ 1;
    const seg = scanSegment(lib, segmentFileName(1), 1, bytes);
    expect(seg.records.map((r) => r.sequence)).toEqual([1]);
    expect(seg.tailBytes).toBe(bytes.length - offsets[1]!);
  });

  it('checkpoint layout: the scanner finds the sequence and ids of a checkpoint the library encoded', () => {
    const ids = [fill(1), fill(2), fill(3)];
    for (const cells of [1, 3]) {
      const image: DomainImage = {
        cells: new Uint8Array(64 * cells).fill(0x5a),
        clock: new Uint8Array(64).fill(0xc1),
        heads: new Uint8Array(32 * FRONTIER_WIDTH).fill(0xde),
        headStart: 0,
        headCount: 1,
        popcount: 0,
        ids: Uint8Array.from(ids.flatMap((id) => [...id])),
      };
      const parts = encodeCheckpoint(ids.length, fill(9).subarray(0, 16), image, 0);
      const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
      const scanned = scanCheckpoint(lib, checkpointFileName(ids.length), ids.length, bytes);
      expect(scanned.problem).toBeUndefined();
      expect(scanned.ids).toEqual(ids.map(toHex));
    }
  });
});
