/**
 * Replication on the wire, measured with real processes on loopback (scripts/replication-node.mjs;
 * `npm run build` first): 3 nodes, each admitting its own facts (200-byte payloads, each depending
 * on the node's previous fact), TLS 1.3 PSK links.
 *
 *   node bench/replication.mjs [--facts N] [--rate R] [--catchup N] [--rounds K]
 *
 * Prints, per round, with what was checked (every node ends with every fact: equal sizes and set
 * digests):
 *  - throughput: facts originated cluster-wide per second, from the first admission until every
 *    node holds every fact;
 *  - the raw TCP baseline in the same run: each process streams the same number of records of the
 *    same size to each of the others over plain TCP (no protocol, no TLS, no admission);
 *  - lag at a paced rate: from the origin's admission to the admission on another node, p50/p99;
 *  - bytes on the wire per fact (all links, both directions, over facts × receivers);
 *  - catch-up: a node that missed N facts joins, facts/s until it holds them all.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NodeProcess } from '../scripts/replication-cluster.mjs';

const { values } = parseArgs({
  options: {
    facts: { type: 'string', default: '100000' },
    rate: { type: 'string', default: '50000' },
    'lag-facts': { type: 'string', default: '150000' },
    catchup: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    durable: { type: 'boolean', default: false },
  },
});
const FACTS = Number(values.facts);
const RATE = Number(values.rate);
const LAG_FACTS = Number(values['lag-facts']);
const CATCHUP = Number(values.catchup);
const ROUNDS = Number(values.rounds);
const SECRET = 'bench-replication-cluster-secret';
const PAYLOAD = 200;
/** A fact on the wire in a Facts frame: dep count, reserved, payload length, id, one dep, payload. */
const WIRE_FACT_BYTES = 1 + 1 + 4 + 32 + 32 + PAYLOAD;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function cluster(names, dirs) {
  const nodes = [];
  for (const [i, name] of names.entries()) {
    const p = await NodeProcess.spawn(name);
    const peers = nodes.length === 0 ? [] : [nodes[0].address];
    const { address } = await p.call('start', { nodeId: name, secret: SECRET, peers, dir: dirs?.[i] });
    p.address = address;
    nodes.push(p);
  }
  // Every link up before the clock starts.
  for (;;) {
    const statuses = await Promise.all(nodes.map((n) => n.call('status')));
    if (statuses.every((s) => s.peers.filter((p) => p.state === 'ready').length >= nodes.length - 1)) break;
    await sleep(20);
  }
  return nodes;
}

async function waitAll(nodes, size, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sizes = await Promise.all(nodes.map((n) => n.call('status').then((s) => s.size)));
    if (sizes.every((s) => s === size)) return performance.timeOrigin + performance.now();
    if (Date.now() > deadline) throw new Error(`timed out: sizes ${sizes.join(', ')} of ${size}`);
    await sleep(5);
  }
}

async function verify(nodes, size) {
  const statuses = await Promise.all(nodes.map((n) => n.call('status', { digest: true, latency: true })));
  const digests = new Set(statuses.map((s) => s.digest));
  const ok = statuses.every((s) => s.size === size) && digests.size === 1;
  if (!ok) throw new Error(`nodes disagree: sizes ${statuses.map((s) => s.size).join(', ')}, ${digests.size} digests`);
  return statuses;
}

