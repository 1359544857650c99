/**
 * One replicating node as a child process, driven over IPC by the replication benchmark and the
 * process fault tests (it loads the library from dist/: run `npm run build` first).
 *
 * Messages in (each answered with `{ re: cmd, ... }`, or `{ re: cmd, error }`):
 *   start   { nodeId, listen?, peers?, secret, dir?, options? }  → { address }
 *   admit   { count, payloadBytes?, rate?, ack? }   admits `count` facts of this node, each depending
 *           on the node's previous one; `rate` facts/s paces them; `ack: 'durable'` (durable nodes)
 *           reports progress as `{ event: 'durable', through, ids }` (this node's facts through
 *           `through` are fsynced; `ids`: those newly so, hex)
 *           → { admitted, elapsedMs }
 *   status  { digest?, latency? } → { size, digest, stats, peers, latency, memory }   latency: replication lag percentiles (ms)
 *           of facts from other nodes, measured at admission from the origin's timestamp
 *   missing { ids }  → { missing }: which of these ids (hex) this node does not hold
 *   start with `escrow: { limit, members, lowWater?, refill? }` (numbers or decimal strings): a
 *           durable (or in-memory) bounded counter of capacity `limit`, split between `members`
 *   sell    { count, timeoutMs?, rate?, retries? } sells up to `count` units (`rate` per second at most), one fact each (`net.escrow.admitSpendAsync`,
 *           waiting up to `timeoutMs` for quota; after `retries` refusals 100 ms apart, or once the
 *           ledger shows no rights left anywhere, it stops), until sold or out of quota; reports each sale as
 *           `{ event: 'durable', ids }` once fsynced → { sold, exhausted, elapsedMs }
 *   escrow  → { value, ledger, available, stats }: the counter's value, the ledger digest (hex),
 *           this node's available rights, the escrow counters
 *   rawListen, rawSend, rawWait: the raw TCP baseline (see below)
 *   close   closes the node (and its kernel) and exits
 *
 * Facts: see scripts/replication-facts.mjs.
 */
import net from 'node:net';
import { originOf, payloadOf, tagOf } from './replication-facts.mjs';

const { BoundedCounterState, BoundedGCounterInvariant, DurableKernel, GCounterInvariant, Kernel, NetworkingKernel, factId, toHex, u64le } = await import(new URL('../dist/index.js', import.meta.url).href);

/** A GCounter that also records, for each fact from another node, how long ago its origin admitted it. */
class LagProbeInvariant extends GCounterInvariant {
  constructor(selfTag) {
    super();
    this.selfTag = selfTag;
    this.lags = [];
  }

  apply(payload, state) {
    const code = super.apply(payload, state);
    if (code === 0 && payload.length >= 24) {
      const { tag, at } = originOf(payload);
      if (tag !== this.selfTag && this.lags.length < 4_000_000) this.lags.push(performance.timeOrigin + performance.now() - at);
    }
    return code;
  }
}

let kernel;
let node;
let probe;
let selfId;
let prev;
let seq = 0;

function reply(msg) {
  process.send?.(msg);
}

function percentiles(values) {
  if (values.length === 0) return { n: 0 };
  const s = Float64Array.from(values).sort();
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { n: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: s[s.length - 1] };
}

async function start(m) {
  if (m.escrow !== undefined) return startEscrow(m);
  selfId = m.nodeId;
  probe = new LagProbeInvariant(tagOf(m.nodeId));
  kernel = m.dir ? await DurableKernel.open(m.dir, probe) : new Kernel(probe);
  node = await NetworkingKernel.start(kernel, { nodeId: m.nodeId, listen: m.listen, peers: m.peers ?? [], secret: m.secret, ...(m.options ?? {}) });
  // Resume this node's own sequence after a restart: its facts so far are in the kernel.
  seq = m.resumeAt ?? 0;
  prev = m.resumePrev === undefined ? undefined : Buffer.from(m.resumePrev, 'hex');
  return { address: node.address, size: node.size };
}

async function startEscrow(m) {
  selfId = m.nodeId;
  const state = new BoundedCounterState(0n, BigInt(m.escrow.limit)).toBytes();
  const invariant = new BoundedGCounterInvariant();
  kernel = m.dir ? await DurableKernel.open(m.dir, invariant, { initialState: state }) : Kernel.withState(invariant, state);
  const big = (v) => (v === undefined ? undefined : BigInt(v));
  const escrow = { members: m.escrow.members, lowWater: big(m.escrow.lowWater), refill: big(m.escrow.refill) };
  node = await NetworkingKernel.start(kernel, { nodeId: m.nodeId, listen: m.listen, advertise: m.advertise, peers: m.peers ?? [], secret: m.secret, ...(m.options ?? {}), escrow });
  return { address: node.address, size: node.size };
}

