/**
 * ctfs side by side with what users would pick instead (`npm run bench:peers`; builds first).
 *
 * One workload (bench/peers-workload.mjs): a balance with a floor, 200-byte facts, 55% decrements,
 * a decrement below zero refused. Every system runs the same seeded sequence, for `--seconds` per
 * round, `--rounds` rounds (alternating nothing: each system's rounds run back to back, systems in
 * the order below); ops/s and latency p50/p99 are medians over the rounds.
 *
 *   ctfs, in memory            Kernel + TotalSupplyInvariant (floor 0), one caller
 *   ctfs, durable              DurableKernel: `Durable` ack per operation; group commit: one
 *                              pipelining caller awaiting `whenDurable` per 256, and 50 concurrent
 *                              callers each awaiting its fact's handle (`admitRawWithHandle`)
 *   ctfs, replicated ×3        three NetworkingKernels on loopback (TLS 1.3 PSK), the floor held
 *                              across nodes by escrow; operations spread over the nodes
 *   Redis 7                    redis-server started here; a Lua script does the floor check;
 *                              appendfsync always and everysec; 1 and 50 clients
 *   SQLite (better-sqlite3)    WAL, synchronous=FULL; a transaction per operation, and batched
 *   Automerge 3, Yjs           a counter CRDT: one replica (a local check), and three replicas
 *                              merging every 64 operations each, where no floor can be enforced:
 *                              the merged balance's breaches are counted
 *
 * Every row says what was verified (final balance and accepted count against the expected ones,
 * facts stored, digests). A failed check prints FAIL and the run exits 1. Writes
 * docs/bench/peers.md (the table), peers-throughput.svg and peers-latency.svg, all from this run.
 *
 *   node bench/peers.mjs [--seconds 1.5] [--rounds 3] [--clients 50] [--only <regex>] [--out docs/bench]
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { START, amountOf, amounts, expected, factBuffer, writeFact } from './peers-workload.mjs';
import { FLOOR_SCRIPT, RedisServer, redisVersion } from './peers-redis.mjs';
import { barChart } from './peers-svg.mjs';

const lib = await import(new URL('../dist/index.js', import.meta.url).href);
const { AckMode, AdmitCode, ConservationState, DurableKernel, Kernel, NetworkingKernel, TotalSupplyInvariant, factId, bytesEqual } = lib;
const require = createRequire(import.meta.url);

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '1.5' },
    rounds: { type: 'string', default: '3' },
    clients: { type: 'string', default: '50' },
    only: { type: 'string' },
    out: { type: 'string', default: new URL('../docs/bench', import.meta.url).pathname },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CLIENTS = Number(values.clients);
const ONLY = values.only === undefined ? undefined : new RegExp(values.only, 'i');
/** In a synchronous loop, one operation in this many is timed (a clock read costs ~30 ns). */
const SAMPLE_EVERY = 16;
/** Merge the CRDT replicas after each has applied this many operations. */
const MERGE_EVERY = 64;
/** Operations per transaction in the batched SQLite configuration. */
const SQLITE_BATCH = 1000;
/** Operations a pipelining caller admits before it awaits their durability. */
const PIPELINE = 256;

const deltas = amounts();
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const now = () => performance.now();
const dirs = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ctfs-bench-peers-'));
  dirs.push(d);
  return d;
};
const floorState = () => new ConservationState(BigInt(START), 0n).toBytes();
const balanceOf = (kernel) => Number(ConservationState.fromCell(kernel.state).balance);

/** Latency samples in ms; `add` keeps the last 2^20. */
class Samples {
  #a = new Float64Array(1 << 20);
  #n = 0;
  add(ms) {
    this.#a[this.#n++ & ((1 << 20) - 1)] = ms;
  }
  percentiles() {
    const s = this.#a.slice(0, Math.min(this.#n, 1 << 20)).sort();
    const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
    return { p50: at(0.5), p99: at(0.99) };
  }
}

