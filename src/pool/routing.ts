/**
 * Routing: which shard a key or tenant belongs to. Facts that depend on each other must land in
 * the same shard (or in shards that share causality), so route by whatever your causal chains
 * follow — an account, a document, a tenant.
 *
 * A key is hashed with 32-bit FNV-1a over its bytes (a string: its UTF-16 code units) and
 * MurmurHash3's finaliser, then scaled onto [0, shards) by a multiply, not a modulo, so every
 * shard gets an equal share for any shard count. The mapping is fixed for a given shard count,
 * on every machine and in every version of this format (docs/FORMATS.md §7).
 */
import { fmix32 } from '../causal/id-hash.js';
import { InvalidArgumentError } from '../errors.js';
import { describeValue } from '../describe-value.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function checkShards(shards: number): void {
  if (!Number.isInteger(shards) || shards < 1 || shards > 0xffffffff) throw new InvalidArgumentError(`shard count must be a positive integer, got ${describeValue(shards)}`);
}

/** Maps a 32-bit hash onto [0, shards). */
function scale(hash: number, shards: number): number {
  return Math.floor(((hash >>> 0) * shards) / 0x1_0000_0000);
}

/** The shard (in [0, shards)) of a string or byte key. */
export function routeKey(key: string | Uint8Array, shards: number): number {
  checkShards(shards);
  let h = FNV_OFFSET;
  if (typeof key === 'string') {
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      h = Math.imul(h ^ (c & 0xff), FNV_PRIME);
      h = Math.imul(h ^ (c >>> 8), FNV_PRIME);
    }
  } else if (key instanceof Uint8Array) {
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, FNV_PRIME);
  } else {
    throw new InvalidArgumentError('a routing key is a string or a Uint8Array');
  }
  return scale(fmix32(h), shards);
}

/** The shard (in [0, shards)) of a tenant id, an integer in [0, 2^32). */
export function routeTenant(tenant: number, shards: number): number {
  checkShards(shards);
  if (!Number.isInteger(tenant) || tenant < 0 || tenant > 0xffffffff) {
    throw new InvalidArgumentError(`a tenant id is an integer in [0, 2^32), got ${describeValue(tenant)}`);
  }
  // The constant keeps tenant 0 off hash 0; fmix32 spreads consecutive ids across all shards.
  return scale(fmix32((tenant ^ 0x9e3779b9) | 0), shards);
}
