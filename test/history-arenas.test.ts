/**
 * HistoryArenas: the page allocator a tiered index carves tables and runs from. Allocations never
 * overlap (checked against a model of every live range), freed neighbours coalesce and are
 * reused best-fit, memory handed out "zeroed" is zero even where it was used before, buffers grow
 * only as far as needed and refuse what does not fit, and state from another thread is checked.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARENA_PAGE, HistoryArenas, arenaStateWords, createArenas } from './helpers/lib.js';
import { expectBadMemory, expectInvalid } from './helpers/errors.js';

function arenas(count: number, maxBytes: number): HistoryArenas {
  return new HistoryArenas(createArenas(count, maxBytes), new Uint32Array(arenaStateWords(count)));
}

describe('HistoryArenas', () => {
  it('never hands out overlapping memory, and held bytes are what is allocated (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ alloc: fc.integer({ min: 1, max: 40_000 }), zero: fc.boolean() }), fc.record({ free: fc.nat() })), { maxLength: 200 }),
        (ops) => {
          const a = arenas(2, 64 * ARENA_PAGE);
          const live: { location: number; bytes: number; tag: number }[] = [];
          let tag = 1;
          for (const op of ops) {
            if ('alloc' in op) {
              const location = a.allocate(op.alloc, op.zero);
              if (location < 0) continue;
              const view = a.view(location, op.alloc);
              if (op.zero) expect(view.every((b) => b === 0)).toBe(true);
              view.fill(tag & 0xff);
              live.push({ location, bytes: op.alloc, tag: tag++ & 0xff });
            } else if (live.length > 0) {
              const [gone] = live.splice(op.free % live.length, 1);
              a.free(gone!.location, gone!.bytes);
            }
            // Every live range still holds its own tag: nothing overlapped it.
            for (const r of live) expect(a.view(r.location, r.bytes).every((b) => b === r.tag)).toBe(true);
            const pages = live.reduce((n, r) => n + Math.ceil(r.bytes / ARENA_PAGE), 0);
            expect(a.heldBytes()).toBe(pages * ARENA_PAGE);
          }
          for (const r of live.splice(0)) a.free(r.location, r.bytes);
          expect(a.heldBytes()).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('coalesces freed neighbours, reuses them best-fit, grows only when it must and refuses past the maximum', () => {
    const a = arenas(1, 16 * ARENA_PAGE);
    const x = a.allocate(2 * ARENA_PAGE, false);
    const y = a.allocate(3 * ARENA_PAGE, false);
    const z = a.allocate(ARENA_PAGE, false);
    expect([x, y, z]).toEqual([0, 2, 5]);
    expect(a.grownBytes()).toBe(16 * ARENA_PAGE);
    a.free(x, 2 * ARENA_PAGE);
    a.free(y, 3 * ARENA_PAGE);
    // One extent of 5 pages now: a 4-page request lands at its start.
    expect(a.allocate(4 * ARENA_PAGE, true)).toBe(0);
    expect(a.allocate(ARENA_PAGE, false)).toBe(4);
    expect(a.allocate(10 * ARENA_PAGE, false)).toBe(6);
    expect(a.allocate(ARENA_PAGE, false)).toBe(-1);
    expect(a.allocate(2 ** 33, false)).toBe(-1);
    // Freeing the last range gives its pages back to the end; reused pages come back zeroed.
    a.view(6, 10 * ARENA_PAGE).fill(9);
    a.free(6, 10 * ARENA_PAGE);
    const again = a.allocate(10 * ARENA_PAGE, true);
    expect(again).toBe(6);
    expect(a.view(again, 10 * ARENA_PAGE).every((b) => b === 0)).toBe(true);
    a.reset();
    expect(a.heldBytes()).toBe(0);
    const after = a.allocate(ARENA_PAGE, true);
    expect(a.view(after, ARENA_PAGE).every((b) => b === 0)).toBe(true);
  });

  it('spills into the next arena when one is full, and locations name the arena', () => {
    const a = arenas(2, 4 * ARENA_PAGE);
    const first = a.allocate(3 * ARENA_PAGE, false);
    const second = a.allocate(3 * ARENA_PAGE, false);
    expect(a.bufferOf(first)).toBe(a.buffers[0]);
    expect(a.bufferOf(second)).toBe(a.buffers[1]);
    expect(a.offsetOf(second)).toBe(0);
    expect(a.holds(second, 3 * ARENA_PAGE)).toBe(true);
    expect(a.holds(second, 5 * ARENA_PAGE)).toBe(false);
    expect(a.holds(7 * 2 ** 20, 1)).toBe(false);
  });

  it('checks what it is handed', () => {
    expectInvalid(() => createArenas(0, ARENA_PAGE));
    expectInvalid(() => createArenas(9, ARENA_PAGE));
    expectInvalid(() => createArenas(1, 1000));
    expectInvalid(() => createArenas(1, 2 ** 32 + ARENA_PAGE));
    expectBadMemory(() => new HistoryArenas([new SharedArrayBuffer(16)], new Uint32Array(arenaStateWords(1))));
    expectBadMemory(() => new HistoryArenas(createArenas(1, ARENA_PAGE), new Uint32Array(3)));
    const state = new Uint32Array(arenaStateWords(1));
    state[0] = 10; // ten pages in use in a buffer that has not grown
    expectBadMemory(() => new HistoryArenas(createArenas(1, 16 * ARENA_PAGE), state));
    const extents = new Uint32Array(arenaStateWords(1));
    extents[1] = 1; // one free extent, lying past the end
    extents[4] = 3;
    extents[5] = 2;
    expectBadMemory(() => new HistoryArenas(createArenas(1, 16 * ARENA_PAGE), extents));
  });
});
