/**
 * Frames of the replication protocol, version 1 (docs/FORMATS.md §8): what one node sends another.
 * Encoders build a frame's bytes; `decodeFrame` reads one frame from the front of a buffer and is
 * total — any bytes give either a frame, `Incomplete` (read more), or a `FrameFault` naming what is
 * wrong, never an exception. Decoded frames own their bytes (nothing aliases the receive buffer):
 * every field is a view of one private copy of the frame, so whoever keeps a fact long after the
 * frame (a pending buffer) copies it, or it keeps the whole frame alive.
 *
 * Every frame: an 8-byte header — total length u32, type u8, protocol version u8, two reserved
 * zero bytes — then the body of its type. Little-endian throughout.
 */
import { MAX_DEPS, MAX_PAYLOAD_BYTES } from '../core/fact.js';
import { InvalidArgumentError } from '../errors.js';

/** The protocol version these frames are. */
export const PROTOCOL_VERSION = 1;
/** Bytes of the frame header. */
export const FRAME_HEADER_BYTES = 8;
/**
 * Largest frame: 1 MiB. It holds at least one fact of the largest shape (64 KiB payload, 16 deps)
 * and bounds what a peer can make a node buffer before it can refuse.
 */
export const MAX_FRAME_BYTES = 1 << 20;
/** Most ids one fact request may name (a batch of missing deps). */
export const MAX_REQUESTED_IDS = 1024;
/** Bytes of one sketch cell on the wire: XOR of ids (32), XOR of hashes (8), count (i32). */
export const SKETCH_CELL_BYTES = 44;
/** Longest node id, in UTF-8 bytes. */
export const MAX_NODE_ID_BYTES = 64;
/** Bytes of a cluster id. */
export const CLUSTER_ID_BYTES = 16;

export const FrameType = {
  /** First frame on a connection, both ways: who is speaking and which versions it speaks. */
  Hello: 0x01,
  /** Facts with their deps; from a log stream they carry the sequence of the first one. */
  Facts: 0x02,
  /** "Send me these facts" (missing deps, or what a sketch decoded). */
  FactRequest: 0x03,
  /** "Send me cells [first, first + count) of your sketch". */
  SketchRequest: 0x04,
  /** Cells of the sender's sketch. */
  SketchCells: 0x05,
  /**
   * Cells of the sender's sketch it was not asked for: "you hold more than I do, so you decode the
   * difference" (the side holding the extra facts can push them without being asked).
   */
  SketchPush: 0x09,
  /** "Stream your log from this sequence." */
  LogRequest: 0x06,
  Ping: 0x07,
  Pong: 0x08,
  /**
   * Nodes the sender knows (itself included) and what it believes of each (alive, suspected,
   * failed): how a node joining through one seed learns the rest, and how failure detection
   * spreads its verdicts.
   */
  Members: 0x10,
  /** "Ping this node for me and forward its Pong" (an indirect probe). */
  PingReq: 0x11,
  /** "The node you asked me to ping did not answer me either." */
  Nack: 0x12,
  /** Facts of one origin relayed down its broadcast tree, with how many hops they have come. */
  TreeFacts: 0x13,
  /** Ids of one origin's facts the sender has, for a peer on a lazy link of that origin's tree. */
  IHave: 0x14,
  /** "Send me these facts of this origin, and put me back on its tree." */
  Graft: 0x15,
  /** "I got this origin's facts from someone else first: only announce them to me." */
  Prune: 0x16,
  /** "My log no longer reaches back to your cursor: here is a snapshot instead" (id = its BLAKE3). */
  SnapshotOffer: 0x20,
  /** "Send me this range of that snapshot." */
  SnapshotRequest: 0x21,
  /** A range of a snapshot's bytes (none: that snapshot is gone, expect a new offer). */
  SnapshotChunk: 0x22,
  /** Escrow: "grant me this much of this resource" (a hint: safe to lose or repeat). */
  QuotaRequest: 0x30,
  /** Escrow: "I have nothing to give for that request" (so the requester moves on at once). */
  QuotaDenial: 0x31,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/**
 * Type numbers kept for what comes next, so no version of this one reuses them: 0x10–0x1f
 * membership and dissemination (0x10 Members is the first), 0x20–0x2f snapshots, 0x30–0x3f escrow.
 */
export const RESERVED_FRAME_TYPES = { membership: [0x10, 0x1f], snapshot: [0x20, 0x2f], escrow: [0x30, 0x3f] } as const;

/** Fixed bytes of a Members entry (incarnation, refutations, state, three lengths) plus a 1-byte node id. */
const MIN_MEMBER_BYTES = 8 + 4 + 1 + 3 + 1;
/** Most members one Members frame lists. */
export const MAX_MEMBERS_PER_FRAME = 1024;
/** Longest member address (an opaque string the host dials, e.g. "10.0.0.7:7001"), in UTF-8 bytes. */
export const MAX_ADDRESS_BYTES = 255;

export interface Member {
  readonly nodeId: string;
  readonly address: string;
  readonly incarnation: number;
}

export type MemberState = 'alive' | 'suspect' | 'failed';
const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'failed'];

