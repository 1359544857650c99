/**
 * CPU per fact on each node of a 3-node cluster when one node originates every fact: how much the
 * origin pays and how much each receiver pays (node processes over TLS on loopback; build first).
 *
 *   node scripts/replication-cpu.mjs [facts=100000] [rate=1000000 facts/s]
 */
import { NodeProcess } from './replication-cluster.mjs';

const facts = Number(process.argv[2] ?? 100_000);
const rate = Number(process.argv[3] ?? 1_000_000);
const secret = 'replication-cpu-cluster-secret';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const nodes = [];
for (const name of ['n0', 'n1', 'n2']) {
  const p = await NodeProcess.spawn(name);
  const { address } = await p.call('start', { nodeId: name, secret, peers: nodes.length > 0 ? [nodes[0].address] : [] });
  p.address = address;
  nodes.push(p);
}
const statuses = () => Promise.all(nodes.map((n) => n.call('status')));
while (!(await statuses()).every((s) => s.peers.filter((p) => p.state === 'ready').length >= 2)) await sleep(20);
const before = (await statuses()).map((s) => s.cpuMicros);
const started = Date.now();
await nodes[0].call('admit', { count: facts, payloadBytes: 200, rate });
while (!(await statuses()).every((s) => s.size === facts)) await sleep(20);
const after = (await statuses()).map((s) => s.cpuMicros);
console.log(`${facts} facts from n0 on all 3 in ${Date.now() - started} ms; CPU µs per fact: origin ${((after[0] - before[0]) / facts).toFixed(1)}, receivers ${((after[1] - before[1]) / facts).toFixed(1)} and ${((after[2] - before[2]) / facts).toFixed(1)}`);
await Promise.all(nodes.map((n) => n.close()));
