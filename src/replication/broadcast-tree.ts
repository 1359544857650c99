/**
 * BroadcastTree: which peers get a fact eagerly (the whole fact) and which lazily (its id only),
 * for clusters too large for every origin to push to every node: Plumtree (Leitão, Pereira,
 * Rodrigues, SRDS 2007) over a small overlay.
 *
 * - **Overlay.** Each node takes as neighbours its `fanout` members with the lowest pair score
 *   (a hash of the two node ids, the same seen from either end), plus every member that takes it:
 *   a k-out random graph, connected with high probability for k ≥ 2, of diameter ~log n / log 2k.
 *   It needs no randomness and no agreement: every node computes it from the members it knows.
 * - **Per-origin trees.** For each origin, facts travel over eager links; a node receiving a fact
 *   it already had tells the sender `Prune` (that link becomes lazy for that origin), so the eager
 *   links settle into a tree per origin, shaped by which copies arrive first (the fastest paths).
 *   Lazy links carry `IHave` (ids, hop count); an announced fact that does not arrive through the
 *   tree in time is fetched with `Graft` from the announcer, whose link becomes eager again: the
 *   tree repairs itself around a failed or slow node.
 *
 * This class is the bookkeeping only; the replica core moves the frames.
 */

/** Neighbours each node picks (it also keeps every member that picks it). */
export const DEFAULT_TREE_FANOUT = 4;

/** A node id's 32-bit hash: FNV-1a over its UTF-16 units. */
function nodeHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h;
}

/**
 * Node `a`'s preference for `b` (lower: preferred): MurmurHash3's finaliser over the pair, in
 * order. Ordered on purpose: with a symmetric score two nodes tend to pick each other, which wastes
 * picks (measured: average degree 5.2 instead of ~2·fanout, diameter 5 at 100 nodes).
 */
function pairScore(a: number, b: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ b;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class BroadcastTree {
  /** The overlay as every node's neighbours, as this node computes it from the members it knows. */
  private overlay = new Map<string, string[]>();
  private neighbourSet = new Set<string>();
  /** Per origin, the peers this node relays its facts to whole (the rest of its neighbours get ids). */
  private readonly eagerOf = new Map<string, Set<string>>();

  constructor(
    private readonly self: string,
    private readonly fanout = DEFAULT_TREE_FANOUT,
  ) {}

  /**
   * Recomputes the overlay from the live members (this node among them or not) and forgets what
   * the trees learnt: they start again from shortest paths over the new overlay.
   */
  setMembers(members: Iterable<string>): void {
    const hashes = new Map([...members, this.self].map((m) => [m, nodeHash(m)]));
    const everyone = [...hashes.keys()].sort();
    // O(n² log n) per membership change: fine for the hundreds of nodes this is meant for.
    const adjacency = new Map<string, Set<string>>(everyone.map((m) => [m, new Set()]));
    for (const node of everyone) {
      const h = hashes.get(node)!;
      const picks = everyone
        .filter((m) => m !== node)
        .map((m) => ({ m, score: pairScore(h, hashes.get(m)!) }))
        .sort((a, b) => a.score - b.score || (a.m < b.m ? -1 : 1))
        .slice(0, this.fanout);
      // A pick makes a link used from both ends.
      for (const { m } of picks) {
        adjacency.get(node)!.add(m);
        adjacency.get(m)!.add(node);
      }
    }
    this.overlay = new Map([...adjacency].map(([m, set]) => [m, [...set].sort()]));
    this.neighbourSet = new Set(this.overlay.get(this.self));
    this.eagerOf.clear();
  }

  neighbours(): ReadonlySet<string> {
    return this.neighbourSet;
  }

  /**
   * This node's children in `origin`'s breadth-first tree over the overlay (neighbours visited in
   * id order, so every node that knows the same members computes the same tree): facts take
   * shortest paths from the start, before any Prune or Graft has tuned anything.
   */
  private children(origin: string): Set<string> {
    const out = new Set<string>();
    if (!this.overlay.has(origin)) return new Set(this.neighbourSet);
    const parent = new Map<string, string>([[origin, '']]);
    const queue = [origin];
    for (let at = 0; at < queue.length; at++) {
      const node = queue[at]!;
      for (const next of this.overlay.get(node) ?? []) {
        if (parent.has(next)) continue;
        parent.set(next, node);
        queue.push(next);
        if (node === this.self) out.add(next);
      }
    }
    return out;
  }

  private eagerSet(origin: string): Set<string> {
    let set = this.eagerOf.get(origin);
    if (set === undefined) this.eagerOf.set(origin, (set = this.children(origin)));
    return set;
  }

  /** Peers that get `origin`'s facts whole. */
  eager(origin: string): string[] {
    return [...this.eagerSet(origin)];
  }

  /** Peers that get only the ids of `origin`'s facts: the other neighbours. */
  lazy(origin: string): string[] {
    const eager = this.eagerSet(origin);
    return [...this.neighbourSet].filter((n) => !eager.has(n));
  }

  /** `peer` sent a copy we already had (we send it Prune), or sent us Prune: lazy from now on. */
  prune(origin: string, peer: string): void {
    this.eagerSet(origin).delete(peer);
  }

  /** We grafted `peer`, or it grafted us: eager from now on. */
  graft(origin: string, peer: string): void {
    this.eagerSet(origin).add(peer);
  }

  /** A peer is gone (failed, or its link closed): it leaves every tree until it is back. */
  forget(peer: string): void {
    for (const set of this.eagerOf.values()) set.delete(peer);
  }
}