/** A member and what the sender believes of it (see FailureDetector for the precedence rules). */
export interface MemberStatus extends Member {
  /** Times this run of the member refuted a suspicion of itself. */
  readonly refutations: number;
  readonly state: MemberState;
  /** Who suspected or failed it ('' for alive). */
  readonly reporter: string;
}

export interface WireFact {
  readonly id: Uint8Array;
  readonly deps: Uint8Array[];
  readonly payload: Uint8Array;
}

export type Frame =
  | { readonly type: typeof FrameType.Hello; readonly clusterId: Uint8Array; readonly nodeId: string; readonly incarnation: number; readonly address: string; readonly minVersion: number; readonly maxVersion: number }
  | { readonly type: typeof FrameType.Facts; readonly firstSequence: number; readonly facts: WireFact[] }
  | { readonly type: typeof FrameType.FactRequest; readonly ids: Uint8Array[] }
  | { readonly type: typeof FrameType.SketchRequest; readonly firstCell: number; readonly cellCount: number }
  | { readonly type: typeof FrameType.SketchCells | typeof FrameType.SketchPush; readonly firstCell: number; readonly cells: Int32Array }
  | { readonly type: typeof FrameType.LogRequest; readonly fromSequence: number; readonly maxFacts: number }
  | { readonly type: typeof FrameType.Ping | typeof FrameType.Pong; readonly nonce: number }
  | { readonly type: typeof FrameType.Members; readonly members: MemberStatus[] }
  | { readonly type: typeof FrameType.PingReq; readonly nonce: number; readonly target: string }
  | { readonly type: typeof FrameType.Nack; readonly nonce: number }
  | { readonly type: typeof FrameType.TreeFacts; readonly origin: string; readonly hops: number; readonly facts: WireFact[] }
  | { readonly type: typeof FrameType.IHave; readonly origin: string; readonly hops: number; readonly ids: Uint8Array[] }
  | { readonly type: typeof FrameType.Graft; readonly origin: string; readonly hops: number; readonly ids: Uint8Array[] }
  | { readonly type: typeof FrameType.Prune; readonly origin: string }
  | { readonly type: typeof FrameType.SnapshotOffer; readonly snapshotId: Uint8Array; readonly through: number; readonly totalBytes: number }
  | { readonly type: typeof FrameType.SnapshotRequest; readonly snapshotId: Uint8Array; readonly offset: number; readonly length: number }
  | { readonly type: typeof FrameType.SnapshotChunk; readonly snapshotId: Uint8Array; readonly offset: number; readonly bytes: Uint8Array }
  | { readonly type: typeof FrameType.QuotaRequest | typeof FrameType.QuotaDenial; readonly requestId: Uint8Array; readonly resource: number; readonly amount: bigint };

/** Why bytes are not a frame. */
export type FrameFault =
  | 'FrameTooSmall'
  | 'FrameTooLarge'
  | 'UnsupportedVersion'
  | 'ReservedNotZero'
  | 'UnknownType'
  | 'BadLength'
  | 'BadNodeId'
  | 'BadVersionRange'
  | 'TooManyItems'
  | 'TooManyDeps'
  | 'PayloadTooLarge'
  | 'BadNumber';

export type DecodeResult =
  | { readonly ok: true; readonly frame: Frame; readonly bytes: number }
  | { readonly ok: false; readonly fault: 'Incomplete'; readonly needed: number }
  | { readonly ok: false; readonly fault: FrameFault; readonly detail: string };

/** A u64 as a JS number: only values up to 2^53 − 1 are representable, larger ones are `BadNumber`. */
const TWO_POW_32 = 2 ** 32;
const MAX_SAFE_HIGH = 0x1fffff;
/** Fixed part of a fact on the wire: dep count u8, reserved u8, payload length u32, id. */
const FACT_FIXED_BYTES = 1 + 1 + 4 + 32;

// ------------------------------------------------------------------------------------- encoding

/** Builds frames into a growing buffer. */
class FrameWriter {
  private bytes = new Uint8Array(256);
  private view = new DataView(this.bytes.buffer);
  private at = FRAME_HEADER_BYTES;

  constructor(private readonly type: FrameType) {}

