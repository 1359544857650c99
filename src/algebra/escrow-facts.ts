/**
 * Escrow facts: how a bounded resource split between nodes is written down as ordinary facts, so
 * that moving quota is replicated, deduplicated and made durable like everything else
 * (docs/FORMATS.md §10).
 *
 * An escrow fact's payload starts with the bounded invariant's own payload — the delta, so the
 * kernel's invariant applies it as usual (zero for the facts that only move quota) — and goes on
 * with an escrow trailer the invariant never reads:
 *
 *   D+0   u32  magic 0x45465443 ("CTFE")
 *   D+4   u8   version (1)
 *   D+5   u8   kind (EscrowKind)
 *   D+6   u8   origin length (0 only for the genesis)
 *   D+7   u8   resource (a grant's), else 0
 *   D+8   u64  seq: the fact's place in its origin's escrow chain (genesis 0, then 1, 2, …)
 *   D+16  origin node id (UTF-8)
 *   then by kind:
 *     Genesis  u8 adapter, u8 member count, the 64-byte initial state, then per member u8 length + id
 *     Spend    the application's bytes (the rest of the caller's payload after the delta)
 *     Grant    u8 target length, target, u128 amount, 16-byte request id
 *     Reclaim  u8 target length, target, the target's last escrow fact id (32 bytes)
 *
 * D is the adapter's delta width: 8 for a BoundedGCounter (u64), 16 for a TotalSupply (i128).
 */
import { InvalidArgumentError } from '../errors.js';
import { I128_MAX, I128_MIN, readI128le, readU64le, writeI128le, writeU64le } from '../core/bytes.js';
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { BoundedGCounterInvariant } from '../invariants/bounded-gcounter.js';
import { TotalSupplyInvariant } from '../invariants/total-supply.js';
import type { Invariant } from '../invariants/invariant.js';

/** "CTFE" read as a little-endian u32. */
export const ESCROW_MAGIC = 0x45465443;
export const ESCROW_VERSION = 1;
/** Fixed trailer bytes before the origin id. */
const TRAILER_FIXED_BYTES = 16;
export const REQUEST_ID_BYTES = 16;
const AMOUNT_BYTES = 16;
const ID_BYTES = 32;
/** Longest node id in an escrow fact (as in replication frames). */
export const MAX_ESCROW_NODE_BYTES = 64;
/** Most members a genesis splits the limit between. */
export const MAX_ESCROW_MEMBERS = 255;
const U128_MAX = (1n << 128n) - 1n;

export const EscrowKind = {
  /** Splits the bound between the members; derived from the configuration, identical everywhere. */
  Genesis: 1,
  /** The origin applies a delta, consuming its own rights. */
  Spend: 2,
  /** The origin gives some of its rights to another node. */
  Grant: 3,
  /** The origin takes over every right a fenced (dead) node still held. */
  Reclaim: 4,
} as const;
export type EscrowKind = (typeof EscrowKind)[keyof typeof EscrowKind];

/**
 * The two rights a bound gives: `Down`, the room between the value and its floor (a decrement
 * uses it, an increment creates it), and `Up`, the room between the value and its ceiling.
 */
export const Resource = { Down: 0, Up: 1 } as const;
export type Resource = (typeof Resource)[keyof typeof Resource];

/** How a bounded invariant's payload and state read as escrow: its delta and its room. */
export interface EscrowAdapter {
  readonly name: string;
  /** Number written in the genesis: the adapter the escrow was made for. */
  readonly code: number;
  /** Bytes of the delta at the start of every payload. */
  readonly deltaBytes: number;
  /** The delta a payload carries (at least `deltaBytes` long). */
  readDelta(payload: Uint8Array): bigint;
  writeDelta(out: Uint8Array, delta: bigint): void;
  /** Smallest and largest delta one fact can carry. */
  readonly minDelta: bigint;
  readonly maxDelta: bigint;
  /** [down, up]: how far the state's value is from its floor and from its ceiling. */
  room(state: Uint8Array): [bigint, bigint];
}

const boundedCounterAdapter: EscrowAdapter = {
  name: 'BoundedGCounter',
  code: 1,
  deltaBytes: 8,
  readDelta: (payload) => readU64le(payload, 0),
  writeDelta: (out, delta) => writeU64le(out, 0, delta),
  minDelta: 0n,
  maxDelta: (1n << 64n) - 1n,
  room: (state) => {
    const value = readU64le(state, 0);
    return [value, readU64le(state, 8) - value];
  },
};

