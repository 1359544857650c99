/**
 * The facts the replication node processes admit (scripts/replication-node.mjs): payload =
 * increment u64 (1) ‖ origin timestamp f64 (ms since the epoch, performance.timeOrigin-based: one
 * clock for every process of a machine) ‖ node tag u32 ‖ sequence u32 ‖ zero padding. Each node
 * chains its facts (fact n depends on fact n − 1), so with the timestamps a parent that logged
 * them can recompute every id.
 */

const tags = new Map();

/** A stable 32-bit tag of a node id (FNV-1a). */
export function tagOf(nodeId) {
  let tag = tags.get(nodeId);
  if (tag === undefined) tags.set(nodeId, (tag = fnv1a(nodeId)));
  return tag;
}

function fnv1a(nodeId) {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(nodeId)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  return h;
}

/** The payload of fact `seq` (1-based) of node `nodeId`, `bytes` long, stamped `at`. */
export function payloadOf(nodeId, seq, bytes, at) {
  const p = new Uint8Array(Math.max(24, bytes));
  const v = new DataView(p.buffer);
  v.setUint32(0, 1, true);
  v.setFloat64(8, at, true);
  v.setUint32(16, tagOf(nodeId), true);
  v.setUint32(20, seq, true);
  return p;
}

/** Where a payload says it came from: node tag and sequence. */
export function originOf(payload) {
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { tag: v.getUint32(16, true), seq: v.getUint32(20, true), at: v.getFloat64(8, true) };
}
