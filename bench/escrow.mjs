/**
 * Escrow across nodes (`npm run bench:escrow`; builds first). Three measurements, each printed with
 * what it checked:
 *
 *  1. Local bounded admission while the share lasts, in one run, rounds alternating the order:
 *     - a bare bounded kernel (BoundedGCounter, no replication, no escrow): the caller computes the
 *       id of a fact depending on its previous one and admits it;
 *     - a replicated coordination-free kernel (GCounter in a NetworkingKernel, no escrow), same loop;
 *     - a replicated bounded kernel through escrow (`net.escrow.tryAdmitSpend`), which builds the
 *       escrow fact (chain dep, trailer), hashes it and checks the ledger.
 *     ns per admission, median over rounds; every admission must return Ok.
 *  2. Grant latency on loopback: two node processes (scripts/replication-node.mjs), in memory
 *     and durable; node a has no rights left and asks b for 2 at each sale that falls short; b's
 *     grant is a fact (with a durable b, fsynced before it leaves b). Latency is the agent's own
 *     (request opened → grant admitted on a), p50/p99 over the grants.
 *  3. Sell-out precision: three nodes share a stock, all rush to sell it one unit at a time
 *     (`admitSpendAsync`, waiting up to 1 s for quota) with uneven demand (three buyers on one
 *     node, two on the next, one on the last); sold / stock, median over rounds, checked
 *     against every node's counter (never above the stock; every node ends with the same value).
 *
 *   node bench/escrow.mjs [--rounds 9] [--facts 20000] [--grants 300] [--stock 30000] [--rush-rate 2000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NodeProcess } from '../scripts/replication-cluster.mjs';

const lib = await import(new URL('../dist/index.js', import.meta.url).href);
const { AdmitCode, BoundedCounterState, BoundedGCounterInvariant, GCounterInvariant, Kernel, NetworkingKernel, factId, toHex, u64le } = lib;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '9' },
    facts: { type: 'string', default: '20000' },
    grants: { type: 'string', default: '300' },
    stock: { type: 'string', default: '30000' },
    'rush-rate': { type: 'string', default: '2000' },
  },
});
const ROUNDS = Number(values.rounds);
const N = Number(values.facts);
const GRANTS = Number(values.grants);
const STOCK = BigInt(values.stock);
const RUSH_RATE = Number(values['rush-rate']);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dirs = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ctfs-bench-escrow-'));
  dirs.push(d);
  return d;
};
const HUGE = (1n << 62n);
const options = (nodeId, extra = {}) => ({ nodeId, plaintext: true, antiEntropyMs: 200, ...extra });

console.log(`escrow benchmark: node ${process.version}, ${ROUNDS} rounds of ${N} admissions; ${GRANTS} grants; stock ${STOCK}`);

// ------------------------------------------------------------------ 1. local bounded admission
{
  const bare = Kernel.withState(new BoundedGCounterInvariant(), new BoundedCounterState(0n, HUGE).toBytes());
  const free = await NetworkingKernel.start(new Kernel(new GCounterInvariant()), options('free'));
  const escrowed = await NetworkingKernel.start(Kernel.withState(new BoundedGCounterInvariant(), new BoundedCounterState(0n, HUGE).toBytes()), options('solo', { escrow: { members: ['solo'] } }));
  let barePrev = [];
  let freePrev = [];
  let counter = 0;
  /** The caller's loop without escrow: a 16-byte payload (delta, counter), a fact on the previous one. */
  const chain = (admit, prevOf, setPrev) => () => {
    let ok = 0;
    for (let i = 0; i < N; i++) {
      const payload = new Uint8Array(16);
      payload[0] = 1;
      new DataView(payload.buffer).setUint32(8, ++counter, true);
      const deps = prevOf();
      const id = factId(deps, payload);
      if (admit(id, deps, payload) === AdmitCode.Ok) ok++;
      setPrev([id]);
    }
    return ok;
  };
  const loops = {
    'bare bounded kernel': chain((id, d, p) => bare.tryAdmitRaw(id, d, p), () => barePrev, (x) => (barePrev = x)),
    'replicated, coordination-free': chain((id, d, p) => free.tryAdmitRaw(id, d, p), () => freePrev, (x) => (freePrev = x)),
    'replicated, bounded, escrow': () => {
      let ok = 0;
      for (let i = 0; i < N; i++) if (escrowed.escrow.tryAdmitSpend(u64le(1)) === AdmitCode.Ok) ok++;
      return ok;
    },
  };
  const ns = {};
  const names = Object.keys(loops);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const t = process.hrtime.bigint();
      const ok = loops[name]();
      const elapsed = Number(process.hrtime.bigint() - t);
      if (ok !== N) throw new Error(`${name}: ${ok} of ${N} admissions returned Ok`);
      (ns[name] ??= []).push(elapsed / N);
      // Let the replication workers drain their rings between rounds.
      await sleep(50);
    }
  }
  console.log('\n1. local bounded admission while the share lasts (ns per admission, median of rounds; every admission Ok)');
  for (const name of names) console.log(`   ${name.padEnd(32)} ${median(ns[name]).toFixed(0).padStart(6)} ns   (${(1e9 / median(ns[name]) / 1e3).toFixed(0)} k/s)`);
  const e = median(ns['replicated, bounded, escrow']);
  console.log(`   escrow / bare bounded kernel: ${(e / median(ns['bare bounded kernel'])).toFixed(2)}×; escrow / replicated coordination-free: ${(e / median(ns['replicated, coordination-free'])).toFixed(2)}×`);
  console.log(`   checked: ${escrowed.escrow.ledger.sums().used[1]} spent on the escrowed node = ${ROUNDS * N} admissions`);
  await free.close();
  await escrowed.close();
}