  private room(n: number): void {
    if (this.at + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.at + n));
    grown.set(this.bytes);
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(v: number): this {
    this.room(1);
    this.view.setUint8(this.at, v);
    this.at += 1;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.view.setUint16(this.at, v, true);
    this.at += 2;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.view.setUint32(this.at, v, true);
    this.at += 4;
    return this;
  }

  u64(v: number): this {
    return this.u32(v % TWO_POW_32).u32(Math.floor(v / TWO_POW_32));
  }

  raw(b: Uint8Array): this {
    this.room(b.length);
    this.bytes.set(b, this.at);
    this.at += b.length;
    return this;
  }

  finish(): Uint8Array {
    if (this.at > MAX_FRAME_BYTES) throw new InvalidArgumentError(`a frame of ${this.at} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
    this.view.setUint32(0, this.at, true);
    this.view.setUint8(4, this.type);
    this.view.setUint8(5, PROTOCOL_VERSION);
    return this.bytes.slice(0, this.at);
  }
}

function checkU64(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${what} must be an integer in [0, 2^53)`);
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= TWO_POW_32) throw new InvalidArgumentError(`${what} must be a u32`);
}

function checkId(id: unknown, what: string): asserts id is Uint8Array {
  if (!(id instanceof Uint8Array) || id.length !== 32) throw new InvalidArgumentError(`${what} must be a 32-byte Uint8Array`);
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export function encodeHello(hello: { clusterId: Uint8Array; nodeId: string; incarnation: number; address?: string; minVersion?: number; maxVersion?: number }): Uint8Array {
  const { clusterId, nodeId, incarnation } = hello;
  const address = utf8.encode(hello.address ?? '');
  if (address.length > MAX_ADDRESS_BYTES) throw new InvalidArgumentError(`an address is at most ${MAX_ADDRESS_BYTES} UTF-8 bytes`);
  const minVersion = hello.minVersion ?? PROTOCOL_VERSION;
  const maxVersion = hello.maxVersion ?? PROTOCOL_VERSION;
  if (!(clusterId instanceof Uint8Array) || clusterId.length !== CLUSTER_ID_BYTES) throw new InvalidArgumentError(`clusterId must be ${CLUSTER_ID_BYTES} bytes`);
  if (typeof nodeId !== 'string') throw new InvalidArgumentError('nodeId must be a string');
  const name = utf8.encode(nodeId);
  if (name.length < 1 || name.length > MAX_NODE_ID_BYTES) throw new InvalidArgumentError(`nodeId must be 1 to ${MAX_NODE_ID_BYTES} UTF-8 bytes`);
  checkU64(incarnation, 'incarnation');
  for (const v of [minVersion, maxVersion]) if (!Number.isInteger(v) || v < 1 || v > 255) throw new InvalidArgumentError('protocol versions are integers in [1, 255]');
  if (minVersion > maxVersion) throw new InvalidArgumentError('minVersion must not exceed maxVersion');
  return new FrameWriter(FrameType.Hello).raw(clusterId).u64(incarnation).u8(minVersion).u8(maxVersion).u8(name.length).u8(address.length).raw(name).raw(address).finish();
}

/** Writes `count u16 ‖ 0 u16 ‖ facts`, checking each fact. */
function writeFacts(w: FrameWriter, facts: readonly WireFact[]): FrameWriter {
  if (!Array.isArray(facts) || facts.length > 0xffff) throw new InvalidArgumentError('facts must be an array of at most 65,535 facts');
  w.u16(facts.length).u16(0);
  for (const fact of facts) {
    if (fact === null || typeof fact !== 'object') throw new InvalidArgumentError('a fact must be an object');
    checkId(fact.id, 'a fact id');
    if (!Array.isArray(fact.deps) || fact.deps.length > MAX_DEPS) throw new InvalidArgumentError(`a fact has at most ${MAX_DEPS} deps`);
    if (!(fact.payload instanceof Uint8Array) || fact.payload.length > MAX_PAYLOAD_BYTES) throw new InvalidArgumentError(`a payload is a Uint8Array of at most ${MAX_PAYLOAD_BYTES} bytes`);
    w.u8(fact.deps.length).u8(0).u32(fact.payload.length).raw(fact.id);
    for (const dep of fact.deps) {
      checkId(dep, 'a dep');
      w.raw(dep);
    }
    w.raw(fact.payload);
  }
  return w;
}

/** Writes `count u16 ‖ 0 u16 ‖ ids`. */
function writeIds(w: FrameWriter, ids: readonly Uint8Array[], what: string): FrameWriter {
  if (!Array.isArray(ids) || ids.length > MAX_REQUESTED_IDS) throw new InvalidArgumentError(`${what} names at most ${MAX_REQUESTED_IDS} ids`);
  w.u16(ids.length).u16(0);
  for (const id of ids) {
    checkId(id, `an id of ${what}`);
    w.raw(id);
  }
  return w;
}

/** Facts with their deps; `firstSequence` is the sender's log sequence of the first (0: not from a log stream). */
export function encodeFacts(facts: readonly WireFact[], firstSequence = 0): Uint8Array {
  checkU64(firstSequence, 'firstSequence');
  return writeFacts(new FrameWriter(FrameType.Facts).u64(firstSequence), facts).finish();
}

export function encodeFactRequest(ids: readonly Uint8Array[]): Uint8Array {
  return writeIds(new FrameWriter(FrameType.FactRequest), ids, 'a request').finish();
}

/** The origin and hop count that open every broadcast-tree frame. */
function treeHeader(type: FrameType, origin: string, hops: number): FrameWriter {
  const name = nodeIdBytes(origin, 'origin');
  if (!Number.isInteger(hops) || hops < 0 || hops > 255) throw new InvalidArgumentError('hops must be an integer in [0, 255]');
  return new FrameWriter(type).u8(name.length).u8(hops).raw(name);
}

export function encodeTreeFacts(origin: string, hops: number, facts: readonly WireFact[]): Uint8Array {
  return writeFacts(treeHeader(FrameType.TreeFacts, origin, hops), facts).finish();
}

export function encodeIHave(origin: string, hops: number, ids: readonly Uint8Array[]): Uint8Array {
  return writeIds(treeHeader(FrameType.IHave, origin, hops), ids, 'an IHave').finish();
}

/** `hops`: what the announcer's IHave said, so the facts come back with the count they would have had. */
export function encodeGraft(origin: string, hops: number, ids: readonly Uint8Array[]): Uint8Array {
  return writeIds(treeHeader(FrameType.Graft, origin, hops), ids, 'a Graft').finish();
}

export function encodePrune(origin: string): Uint8Array {
  return treeHeader(FrameType.Prune, origin, 0).finish();
}

/** Bytes of a snapshot id (BLAKE3 of the snapshot). */
export const SNAPSHOT_ID_BYTES = 32;
/** Most bytes one SnapshotChunk carries: well inside the frame limit with its header. */
export const MAX_SNAPSHOT_CHUNK_BYTES = 512 * 1024;

export function encodeSnapshotOffer(snapshotId: Uint8Array, through: number, totalBytes: number): Uint8Array {
  checkId(snapshotId, 'a snapshot id');
  checkU64(through, 'through');
  checkU64(totalBytes, 'totalBytes');
  return new FrameWriter(FrameType.SnapshotOffer).raw(snapshotId).u64(through).u64(totalBytes).finish();
}

export function encodeSnapshotRequest(snapshotId: Uint8Array, offset: number, length: number): Uint8Array {
  checkId(snapshotId, 'a snapshot id');
  checkU64(offset, 'offset');
  if (!Number.isInteger(length) || length < 1 || length > MAX_SNAPSHOT_CHUNK_BYTES) throw new InvalidArgumentError(`length must be 1 to ${MAX_SNAPSHOT_CHUNK_BYTES} bytes`);
  return new FrameWriter(FrameType.SnapshotRequest).raw(snapshotId).u64(offset).u32(length).finish();
}

export function encodeSnapshotChunk(snapshotId: Uint8Array, offset: number, bytes: Uint8Array): Uint8Array {
  checkId(snapshotId, 'a snapshot id');
  checkU64(offset, 'offset');
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_SNAPSHOT_CHUNK_BYTES) throw new InvalidArgumentError(`a chunk is a Uint8Array of at most ${MAX_SNAPSHOT_CHUNK_BYTES} bytes`);
  return new FrameWriter(FrameType.SnapshotChunk).raw(snapshotId).u64(offset).u32(bytes.length).raw(bytes).finish();
}

