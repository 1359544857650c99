/**
 * The log's manifest: what recovery must find again. A WAL alone cannot tell a torn tail from a
 * log that lost fsynced records at its end (a truncated or deleted last segment looks like a
 * crash that happened earlier), and checkpoint 0 alone is the only copy of the initial state. The
 * manifest records, outside the segments:
 * - the durable sequence D: every record up to D was fsynced. It is written when a log is
 *   opened (D = what recovery found, after an fsync of the last segment), when the worker starts
 *   a segment (D = the last record of the finished one) and at a clean close (D = the last
 *   record, and the `closed` flag) — never per batch, so the hot path does not pay for it;
 * - the segment being appended to (it, or a later one, must exist);
 * - the initial state and the identity of the invariants the log was created with.
 *
 * It is written whole (temporary file, fsync, rename, directory fsync) to two files, one after
 * the other, each with a generation number; recovery takes the newest copy that verifies. A copy
 * one write behind only makes the checks weaker (an older D, an older segment), never wrong.
 * Layout in docs/FORMATS.md §6.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hash } from 'blake3-jit';
import { STATE_CELL_BYTES } from '../core/state-cell.js';
import { ManifestError } from '../errors.js';
import type { Invariant } from '../invariants/invariant.js';
import { crc32c } from './crc32c.js';
import { readFileAligned, writeFileAtomic } from './data-dir.js';
import { LOG_ID_BYTES } from './segment.js';

export const MANIFEST_MAGIC = 0x464d5443; // "CTMF"
export const MANIFEST_VERSION = 1;
/** The two copies, written in this order. */
export const MANIFEST_FILES = ['MANIFEST.1', 'MANIFEST.2'] as const;
const HEADER_BYTES = 96;
const IDENTITY_BYTES = 32;
/** The most state cells a domain has (MultiKernel's limit). */
const MAX_CELLS = 8;
const TWO_POW_32 = 0x1_0000_0000;
const STATE_OPEN = 1;
const STATE_CLOSED = 2;
const IDENTITY_CONTEXT = 'ctfs/invariant/v1\0';

export interface Manifest {
  /** Grows by one per write; the newest valid copy wins. */
  readonly generation: number;
  readonly logId: Uint8Array;
  /** True only when written by a clean close: then D is the last record of the log. */
  readonly closed: boolean;
  /** Every record with a sequence ≤ D was fsynced. */
  readonly durable: number;
  /** First sequence of the segment being appended to. */
  readonly segment: number;
  /** BLAKE3 of the invariants' identity (see `invariantIdentity`). */
  readonly identity: Uint8Array;
  /** The initial state, 64 bytes per cell. */
  readonly cells: Uint8Array;
}

/**
 * What identifies a kernel's invariants across runs: for each, its class name, its algebraic
 * class and its own enumerable fields of primitive type (the parameters a built-in is constructed
 * with), hashed. Two runs with the same invariant configuration get the same identity; an
 * invariant of another class, or configured differently, gets another.
 */
export function invariantIdentity(invariants: readonly Invariant[]): Uint8Array {
  const parts = invariants.map((invariant) => {
    const fields = Object.entries(invariant as object)
      .filter(([, v]) => v === null || ['string', 'number', 'boolean', 'bigint'].includes(typeof v))
      .map(([k, v]) => [k, typeof v === 'bigint' ? `${v}n` : v] as const)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return [invariant.constructor?.name ?? '', invariant.algebraicClass, fields];
  });
  return hash(new TextEncoder().encode(IDENTITY_CONTEXT + JSON.stringify(parts)));
}

export function encodeManifest(m: Manifest): Uint8Array {
  const cellCount = m.cells.length / STATE_CELL_BYTES;
  const length = HEADER_BYTES + m.cells.length;
  const bytes = new Uint8Array(length);
  const v = new DataView(bytes.buffer);
  v.setUint32(0, MANIFEST_MAGIC, true);
  v.setUint32(4, MANIFEST_VERSION, true);
  v.setUint32(8, m.generation >>> 0, true);
  v.setUint32(12, Math.floor(m.generation / TWO_POW_32), true);
  bytes.set(m.logId, 16);
  v.setUint32(32, m.closed ? STATE_CLOSED : STATE_OPEN, true);
  v.setUint32(36, cellCount, true);
  v.setUint32(40, m.durable >>> 0, true);
  v.setUint32(44, Math.floor(m.durable / TWO_POW_32), true);
  v.setUint32(48, m.segment >>> 0, true);
  v.setUint32(52, Math.floor(m.segment / TWO_POW_32), true);
  bytes.set(m.identity, 56);
  v.setUint32(88, length, true);
  bytes.set(m.cells, HEADER_BYTES);
  v.setUint32(92, manifestCrc(bytes), true);
  return bytes;
}