/**
 * One round of one configuration: operation numbers, outcomes, latency samples, and when to stop.
 * `next()` hands out the next operation's number; `running` says whether the time is not up.
 */
class Round {
  samples = new Samples();
  ops = 0;
  accepted = 0;
  acceptedSum = 0;
  /** Outcomes that are neither an acceptance nor a floor refusal (must stay 0). */
  other = 0;
  t0 = now();
  end = this.t0 + SECONDS * 1000;
  /** When the operations ended (`stop()`), if cleanup or convergence follows before `result`. */
  stopped = undefined;

  get running() {
    return now() < this.end;
  }
  next() {
    return this.ops++;
  }
  accept(amount) {
    this.accepted++;
    this.acceptedSum += amount;
  }
  stop() {
    this.stopped = now();
  }
  /** The round's figures: elapsed until `stop()`, or until now. */
  result(check, extra = {}) {
    return { ops: this.ops, elapsed: (this.stopped ?? now()) - this.t0, samples: this.samples, check, ...extra };
  }
}

/**
 * A check of a round's outcome: `ok`, and what was compared. One failed check fails the run.
 */
const check = (ok, text) => ({ ok, text });
/** The single-caller check: the final balance and the accepted count equal a central store's. */
function sequentialCheck(n, balance, accepted) {
  const e = expected(deltas, n);
  return check(balance === e.balance && accepted === e.accepted, `balance ${balance} (expected ${e.balance}), accepted ${accepted} of ${n} (expected ${e.accepted})`);
}

const configurations = [];
/**
 * A configuration: `key` names a ctfs one; `versus` names the ctfs configuration another system's
 * is compared with (the one that gives the same guarantee to the same kind of caller).
 */
const define = (system, mode, run, notes = {}) => configurations.push({ system, mode, run, ...notes });

/**
 * One synchronous admission of the round's next operation through `admit(fact, i)` (an AdmitCode
 * back): Ok accepts it, `refusal` is the floor's answer, anything else is counted as other.
 */
function admitNext(round, fact, admit, refusal) {
  const i = round.next();
  const d = amountOf(deltas, i);
  writeFact(fact, i, d);
  const code = admit(fact, i);
  if (code === AdmitCode.Ok) round.accept(d);
  else if (code !== refusal) round.other++;
}

/**
 * The asynchronous kind, every operation timed: `admit(fact, i, amount)` resolves to true
 * (accepted), false (the floor refused it) or anything else (counted as other).
 */
async function timedAsyncAdmission(round, fact, admit) {
  const s = now();
  const i = round.next();
  const d = amountOf(deltas, i);
  writeFact(fact, i, d);
  const outcome = await admit(fact, i, d);
  if (outcome === true) round.accept(d);
  else if (outcome !== false) round.other++;
  round.samples.add(now() - s);
}

/** `admitNext`, timing one operation in `every` (a power of two). */
function sampledAdmission(round, fact, admit, refusal, every = SAMPLE_EVERY) {
  const timed = (round.ops & (every - 1)) === 0;
  const s = timed ? now() : 0;
  admitNext(round, fact, admit, refusal);
  if (timed) round.samples.add(now() - s);
}

// ---------------------------------------------------------------------------------------- ctfs
define('ctfs', 'in memory, 1 caller', async () => {
  const kernel = Kernel.withState(new TotalSupplyInvariant(), floorState());
  const admit = (fact) => kernel.tryAdmitRaw(factId([], fact), [], fact);
  const fact = factBuffer();
  const round = new Round();
  do {
    for (let k = 0; k < 1024; k++) sampledAdmission(round, fact, admit, AdmitCode.InvariantViolation);
  } while (round.running);
  const c = sequentialCheck(round.ops, balanceOf(kernel), round.accepted);
  return round.result(check(c.ok && round.other === 0 && kernel.size === round.accepted, `${c.text}; ${kernel.size} facts held; ${round.other} other outcomes`));
}, { key: 'memory' });

/**
 * Opens a durable kernel in a new directory and runs `body(kernel, round)`, which stops the
 * round when its operations end; then reopens the directory to check what survived.
 */