export function encodeSketchRequest(firstCell: number, cellCount: number): Uint8Array {
  checkU32(firstCell, 'firstCell');
  checkU32(cellCount, 'cellCount');
  return new FrameWriter(FrameType.SketchRequest).u32(firstCell).u32(cellCount).finish();
}

/** Sketch cells as words (11 per cell, see RatelessSketch) starting at cell `firstCell`; `push`: unasked (SketchPush). */
export function encodeSketchCells(firstCell: number, cells: Int32Array, push = false): Uint8Array {
  checkU32(firstCell, 'firstCell');
  if (!(cells instanceof Int32Array) || cells.length % 11 !== 0) throw new InvalidArgumentError('cells are an Int32Array of 11 words per cell');
  const count = cells.length / 11;
  const w = new FrameWriter(push ? FrameType.SketchPush : FrameType.SketchCells).u32(firstCell).u32(count);
  for (let i = 0; i < cells.length; i++) w.u32(cells[i]! >>> 0);
  return w.finish();
}

export function encodeLogRequest(fromSequence: number, maxFacts: number): Uint8Array {
  checkU64(fromSequence, 'fromSequence');
  checkU32(maxFacts, 'maxFacts');
  return new FrameWriter(FrameType.LogRequest).u64(fromSequence).u32(maxFacts).finish();
}

