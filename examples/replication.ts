// Three replicating nodes in one process, each with its own replication worker and TLS 1.3 links
// keyed by a shared secret. b and c know only a's address: they learn of each other from a.
import assert from 'node:assert/strict';
import { GCounterInvariant, GCounterState, Kernel, NetworkingKernel, factId, toHex, u64le } from 'ctfs';

const secret = process.env.CTFS_CLUSTER_SECRET ?? 'example-cluster-secret-0123456789';
const a = await NetworkingKernel.start(new Kernel(new GCounterInvariant()), { nodeId: 'a', listen: '127.0.0.1:0', secret });
const b = await NetworkingKernel.start(new Kernel(new GCounterInvariant()), { nodeId: 'b', peers: [a.address], secret });
const c = await NetworkingKernel.start(new Kernel(new GCounterInvariant()), { nodeId: 'c', peers: [a.address], secret });
console.log('a listens on', a.address);

// Each node counts its own page views; every increment depends on that node's previous one.
// A payload is the increment (u64) and then who counted which view: equal bytes would be the
// same fact (ids are content addresses), admitted once however many nodes create it.
for (const [node, views] of [[a, 300], [b, 200], [c, 100]] as const) {
  let previous: Uint8Array | undefined;
  for (let i = 0; i < views; i++) {
    const payload = new Uint8Array([...u64le(1n), ...new TextEncoder().encode(`${node.nodeId}:${i}`)]);
    const deps = previous === undefined ? [] : [previous];
    const id = factId(deps, payload);
    assert.equal(node.tryAdmitRaw(id, deps, payload), 0);
    previous = id;
  }
}

// Wait until every node holds all 600 facts, then compare.
const nodes = [a, b, c];
while (nodes.some((n) => n.size < 600)) await new Promise((r) => setTimeout(r, 10));
const digests = new Set(nodes.map((n) => toHex(n.digest())));
assert.equal(digests.size, 1, 'equal digests: the same facts everywhere');
assert.equal(GCounterState.fromCell(c.kernel.state).count, 600n);
console.log('every node holds', a.size, 'facts, counts 600 views; digest', [...digests][0]!.slice(0, 16));
console.log('b sees its peers as', b.peers().map((p) => `${p.nodeId ?? p.address} ${p.state}`).join(', '));
await Promise.all(nodes.map((n) => n.close()));