async function durableRound(body) {
  const dir = tempDir();
  const kernel = await DurableKernel.open(dir, new TotalSupplyInvariant(), { initialState: floorState() });
  const round = new Round();
  await body(kernel, round);
  await kernel.close();
  const reopened = await DurableKernel.open(dir, new TotalSupplyInvariant());
  const balance = balanceOf(reopened);
  const facts = reopened.size;
  await reopened.close();
  rmSync(dir, { recursive: true, force: true });
  const c = sequentialCheck(round.ops, balance, round.accepted);
  return round.result(check(c.ok && round.other === 0 && facts === round.accepted, `after reopening: ${c.text}; ${facts} facts recovered; ${round.other} other outcomes`));
}

define('ctfs', 'durable, Durable ack, 1 caller', () =>
  durableRound(async (kernel, round) => {
    const fact = factBuffer();
    const admit = (f) => kernel.tryAdmitRaw(factId([], f), [], f, AckMode.Durable);
    while (round.running) sampledAdmission(round, fact, admit, AdmitCode.InvariantViolation, 1);
    round.stop();
  }),
  { key: 'durable-ack' },
);

define('ctfs', `durable, group commit, 1 pipelining caller (${PIPELINE} in flight, then whenDurable)`, () =>
  durableRound(async (kernel, round) => {
    const fact = factBuffer();
    const admit = (f) => kernel.tryAdmitRaw(factId([], f), [], f);
    const started = new Float64Array(PIPELINE);
    while (round.running) {
      for (let k = 0; k < PIPELINE; k++) {
        started[k] = now();
        admitNext(round, fact, admit, AdmitCode.InvariantViolation);
      }
      await kernel.whenDurable(kernel.lastSequence);
      const t = now();
      for (let k = 0; k < PIPELINE; k++) round.samples.add(t - started[k]);
    }
    round.stop();
  }),
  { key: 'durable-pipelined' },
);

define('ctfs', `durable, group commit, ${CLIENTS} concurrent callers (a handle each)`, () =>
  durableRound(async (kernel, round) => {
    // Admission is synchronous, so operations are admitted in the order they are numbered: the
    // single-caller expectation holds for any number of callers.
    // As an application would write it: a handle per fact, its promise awaited; a refusal is an
    // AdmitError thrown at once (nothing to wait for: nothing changed).
    const admit = (fact) => {
      let handle;
      try {
        handle = kernel.admitRawWithHandle(factId([], fact), [], fact);
      } catch (error) {
        return error?.admitCode === AdmitCode.InvariantViolation ? false : undefined;
      }
      return handle.durable().then(() => true);
    };
    const caller = async () => {
      const fact = factBuffer();
      while (round.running) await timedAsyncAdmission(round, fact, admit);
    };
    await Promise.all(Array.from({ length: CLIENTS }, caller));
    round.stop();
  }),
  { key: 'durable-concurrent' },
);