/** Encodes a node id (or '' where `empty` allows it) as UTF-8, checking its length. */
function nodeIdBytes(nodeId: unknown, what: string, empty = false): Uint8Array {
  if (typeof nodeId !== 'string') throw new InvalidArgumentError(`${what} must be a string`);
  const name = utf8.encode(nodeId);
  if (name.length < (empty ? 0 : 1) || name.length > MAX_NODE_ID_BYTES) throw new InvalidArgumentError(`${what} must be ${empty ? 0 : 1} to ${MAX_NODE_ID_BYTES} UTF-8 bytes`);
  return name;
}

export function encodeMembers(members: readonly MemberStatus[]): Uint8Array {
  if (!Array.isArray(members) || members.length > MAX_MEMBERS_PER_FRAME) throw new InvalidArgumentError(`a Members frame lists at most ${MAX_MEMBERS_PER_FRAME} members`);
  const w = new FrameWriter(FrameType.Members).u16(members.length).u16(0);
  for (const m of members) {
    if (m === null || typeof m !== 'object' || typeof m.address !== 'string') throw new InvalidArgumentError('a member is { nodeId, address, incarnation, refutations, state, reporter }');
    const name = nodeIdBytes(m.nodeId, 'nodeId');
    const reporter = nodeIdBytes(m.reporter, 'reporter', true);
    const address = utf8.encode(m.address);
    if (address.length > MAX_ADDRESS_BYTES) throw new InvalidArgumentError(`an address is at most ${MAX_ADDRESS_BYTES} UTF-8 bytes`);
    checkU64(m.incarnation, 'incarnation');
    checkU32(m.refutations, 'refutations');
    const state = MEMBER_STATES.indexOf(m.state);
    if (state < 0) throw new InvalidArgumentError(`state must be one of ${MEMBER_STATES.join(', ')}`);
    w.u64(m.incarnation).u32(m.refutations).u8(state).u8(name.length).u8(address.length).u8(reporter.length).raw(name).raw(address).raw(reporter);
  }
  return w.finish();
}

export function encodePingReq(nonce: number, target: string): Uint8Array {
  checkU64(nonce, 'nonce');
  const name = nodeIdBytes(target, 'target');
  return new FrameWriter(FrameType.PingReq).u64(nonce).u8(name.length).u8(0).raw(name).finish();
}

/** Bytes of a quota request id. */
export const QUOTA_REQUEST_ID_BYTES = 16;
/** Escrow resources: 0 (down, toward the floor) and 1 (up, toward the ceiling). */
const MAX_RESOURCE = 1;
const U128_MAX = (1n << 128n) - 1n;

/**
 * A QuotaRequest (`amount` asked for, positive) or a QuotaDenial (`amount`: what the denier has
 * left, maybe 0): request id, resource u8, three zero bytes, amount u128.
 */
export function encodeQuota(type: typeof FrameType.QuotaRequest | typeof FrameType.QuotaDenial, requestId: Uint8Array, resource: number, amount: bigint): Uint8Array {
  if (!(requestId instanceof Uint8Array) || requestId.length !== QUOTA_REQUEST_ID_BYTES) throw new InvalidArgumentError(`a request id is ${QUOTA_REQUEST_ID_BYTES} bytes`);
  if (resource !== 0 && resource !== MAX_RESOURCE) throw new InvalidArgumentError('a resource is 0 (down) or 1 (up)');
  const min = type === FrameType.QuotaRequest ? 1n : 0n;
  if (typeof amount !== 'bigint' || amount < min || amount > U128_MAX) throw new InvalidArgumentError(`an amount is in [${min}, 2^128)`);
  const w = new FrameWriter(type).raw(requestId).u8(resource).u8(0).u16(0);
  return w.u32(Number(amount & 0xffffffffn)).u32(Number((amount >> 32n) & 0xffffffffn)).u32(Number((amount >> 64n) & 0xffffffffn)).u32(Number(amount >> 96n)).finish();
}

export function encodeNack(nonce: number): Uint8Array {
  checkU64(nonce, 'nonce');
  return new FrameWriter(FrameType.Nack).u64(nonce).finish();
}

