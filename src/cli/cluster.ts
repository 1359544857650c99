/**
 * `ctfs cluster`: the demo of the whole system. N local node processes (cluster-node.ts) on
 * loopback, each with a durable event log (commutative facts with deps) and an escrowed stock,
 * under a mixed workload; mid-run one node is killed with SIGKILL and another cut off from the
 * rest, then both come back. Live progress per node, then a report — throughput, admission
 * latency, what the event logs' fsyncs took (from their batch traces), replication latency (with a
 * histogram), convergence after the heal, the escrow check, digests — and a non-zero exit if any
 * check fails.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { percentiles, type Percentiles } from './percentiles.js';
import type { DurableFigures } from './cluster-node.js';

export interface ClusterOptions {
  readonly nodes: number;
  /** Seconds of workload. */
  readonly seconds: number;
  /** Facts per second per node (one in `saleEvery` a sale from the stock). */
  readonly rate: number;
  readonly stock: number;
  readonly dir: string | undefined;
  readonly keep: boolean;
  /** Live bars (a terminal) or plain lines (logs, CI). */
  readonly tty: boolean;
}

const SALE_EVERY = 10;
/** Lag histogram buckets, ms (upper bounds; the last is open). */
const BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, Infinity];
const CONVERGENCE_TIMEOUT_MS = 90_000;

interface Status {
  facts: number;
  sold: number;
  refusedSales: number;
  available: string;
  stockValue: string;
  size: number;
  recentLagMs: number;
  admission?: Percentiles;
  durable?: DurableFigures;
  lag?: Percentiles;
  lags?: number[];
  digest?: { events: string; stock: string; ledger: string };
}

class NodeProcess {
  private child!: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  up = false;
  addresses = { events: '', stock: '' };

  constructor(readonly name: string) {}

  spawn(): Promise<void> {
    this.child = fork(new URL('./cluster-node.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    this.child.once('exit', () => {
      this.up = false;
      for (const p of this.pending.values()) p.reject(new Error(`node ${this.name} exited`));
      this.pending.clear();
    });
    return new Promise((resolve, reject) => {
      this.child.on('message', (m: Record<string, unknown>) => {
        if (m['event'] === 'spawned') {
          this.up = true;
          resolve();
        } else if (m['event'] === 'failed') console.error(`node ${this.name}: ${String(m['error'])}`);
        const waiter = this.pending.get(m['id'] as number);
        if (waiter === undefined) return;
        this.pending.delete(m['id'] as number);
        if (m['error'] !== undefined) waiter.reject(new Error(`node ${this.name}: ${String(m['error'])}`));
        else waiter.resolve(m);
      });
      this.child.once('error', reject);
    });
  }

  call<T = Record<string, unknown>>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: Record<string, unknown>) => void, reject });
      this.child.send({ ...args, cmd, id });
    });
  }

  kill(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGKILL');
    return exited;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ms = (v: number): string => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));

