import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { STATE_CELL_BYTES, StateCell } from './helpers/lib.js';
import { expectInvalid } from './helpers/errors.js';


const cellBytes = fc.uint8Array({ minLength: 64, maxLength: 64 });

describe('StateCell construction', () => {
  it('is 64 zeroed bytes by default', () => {
    expect(STATE_CELL_BYTES).toBe(64);
    const c = new StateCell();
    expect(c.bytes).toBeInstanceOf(Uint8Array);
    expect(c.bytes.length).toBe(64);
    expect(Array.from(c.bytes)).toEqual(new Array(64).fill(0));
    expect(Array.from(c.toBytes())).toEqual(new Array(64).fill(0));
  });

  it('from() copies exactly 64 bytes', () => {
    fc.assert(
      fc.property(cellBytes, (b) => {
        const c = StateCell.from(b);
        expect(Array.from(c.bytes)).toEqual(Array.from(b));
        b[0] = b[0]! ^ 0xff; // the cell holds a copy
        expect(c.bytes[0]).toBe(b[0]! ^ 0xff);
      }),
      { numRuns: 100 },
    );
  });

  it('from() and copyFrom() reject anything but 64 bytes', () => {
    for (const n of [0, 1, 63, 65, 128]) {
      expectInvalid(() => StateCell.from(new Uint8Array(n)));
      const c = StateCell.from(new Uint8Array(64).fill(3));
      expectInvalid(() => c.copyFrom(new Uint8Array(n).fill(9)));
      expect(Array.from(c.bytes)).toEqual(new Array(64).fill(3)); // unchanged on rejection
    }
    for (const v of [undefined, null, new Array(64).fill(0), new Uint32Array(16), new ArrayBuffer(64), 'x'.repeat(64)] as unknown[]) {
      expectInvalid(() => StateCell.from(v as Uint8Array));
      expectInvalid(() => new StateCell().copyFrom(v as Uint8Array));
    }
  });

  it('copyFrom() overwrites the whole cell', () => {
    const c = StateCell.from(new Uint8Array(64).fill(0xff));
    const src = new Uint8Array(64).map((_, i) => i);
    c.copyFrom(src);
    expect(Array.from(c.bytes)).toEqual(Array.from(src));
    src[5] = 200;
    expect(c.bytes[5]).toBe(5);
  });

  it('copyFrom() accepts a 64-byte view at an offset', () => {
    const backing = new Uint8Array(100).map((_, i) => i);
    const c = new StateCell();
    c.copyFrom(backing.subarray(10, 74));
    expect(c.bytes[0]).toBe(10);
    expect(c.bytes[63]).toBe(73);
  });
});

describe('StateCell over a SharedArrayBuffer', () => {
  it('is a view at the given offset: writes go through both ways', () => {
    const sab = new SharedArrayBuffer(256);
    const raw = new Uint8Array(sab);
    const c = new StateCell(sab, 64);
    expect(c.bytes.buffer).toBe(sab);
    expect(c.bytes.byteOffset).toBe(64);
    expect(c.bytes.length).toBe(64);

    c.bytes[0] = 0xaa;
    c.bytes[63] = 0xbb;
    expect(raw[64]).toBe(0xaa);
    expect(raw[127]).toBe(0xbb);
    expect(raw[63]).toBe(0);
    expect(raw[128]).toBe(0);

    raw[100] = 0x77;
    expect(c.bytes[36]).toBe(0x77);

    c.copyFrom(new Uint8Array(64).fill(1));
    expect(Array.from(raw.subarray(64, 128))).toEqual(new Array(64).fill(1));
    expect(raw[63]).toBe(0);
    expect(raw[128]).toBe(0);

    c.zero();
    expect(Array.from(raw.subarray(64, 128))).toEqual(new Array(64).fill(0));
    expect(raw[100]).toBe(0);
  });

  it('accepts any offset where 64 bytes fit, including unaligned ones and a plain ArrayBuffer', () => {
    const sab = new SharedArrayBuffer(130);
    for (const off of [0, 1, 3, 66]) {
      const c = new StateCell(sab, off);
      c.bytes[0] = off + 1;
      expect(new Uint8Array(sab)[off]).toBe(off + 1);
    }
    const ab = new ArrayBuffer(64);
    new StateCell(ab).bytes[10] = 5;
    expect(new Uint8Array(ab)[10]).toBe(5);
    // Two cells over the same memory see each other's writes.
    const a = new StateCell(sab, 2);
    const b = new StateCell(sab, 2);
    a.bytes[7] = 42;
    expect(b.bytes[7]).toBe(42);
  });

  it('rejects offsets where 64 bytes do not fit', () => {
    const sab = new SharedArrayBuffer(128);
    for (const off of [65, 128, 1000, -1, 1.5, Number.NaN]) expectInvalid(() => new StateCell(sab, off));
    expectInvalid(() => new StateCell(new SharedArrayBuffer(63)));
  });
});

describe('clone / equals / toBytes', () => {
  it('clone() is an equal, independent, non-shared cell', () => {
    const sab = new SharedArrayBuffer(128);
    const c = new StateCell(sab, 64);
    c.bytes.fill(9);
    const d = c.clone();
    expect(d.equals(c)).toBe(true);
    expect(d.bytes.buffer).not.toBe(sab);
    d.bytes[0] = 1;
    expect(c.bytes[0]).toBe(9);
    expect(d.equals(c)).toBe(false);
    c.bytes[5] = 2;
    expect(d.bytes[5]).toBe(9);
  });

  it('toBytes() is a copy', () => {
    const c = StateCell.from(new Uint8Array(64).fill(4));
    const b = c.toBytes();
    expect(Array.from(b)).toEqual(new Array(64).fill(4));
    expect(b).not.toBe(c.bytes);
    b[0] = 0;
    expect(c.bytes[0]).toBe(4);
    c.bytes[1] = 0;
    expect(b[1]).toBe(4);
  });

  it('equals() compares all 64 bytes', () => {
    fc.assert(
      fc.property(cellBytes, fc.integer({ min: 0, max: 63 }), fc.integer({ min: 1, max: 255 }), (b, pos, x) => {
        const a = StateCell.from(b);
        const c = StateCell.from(b);
        expect(a.equals(c)).toBe(true);
        c.bytes[pos] = c.bytes[pos]! ^ x;
        expect(a.equals(c)).toBe(false);
        expect(c.equals(a)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('zero() clears every byte', () => {
    const c = StateCell.from(new Uint8Array(64).fill(0xff));
    c.zero();
    expect(c.equals(new StateCell())).toBe(true);
  });
});

describe('StateCell rejects typed-array views as buffers', () => {
  // new Uint8Array(view, offset, length) would silently copy the view instead of aliasing it.
  it('throws InvalidArgument for a Uint8Array or DataView', () => {
    expectInvalid(() => new StateCell(new Uint8Array(64) as unknown as ArrayBuffer));
    expectInvalid(() => new StateCell(new DataView(new ArrayBuffer(64)) as unknown as ArrayBuffer));
  });
});
