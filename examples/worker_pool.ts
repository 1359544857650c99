// A sharded ledger on the worker pool: accounts are routed to 8 shards, each shard keeps a balance
// that may never go negative, and two pool threads admit batches into the shards in parallel.
// Then the example checks itself: every shard's history equals a single-threaded replay of the
// same batches (same digest), and a fact routed to the wrong shard is refused with a clear code.
//
//   node build/examples/worker_pool.js            (CTFS_DEMO_FACTS=100000 by default)
import {
  AdmitCode,
  ConservationState,
  FactBatch,
  I128_MAX,
  Kernel,
  KernelPool,
  TotalSupplyInvariant,
  admitCodeName,
  createFact,
  toHex,
  type FactId,
} from 'ctfs';

const FACTS = Number(process.env.CTFS_DEMO_FACTS ?? 100_000);
const SHARDS = 8;
const ACCOUNTS = 1_000;
const BATCH = 1_024;

// Every shard starts with a float of 1,000,000 and can never go below 0.
const opening = new ConservationState(1_000_000n, 0n, I128_MAX).toCell();
const pool = await KernelPool.create({
  shards: SHARDS,
  threads: 2,
  invariant: { builtin: 'TotalSupply' },
  initialState: opening,
  indexCapacity: FACTS,
});

// Each account's deposits form a causal chain (each depends on the account's previous deposit),
// and every withdrawal depends on the latest deposit, so an account must live in exactly one
// shard: route by account. A withdrawal may be refused, so nothing is built on top of one.
const last = new Map<number, FactId>();
const batches: FactBatch[][] = Array.from({ length: SHARDS }, () => []);
let seed = 12345;
const random = (n: number): number => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed % n;
};
const memo = new Uint8Array(8);
for (let i = 0; i < FACTS; i++) {
  const account = random(ACCOUNTS);
  const shard = pool.shardOf(`acct-${account}`);
  // Mostly deposits; withdrawals are large enough that some would overdraw their shard.
  const deposit = random(10) < 7;
  const amount = deposit ? BigInt(1 + random(100)) : -BigInt(1 + random(20_000));
  // The transfer number as the memo: two transfers of equal amount are still two facts.
  new DataView(memo.buffer).setUint32(0, i, true);
  const prev = last.get(account);
  const fact = createFact(prev === undefined ? [] : [prev], TotalSupplyInvariant.payload(amount, memo));
  if (deposit) last.set(account, fact.id);
  const list = batches[shard]!;
  if (list.length === 0 || list[list.length - 1]!.length === BATCH) list.push(new FactBatch(BATCH));
  list[list.length - 1]!.push(fact);
}

// Submit everything at once: each shard's batches are admitted in submission order, shards in
// parallel. A refused withdrawal is a code in the result, not an exception.
const started = performance.now();
const results = await Promise.all(batches.map((list, shard) => Promise.all(list.map((batch) => pool.admitBatchAsync(shard, batch)))));
const elapsed = performance.now() - started;
const tally = new Map<string, number>();
for (const shardResults of results) {
  for (const { codes } of shardResults) {
    for (const code of codes) {
      const name = code === AdmitCode.Ok ? 'Ok' : admitCodeName(code);
      tally.set(name, (tally.get(name) ?? 0) + 1);
    }
  }
}
console.log(`${FACTS.toLocaleString('en-US')} transfers over ${SHARDS} shards on ${pool.threads} pool threads in ${elapsed.toFixed(0)} ms`);
console.log(`outcomes: ${[...tally].map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ')}`);

// Read every shard's balance from shared memory: no message to the pool threads.
for (let s = 0; s < SHARDS; s++) {
  const { state, size } = pool.snapshotOf(s);
  console.log(`shard ${s}: ${size.toLocaleString('en-US')} facts, balance ${ConservationState.fromCell(state).balance}`);
}

// Exactness: replay the same batches, in the same order, into one single-threaded kernel per shard.
let identical = 0;
for (let s = 0; s < SHARDS; s++) {
  const reference = Kernel.withState(new TotalSupplyInvariant(), opening, { indexCapacity: FACTS });
  for (const batch of batches[s]!) reference.admitBatch(batch);
  const { digest } = await pool.digestAsync(s);
  if (toHex(digest) === toHex(reference.digest())) identical++;
}
console.log(`digests of all ${SHARDS} shards equal a single-threaded replay: ${identical === SHARDS ? 'yes' : `NO (${identical})`}`);

// A transfer that depends on an account of another shard is refused, with a code that says why.
const [a, b] = [0, 1].map((n) => {
  for (let account = 0; ; account++) if (pool.shardOf(`acct-${account}`) === n && last.has(account)) return account;
});
const misrouted = createFact([last.get(a!)!], TotalSupplyInvariant.payload(1n));
const { codes } = pool.admitBatchSync(pool.shardOf(`acct-${b}`), [misrouted]);
console.log(`a dependency across shards is refused: ${admitCodeName(codes[0]!)}`);

await pool.close();
if (identical !== SHARDS || codes[0] !== AdmitCode.CrossShardDependency) process.exit(1);