/** Runs the demo; resolves with whether every check passed. */
export async function runCluster(o: ClusterOptions): Promise<boolean> {
  const base = o.dir ?? join(tmpdir(), `ctfs-cluster-${process.pid}`);
  mkdirSync(base, { recursive: true });
  const secret = randomBytes(24).toString('hex'); // per run; handed over IPC, never on a command line
  const names = Array.from({ length: o.nodes }, (_, i) => `n${i}`);
  const nodes = names.map((n) => new NodeProcess(n));
  const log = (line: string): void => console.log(line);
  log(`ctfs cluster: ${o.nodes} node processes on loopback, data in ${base}; ${o.seconds} s of workload at ${o.rate} facts/s per node (one in ${SALE_EVERY} a sale from a stock of ${o.stock}, split by escrow)`);
  const start = async (n: NodeProcess, i: number): Promise<void> => {
    const seed = nodes[0]!;
    const peers = i === 0 ? { events: [], stock: [] } : { events: [seed.addresses.events], stock: [seed.addresses.stock] };
    n.addresses = await n.call<{ events: string; stock: string }>('start', { nodeId: n.name, dir: join(base, n.name), members: names, stock: o.stock, peers, secret }).then((a) => ({ events: a.events, stock: a.stock }));
  };
  try {
    for (const [i, n] of nodes.entries()) {
      await n.spawn();
      await start(n, i);
    }
    await sleep(500);
    for (const n of nodes) await n.call('work', { rate: o.rate, saleEvery: SALE_EVERY });
    const began = performance.now();
    const elapsed = (): number => (performance.now() - began) / 1000;

    // The script of faults, as fractions of the run.
    const killed = o.nodes >= 3 ? nodes[2] : undefined;
    const cut = o.nodes >= 2 ? nodes[1] : undefined;
    const others = (x: NodeProcess) => nodes.filter((n) => n !== x);
    const addressesOf = (list: NodeProcess[]) => ({ events: list.map((n) => n.addresses.events), stock: list.map((n) => n.addresses.stock) });
    const steps: { at: number; what: string; run: () => Promise<void> }[] = [];
    if (killed !== undefined) steps.push({ at: 0.25, what: `SIGKILL ${killed.name}`, run: () => killed.kill() });
    if (cut !== undefined) {
      steps.push({
        at: 0.35,
        what: `partition: ${cut.name} cut off from the others`,
        run: async () => {
          const live = others(cut).filter((n) => n.up);
          await cut.call('cut', { addresses: addressesOf(live) });
          for (const n of live) await n.call('cut', { addresses: addressesOf([cut]) });
        },
      });
    }
    let healedAt = 0;
    steps.push({
      at: 0.6,
      what: `heal${cut === undefined ? '' : `: ${cut.name} rejoins`}${killed === undefined ? '' : `, ${killed.name} restarts from its directory`}`,
      run: async () => {
        if (cut !== undefined) {
          const live = others(cut).filter((n) => n.up);
          await cut.call('join', { addresses: addressesOf(live) });
          for (const n of live) await n.call('join', { addresses: addressesOf([cut]) });
        }
        if (killed !== undefined) {
          await killed.spawn();
          await start(killed, nodes.indexOf(killed));
          await killed.call('work', { rate: o.rate, saleEvery: SALE_EVERY });
        }
        healedAt = performance.now();
      },
    });

    const bars = o.tty ? new cliProgress.MultiBar({ format: ' {node} |{bar}| {value}/{total} s  facts {facts}  lag {lag} ms  quota {quota}  sold {sold}', hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic) : undefined;
    const bar = new Map(nodes.map((n) => [n.name, bars?.create(o.seconds, 0, { node: n.name, facts: 0, lag: '-', quota: '-', sold: 0 })]));
    let lastLine = 0;
    while (elapsed() < o.seconds) {
      const due = steps.find((s) => s.at * o.seconds <= elapsed());
      if (due !== undefined) {
        steps.splice(steps.indexOf(due), 1);
        if (bars !== undefined) bars.log(`t=${elapsed().toFixed(1)}s ${due.what}\n`);
        else log(`t=${elapsed().toFixed(1)}s ${due.what}`);
        await due.run();
      }
      const statuses = await Promise.all(nodes.map((n) => (n.up ? n.call<Status>('status').catch(() => undefined) : Promise.resolve(undefined))));
      for (const [i, s] of statuses.entries()) {
        bar.get(names[i]!)?.update(Math.min(o.seconds, Math.round(elapsed())), s === undefined ? { facts: 'down', lag: '-', quota: '-', sold: '-' } : { facts: s.facts, lag: ms(s.recentLagMs), quota: s.available, sold: s.sold });
      }
      if (bars === undefined && elapsed() - lastLine >= 1) {
        lastLine = elapsed();
        log(`t=${elapsed().toFixed(1)}s ` + statuses.map((s, i) => (s === undefined ? `${names[i]} down` : `${names[i]} facts ${s.facts} lag ${ms(s.recentLagMs)} ms quota ${s.available}`)).join(' | '));
      }
      await sleep(250);
    }
    for (const s of steps) await s.run(); // a run too short for the script still heals
    bars?.stop();
    const workSeconds = elapsed();
    for (const n of nodes) await n.call('halt');
    const haltedAt = performance.now();

    // Convergence: the same facts, stock and ledger on every node.
    let converged = -1;
    let last: Status[] = [];
    while (performance.now() - haltedAt < CONVERGENCE_TIMEOUT_MS) {
      last = await Promise.all(nodes.map((n) => n.call<Status>('status', { digest: true })));
      const same = (k: 'events' | 'stock' | 'ledger') => new Set(last.map((s) => s.digest![k])).size === 1;
      if (same('events') && same('stock') && same('ledger')) {
        converged = performance.now() - (healedAt || haltedAt);
        break;
      }
      await sleep(100);
    }
    const full = await Promise.all(nodes.map((n) => n.call<Status>('status', { percentiles: true, lags: true, digest: true })));
    const checks: [string, boolean][] = [];
    const facts = full.reduce((t, s) => t + s.size, 0) / full.length;
    const admission = full.filter((s) => s.admission!.n > 0).map((s) => s.admission!);
    const lags = full.flatMap((s) => s.lags ?? []);
    const lag = percentiles(lags);
    const stockValues = full.map((s) => BigInt(s.stockValue));
    log('');
    log('report');
    log(`  facts: ${Math.round(facts)} on every node, ${Math.round(facts / workSeconds)} facts/s cluster-wide while the workload ran (${workSeconds.toFixed(1)} s)`);
    log(`  admission latency (tryAdmitRaw, each node's own facts): p50 ${(median(admission.map((a) => a.p50)) / 1000).toFixed(2)} µs, p99 ${(median(admission.map((a) => a.p99)) / 1000).toFixed(2)} µs (median over nodes)`);
    const durable = full.map((s) => s.durable!).filter((d) => d.fsyncs > 0);
    if (durable.length > 0) {
      const backends = [...new Set(durable.map((d) => d.backend))].join(', ');
      log(
        `  durability (each node's events log, ${backends}): ${Math.round(median(durable.map((d) => d.fsyncs)))} fsyncs per node, ${Math.round(median(durable.map((d) => d.recordsPerFsync)))} records each; write+fdatasync per batch p50 ${Math.round(median(durable.map((d) => d.syncUs.p50)))} µs, p99 ${Math.round(median(durable.map((d) => d.syncUs.p99)))} µs (medians over nodes)`,
      );
    }
    log(`  replication lag (origin's admission → admission here): p50 ${ms(lag.p50)} ms, p90 ${ms(lag.p90)} ms, p99 ${ms(lag.p99)} ms over ${lags.length} deliveries`);
    for (const line of histogram(lags)) log(`    ${line}`);
    log(`  convergence after the heal: ${converged < 0 ? `none within ${CONVERGENCE_TIMEOUT_MS / 1000} s` : `${ms(converged)} ms`}`);
    checks.push(['every node holds the same facts, stock and escrow ledger (equal digests)', converged >= 0]);
    const sold = stockValues[0]!;
    log(`  stock: ${sold} of ${o.stock} sold on every node (${full.reduce((t, s) => t + s.refusedSales, 0)} sales refused for want of quota)`);
    checks.push([`never above the stock (${o.stock}) on any node`, stockValues.every((v) => v <= BigInt(o.stock))]);
    checks.push(['the same stock sold on every node', stockValues.every((v) => v === sold)]);
    checks.push(['facts were admitted and replicated', facts > 0 && lags.length > 0]);
    log('checks');
    for (const [what, ok] of checks) log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
    return checks.every(([, ok]) => ok);
  } finally {
    await Promise.all(nodes.filter((n) => n.up).map((n) => n.call('close').catch(() => undefined)));
    if (!o.keep && o.dir === undefined) rmSync(base, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[s.length >> 1]!;
}

/** Lines of a log-scale histogram of `values` (ms), one bar per bucket. */
function histogram(values: readonly number[]): string[] {
  const counts = BUCKETS.map(() => 0);
  for (const v of values) counts[BUCKETS.findIndex((b) => v < b)]!++;
  const most = Math.max(1, ...counts);
  let lower = 0;
  return BUCKETS.map((upper, i) => {
    const label = upper === Infinity ? `≥ ${lower} ms` : `${lower}–${upper} ms`;
    lower = upper;
    return `${label.padStart(12)} ${'█'.repeat(Math.round((counts[i]! / most) * 40)).padEnd(40)} ${counts[i]}`;
  });
}