const totalSupplyAdapter: EscrowAdapter = {
  name: 'TotalSupply',
  code: 2,
  deltaBytes: 16,
  readDelta: (payload) => readI128le(payload, 0),
  writeDelta: (out, delta) => writeI128le(out, 0, delta),
  minDelta: I128_MIN,
  maxDelta: I128_MAX,
  room: (state) => {
    const balance = readI128le(state, 0);
    return [balance - readI128le(state, 16), readI128le(state, 32) - balance];
  },
};

/**
 * The escrow adapter for a bounded invariant, or undefined if escrow does not support it.
 * Supported: BoundedGCounter (a ceiling) and TotalSupply (a floor and a ceiling). Uniqueness is
 * not: its bound is per key, not an amount that can be split and moved.
 */
export function escrowAdapterFor(invariant: Invariant): EscrowAdapter | undefined {
  if (invariant instanceof BoundedGCounterInvariant) return boundedCounterAdapter;
  if (invariant instanceof TotalSupplyInvariant) return totalSupplyAdapter;
  return undefined;
}

/** An escrow fact's trailer, decoded. Views into the payload; `app` only for a Spend. */
export interface EscrowFact {
  readonly kind: EscrowKind;
  readonly origin: string;
  readonly seq: number;
  readonly delta: bigint;
  /** Grant: the resource moved. */
  readonly resource: Resource;
  /** Grant and Reclaim: the node given to, or the node reclaimed. */
  readonly target: string;
  /** Grant: the amount moved. */
  readonly amount: bigint;
  /** Grant: the request it answers (16 bytes, zero when unsolicited). */
  readonly requestId: Uint8Array;
  /** Reclaim: the target's last escrow fact. */
  readonly lastFact: Uint8Array;
  /** Genesis: the members, in the genesis' order, and the initial state. */
  readonly members: readonly string[];
  readonly initialState: Uint8Array;
  readonly adapter: number;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const EMPTY: Uint8Array = new Uint8Array(0);

function nodeBytes(node: string, what: string, allowEmpty = false): Uint8Array {
  const b = typeof node === 'string' ? utf8.encode(node) : undefined;
  if (b === undefined || (!allowEmpty && b.length === 0) || b.length > MAX_ESCROW_NODE_BYTES) {
    throw new InvalidArgumentError(`${what} must be 1 to ${MAX_ESCROW_NODE_BYTES} UTF-8 bytes`);
  }
  return b;
}

/** Writes the fixed trailer at `at` and returns where the origin's bytes end. */
function writeTrailer(out: Uint8Array, at: number, kind: EscrowKind, origin: Uint8Array, resource: number, seq: number): number {
  out[at] = ESCROW_MAGIC & 0xff;
  out[at + 1] = (ESCROW_MAGIC >>> 8) & 0xff;
  out[at + 2] = (ESCROW_MAGIC >>> 16) & 0xff;
  out[at + 3] = ESCROW_MAGIC >>> 24;
  out[at + 4] = ESCROW_VERSION;
  out[at + 5] = kind;
  out[at + 6] = origin.length;
  out[at + 7] = resource;
  writeU64le(out, at + 8, seq);
  out.set(origin, at + TRAILER_FIXED_BYTES);
  return at + TRAILER_FIXED_BYTES + origin.length;
}

function writeU128(out: Uint8Array, at: number, v: bigint): void {
  writeU64le(out, at, v & 0xffff_ffff_ffff_ffffn);
  writeU64le(out, at + 8, v >> 64n);
}

function readU128(b: Uint8Array, at: number): bigint {
  return readU64le(b, at) | (readU64le(b, at + 8) << 64n);
}

/** The genesis payload: members sorted by their UTF-8 bytes, so every node derives the same bytes. */
export function encodeGenesis(adapter: EscrowAdapter, members: readonly string[], initialState: Uint8Array): Uint8Array {
  if (!Array.isArray(members) || members.length === 0 || members.length > MAX_ESCROW_MEMBERS) {
    throw new InvalidArgumentError(`escrow members must be 1 to ${MAX_ESCROW_MEMBERS} node ids`);
  }
  if (!(initialState instanceof Uint8Array) || initialState.length !== STATE_CELL_BYTES) throw new InvalidArgumentError('the initial state is 64 bytes');
  const encoded = members.map((m, i) => nodeBytes(m, `escrow member ${i}`));
  encoded.sort((a, b) => Buffer.compare(a, b));
  for (let i = 1; i < encoded.length; i++) {
    if (Buffer.compare(encoded[i - 1]!, encoded[i]!) === 0) throw new InvalidArgumentError(`escrow member ${utf8Strict.decode(encoded[i])} is listed twice`);
  }
  const D = adapter.deltaBytes;
  const size = D + TRAILER_FIXED_BYTES + 2 + STATE_CELL_BYTES + encoded.reduce((n, m) => n + 1 + m.length, 0);
  const out = new Uint8Array(size);
  let at = writeTrailer(out, D, EscrowKind.Genesis, EMPTY, 0, 0);
  out[at++] = adapter.code;
  out[at++] = encoded.length;
  out.set(initialState, at);
  at += STATE_CELL_BYTES;
  for (const m of encoded) {
    out[at++] = m.length;
    out.set(m, at);
    at += m.length;
  }
  return out;
}

/** Bytes of a spend made of the caller's `payloadLength` bytes by `origin` (already encoded). */
export function spendBytes(payloadLength: number, origin: Uint8Array): number {
  return payloadLength + TRAILER_FIXED_BYTES + origin.length;
}

/**
 * Writes a spend into `out` (at least `spendBytes` long): the caller's payload (delta first, then
 * its own bytes) with the trailer inserted after the delta. `origin` is the node's id already
 * encoded (the same for every spend). Writing into a buffer the caller reuses keeps an allocation
 * off the admission path.
 */
export function writeSpend(out: Uint8Array, adapter: EscrowAdapter, origin: Uint8Array, seq: number, payload: Uint8Array): void {
  const D = adapter.deltaBytes;
  for (let i = 0; i < D; i++) out[i] = payload[i]!;
  const at = writeTrailer(out, D, EscrowKind.Spend, origin, 0, seq);
  if (payload.length > D) out.set(payload.subarray(D), at);
}

/** A spend in a buffer of its own (see `writeSpend`). */
export function encodeSpend(adapter: EscrowAdapter, origin: Uint8Array, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(spendBytes(payload.length, origin));
  writeSpend(out, adapter, origin, seq, payload);
  return out;
}

export function encodeGrant(adapter: EscrowAdapter, origin: string, seq: number, target: string, resource: Resource, amount: bigint, requestId: Uint8Array): Uint8Array {
  const o = nodeBytes(origin, 'the grantor');
  const t = nodeBytes(target, 'the grantee');
  if (typeof amount !== 'bigint' || amount <= 0n || amount > U128_MAX) throw new InvalidArgumentError('a grant moves a positive amount below 2^128');
  if (!(requestId instanceof Uint8Array) || requestId.length !== REQUEST_ID_BYTES) throw new InvalidArgumentError(`a request id is ${REQUEST_ID_BYTES} bytes`);
  const out = new Uint8Array(adapter.deltaBytes + TRAILER_FIXED_BYTES + o.length + 1 + t.length + AMOUNT_BYTES + REQUEST_ID_BYTES);
  let at = writeTrailer(out, adapter.deltaBytes, EscrowKind.Grant, o, resource, seq);
  out[at++] = t.length;
  out.set(t, at);
  at += t.length;
  writeU128(out, at, amount);
  out.set(requestId, at + AMOUNT_BYTES);
  return out;
}

export function encodeReclaim(adapter: EscrowAdapter, origin: string, seq: number, target: string, lastFact: Uint8Array): Uint8Array {
  const o = nodeBytes(origin, 'the reclaiming node');
  const t = nodeBytes(target, 'the reclaimed node');
  const out = new Uint8Array(adapter.deltaBytes + TRAILER_FIXED_BYTES + o.length + 1 + t.length + ID_BYTES);
  let at = writeTrailer(out, adapter.deltaBytes, EscrowKind.Reclaim, o, 0, seq);
  out[at++] = t.length;
  out.set(t, at);
  out.set(lastFact, at + t.length);
  return out;
}

/** A bounds-checked cursor: any read past the end marks the payload malformed. */
class Cursor {
  bad = false;
  constructor(
    readonly b: Uint8Array,
    public at: number,
  ) {}