export function encodePing(nonce: number, pong = false): Uint8Array {
  checkU64(nonce, 'nonce');
  return new FrameWriter(pong ? FrameType.Pong : FrameType.Ping).u64(nonce).finish();
}

// ------------------------------------------------------------------------------------- decoding

/** A bounds-checked reader over one frame's bytes; `fault` is set instead of throwing. */
class FrameReader {
  private at: number;
  fault: { fault: FrameFault; detail: string } | undefined;

  constructor(
    private readonly view: DataView,
    private readonly end: number,
  ) {
    this.at = FRAME_HEADER_BYTES;
  }

  get remaining(): number {
    return this.end - this.at;
  }

  fail(fault: FrameFault, detail: string): void {
    this.fault ??= { fault, detail };
  }

  private take(n: number): number {
    if (this.fault !== undefined) return -1;
    if (n > this.end - this.at) {
      this.fail('BadLength', `the body ends ${n - (this.end - this.at)} bytes short`);
      return -1;
    }
    const at = this.at;
    this.at += n;
    return at;
  }

  u8(): number {
    const at = this.take(1);
    return at < 0 ? 0 : this.view.getUint8(at);
  }

  u16(): number {
    const at = this.take(2);
    return at < 0 ? 0 : this.view.getUint16(at, true);
  }

  u32(): number {
    const at = this.take(4);
    return at < 0 ? 0 : this.view.getUint32(at, true);
  }

  u64(what: string): number {
    const low = this.u32();
    const high = this.u32();
    if (high > MAX_SAFE_HIGH) this.fail('BadNumber', `${what} is beyond 2^53`);
    return high * TWO_POW_32 + low;
  }

  /** The next `n` bytes: a view of the frame's private copy (see decodeFrame). */
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return at < 0 ? new Uint8Array(0) : new Uint8Array(this.view.buffer, this.view.byteOffset + at, n);
  }

  zero(what: string): void {
    if (this.u8() !== 0) this.fail('ReservedNotZero', `${what} must be zero`);
  }

  done(): void {
    if (this.fault === undefined && this.at !== this.end) this.fail('BadLength', `${this.end - this.at} bytes after the body`);
  }
}

/**
 * Reads one frame from the front of `bytes`. Total: never throws, whatever the bytes. On
 * `Incomplete`, `needed` is how many bytes the frame needs in all (read at least that many).
 */
export function decodeFrame(bytes: Uint8Array): DecodeResult {
  if (!(bytes instanceof Uint8Array)) return { ok: false, fault: 'BadLength', detail: 'not a Uint8Array' };
  if (bytes.length < FRAME_HEADER_BYTES) return { ok: false, fault: 'Incomplete', needed: FRAME_HEADER_BYTES };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const length = view.getUint32(0, true);
  if (length < FRAME_HEADER_BYTES) return { ok: false, fault: 'FrameTooSmall', detail: `a frame of ${length} bytes is shorter than its header` };
  if (length > MAX_FRAME_BYTES) return { ok: false, fault: 'FrameTooLarge', detail: `a frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}` };
  // A frame's version is checked before the rest of its header: a later version may lay it out differently.
  if (view.getUint8(5) !== PROTOCOL_VERSION) return { ok: false, fault: 'UnsupportedVersion', detail: `protocol version ${view.getUint8(5)}; this node speaks ${PROTOCOL_VERSION}` };
  if (view.getUint16(6, true) !== 0) return { ok: false, fault: 'ReservedNotZero', detail: 'header bytes 6–7 must be zero' };
  if (bytes.length < length) return { ok: false, fault: 'Incomplete', needed: length };
  // One copy of the whole frame, which every id, dep and payload of the result views: the result
  // owns its bytes (nothing aliases the caller's buffer) at one allocation per frame, not per field.
  // (Uint8Array's slice, even for a Buffer, whose own `slice` would return a view.)
  const own = Uint8Array.prototype.slice.call(bytes, 0, length);
  const r = new FrameReader(new DataView(own.buffer), length);
  const frame = readBody(view.getUint8(4), r);
  if (frame === undefined) return { ok: false, fault: 'UnknownType', detail: `frame type 0x${view.getUint8(4).toString(16)}` };
  r.done();
  if (r.fault !== undefined) return { ok: false, ...r.fault };
  return { ok: true, frame, bytes: length };
}

