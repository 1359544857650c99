import { BoundedCounterState, BoundedGCounterInvariant, Kernel, NetworkingKernel, u64le } from 'ctfs';

const secret = process.env.CTFS_CLUSTER_SECRET ?? 'example-cluster-secret-0123456789';
const seats = Kernel.withState(new BoundedGCounterInvariant(), new BoundedCounterState(0n, 900n).toCell());
const net = await NetworkingKernel.start(seats, {
  nodeId: 'paris', peers: [], secret,                   // peers: the others' addresses, when they run
  escrow: { members: ['paris', 'tokyo', 'lima'] },      // the same on every node: 300 seats each
});
const escrow = net.escrow!;
escrow.tryAdmitSpend(u64le(2n));                       // 0 (Ok), or 16 (EscrowExhausted): never waits
escrow.admitSpend(u64le(1n));                          // the same, throwing; returns the fact's id
await escrow.admitSpendAsync(u64le(1n), [], { timeoutMs: 2_000 }); // waits for a grant if short
escrow.grant('tokyo', 50n);                            // give rights away unasked
console.log(escrow.available());                       // this node's rights now: 246n
escrow.view();                                         // every node's rights, as this replica knows them
escrow.requests();                                     // its open requests for more
escrow.stats();                                        // spends, requests, grants, denials, grant latency
escrow.digest();                                       // equal on replicas holding the same escrow facts
await net.close();