define(
  'ctfs',
  'replicated ×3 (escrow), 1 caller per node, until converged',
  async () => {
    const secret = 'side-by-side-benchmark-secret';
    const escrow = { members: ['a', 'b', 'c'] };
    const nodes = [];
    for (const id of escrow.members) {
      nodes.push(await NetworkingKernel.start(Kernel.withState(new TotalSupplyInvariant(), floorState()), { nodeId: id, secret, escrow, peers: nodes.map((n) => n.address) }));
    }
    while (nodes.some((n) => n.peers().filter((p) => p.state === 'ready').length < 2)) await new Promise((r) => setTimeout(r, 10));
    const admit = (fact, i) => nodes[i % 3].escrow.tryAdmitSpend(fact);
    const fact = factBuffer();
    const round = new Round();
    while (round.running) {
      // The three nodes share this thread: yield so each one's replication and quota requests run.
      for (let k = 0; k < 256; k++) sampledAdmission(round, fact, admit, AdmitCode.EscrowExhausted);
      await new Promise((r) => setImmediate(r));
    }
    const { ops, accepted, acceptedSum, other } = round;
    const elapsed = now() - round.t0;
    const converging = now();
    const same = () => nodes.every((n) => bytesEqual(n.digest(), nodes[0].digest()));
    while (!same() && now() - converging < 60_000) await new Promise((r) => setTimeout(r, 5));
    const convergedMs = now() - converging;
    const balances = nodes.map((n) => balanceOf(n.kernel));
    const ledgers = nodes.every((n) => bytesEqual(n.escrow.digest(), nodes[0].escrow.digest()));
    await Promise.all(nodes.map((n) => n.close()));
    const central = expected(deltas, ops);
    const ok = same() && ledgers && other === 0 && balances.every((b) => b === START + acceptedSum && b >= 0);
    // ops/s counts until every node has everything: the round ends at convergence.
    return round.result(
      check(
        ok, `every node's balance ${balances.join(' = ')} = ${START} + the accepted amounts (${acceptedSum}), never below 0; digests and escrow ledgers equal ${convergedMs.toFixed(0)} ms after the last operation (admitted at ${fmtRate(ops / (elapsed / 1000))} ops/s; the rate shown counts until every node has everything); accepted ${accepted} of ${ops} (a central store applying them in order: ${central.accepted}; a node refuses a decrement its escrow share cannot cover); ${other} other outcomes`,
      ),
      { convergedMs },
    );
  },
  { key: 'replicated', note: 'a node refuses a decrement its own escrow share cannot cover, even when another node has room' },
);

// --------------------------------------------------------------------------------------- Redis
const redis = redisVersion();
for (const appendfsync of ['always', 'everysec']) {
  for (const clients of [1, CLIENTS]) {
    define(
      `Redis ${redis ?? '(not installed)'}`,
      `appendfsync ${appendfsync}, ${clients} client${clients === 1 ? '' : 's'}`,
      async () => {
        const { createClient } = await import('@redis/client');
        const server = await RedisServer.start(appendfsync);
        const connections = [];
        try {
          for (let c = 0; c < clients; c++) {
            const client = createClient({ socket: { host: '127.0.0.1', port: server.port } });
            client.on('error', () => {}); // surfaced by the command that fails
            await client.connect();
            connections.push(client);
          }
          const admin = connections[0];
          await admin.set('balance', String(START));
          // PEERS_BENCH_BREAK_FLOOR=1 drops the floor check: the harness's own test shows its checks catch that.
          const script = process.env.PEERS_BENCH_BREAK_FLOOR === '1' ? FLOOR_SCRIPT.replace('if b + d < 0 then return -1 end', '') : FLOOR_SCRIPT;
          const sha = await admin.scriptLoad(script);
          const round = new Round();
          // With 50 clients the server's order is not the numbering: check against the sum of
          // what it accepted, and that it never went below the floor (the script refuses that).
          // The script answers the balance (accepted), -1 (below the floor) or -2 (seen before).
          const admit = async (client, fact, i, d) => {
            const r = Number(await client.sendCommand(['EVALSHA', sha, '2', 'balance', `f:${i}`, String(d), Buffer.from(fact)]));
            return r >= 0 ? true : r === -1 ? false : undefined;
          };
          const caller = async (client) => {
            const fact = factBuffer();
            while (round.running) await timedAsyncAdmission(round, fact, (f, i, d) => admit(client, f, i, d));
          };
          await Promise.all(connections.map(caller));
          round.stop();
          const { ops, accepted, acceptedSum, other } = round;
          const balance = Number(await admin.get('balance'));
          const stored = Number(await admin.dbSize()) - 1;
          const c = clients === 1 ? sequentialCheck(ops, balance, accepted) : check(balance === START + acceptedSum && balance >= 0, `balance ${balance} = ${START} + the accepted amounts (${acceptedSum}), not below 0; accepted ${accepted} of ${ops}`);
          return round.result(check(c.ok && other === 0 && stored === accepted, `${c.text}; ${stored} facts stored; ${other} other outcomes`));
        } finally {
          await Promise.all(connections.map((c) => c.quit().catch(() => {})));
          await server.stop();
        }
      },
      {
        unavailable: redis === undefined ? 'redis-server is not installed (.ci/run installs it; or apt-get install redis-server)' : undefined,
        // everysec acknowledges before the fsync, as a durable kernel's admission does before its group commit.
        versus: appendfsync === 'always' ? (clients === 1 ? 'durable-ack' : 'durable-concurrent') : 'durable-pipelined',
      },
    );
  }
}

