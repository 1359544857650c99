// Ticket sales across three nodes: 900 seats split by escrow, each node selling from its own
// share at memory speed, quota moving to where the buyers are, one node cut off and healed, and
// the final tally checked on every node: never more than 900 sold.
import assert from 'node:assert/strict';
import { AdmitCode, BoundedCounterState, BoundedGCounterInvariant, EscrowError, Kernel, NetworkingKernel, toHex, u64le } from 'ctfs';

const SEATS = 900n;
const secret = process.env.CTFS_CLUSTER_SECRET ?? 'example-cluster-secret-0123456789';
const members = ['paris', 'tokyo', 'lima'];
// Every node starts from the same state (0 of 900 sold) and the same member list: they all derive
// the same escrow genesis, which splits the 900 seats evenly (300 each).
const seats = () => Kernel.withState(new BoundedGCounterInvariant(), new BoundedCounterState(0n, SEATS).toCell());
const escrow = { members, lowWater: 20n, refill: 60n };
const paris = await NetworkingKernel.start(seats(), { nodeId: 'paris', secret, escrow });
const tokyo = await NetworkingKernel.start(seats(), { nodeId: 'tokyo', peers: [paris.address], secret, escrow });
const lima = await NetworkingKernel.start(seats(), { nodeId: 'lima', peers: [paris.address, tokyo.address], secret, escrow });
const nodes = [paris, tokyo, lima];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
while (nodes.some((n) => n.peers().filter((p) => p.state === 'ready').length < 2)) await sleep(10);
console.log('shares:', nodes.map((n) => `${n.nodeId} ${n.escrow!.available()}`).join(', '));

// A sale is one fact: the seats it takes (u64), then the buyer. It uses the node's own share,
// with no network round trip: tryAdmitSpend answers at once.
const ticket = (buyer: string, count = 1n) => new Uint8Array([...u64le(count), ...new TextEncoder().encode(buyer)]);
for (let i = 0; i < 250; i++) assert.equal(paris.escrow!.tryAdmitSpend(ticket(`p${i}`)), AdmitCode.Ok);
console.log(`paris sold 250 locally; ${paris.escrow!.available()} left`);

// Lima is cut off from the others (its links closed, no redials).
lima.removePeer(paris.address);
lima.removePeer(tokyo.address);
paris.removePeer(lima.address);
tokyo.removePeer(lima.address);
while (lima.peers().some((p) => p.state === 'ready')) await sleep(10);
// Paris keeps selling: past its share, it waits for a grant from tokyo (admitSpendAsync).
for (let i = 250; i < 400; i++) await paris.escrow!.admitSpendAsync(ticket(`p${i}`), [], { timeoutMs: 5_000 });
// Lima sells from its own share while cut off: no one can oversell what lima holds.
for (let i = 0; i < 100; i++) assert.equal(lima.escrow!.tryAdmitSpend(ticket(`l${i}`)), AdmitCode.Ok);
assert.ok(!lima.peers().some((p) => p.state === 'ready'), 'lima is still cut off');
console.log(`during the partition: paris sold 400 (${paris.escrow!.stats().grantsReceived} grant(s) from tokyo), lima sold 100 on its own`);

// Heal: the links come back and everything sold anywhere reaches everyone.
lima.addPeer(paris.address);
lima.addPeer(tokyo.address);
// Now everybody rushes: sell until the cluster is sold out.
let refused: EscrowError | undefined;
const rush = async (node: NetworkingKernel, buyer: string) => {
  for (let i = 0; ; i++) {
    try {
      await node.escrow!.admitSpendAsync(ticket(`${buyer}${i}`), [], { timeoutMs: 1_000 });
    } catch (error) {
      refused = error as EscrowError;
      return;
    }
  }
};
await Promise.all([rush(paris, 'rp'), rush(tokyo, 'rt'), rush(lima, 'rl')]);
while (new Set(nodes.map((n) => toHex(n.digest()))).size > 1 || new Set(nodes.map((n) => toHex(n.escrow!.digest()))).size > 1) await sleep(20);

const sold = nodes.map((n) => BoundedCounterState.fromCell(n.kernel.state).value);
assert.ok(sold.every((v) => v === sold[0]), 'every node counts the same');
assert.ok(sold[0]! <= SEATS, 'never oversold');
console.log(`sold ${sold[0]} of ${SEATS} on every node; the next sale is refused (${refused?.code}); ledgers equal`);
console.log('final shares:', paris.escrow!.view().map((h) => `${h.node} used ${h.used[1]}`).join(', '));
await Promise.all(nodes.map((n) => n.close()));
