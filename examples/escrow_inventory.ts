// Inventory split across three nodes by escrow: each sells from its own share without asking
// anyone, asks a peer for more when it runs out, and the nodes together never oversell.
import assert from 'node:assert/strict';
import { EscrowError, EscrowManager, PendingQuotaRequests } from 'ctfs';

const STOCK = 1_000n;
const ledger = new EscrowManager(STOCK);
ledger.initialize(['paris', 'tokyo', 'lima']);
console.log('shares:', ledger.nodes().map((n) => `${n} ${ledger.available(n)}`).join(', '));

// Local sales: no coordination while a node has quota.
for (const [node, qty] of [['paris', 300n], ['tokyo', 150n], ['paris', 30n]] as const) ledger.consume(node, qty);
console.log('after local sales:', ledger.nodes().map((n) => `${n} ${ledger.available(n)} left`).join(', '));

// Paris is out of stock for an order of 50: it asks peers, with backoff, until one grants.
assert.equal(ledger.tryConsume('paris', 50n), false);
const requests = new PendingQuotaRequests();
let now = 0;
requests.open('paris-1', 50n, now);
const peer = requests.selectPeer('paris-1', ['tokyo', 'lima'])!;
requests.recordAttempt('paris-1', peer, now);
now += 120; // the grant arrives…
const granted = requests.grant('paris-1', peer);
assert.equal(granted.status, 'applied');
if (granted.status === 'applied') ledger.transfer(peer, 'paris', granted.request.amount);
assert.equal(requests.grant('paris-1', peer).status, 'duplicate'); // …and a resent copy of it is ignored
ledger.consume('paris', 50n);
console.log(`paris got 50 from ${peer} and sold them`);

// Selling beyond the global stock is impossible: every node's quota is exhausted eventually.
let sold = ledger.totalUsed();
for (const node of ledger.nodes()) {
  const rest = ledger.available(node);
  if (rest > 0n) ledger.consume(node, rest);
  sold = ledger.totalUsed();
}
try {
  ledger.consume('lima', 1n);
  assert.fail('must not oversell');
} catch (err) {
  assert.ok(err instanceof EscrowError && err.code === 'InsufficientEscrow');
}
assert.equal(sold, STOCK);
assert.equal(ledger.totalAllocated(), STOCK);
console.log(`sold ${sold} of ${STOCK}; one more is refused (InsufficientEscrow)`);