// ------------------------------------------------------------------ 2. grant latency
// Two node processes (scripts/replication-node.mjs), so each node has its own main thread as in
// production: a has no rights left and asks b for 2 at every other sale.
for (const durable of [false, true]) {
  const names = ['a', 'b'];
  const procs = [];
  const addresses = [];
  for (const name of names) {
    const p = await NodeProcess.spawn(name);
    procs.push(p);
    const { address } = await p.call('start', {
      nodeId: name,
      secret: 'escrow-benchmark-secret',
      dir: durable ? tempDir() : undefined,
      peers: addresses.slice(),
      escrow: { limit: 2 * (GRANTS + 1), members: names, lowWater: 0, refill: 1 },
    });
    addresses.push(address);
  }
  const [a, b] = procs;
  while (!(await a.call('status')).peers.some((p) => p.state === 'ready')) await sleep(10);
  // a's own share first, then GRANTS sales that each other one needs a grant for.
  const own = await a.call('sell', { count: GRANTS + 1, timeoutMs: 5_000 });
  const more = await a.call('sell', { count: GRANTS, timeoutMs: 5_000 });
  const sa = await a.call('escrow');
  const sb = await b.call('escrow');
  if (own.sold + more.sold !== 2 * GRANTS + 1) throw new Error(`a sold ${own.sold} + ${more.sold}`);
  const l = sa.stats.grantLatencyMs;
  console.log(`${durable ? '' : '\n2. grant latency on loopback, two node processes, TLS 1.3 PSK links\n'}   ${durable ? 'durable (the grant is fsynced before it leaves b)' : 'in memory'}: ${sa.stats.grantsReceived} grants received by a (${sb.stats.grantsMade} made by b); request opened → grant admitted on a: p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms`);
  await Promise.all(procs.map((p) => p.close()));
}

// ------------------------------------------------------------------ 3. sell-out precision
{
  const ratios = [];
  const times = [];
  for (let r = 0; r < Math.min(ROUNDS, 5); r++) {
    const state = new BoundedCounterState(0n, STOCK).toBytes();
    const escrow = { members: ['a', 'b', 'c'] };
    const a = await NetworkingKernel.start(Kernel.withState(new BoundedGCounterInvariant(), state), options('a', { escrow }));
    const b = await NetworkingKernel.start(Kernel.withState(new BoundedGCounterInvariant(), state), options('b', { escrow, peers: [a.address] }));
    const c = await NetworkingKernel.start(Kernel.withState(new BoundedGCounterInvariant(), state), options('c', { escrow, peers: [a.address, b.address] }));
    const nodes = [a, b, c];
    while (!nodes.every((n) => n.peers().filter((p) => p.state === 'ready').length === 2)) await sleep(10);
    const t = performance.now();
    const one = u64le(1);
    let firstRefusal;
    // Uneven demand: three buyers on a, two on b, one on c, so quota has to move to a and b.
    // Each buyer is paced (RUSH_RATE sales/s): all six at once stay below what three nodes on
    // two cores replicate, so the rush measures escrow, not a replication backlog that quota
    // requests would queue behind.
    const buyer = async (n) => {
      let k = 0n;
      const began = performance.now();
      for (;;) {
        try {
          await n.escrow.admitSpendAsync(one, [], { timeoutMs: 1_000 });
          k++;
          if (k % 64n === 0n) {
            const due = began + (Number(k) / RUSH_RATE) * 1000;
            await (due > performance.now() ? sleep(due - performance.now()) : new Promise((res) => setImmediate(res)));
          }
        } catch (error) {
          if (error.code !== 'EscrowExhausted') throw error;
          // What the whole cluster had sold when the first buyer was refused.
          firstRefusal ??= nodes.reduce((x, m) => x + m.escrow.ledger.sums().used[1], 0n) / 3n;
          return k;
        }
      }
    };
    const sold = await Promise.all(nodes.map(async (n, i) => (await Promise.all(Array.from({ length: 3 - i }, () => buyer(n)))).reduce((x, y) => x + y, 0n)));
    const elapsed = performance.now() - t;
    const total = sold.reduce((x, y) => x + y, 0n);
    while (new Set(nodes.map((n) => toHex(n.digest()))).size !== 1) await sleep(20);
    const values_ = nodes.map((n) => BoundedCounterState.fromCell(n.kernel.state).value);
    if (values_.some((v) => v !== total) || total > STOCK) throw new Error(`sold ${total}, counters ${values_.join(', ')}, stock ${STOCK}`);
    ratios.push(Number(total) / Number(STOCK));
    times.push(elapsed);
    console.log(`${r === 0 ? `\n3. sell-out: a rush on all three nodes (3, 2 and 1 buyers, ${RUSH_RATE} sales/s each)\n` : ''}   round ${r + 1}: sold ${total} of ${STOCK} (${sold.join(' + ')}) in ${elapsed.toFixed(0)} ms; every counter ${values_[0]}; ${nodes.reduce((x, n) => x + n.escrow.stats().grantsMade, 0)} grants; first refusal after ${firstRefusal === undefined ? '-' : firstRefusal} sold`);
    if (process.env.ESCROW_BENCH_DEBUG) for (const n of nodes) console.log(n.nodeId, n.escrow.stats());
    for (const n of nodes) await n.close();
  }
  console.log(`   sold / stock: median ${(median(ratios) * 100).toFixed(2)}%, lowest ${(Math.min(...ratios) * 100).toFixed(2)}%`);
}

for (const d of dirs) rmSync(d, { recursive: true, force: true });
