/**
 * One node of the `ctfs cluster` demo, as a child process driven over IPC by cluster.ts. It runs
 * two durable replicating kernels side by side, each its own replication cluster:
 *  - `events`: a GCounter; each fact depends on this node's previous one, and carries its origin
 *    and the time it was admitted, so receivers measure the replication lag;
 *  - `stock`: a bounded counter (the stock sold), replicated through escrow.
 *
 * Messages in (each answered `{ re, id, … }` or `{ re, id, error }`):
 *   start  { nodeId, dir, members, stock, peers: { events, stock }, secret } → { events, stock } (addresses)
 *   work   { rate, saleEvery } — admit `rate` facts/s until `halt`; every `saleEvery`-th is a sale
 *   halt   → counters so far
 *   status → { facts, sold, refusedSales, available, admission, lag, digest? }
 *   cut    { addresses } / join { addresses } — drop / restore the links to these nodes (a partition)
 *   close  — replication stops, the logs are closed cleanly, the process exits
 */
import { GCounterInvariant } from '../invariants/gcounter.js';
import { BoundedCounterState, BoundedGCounterInvariant } from '../invariants/bounded-gcounter.js';
import { DurableKernel } from '../kernels/durable-kernel.js';
import { NetworkingKernel } from '../network/networking-kernel.js';
import { factId } from '../core/fact.js';
import { toHex, u64le } from '../core/bytes.js';
import { join } from 'node:path';
import { percentiles, type Percentiles } from './percentiles.js';

/** What a node's events log did for durability (the report's "durable" line). */
export interface DurableFigures {
  readonly fsyncs: number;
  readonly recordsPerFsync: number;
  /** write + fdatasync per batch, µs, from the batch trace. */
  readonly syncUs: Percentiles;
  readonly backend: 'io_uring' | 'portable';
}

/**
 * Payload bytes of an event: increment u64 (1), origin tag u32, admitted-at f64 (ms since the
 * epoch, sub-millisecond), the origin's sequence u64 (so equal events stay distinct facts).
 */
const EVENT_BYTES = 28;
/** Wall-clock ms with sub-millisecond precision, comparable between processes on one machine. */
const nowMs = (): number => performance.timeOrigin + performance.now();
/** Latency samples kept per kind (the demo runs for seconds; a cap keeps memory flat anyway). */
const MAX_SAMPLES = 1_000_000;

/** A GCounter that records, for each fact of another node, how long ago its origin admitted it. */
class LagProbe extends GCounterInvariant {
  readonly lags: number[] = [];
  constructor(private readonly selfTag: number) {
    super();
  }

  override apply(payload: Uint8Array, state: Uint8Array): number {
    const code = super.apply(payload, state);
    if (code === 0 && payload.length >= EVENT_BYTES && this.lags.length < MAX_SAMPLES) {
      const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
      if (view.getUint32(8, true) !== this.selfTag) this.lags.push(nowMs() - view.getFloat64(12, true));
    }
    return code;
  }
}

interface Node {
  events: NetworkingKernel<DurableKernel>;
  stock: NetworkingKernel<DurableKernel>;
  probe: LagProbe;
  tag: number;
  prev: Uint8Array | undefined;
  seq: number;
  facts: number;
  sold: number;
  refusedSales: number;
  admissionNs: number[];
  working: boolean;
}

let node: Node | undefined;

/** Batches of the events log whose stage times the node keeps (the last 2^16: minutes of this demo). */
const TRACED_BATCHES = 1 << 16;

/** The events log's durability since this process opened it: batches, records per fsync, write+fdatasync times (µs). */
function durableFigures(kernel: DurableKernel): DurableFigures {
  const stats = kernel.logStats;
  const batches = kernel.batchTrace?.read() ?? [];
  const sync = percentiles(batches.map((b) => (b.synced - b.submitted) * 1000));
  return { fsyncs: stats.fsyncs, recordsPerFsync: stats.fsyncs === 0 ? 0 : stats.records / stats.fsyncs, syncUs: sync, backend: kernel.backend };
}

const tagOf = (nodeId: string): number => {
  let h = 2166136261;
  for (let i = 0; i < nodeId.length; i++) h = Math.imul(h ^ nodeId.charCodeAt(i), 16777619);
  return h >>> 0;
};