/** Reads `count u16 ‖ 0 u16 ‖ facts`. */
function readFacts(r: FrameReader): WireFact[] {
  const count = r.u16();
  r.zero('reserved byte');
  r.zero('reserved byte');
  // Each fact needs at least its fixed part: a count the body cannot hold is refused before
  // anything is allocated for it.
  if (count * FACT_FIXED_BYTES > r.remaining) r.fail('BadLength', `${count} facts cannot fit in ${r.remaining} bytes`);
  const facts: WireFact[] = [];
  for (let i = 0; i < count && r.fault === undefined; i++) {
    const depCount = r.u8();
    r.zero('reserved byte of a fact');
    const payloadLength = r.u32();
    if (depCount > MAX_DEPS) r.fail('TooManyDeps', `fact ${i} has ${depCount} deps; at most ${MAX_DEPS}`);
    if (payloadLength > MAX_PAYLOAD_BYTES) r.fail('PayloadTooLarge', `fact ${i} has a ${payloadLength}-byte payload; at most ${MAX_PAYLOAD_BYTES}`);
    if (r.fault !== undefined) break;
    const id = r.bytes(32);
    const deps: Uint8Array[] = [];
    for (let d = 0; d < depCount; d++) deps.push(r.bytes(32));
    facts.push({ id, deps, payload: r.bytes(payloadLength) });
  }
  return facts;
}

/** Reads `count u16 ‖ 0 u16 ‖ ids`, the ids filling the rest of the body. */
function readIds(r: FrameReader): Uint8Array[] {
  const count = r.u16();
  r.zero('reserved byte');
  r.zero('reserved byte');
  if (count > MAX_REQUESTED_IDS) r.fail('TooManyItems', `${count} ids; at most ${MAX_REQUESTED_IDS}`);
  else if (count * 32 !== r.remaining) r.fail('BadLength', `${count} ids need ${count * 32} bytes, the body has ${r.remaining}`);
  const ids: Uint8Array[] = [];
  for (let i = 0; i < count && r.fault === undefined; i++) ids.push(r.bytes(32));
  return ids;
}

/** Reads a node id of `length` bytes (1..64, UTF-8), or '' with a fault. */
function readNodeId(r: FrameReader, length: number, what: string): string {
  if (length < 1 || length > MAX_NODE_ID_BYTES) r.fail('BadNodeId', `${what} of ${length} bytes`);
  const bytes = r.bytes(length);
  if (r.fault !== undefined) return '';
  try {
    return utf8Strict.decode(bytes);
  } catch {
    r.fail('BadNodeId', `${what} is not UTF-8`);
    return '';
  }
}

function readTreeHeader(r: FrameReader): { origin: string; hops: number } {
  const length = r.u8();
  const hops = r.u8();
  return { origin: readNodeId(r, length, 'an origin id'), hops };
}