  take(n: number): number {
    if (this.at + n > this.b.length) {
      this.bad = true;
      return this.b.length;
    }
    const at = this.at;
    this.at += n;
    return at;
  }

  u8(): number {
    const at = this.take(1);
    return this.bad ? 0 : this.b[at]!;
  }

  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.bad ? EMPTY : this.b.subarray(at, at + n);
  }

  node(length: number): string {
    const b = this.bytes(length);
    if (this.bad) return '';
    try {
      return utf8Strict.decode(b);
    } catch {
      this.bad = true;
      return '';
    }
  }
}

/** True when the payload carries an escrow trailer after a delta of `deltaBytes` (cheap: the magic alone). */
export function hasEscrowTrailer(payload: Uint8Array, deltaBytes: number): boolean {
  const at = deltaBytes;
  return (
    payload.length >= at + TRAILER_FIXED_BYTES &&
    payload[at] === (ESCROW_MAGIC & 0xff) &&
    payload[at + 1] === ((ESCROW_MAGIC >>> 8) & 0xff) &&
    payload[at + 2] === ((ESCROW_MAGIC >>> 16) & 0xff) &&
    payload[at + 3] === ESCROW_MAGIC >>> 24
  );
}

const NO_ID: Uint8Array = new Uint8Array(ID_BYTES);
const NO_REQUEST: Uint8Array = new Uint8Array(REQUEST_ID_BYTES);

