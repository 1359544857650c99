/**
 * GGraphInvariant: a grow-only graph on at most 16 vertices.
 *
 * State (`GraphState`): adjacency matrix at bytes 0..32 (edge (f, t) is bit f·16 + t, bit b in byte
 * b >> 3 under mask 1 << (b & 7)); vertex count at 32 (≤ 16); max out-degree at 33 and max
 * in-degree at 34 (0 = unlimited); flags at 35 (bit 0 directed, bit 1 self-loops allowed).
 * Payload: at least 2 bytes, from and to; further bytes are application data.
 *
 * Rule: a vertex count above 16 or unknown flag bits → `BoundsViolation` (a malformed state; the
 * upstream crate read past its matrix and aborted); from or to ≥ vertex count → `BoundsViolation`;
 * a self-loop where not allowed → `BoundsViolation`; an edge already present → Ok, no change; a
 * degree limit reached → `Overflow`; else add the edge (both directions if undirected). In an
 * undirected graph an edge adds to the degree of both endpoints, so the limits are checked at both.
 *
 * Class: without degree limits every rejection depends only on the fixed vertex count and flags, so
 * acceptance never depends on order and edges only accumulate — `Lattice`. Degree limits make
 * acceptance order-dependent, so they are refused unless the invariant is built with
 * `{ degreeLimits: true }`, which makes it `BoundedCommutative`.
 */
import { InvalidArgumentError } from '../errors.js';
import { copyBytes } from '../core/bytes.js';
import { InvariantCode } from '../codes.js';
import { STATE_CELL_BYTES, StateCell, cellBytes } from '../core/state-cell.js';
import { AlgebraicClass, type Invariant } from './invariant.js';
import { describeValue } from '../describe-value.js';
import { optionsObject } from '../core/options.js';

export const MAX_VERTICES = 16;
/** The adjacency matrix: 16 × 16 bits. */
const ADJACENCY_BYTES = 32;
const VERTEX_COUNT = 32;
const MAX_OUT = 33;
const MAX_IN = 34;
const FLAGS = 35;
const DIRECTED = 1;
const SELF_LOOPS = 2;

export interface GGraphOptions {
  /** Accept states with degree limits (class becomes BoundedCommutative). Default false. */
  readonly degreeLimits?: boolean;
}

const hasEdge = (s: Uint8Array, f: number, t: number): boolean => (s[(f * 16 + t) >>> 3]! & (1 << ((f * 16 + t) & 7))) !== 0;

export class GGraphInvariant implements Invariant {
  readonly algebraicClass: AlgebraicClass;
  readonly mutatesOnlyOnSuccess = true;
  readonly degreeLimits: boolean;

  constructor(options: GGraphOptions = {}) {
    this.degreeLimits = optionsObject(options).degreeLimits === true;
    this.algebraicClass = this.degreeLimits ? AlgebraicClass.BoundedCommutative : AlgebraicClass.Lattice;
  }

  apply(payload: Uint8Array, state: Uint8Array): number {
    if (payload.length < 2 || state.length !== STATE_CELL_BYTES) return InvariantCode.MalformedPayload;
    const n = state[VERTEX_COUNT]!;
    const flags = state[FLAGS]!;
    const maxOut = state[MAX_OUT]!;
    const maxIn = state[MAX_IN]!;
    if (n > MAX_VERTICES || (flags & ~(DIRECTED | SELF_LOOPS)) !== 0) return InvariantCode.BoundsViolation;
    if ((maxOut !== 0 || maxIn !== 0) && !this.degreeLimits) return InvariantCode.BoundsViolation;
    const from = payload[0]!;
    const to = payload[1]!;
    if (from >= n || to >= n) return InvariantCode.BoundsViolation;
    if (from === to && (flags & SELF_LOOPS) === 0) return InvariantCode.BoundsViolation;
    if (hasEdge(state, from, to)) return InvariantCode.Ok;
    if (maxOut !== 0 && outDegree(state, from, n) >= maxOut) return InvariantCode.Overflow;
    if (maxIn !== 0 && inDegree(state, to, n) >= maxIn) return InvariantCode.Overflow;
    if ((flags & DIRECTED) === 0 && from !== to) {
      // The mirrored edge to → from: an out-edge of `to` and an in-edge of `from`.
      if (maxOut !== 0 && outDegree(state, to, n) >= maxOut) return InvariantCode.Overflow;
      if (maxIn !== 0 && inDegree(state, from, n) >= maxIn) return InvariantCode.Overflow;
    }
    setEdge(state, from, to);
    if ((flags & DIRECTED) === 0 && from !== to) setEdge(state, to, from);
    return InvariantCode.Ok;
  }