// -------------------------------------------------------------------------------------- SQLite
for (const batch of [1, SQLITE_BATCH]) {
  define(`SQLite ${sqliteVersion() ?? ''}`.trim(), batch === 1 ? 'WAL, synchronous=FULL, a transaction per operation' : `WAL, synchronous=FULL, ${batch} operations per transaction`, async () => {
    const Database = require('better-sqlite3');
    const dir = tempDir();
    const db = new Database(join(dir, 'peers.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`CREATE TABLE balance (k INTEGER PRIMARY KEY, v INTEGER NOT NULL); CREATE TABLE facts (id INTEGER PRIMARY KEY, body BLOB NOT NULL); INSERT INTO balance VALUES (0, ${START});`);
    const get = db.prepare('SELECT v FROM balance WHERE k = 0').pluck();
    const set = db.prepare('UPDATE balance SET v = ? WHERE k = 0');
    const put = db.prepare('INSERT INTO facts (id, body) VALUES (?, ?)');
    const fact = factBuffer();
    const round = new Round();
    const started = new Float64Array(batch);
    const run = db.transaction(() => {
      for (let k = 0; k < batch; k++) {
        started[k] = now();
        const i = round.next();
        const d = amountOf(deltas, i);
        writeFact(fact, i, d);
        const b = get.get();
        if (d < 0 && b + d < 0) continue;
        set.run(b + d);
        put.run(i, fact);
        round.accept(d);
      }
    });
    while (round.running) {
      run();
      const t = now();
      for (let k = 0; k < batch; k++) round.samples.add(t - started[k]);
    }
    round.stop();
    const balance = get.get();
    const stored = db.prepare('SELECT count(*) FROM facts').pluck().get();
    db.close();
    const c = sequentialCheck(round.ops, balance, round.accepted);
    return round.result(check(c.ok && stored === round.accepted, `${c.text}; ${stored} facts stored`));
  }, { versus: batch === 1 ? 'durable-ack' : 'durable-pipelined' });
}

function sqliteVersion() {
  try {
    const Database = require('better-sqlite3');
    const db = new Database(':memory:');
    const v = db.prepare('SELECT sqlite_version()').pluck().get();
    db.close();
    return v;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------ Automerge, Yjs
/**
 * A counter CRDT behind four operations, so both libraries run the same two configurations:
 * `replica()` makes one, `add(r, d)` changes it, `value(r)` reads it, `merge(a, b)` brings b's
 * changes into a (and returns a).
 */
const crdts = {
  'Automerge 3': async () => {
    const A = await import('@automerge/automerge');
    const base = A.from({ balance: new A.Counter(START) });
    return {
      replica: () => ({ doc: A.clone(base) }),
      add: (r, d) => {
        r.doc = A.change(r.doc, (x) => x.balance.increment(d));
      },
      value: (r) => r.doc.balance.value,
      merge: (a, b) => {
        a.doc = A.merge(a.doc, b.doc);
      },
    };
  },
  Yjs: async () => {
    const Y = await import('yjs');
    // A PN-counter on a Y.Map: each replica adds to its own key; the value is the sum.
    return {
      replica: () => {
        const doc = new Y.Doc();
        return { doc, map: doc.getMap('balance'), key: String(doc.clientID) };
      },
      add: (r, d) => r.map.set(r.key, (r.map.get(r.key) ?? 0) + d),
      value: (r) => {
        let sum = START;
        for (const v of r.map.values()) sum += v;
        return sum;
      },
      merge: (a, b) => Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc, Y.encodeStateVector(a.doc))),
    };
  },
};

/**
 * One operation on replica `r`, checked against that replica's own view (the best a CRDT can do:
 * it knows nothing of what the other replicas did since the last merge), timed.
 */
function crdtOperation(crdt, r, round) {
  const s = now();
  const d = amountOf(deltas, round.next());
  if (d > 0 || crdt.value(r) + d >= 0) {
    crdt.add(r, d);
    round.accept(d);
  }
  round.samples.add(now() - s);
}

for (const [name, make] of Object.entries(crdts)) {
  define(
    name,
    '1 replica, local floor check',
    async () => {
      const crdt = await make();
      const r = crdt.replica();
      const round = new Round();
      while (round.running) crdtOperation(crdt, r, round);
      round.stop();
      const c = sequentialCheck(round.ops, crdt.value(r), round.accepted);
      return round.result(check(c.ok, `${c.text} (a counter only: the 200-byte facts are not stored)`));
    },
    { versus: 'memory' },
  );
  define(
    name,
    `3 replicas, local checks, merging every ${MERGE_EVERY} ops each`,
    async () => {
      const crdt = await make();
      const replicas = [crdt.replica(), crdt.replica(), crdt.replica()];
      const round = new Round();
      let merges = 0;
      let breaches = 0;
      let lowest = START;
      while (round.running) {
        for (let k = 0; k < 3 * MERGE_EVERY; k++) crdtOperation(crdt, replicas[round.ops % 3], round);
        // Everyone learns everything, as a sync round would do.
        for (const a of replicas) for (const b of replicas) if (a !== b) crdt.merge(a, b);
        merges++;
        const merged = crdt.value(replicas[0]);
        if (merged < 0) breaches++;
        lowest = Math.min(lowest, merged);
      }
      round.stop();
      const values_ = replicas.map((r) => crdt.value(r));
      const converged = values_.every((v) => v === START + round.acceptedSum);
      return round.result(
        check(converged, `replicas converge on ${values_[0]} = ${START} + the accepted amounts; the floor is not enforceable: ${breaches} of ${merges} merges ended below 0 (lowest ${lowest})`),
        { breaches: { merges, breaches, lowest } },
      );
    },
    { versus: 'replicated', note: 'no floor across replicas: each checks its own view, the merge can go below zero' },
  );
}

// ----------------------------------------------------------------------------------- the run
const selected = configurations.filter((c) => ONLY === undefined || ONLY.test(`${c.system} ${c.mode}`));
console.log(`side by side: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}; ${ROUNDS} rounds of ${SECONDS} s per configuration; 200-byte facts, floor 0, start ${START}`);
const results = [];
let failed = false;
for (const c of selected) {
  const label = `${c.system}: ${c.mode}`;
  if (c.unavailable !== undefined) {
    console.log(`\n${label}\n   skipped: ${c.unavailable}`);
    results.push({ ...c, skipped: c.unavailable });
    failed = true;
    continue;
  }
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const out = await c.run();
    const { p50, p99 } = out.samples.percentiles();
    rounds.push({ opsPerSecond: out.ops / (out.elapsed / 1000), p50, p99, ops: out.ops, check: out.check, breaches: out.breaches, convergedMs: out.convergedMs });
    if (!out.check.ok) failed = true;
  }
  const row = {
    key: c.key,
    versus: c.versus,
    system: c.system,
    mode: c.mode,
    note: c.note,
    opsPerSecond: median(rounds.map((r) => r.opsPerSecond)),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    rounds,
  };
  results.push(row);
  console.log(`\n${label}`);
  console.log(`   ${fmtRate(row.opsPerSecond)} ops/s (rounds: ${rounds.map((r) => fmtRate(r.opsPerSecond)).join(', ')}); latency p50 ${fmtMs(row.p50)}, p99 ${fmtMs(row.p99)}`);
  for (const [k, r] of rounds.entries()) console.log(`   round ${k + 1} ${r.check.ok ? 'ok  ' : 'FAIL'} ${r.check.text}`);
}

function ratioText(x) {
  return x >= 10 ? `${x.toFixed(0)}×` : x >= 1 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`;
}
function fmtRate(v) {
  return v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0);
}
function fmtMs(ms) {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(ms >= 0.01 ? 0 : 2)} µs`;
}

// Ratios to the ctfs configuration that gives the same guarantee, in this run.
const measured = results.filter((r) => r.skipped === undefined);
const base = (r) => measured.find((x) => x.key !== undefined && x.key === r.versus);
const lines = [];
lines.push(`| system | configuration | ops/s | p50 | p99 | ctfs ÷ it (ops/s) | verified |`);
lines.push(`|---|---|---:|---:|---:|---:|---|`);
for (const r of measured) {
  const b = r.system === 'ctfs' ? undefined : base(r);
  const ratio = b === undefined ? '' : `${ratioText(b.opsPerSecond / r.opsPerSecond)} (vs ${b.mode.replace(/ \([^)]*\)$/, '')})`;
  const last = r.rounds[r.rounds.length - 1].check;
  lines.push(`| ${r.system} | ${r.mode} | ${fmtRate(r.opsPerSecond)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${ratio} | ${r.rounds.every((x) => x.check.ok) ? '✔' : '✘'} ${last.text.replace(/\|/g, '/')} |`);
}
const table = lines.join('\n');
console.log(`\n${table}`);

if (ONLY === undefined) {
  mkdirSync(values.out, { recursive: true });
  const labels = measured.map((r) => `${r.system}: ${r.mode}`.replace(/, a transaction per operation/, ', tx per op').replace(/ \(escrow\), 1 caller per node, until converged/, ' (escrow), until converged'));
  const ctfsColor = '#1f6feb';
  const otherColor = '#d97706';
  writeFileSync(
    join(values.out, 'peers-throughput.svg'),
    barChart({
      title: `Balance with a floor, 200-byte facts: operations per second (median of ${ROUNDS})`,
      axis: 'operations per second',
      series: [{ name: 'ops/s', color: ctfsColor }],
      legend: [{ name: 'ctfs', color: ctfsColor }, { name: 'the others', color: otherColor }],
      rows: measured.map((r, k) => ({ label: labels[k], values: [r.opsPerSecond], colors: [r.system === 'ctfs' ? ctfsColor : otherColor] })),
      format: (v) => fmtRate(v).replace(' ', ''),
    }),
  );
  writeFileSync(
    join(values.out, 'peers-latency.svg'),
    barChart({
      title: `Latency per operation (median of ${ROUNDS} rounds' percentiles)`,
      axis: 'latency',
      series: [{ name: 'p50', color: '#60a5fa' }, { name: 'p99', color: '#1e3a8a' }],
      rows: measured.map((r, k) => ({ label: labels[k], values: [r.p50, r.p99] })),
      format: (v) => (v >= 1 ? `${+v.toPrecision(3)} ms` : `${+(v * 1000).toPrecision(3)} µs`),
    }),
  );
  const stamp = new Date().toISOString().slice(0, 10);
  writeFileSync(
    join(values.out, 'peers.md'),
    `<!-- written by bench/peers.mjs on ${stamp}: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}; ${ROUNDS} rounds of ${SECONDS} s -->\n${table}\n`,
  );
  writeFileSync(join(values.out, 'peers.json'), JSON.stringify({ date: stamp, node: process.version, cpus: cpus().length, rounds: ROUNDS, seconds: SECONDS, results: measured.map(({ run, ...r }) => r) }, null, 1));
  console.log(`\nwrote ${join(values.out, 'peers.md')}, peers-throughput.svg, peers-latency.svg, peers.json`);
}

for (const d of dirs) rmSync(d, { recursive: true, force: true });
if (failed) {
  console.log('\nFAIL: a check failed or a system was missing (see above)');
  process.exitCode = 1;
}
