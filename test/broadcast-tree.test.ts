/**
 * The broadcast tree's bookkeeping: a connected overlay of small degree computed alike on every
 * node, per-origin trees that are shortest-path spanning trees before any tuning, and Prune/Graft
 * moving links between eager and lazy.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BroadcastTree } from './helpers/lib.js';

function cluster(n: number, fanout = 4): Map<string, BroadcastTree> {
  const ids = Array.from({ length: n }, (_, i) => `node-${i}`);
  return new Map(
    ids.map((id) => {
      const t = new BroadcastTree(id, fanout);
      t.setMembers(ids);
      return [id, t];
    }),
  );
}

/** Hop distance from `origin` to every node over the overlay. */
function distances(trees: Map<string, BroadcastTree>, origin: string): Map<string, number> {
  const d = new Map([[origin, 0]]);
  const queue = [origin];
  for (let at = 0; at < queue.length; at++) {
    for (const next of trees.get(queue[at]!)!.neighbours()) {
      if (d.has(next)) continue;
      d.set(next, d.get(queue[at]!)! + 1);
      queue.push(next);
    }
  }
  return d;
}

describe('broadcast tree', () => {
  it('the overlay is symmetric, connected, of small degree, and of diameter ≤ 4 at 100 nodes', () => {
    for (const n of [2, 5, 17, 40, 100]) {
      const trees = cluster(n);
      let degree = 0;
      for (const [id, t] of trees) {
        degree += t.neighbours().size;
        for (const m of t.neighbours()) expect(trees.get(m)!.neighbours().has(id)).toBe(true);
      }
      expect(degree / n).toBeLessThanOrEqual(2 * 4);
      for (const origin of trees.keys()) expect(distances(trees, origin).size).toBe(n);
      if (n === 100) expect(Math.max(...[...trees.keys()].flatMap((o) => [...distances(trees, o).values()]))).toBeLessThanOrEqual(4);
    }
  });

  it('before any tuning, each origin\'s eager links form a spanning tree of shortest paths', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 1, max: 6 }), fc.nat(), (n, fanout, pick) => {
        const trees = cluster(n, fanout);
        const origin = `node-${pick % n}`;
        const d = distances(trees, origin);
        const reached = new Map([[origin, 0]]);
        const queue = [origin];
        for (let at = 0; at < queue.length; at++) {
          const node = queue[at]!;
          for (const child of trees.get(node)!.eager(origin)) {
            expect(reached.has(child)).toBe(false); // a tree: each node reached once
            reached.set(child, reached.get(node)! + 1);
            queue.push(child);
          }
          // Lazy links are the other neighbours: every neighbour is one or the other.
          const t = trees.get(node)!;
          expect(new Set([...t.eager(origin), ...t.lazy(origin)])).toEqual(new Set(t.neighbours()));
        }
        // Every node the overlay connects to the origin (all of them, unless a fanout of 1 or 2 left it in pieces).
        expect(reached.size).toBe(d.size);
        if (fanout >= 4) expect(reached.size).toBe(n);
        for (const [node, hops] of reached) expect(hops).toBe(d.get(node));
      }),
      { numRuns: 60 },
    );
  });

  it('Prune makes a link lazy for one origin only; Graft makes any peer eager; forget drops a peer from every tree', () => {
    const trees = cluster(20);
    const t = trees.get('node-0')!;
    const origin = 'node-0';
    const [first] = t.eager(origin);
    t.prune(origin, first!);
    expect(t.eager(origin)).not.toContain(first);
    expect(t.lazy(origin)).toContain(first);
    expect(t.eager('node-1').length + t.lazy('node-1').length).toBe(t.neighbours().size); // other origins untouched
    t.graft(origin, first!);
    expect(t.eager(origin)).toContain(first);
    t.graft(origin, 'node-19-not-a-neighbour');
    expect(t.eager(origin)).toContain('node-19-not-a-neighbour');
    t.forget('node-19-not-a-neighbour');
    expect(t.eager(origin)).not.toContain('node-19-not-a-neighbour');
  });
});