async function sell(m) {
  const started = performance.now();
  const one = u64le(1);
  const unreported = [];
  const report = () => {
    if (kernel.durableSequence === undefined) return;
    const ids = [];
    while (unreported.length > 0 && unreported[0][0] <= kernel.durableSequence) ids.push(unreported.shift()[1]);
    if (ids.length > 0) reply({ event: 'durable', ids });
  };
  let sold = 0;
  let exhausted = false;
  let retries = m.retries ?? 0;
  const perMs = m.rate === undefined ? Infinity : m.rate / 1000;
  for (let i = 0; i < m.count; i++) {
    while (i >= (performance.now() - started) * perMs + 1) await new Promise((r) => setTimeout(r, 1));
    try {
      const id = await node.escrow.admitSpendAsync(one, [], { timeoutMs: m.timeoutMs ?? 2_000 });
      sold++;
      unreported.push([kernel.lastSequence ?? 0, toHex(id)]);
    } catch (error) {
      if (error?.code !== 'EscrowExhausted') throw error;
      // Sold out everywhere, as far as this node's ledger knows: no retry will find anything.
      const left = node.escrow.view().reduce((sum, h) => sum + h.available[1], 0n);
      if (left > 0n && retries-- > 0) {
        i--;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      exhausted = true;
      break;
    }
    if (i % 64 === 63) {
      report();
      await new Promise((r) => setImmediate(r));
    }
  }
  if (kernel.flush !== undefined) {
    await kernel.flush();
    report();
  }
  return { sold, exhausted, elapsedMs: performance.now() - started };
}

function escrowStatus() {
  return {
    value: String(BoundedCounterState.fromCell(kernel.state).value),
    ledger: toHex(node.escrow.digest()),
    digest: toHex(node.digest()),
    available: String(node.escrow.available()),
    stats: { ...node.escrow.stats(), available: undefined },
  };
}

async function admit(m) {
  const count = m.count;
  const bytes = m.payloadBytes ?? 200;
  const durable = m.ack === 'durable';
  const started = performance.now();
  const perMs = m.rate === undefined ? Infinity : m.rate / 1000;
  // Durable nodes: the WAL sequence of each local fact not yet reported durable (remote facts
  // are in the WAL too, so local and WAL numbering differ).
  const unreported = [];
  const report = () => {
    const d = kernel.durableSequence;
    const ids = [];
    let through = 0;
    while (unreported.length > 0 && unreported[0][1] <= d) {
      const [s, , id] = unreported.shift();
      through = s;
      ids.push(id);
    }
    if (through > 0) reply({ event: 'durable', through, ids });
  };
  for (let i = 0; i < count; ) {
    const due = perMs === Infinity ? count : Math.min(count, Math.floor((performance.now() - started) * perMs) + 1);
    for (; i < due; i++) {
      seq++;
      const payload = payloadOf(selfId, seq, bytes, performance.timeOrigin + performance.now());
      const deps = prev === undefined ? [] : [prev];
      const id = factId(deps, payload);
      const code = node.tryAdmitRaw(id, deps, payload);
      if (code !== 0) throw new Error(`admission refused: code ${code}`);
      prev = id;
      if (durable) unreported.push([seq, kernel.lastSequence, toHex(id)]);
      if (perMs === Infinity && i % 2048 === 2047) {
        i++;
        break;
      }
    }
    if (durable) report();
    await new Promise((r) => (perMs === Infinity ? setImmediate(r) : setTimeout(r, 1)));
  }
  if (durable) {
    await kernel.flush();
    report();
  }
  return { admitted: count, elapsedMs: performance.now() - started, seq, prev: prev === undefined ? undefined : toHex(prev) };
}

function status(m) {
  return {
    size: node.size,
    // Sorts every id: only when asked for.
    digest: m.digest ? toHex(node.digest()) : undefined,
    stats: node.stats(),
    peers: node.peers(),
    /** CPU time of the whole process (all its threads) so far, µs. */
    cpuMicros: (({ user, system }) => user + system)(process.cpuUsage()),
    // Sorting every lag and reading the RSS cost milliseconds: only when asked for.
    latency: m.latency ? percentiles(probe.lags) : undefined,
    memory: m.latency ? process.memoryUsage().rss : undefined,
  };
}

// ---------------------------------------------------------------- the raw TCP baseline
// Every node sends `count` records of `recordBytes` to every peer on one plain TCP connection
// each, and counts what it receives: the same bytes a replicated fact costs, with no protocol.
let rawServer;
let rawReceived = 0;
let rawExpected = 0;
let rawDoneAt = 0;
async function rawListen() {
  rawServer = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (chunk) => {
      rawReceived += chunk.length;
      if (rawReceived >= rawExpected && rawDoneAt === 0) rawDoneAt = performance.timeOrigin + performance.now();
    });
  });
  await new Promise((r) => rawServer.listen(0, '127.0.0.1', r));
  return { address: `127.0.0.1:${rawServer.address().port}` };
}

async function rawSend(m) {
  rawExpected = m.expectBytes;
  const record = Buffer.alloc(m.recordBytes, 7);
  const batch = Buffer.concat(Array.from({ length: 256 }, () => record));
  await Promise.all(
    m.peers.map(
      (address) =>
        new Promise((resolve, reject) => {
          const at = address.lastIndexOf(':');
          const s = net.connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)), noDelay: true }, async () => {
            let left = m.count;
            while (left > 0) {
              const n = Math.min(256, left);
              const ok = s.write(n === 256 ? batch : batch.subarray(0, n * m.recordBytes));
              left -= n;
              if (!ok) await new Promise((r) => s.once('drain', r));
            }
            s.end(resolve);
          });
          s.on('error', reject);
        }),
    ),
  );
  return {};
}

async function rawWait() {
  while (rawReceived < rawExpected) await new Promise((r) => setTimeout(r, 1));
  return { doneAt: rawDoneAt, received: rawReceived };
}

/** Which of `ids` (hex) this node has not admitted. */
function missing(m) {
  return { missing: m.ids.filter((hex) => !kernel.contains(Buffer.from(hex, 'hex'))) };
}

const handlers = {
  start,
  admit,
  status,
  missing,
  sell,
  escrow: escrowStatus,
  rawListen,
  rawSend,
  rawWait,
  async close() {
    await node?.close();
    await kernel?.close?.();
    rawServer?.close();
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', async (m) => {
  try {
    const out = await handlers[m.cmd](m);
    reply({ re: m.cmd, id: m.id, ...out });
  } catch (error) {
    reply({ re: m.cmd, id: m.id, error: String(error?.stack ?? error) });
  }
});
reply({ event: 'spawned' });