/**
 * Decodes an escrow fact's payload. Total: any bytes give a fact or undefined (not an escrow
 * fact of this adapter, or malformed), never an exception.
 */
export function decodeEscrowFact(adapter: EscrowAdapter, payload: Uint8Array): EscrowFact | undefined {
  const D = adapter.deltaBytes;
  if (!(payload instanceof Uint8Array) || !hasEscrowTrailer(payload, D)) return undefined;
  if (payload[D + 4] !== ESCROW_VERSION) return undefined;
  const kind = payload[D + 5]! as EscrowKind;
  const originLength = payload[D + 6]!;
  const resource = payload[D + 7]! as Resource;
  const seqBig = readU64le(payload, D + 8);
  if (seqBig > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const seq = Number(seqBig);
  const c = new Cursor(payload, D + TRAILER_FIXED_BYTES);
  const origin = c.node(originLength);
  const delta = adapter.readDelta(payload);
  let target = '';
  let amount = 0n;
  let requestId = NO_REQUEST;
  let lastFact = NO_ID;
  let members: string[] = [];
  let initialState = EMPTY;
  let adapterCode = adapter.code;
  switch (kind) {
    case EscrowKind.Genesis: {
      if (originLength !== 0 || seq !== 0 || delta !== 0n || resource !== 0) return undefined;
      adapterCode = c.u8();
      const count = c.u8();
      initialState = c.bytes(STATE_CELL_BYTES);
      if (count === 0) return undefined;
      for (let i = 0; i < count && !c.bad; i++) {
        const length = c.u8();
        if (length === 0 || length > MAX_ESCROW_NODE_BYTES) return undefined;
        members.push(c.node(length));
      }
      if (c.at !== payload.length) return undefined;
      break;
    }
    case EscrowKind.Spend:
      if (originLength === 0 || seq === 0 || resource !== 0) return undefined;
      break;
    case EscrowKind.Grant:
    case EscrowKind.Reclaim: {
      if (originLength === 0 || seq === 0 || delta !== 0n) return undefined;
      if (kind === EscrowKind.Reclaim && resource !== 0) return undefined;
      if (kind === EscrowKind.Grant && resource !== Resource.Down && resource !== Resource.Up) return undefined;
      const length = c.u8();
      if (length === 0 || length > MAX_ESCROW_NODE_BYTES) return undefined;
      target = c.node(length);
      if (kind === EscrowKind.Grant) {
        const at = c.take(AMOUNT_BYTES);
        if (!c.bad) amount = readU128(payload, at);
        requestId = c.bytes(REQUEST_ID_BYTES);
        if (amount === 0n) return undefined;
      } else {
        lastFact = c.bytes(ID_BYTES);
      }
      if (c.at !== payload.length) return undefined;
      break;
    }
    default:
      return undefined;
  }
  if (c.bad || originLength > MAX_ESCROW_NODE_BYTES) return undefined;
  return { kind, origin, seq, delta, resource, target, amount, requestId, lastFact, members, initialState, adapter: adapterCode };
}

/** The caller's own bytes of a spend (what follows the trailer). */
export function spendAppData(adapter: EscrowAdapter, payload: Uint8Array): Uint8Array {
  return payload.subarray(adapter.deltaBytes + TRAILER_FIXED_BYTES + payload[adapter.deltaBytes + 6]!);
}

export { utf8 as escrowUtf8 };