async function throughputRound(dirs) {
  const nodes = await cluster(['n0', 'n1', 'n2'], dirs);
  try {
    const cpuBefore = (await Promise.all(nodes.map((n) => n.call('status')))).reduce((s, x) => s + x.cpuMicros, 0);
    const start = performance.timeOrigin + performance.now();
    await Promise.all(nodes.map((n) => n.call('admit', { count: FACTS, payloadBytes: PAYLOAD })));
    const done = await waitAll(nodes, FACTS * 3);
    const cpuAfter = (await Promise.all(nodes.map((n) => n.call('status')))).reduce((s, x) => s + x.cpuMicros, 0);
    const statuses = await verify(nodes, FACTS * 3);
    const bytes = statuses.reduce((s, x) => s + x.stats.bytesOut, 0);
    return { factsPerSec: (FACTS * 3) / ((done - start) / 1000), wireBytesPerFact: bytes / (FACTS * 3 * 2), cpuMicrosPerFact: (cpuAfter - cpuBefore) / (FACTS * 3) };
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
}

async function rawRound() {
  const nodes = await Promise.all(['r0', 'r1', 'r2'].map((n) => NodeProcess.spawn(n)));
  try {
    const addresses = [];
    for (const n of nodes) addresses.push((await n.call('rawListen')).address);
    const start = performance.timeOrigin + performance.now();
    await Promise.all(nodes.map((n, i) => n.call('rawSend', { peers: addresses.filter((_, j) => j !== i), count: FACTS, recordBytes: WIRE_FACT_BYTES, expectBytes: 2 * FACTS * WIRE_FACT_BYTES })));
    const ends = await Promise.all(nodes.map((n) => n.call('rawWait')));
    const done = Math.max(...ends.map((e) => e.doneAt));
    return { recordsPerSec: (FACTS * 3) / ((done - start) / 1000) };
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
}

async function lagRound() {
  const nodes = await cluster(['n0', 'n1', 'n2']);
  try {
    // Each node admits a third of the rate.
    const per = Math.floor(LAG_FACTS / 3);
    await Promise.all(nodes.map((n) => n.call('admit', { count: per, payloadBytes: PAYLOAD, rate: RATE / 3 })));
    await waitAll(nodes, per * 3);
    const statuses = await verify(nodes, per * 3);
    return { p50: median(statuses.map((s) => s.latency.p50)), p99: median(statuses.map((s) => s.latency.p99)), max: Math.max(...statuses.map((s) => s.latency.max)) };
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
}

async function catchupRound() {
  const [a, b] = await cluster(['n0', 'n1']);
  let c;
  try {
    await Promise.all([a.call('admit', { count: CATCHUP / 2, payloadBytes: PAYLOAD }), b.call('admit', { count: CATCHUP / 2, payloadBytes: PAYLOAD })]);
    await waitAll([a, b], CATCHUP);
    c = await NodeProcess.spawn('n2');
    const start = performance.timeOrigin + performance.now();
    await c.call('start', { nodeId: 'n2', secret: SECRET, peers: [a.address] });
    const done = await waitAll([c], CATCHUP);
    await verify([a, b, c], CATCHUP);
    return { factsPerSec: CATCHUP / ((done - start) / 1000) };
  } finally {
    await Promise.all([a, b, c].filter(Boolean).map((n) => n.close()));
  }
}

const rows = { throughput: [], raw: [], wire: [], cpu: [], p50: [], p99: [], catchup: [] };
for (let r = 0; r < ROUNDS; r++) {
  const dirs = values.durable ? [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'ctfs-bench-repl-'))) : undefined;
  try {
    const t = await throughputRound(dirs);
    rows.throughput.push(t.factsPerSec);
    rows.wire.push(t.wireBytesPerFact);
    rows.cpu.push(t.cpuMicrosPerFact);
  } finally {
    for (const d of dirs ?? []) rmSync(d, { recursive: true, force: true });
  }
  rows.raw.push((await rawRound()).recordsPerSec);
  const lag = await lagRound();
  rows.p50.push(lag.p50);
  rows.p99.push(lag.p99);
  if (CATCHUP > 0) rows.catchup.push((await catchupRound()).factsPerSec);
  console.log(
    `round ${r + 1}: ${Math.round(rows.throughput[r])} facts/s on all 3 (raw TCP ${Math.round(rows.raw[r])} records/s), ` +
      `${rows.wire[r].toFixed(0)} B/fact on the wire, ${rows.cpu[r].toFixed(1)} µs of CPU per fact (all 3 processes), lag at ${RATE}/s p50 ${rows.p50[r].toFixed(2)} ms p99 ${rows.p99[r].toFixed(2)} ms` +
      (CATCHUP > 0 ? `, catch-up of ${CATCHUP} at ${Math.round(rows.catchup[r])} facts/s` : ''),
  );
}
const m = (xs) => median(xs);
console.log('\nmedians over', ROUNDS, 'rounds (3 processes on this machine; every round checked: all nodes hold every fact, equal set digests)');
console.table({
  [`originated facts/s, admitted on all 3${values.durable ? ' (durable nodes)' : ''}`]: Math.round(m(rows.throughput)),
  'raw TCP records/s (same bytes, same processes)': Math.round(m(rows.raw)),
  'ratio to raw': Number((m(rows.throughput) / m(rows.raw)).toFixed(3)),
  'bytes on the wire per fact per receiver': Math.round(m(rows.wire)),
  'CPU µs per fact, all 3 processes together': Number(m(rows.cpu).toFixed(1)),
  [`lag p50 ms at ${RATE} facts/s`]: Number(m(rows.p50).toFixed(2)),
  [`lag p99 ms at ${RATE} facts/s`]: Number(m(rows.p99).toFixed(2)),
  ...(CATCHUP > 0 ? { [`catch-up facts/s (missed ${CATCHUP})`]: Math.round(m(rows.catchup)) } : {}),
});