const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown> | unknown> = {
  async start(m) {
    const nodeId = m['nodeId'] as string;
    const dir = m['dir'] as string;
    const peers = m['peers'] as { events: string[]; stock: string[] };
    const secret = m['secret'] as string;
    const tag = tagOf(nodeId);
    const probe = new LagProbe(tag);
    // Traced, so the report can say what the disk took per batch (stage stamps; a few stores per batch).
    const eventsKernel = await DurableKernel.open(join(dir, 'events'), probe, { traceBatches: TRACED_BATCHES });
    const events = await NetworkingKernel.start(eventsKernel, { nodeId, secret, cluster: 'demo-events', peers: peers.events, antiEntropyMs: 250, reconnectMinMs: 50, reconnectMaxMs: 500 });
    const stockKernel = await DurableKernel.open(join(dir, 'stock'), new BoundedGCounterInvariant(), { initialState: new BoundedCounterState(0n, BigInt(m['stock'] as number)).toBytes() });
    const stock = await NetworkingKernel.start(stockKernel, { nodeId, secret, cluster: 'demo-stock', peers: peers.stock, antiEntropyMs: 250, reconnectMinMs: 50, reconnectMaxMs: 500, escrow: { members: m['members'] as string[] } });
    // After a restart this node's chain of events goes on from what its log holds.
    node = { events, stock, probe, tag, prev: undefined, seq: events.kernel.size, facts: 0, sold: 0, refusedSales: 0, admissionNs: [], working: false };
    return { events: events.address, stock: stock.address };
  },

  work(m) {
    const n = node!;
    const rate = m['rate'] as number;
    const saleEvery = m['saleEvery'] as number;
    n.working = true;
    const started = performance.now();
    let done = 0;
    const sale = u64le(1);
    const loop = async (): Promise<void> => {
      while (n.working) {
        const due = Math.floor(((performance.now() - started) * rate) / 1000);
        for (; done < due && n.working; done++) {
          if (saleEvery > 0 && done % saleEvery === saleEvery - 1) {
            try {
              await n.stock.escrow!.admitSpendAsync(sale, [], { timeoutMs: 200 });
              n.sold++;
            } catch {
              n.refusedSales++;
            }
            continue;
          }
          const payload = new Uint8Array(EVENT_BYTES);
          const view = new DataView(payload.buffer);
          payload[0] = 1;
          view.setUint32(8, n.tag, true);
          view.setFloat64(12, nowMs(), true);
          view.setBigUint64(20, BigInt(++n.seq), true);
          const deps = n.prev === undefined ? [] : [n.prev];
          const id = factId(deps, payload);
          const t = process.hrtime.bigint();
          const code = n.events.tryAdmitRaw(id, deps, payload);
          if (n.admissionNs.length < MAX_SAMPLES) n.admissionNs.push(Number(process.hrtime.bigint() - t));
          if (code !== 0) throw new Error(`an event was refused: code ${code}`);
          n.prev = id;
          n.facts++;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    void loop().catch((error) => process.send?.({ event: 'failed', error: String(error) }));
    return {};
  },

  halt() {
    node!.working = false;
    return {};
  },

  status(m) {
    const n = node!;
    return {
      facts: n.facts,
      sold: n.sold,
      refusedSales: n.refusedSales,
      available: String(n.stock.escrow!.available()),
      stockValue: String(BoundedCounterState.fromCell(n.stock.kernel.state).value),
      size: n.events.size,
      recentLagMs: percentiles(n.probe.lags.slice(-1000)).p50,
      admission: m['percentiles'] === true ? percentiles(n.admissionNs) : undefined,
      durable: m['percentiles'] === true ? durableFigures(n.events.kernel) : undefined,
      lag: m['percentiles'] === true ? percentiles(n.probe.lags) : undefined,
      lags: m['lags'] === true ? n.probe.lags : undefined,
      digest: m['digest'] === true ? { events: toHex(n.events.digest()), stock: toHex(n.stock.digest()), ledger: toHex(n.stock.escrow!.digest()) } : undefined,
    };
  },

  cut(m) {
    const a = m['addresses'] as { events: string[]; stock: string[] };
    for (const x of a.events) node!.events.removePeer(x);
    for (const x of a.stock) node!.stock.removePeer(x);
    return {};
  },

  join(m) {
    const a = m['addresses'] as { events: string[]; stock: string[] };
    for (const x of a.events) node!.events.addPeer(x);
    for (const x of a.stock) node!.stock.addPeer(x);
    return {};
  },

  async close() {
    const n = node;
    if (n !== undefined) {
      n.working = false;
      await n.events.close();
      await n.stock.close();
      await n.events.kernel.close();
      await n.stock.kernel.close();
    }
    setImmediate(() => process.exit(0));
    return {};
  },
};

process.on('message', (m: Record<string, unknown>) => {
  void (async () => {
    try {
      const out = await handlers[m['cmd'] as string]!(m);
      process.send?.({ re: m['cmd'], id: m['id'], ...(out as object) });
    } catch (error) {
      process.send?.({ re: m['cmd'], id: m['id'], error: String((error as Error)?.stack ?? error) });
    }
  })();
});
process.send?.({ event: 'spawned' });