/** CRC-32C of bytes [0, 92) and [96, end): everything but the CRC itself. */
function manifestCrc(bytes: Uint8Array): number {
  return crc32c(bytes, HEADER_BYTES, bytes.length, crc32c(bytes, 0, 92));
}

/** The manifest in `bytes`, or why it is not one. */
export function decodeManifest(bytes: Uint8Array): Manifest | string {
  if (bytes.length < HEADER_BYTES) return `${bytes.length} bytes, shorter than a manifest`;
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  if (v.getUint32(0, true) !== MANIFEST_MAGIC) return 'not a manifest (bad magic)';
  if (v.getUint32(4, true) !== MANIFEST_VERSION) return `unsupported manifest version ${v.getUint32(4, true)}`;
  const cellCount = v.getUint32(36, true);
  if (cellCount < 1 || cellCount > MAX_CELLS) return `bad cell count ${cellCount}`;
  if (v.getUint32(88, true) !== bytes.length || bytes.length !== HEADER_BYTES + cellCount * STATE_CELL_BYTES) return 'size mismatch';
  if (v.getUint32(92, true) !== manifestCrc(bytes)) return 'checksum mismatch: the manifest is damaged';
  const state = v.getUint32(32, true);
  if (state !== STATE_OPEN && state !== STATE_CLOSED) return `bad state ${state}`;
  const u64 = (at: number): number => v.getUint32(at + 4, true) * TWO_POW_32 + v.getUint32(at, true);
  const durable = u64(40);
  const segment = u64(48);
  if (durable > Number.MAX_SAFE_INTEGER || segment < 1 || segment > Number.MAX_SAFE_INTEGER) return 'bad sequence';
  if (segment > durable + 1) return `segment ${segment} starts after the durable sequence ${durable} + 1`;
  return {
    generation: u64(8),
    logId: bytes.slice(16, 16 + LOG_ID_BYTES),
    closed: state === STATE_CLOSED,
    durable,
    segment,
    identity: bytes.slice(56, 56 + IDENTITY_BYTES),
    cells: bytes.slice(HEADER_BYTES),
  };
}

export interface ManifestRead {
  /** The newest copy that verifies, if any. */
  readonly manifest: Manifest | undefined;
  /** Copies that exist but do not verify, with the reason. */
  readonly problems: readonly { readonly file: string; readonly reason: string }[];
  /** How many copies exist (0: the directory has no manifest). */
  readonly present: number;
}

/** Reads both copies in `dir`. */
export function readManifest(dir: string): ManifestRead {
  let manifest: Manifest | undefined;
  const problems: { file: string; reason: string }[] = [];
  let present = 0;
  for (const name of MANIFEST_FILES) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) continue;
    present++;
    // A file that cannot be read at all (EACCES, EIO) is the disk's error, not damage: it propagates.
    const decoded = decodeManifest(readFileAligned(file));
    if (typeof decoded === 'string') problems.push({ file, reason: decoded });
    else if (manifest === undefined || decoded.generation > manifest.generation) manifest = decoded;
  }
  return { manifest, problems, present };
}

/** Writes `m` to both copies, one after the other (each atomically). */
export function writeManifest(dir: string, m: Manifest): void {
  const bytes = encodeManifest(m);
  for (const name of MANIFEST_FILES) writeFileAtomic(path.join(dir, name), [bytes]);
}

/** A ManifestError for a directory whose manifest is missing or damaged. */
export function manifestUnusable(dir: string, read: ManifestRead): ManifestError {
  if (read.present === 0) return new ManifestError(path.join(dir, MANIFEST_FILES[0]), 'the log has no manifest (deleted?); open with { salvage: true } to recover what is readable');
  return new ManifestError(read.problems[0]!.file, `no manifest copy verifies (${read.problems.map((p) => p.reason).join('; ')}); open with { salvage: true } to recover what is readable`);
}
