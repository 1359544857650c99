// The main demo: a treasury ledger admitting a million content-addressed transfers with causal
// dependencies, hostile input mixed in, and a second replica that admits the same facts in a
// different causal order and must end with identical state bytes.
import assert from 'node:assert/strict';
import {
  AdmitCode,
  ConservationState,
  FactIdMismatchError,
  Kernel,
  TotalSupplyInvariant,
  admitCodeName,
  bytesEqual,
  createFact,
  decodeFact,
  encodeFact,
  i128le,
  u64le,
  type Fact,
} from 'ctfs';

const FACTS = Number(process.env.CTFS_DEMO_FACTS ?? 1_000_000);
const WINDOW = 64; // each transfer depends on one of the 64 transfers before it

let seed = 0x2545f491;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}

const elapsedMs = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

console.log(`ctfs ledger demo: ${FACTS.toLocaleString()} transfers, each depending on a recent one\n`);

// 1. Create the facts: ids are BLAKE3 content addresses of (deps, payload).
let start = process.hrtime.bigint();
const facts: Fact[] = [];
const parent = new Int32Array(FACTS).fill(-1);
let expected = 0n;
for (let i = 0; i < FACTS; i++) {
  const delta = BigInt(Math.floor(random() * 200) - 50); // drifts upward: overdrafts stay rare
  let deps: Uint8Array[] = [];
  if (i > 0) {
    parent[i] = Math.max(0, i - 1 - Math.floor(random() * WINDOW));
    deps = [facts[parent[i]!]!.id];
  }
  facts.push(createFact(deps, TotalSupplyInvariant.payload(delta, u64le(i)))); // the nonce keeps equal transfers distinct
  expected += delta;
  if ((i + 1) % 250_000 === 0) console.log(`  created ${(i + 1).toLocaleString()} facts`);
}
let ms = elapsedMs(start);
console.log(`created and content-addressed ${FACTS.toLocaleString()} facts in ${ms.toFixed(0)} ms (${(ms * 1e6 / FACTS).toFixed(0)} ns/fact)\n`);

// 2. Admit them on replica A. Wide bounds, so no transfer is refused and replicas can converge.
const initial = new ConservationState(0n, -(1n << 100n), 1n << 100n).toCell();
const replicaA = Kernel.withState(new TotalSupplyInvariant(), initial, { indexCapacity: FACTS + 1024 });
start = process.hrtime.bigint();
for (let i = 0; i < FACTS; i++) {
  const f = facts[i]!;
  const code = replicaA.tryAdmitRaw(f.id, f.deps, f.payload);
  if (code !== AdmitCode.Ok) throw new Error(`fact ${i} rejected: ${admitCodeName(code)}`);
  if ((i + 1) % 250_000 === 0) console.log(`  admitted ${(i + 1).toLocaleString()}`);
}
ms = elapsedMs(start);
console.log(`replica A admitted ${FACTS.toLocaleString()} facts in ${ms.toFixed(0)} ms: ${(ms * 1e6 / FACTS).toFixed(0)} ns/fact, ${((FACTS / ms) * 1000 / 1e6).toFixed(2)} M facts/s`);
const balanceA = ConservationState.fromCell(replicaA.state).balance;
console.log(`balance ${balanceA} (expected ${expected})\n`);
assert.equal(balanceA, expected);

// 3. Hostile input: every kind is rejected with its code, and nothing changes.
const before = replicaA.state.toBytes();
const tally = new Map<string, number>();
const note = (code: number): void => {
  const name = code === AdmitCode.Ok ? 'Ok' : admitCodeName(code);
  tally.set(name, (tally.get(name) ?? 0) + 1);
};
for (let i = 0; i < 10_000; i++) {
  const f = facts[Math.floor(random() * FACTS)]!;
  note(replicaA.tryAdmitRaw(f.id, f.deps, f.payload)); // duplicate
  const phantom = createFact([], i128le(BigInt(-1 - i))).id;
  const orphan = createFact([phantom], i128le(1n));
  note(replicaA.tryAdmitRaw(orphan.id, orphan.deps, orphan.payload)); // never-admitted dep
  note(replicaA.tryAdmitRaw(orphan.id, [f.id], new Uint8Array(7))); // payload too short for a delta
}
console.log('hostile input:', [...tally].map(([k, v]) => `${k} ${v}`).join(', '));
assert.ok(bytesEqual(replicaA.state.toBytes(), before));
assert.equal(tally.get('Ok'), undefined);

const wire = encodeFact(facts[42]!);
wire[wire.length - 1]! ^= 1;
try {
  decodeFact(wire);
  assert.fail('a tampered fact must not decode');
} catch (err) {
  assert.ok(err instanceof FactIdMismatchError);
  console.log(`tampered wire bytes -> ${err.code}\n`);
}

// 4. Replica B admits the same facts in another causal order (a random topological order).
const children: number[][] = Array.from({ length: FACTS }, () => []);
for (let i = 1; i < FACTS; i++) children[parent[i]!]!.push(i);
const ready = [0];
const order: number[] = [];
while (ready.length > 0) {
  const pick = Math.floor(random() * ready.length);
  const next = ready[pick]!;
  ready[pick] = ready[ready.length - 1]!;
  ready.pop();
  order.push(next);
  for (const c of children[next]!) ready.push(c);
}
let moved = 0;
for (let i = 0; i < FACTS; i++) if (order[i] !== i) moved++;
const replicaB = Kernel.withState(new TotalSupplyInvariant(), initial, { indexCapacity: FACTS + 1024 });
start = process.hrtime.bigint();
for (const i of order) {
  const f = facts[i]!;
  assert.equal(replicaB.tryAdmitRaw(f.id, f.deps, f.payload), AdmitCode.Ok);
}
ms = elapsedMs(start);
const converged = bytesEqual(replicaA.state.toBytes(), replicaB.state.toBytes());
console.log(`replica B admitted the same facts in a different causal order (${moved.toLocaleString()} positions differ) in ${ms.toFixed(0)} ms`);
console.log(`identical state bytes on both replicas: ${converged ? 'yes' : 'NO'}`);
assert.ok(converged);
assert.equal(replicaB.size, FACTS);