function readBody(type: number, r: FrameReader): Frame | undefined {
  switch (type) {
    case FrameType.Hello: {
      const clusterId = r.bytes(CLUSTER_ID_BYTES);
      const incarnation = r.u64('incarnation');
      const minVersion = r.u8();
      const maxVersion = r.u8();
      const nameBytes = r.u8();
      const addressBytes = r.u8();
      if (minVersion < 1 || minVersion > maxVersion) r.fail('BadVersionRange', `versions ${minVersion}..${maxVersion}`);
      const nodeId = readNodeId(r, nameBytes, 'a node id');
      const address = r.bytes(addressBytes);
      let text = '';
      if (r.fault === undefined) {
        try {
          text = utf8Strict.decode(address);
        } catch {
          r.fail('BadNodeId', 'the address is not UTF-8');
        }
      }
      return { type, clusterId, nodeId, incarnation, address: text, minVersion, maxVersion };
    }
    case FrameType.Facts: {
      const firstSequence = r.u64('firstSequence');
      return { type, firstSequence, facts: readFacts(r) };
    }
    case FrameType.FactRequest:
      return { type, ids: readIds(r) };
    case FrameType.TreeFacts: {
      const { origin, hops } = readTreeHeader(r);
      return { type, origin, hops, facts: readFacts(r) };
    }
    case FrameType.IHave: {
      const { origin, hops } = readTreeHeader(r);
      return { type, origin, hops, ids: readIds(r) };
    }
    case FrameType.Graft: {
      const { origin, hops } = readTreeHeader(r);
      return { type, origin, hops, ids: readIds(r) };
    }
    case FrameType.Prune:
      return { type, origin: readTreeHeader(r).origin };
    case FrameType.SnapshotOffer:
      return { type, snapshotId: r.bytes(SNAPSHOT_ID_BYTES), through: r.u64('through'), totalBytes: r.u64('totalBytes') };
    case FrameType.SnapshotRequest: {
      const snapshotId = r.bytes(SNAPSHOT_ID_BYTES);
      const offset = r.u64('offset');
      const length = r.u32();
      if (length < 1 || length > MAX_SNAPSHOT_CHUNK_BYTES) r.fail('BadLength', `a request for ${length} bytes of a snapshot; 1 to ${MAX_SNAPSHOT_CHUNK_BYTES}`);
      return { type, snapshotId, offset, length };
    }
    case FrameType.SnapshotChunk: {
      const snapshotId = r.bytes(SNAPSHOT_ID_BYTES);
      const offset = r.u64('offset');
      const length = r.u32();
      if (length > MAX_SNAPSHOT_CHUNK_BYTES) r.fail('BadLength', `a chunk of ${length} bytes; at most ${MAX_SNAPSHOT_CHUNK_BYTES}`);
      else if (length !== r.remaining) r.fail('BadLength', `a chunk of ${length} bytes in a body of ${r.remaining}`);
      return { type, snapshotId, offset, bytes: r.bytes(r.fault === undefined ? length : 0) };
    }
    case FrameType.SketchRequest:
      return { type, firstCell: r.u32(), cellCount: r.u32() };
    case FrameType.SketchCells:
    case FrameType.SketchPush: {
      const firstCell = r.u32();
      const count = r.u32();
      if (count * SKETCH_CELL_BYTES !== r.remaining) r.fail('BadLength', `${count} cells need ${count * SKETCH_CELL_BYTES} bytes, the body has ${r.remaining}`);
      const cells = new Int32Array(r.fault === undefined ? count * 11 : 0);
      for (let i = 0; i < cells.length; i++) cells[i] = r.u32() | 0;
      return { type, firstCell, cells };
    }
    case FrameType.LogRequest:
      return { type, fromSequence: r.u64('fromSequence'), maxFacts: r.u32() };
    case FrameType.Ping:
    case FrameType.Pong:
      return { type, nonce: r.u64('nonce') };
    case FrameType.Members: {
      const count = r.u16();
      r.zero('reserved byte');
      r.zero('reserved byte');
      if (count > MAX_MEMBERS_PER_FRAME) r.fail('TooManyItems', `${count} members; at most ${MAX_MEMBERS_PER_FRAME}`);
      else if (count * MIN_MEMBER_BYTES > r.remaining) r.fail('BadLength', `${count} members cannot fit in ${r.remaining} bytes`);
      const members: MemberStatus[] = [];
      for (let i = 0; i < count && r.fault === undefined; i++) {
        const incarnation = r.u64('incarnation');
        const refutations = r.u32();
        const stateCode = r.u8();
        const nameBytes = r.u8();
        const addressBytes = r.u8();
        const reporterBytes = r.u8();
        const state = MEMBER_STATES[stateCode];
        if (state === undefined) r.fail('BadNumber', `member ${i} has state ${stateCode}`);
        if (nameBytes < 1 || nameBytes > MAX_NODE_ID_BYTES) r.fail('BadNodeId', `member ${i} has a node id of ${nameBytes} bytes`);
        if (reporterBytes > MAX_NODE_ID_BYTES) r.fail('BadNodeId', `member ${i} has a reporter id of ${reporterBytes} bytes`);
        const name = r.bytes(nameBytes);
        const address = r.bytes(addressBytes);
        const reporter = r.bytes(reporterBytes);
        if (r.fault !== undefined || state === undefined) break;
        try {
          members.push({ nodeId: utf8Strict.decode(name), address: utf8Strict.decode(address), incarnation, refutations, state, reporter: utf8Strict.decode(reporter) });
        } catch {
          r.fail('BadNodeId', `member ${i}'s node id, address or reporter is not UTF-8`);
        }
      }
      return { type, members };
    }
    case FrameType.PingReq: {
      const nonce = r.u64('nonce');
      const nameBytes = r.u8();
      r.zero('the byte after the target length');
      return { type, nonce, target: readNodeId(r, nameBytes, 'a target id') };
    }
    case FrameType.Nack:
      return { type, nonce: r.u64('nonce') };
    case FrameType.QuotaRequest:
    case FrameType.QuotaDenial: {
      const requestId = r.bytes(QUOTA_REQUEST_ID_BYTES);
      const resource = r.u8();
      r.zero('byte 17 of a quota frame');
      if (r.u16() !== 0) r.fail('ReservedNotZero', 'bytes 18–19 of a quota frame must be zero');
      if (resource > MAX_RESOURCE) r.fail('BadNumber', `resource ${resource}; 0 or 1`);
      let amount = 0n;
      for (let i = 0; i < 4; i++) amount |= BigInt(r.u32()) << BigInt(32 * i);
      if (type === FrameType.QuotaRequest && amount === 0n && r.fault === undefined) r.fail('BadNumber', 'a request for nothing');
      return { type, requestId, resource, amount };
    }
    default:
      return undefined;
  }
}
