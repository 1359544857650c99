import { FactBatch, KernelPool, createFact, u64le } from 'ctfs';

const pool = await KernelPool.create({ shards: 8, threads: 2, invariant: { builtin: 'GCounter' } });
const shard = pool.shardOf('account-42');                  // or pool.shardOfTenant(7)
const batch = new FactBatch();                             // facts packed in shared memory
batch.push(createFact([], u64le(5n)));
const { codes } = await pool.admitBatchAsync(shard, batch); // one AdmitCode per fact, 0 = Ok
console.log(codes[0], pool.snapshotOf(shard).size);        // the shard's published state, read right here
await pool.close();