  /** The payload adding edge `from` → `to`. */
  static payload(from: number, to: number): Uint8Array {
    checkVertex(from, MAX_VERTICES);
    checkVertex(to, MAX_VERTICES);
    return new Uint8Array([from, to]);
  }
}

function setEdge(s: Uint8Array, f: number, t: number): void {
  const b = f * 16 + t;
  s[b >>> 3] = s[b >>> 3]! | (1 << (b & 7));
}

function outDegree(s: Uint8Array, f: number, n: number): number {
  let d = 0;
  for (let t = 0; t < n; t++) if (hasEdge(s, f, t)) d++;
  return d;
}

function inDegree(s: Uint8Array, t: number, n: number): number {
  let d = 0;
  for (let f = 0; f < n; f++) if (hasEdge(s, f, t)) d++;
  return d;
}

function checkVertex(v: number, n: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= n) throw new InvalidArgumentError(`vertex ${describeValue(v)} is not in [0, ${n})`);
}

export interface GraphOptions {
  readonly directed?: boolean;
  readonly selfLoops?: boolean;
  /** 0 = unlimited (needs GGraphInvariant({ degreeLimits: true }) otherwise). */
  readonly maxOutDegree?: number;
  readonly maxInDegree?: number;
}

/** The state of a {@link GGraphInvariant}. */
export class GraphState {
  readonly vertexCount: number;
  readonly directed: boolean;
  readonly selfLoops: boolean;
  readonly maxOutDegree: number;
  readonly maxInDegree: number;
  private readonly adjacency: Uint8Array;

  constructor(vertexCount: number, options: GraphOptions = {}, adjacency?: Uint8Array) {
    if (!Number.isInteger(vertexCount) || vertexCount < 0 || vertexCount > MAX_VERTICES) {
      throw new InvalidArgumentError(`a graph has at most ${MAX_VERTICES} vertices, got ${describeValue(vertexCount)}`);
    }
    const { directed = false, selfLoops = false, maxOutDegree = 0, maxInDegree = 0 } = optionsObject(options);
    for (const d of [maxOutDegree, maxInDegree]) {
      if (!Number.isInteger(d) || d < 0 || d > 255) throw new InvalidArgumentError('degree limits are integers in [0, 255]');
    }
    this.vertexCount = vertexCount;
    this.directed = directed;
    this.selfLoops = selfLoops;
    this.maxOutDegree = maxOutDegree;
    this.maxInDegree = maxInDegree;
    if (adjacency !== undefined && !(adjacency instanceof Uint8Array && adjacency.length >= ADJACENCY_BYTES)) {
      throw new InvalidArgumentError(`an adjacency matrix is ${ADJACENCY_BYTES} bytes`);
    }
    this.adjacency = adjacency === undefined ? new Uint8Array(ADJACENCY_BYTES) : copyBytes(adjacency, 0, ADJACENCY_BYTES);
  }

  hasEdge(from: number, to: number): boolean {
    checkVertex(from, this.vertexCount);
    checkVertex(to, this.vertexCount);
    return hasEdge(this.adjacency, from, to);
  }

  /** Edges (from, to) in ascending order; an undirected edge appears once, with from ≤ to. */
  edges(): [number, number][] {
    const out: [number, number][] = [];
    for (let f = 0; f < this.vertexCount; f++) {
      for (let t = this.directed ? 0 : f; t < this.vertexCount; t++) if (hasEdge(this.adjacency, f, t)) out.push([f, t]);
    }
    return out;
  }

  toBytes(): Uint8Array {
    const out = new Uint8Array(STATE_CELL_BYTES);
    out.set(this.adjacency, 0);
    out[VERTEX_COUNT] = this.vertexCount;
    out[MAX_OUT] = this.maxOutDegree;
    out[MAX_IN] = this.maxInDegree;
    out[FLAGS] = (this.directed ? DIRECTED : 0) | (this.selfLoops ? SELF_LOOPS : 0);
    return out;
  }

  toCell(): StateCell {
    return StateCell.from(this.toBytes());
  }

  /** The graph in a cell; a cell the invariant would refuse (unknown flags, > 16 vertices) throws. */
  static fromCell(cell: StateCell | Uint8Array): GraphState {
    const b = cellBytes(cell);
    if ((b[FLAGS]! & ~(DIRECTED | SELF_LOOPS)) !== 0) throw new InvalidArgumentError(`unknown graph flags 0x${b[FLAGS]!.toString(16)}`);
    return new GraphState(
      b[VERTEX_COUNT]!,
      { directed: (b[FLAGS]! & DIRECTED) !== 0, selfLoops: (b[FLAGS]! & SELF_LOOPS) !== 0, maxOutDegree: b[MAX_OUT]!, maxInDegree: b[MAX_IN]! },
      b.subarray(0, 32),
    );
  }
}
