// The exact history soak (not a CI test): admits N facts into one kernel — in memory by default,
// or durable with --durable — then checks dedup and deps against ids sampled from the whole
// history: every sampled old fact is refused as a duplicate, a fact on a sampled old dep is
// admitted, a fact on an id never admitted is refused. Durable: the kernel is closed and
// reopened first, and the checks run on the reopened one.
//
//   node --expose-gc scripts/history-soak.mjs [--facts=100000000] [--durable] [--dir=/path] [--samples=100000]
//
// Prints admissions/s, memory per id per tier, the writer's longest freeze and install, and the
// outcome of every check; exits non-zero if any check fails. Needs `npm run build` first.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
};
const FACTS = Number(arg('facts', 100_000_000));
const SAMPLES = Number(arg('samples', 100_000));
const DURABLE = process.argv.includes('--durable');
const lib = await import(new URL('../dist/index.js', import.meta.url).href);
const { AdmitCode, AckMode, Kernel, DurableKernel, TotalSupplyInvariant, admitCodeName } = lib;

/** Fact i's id: eight words mixed from i (splitmix32), distinct for distinct i. */
function idOf(i, out = new Uint8Array(32)) {
  const w = new Uint32Array(out.buffer, out.byteOffset, 8);
  let z = (i * 0x9e3779b1) >>> 0;
  for (let k = 0; k < 8; k++) {
    z = (z + 0x9e3779b9) | 0;
    let x = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
    w[k] = (x ^ (x >>> 15)) >>> 0;
  }
  w[7] = i >>> 0; // low word of i: distinct ids whatever the mixing does
  w[6] = (w[6] & 0xffff0000) | Math.floor(i / 2 ** 32);
  return out;
}

const PAYLOAD = new Uint8Array(16);
PAYLOAD[0] = 1;
const NO_DEPS = [];
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const dir = DURABLE ? arg('dir', fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-soak-'))) : undefined;
const open = () => DurableKernel.open(dir, new TotalSupplyInvariant(), { announce: false, prefault: true });

let kernel = DURABLE ? await open() : new Kernel(new TotalSupplyInvariant(), { prefault: true });
console.log(`history soak: ${fmt(FACTS)} facts, ${DURABLE ? `durable in ${dir}` : 'in memory'}`);
const id = new Uint8Array(32);
const dep = new Uint8Array(32);
const t0 = performance.now();
let refused = 0;
for (let i = 0; i < FACTS; i++) {
  idOf(i, id);
  // Every 16th fact depends on a fact from anywhere before it.
  let deps = NO_DEPS;
  if ((i & 15) === 15) deps = [idOf(Math.floor(Math.random() * i), dep)];
  let code = DURABLE ? kernel.tryAdmitRaw(id, deps, PAYLOAD, AckMode.Volatile) : kernel.tryAdmitRaw(id, deps, PAYLOAD);
  // A durable kernel's WAL arena full: the persistence worker is behind. Wait for it, then retry
  // (nothing was admitted: an ArenaFull refusal changes nothing).
  while (code === AdmitCode.ArenaFull) {
    await kernel.flush();
    code = kernel.tryAdmitRaw(id, deps, PAYLOAD, AckMode.Volatile);
  }
  if (code !== AdmitCode.Ok) refused++;
  if ((i & 0xfffff) === 0xfffff) {
    const s = (performance.now() - t0) / 1000;
    process.stdout.write(`\r${fmt(i + 1)} facts, ${fmt((i + 1) / s)}/s, ${fmt(process.memoryUsage().rss / 2 ** 20)} MiB RSS   `);
  }
}
const fillS = (performance.now() - t0) / 1000;
console.log(`\nadmitted ${fmt(FACTS - refused)} of ${fmt(FACTS)} in ${fillS.toFixed(1)} s: ${fmt(FACTS / fillS)} facts/s`);
if (refused > 0) console.log(`FAILED: ${fmt(refused)} facts refused while filling`);
const pauses = kernel.historyPauses();
console.log(
  `writer: ${fmt(pauses.freezes)} freezes (longest ${pauses.longestFreezeMs.toFixed(3)} ms), ${fmt(pauses.installs)} installs (longest ${pauses.longestInstallMs.toFixed(3)} ms), ${fmt(pauses.catchUps)} catch-ups with the compactor behind (longest ${pauses.longestCatchUpMs.toFixed(1)} ms)`,
);

if (DURABLE) {
  let t = performance.now();
  await kernel.close();
  console.log(`closed in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  t = performance.now();
  kernel = await open();
  console.log(`reopened ${fmt(kernel.size)} facts in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}
// Let compaction finish, then report the tiers.
for (let i = 0; i < 6000 && kernel.historyMemory().frozen.tables > 0; i++) {
  kernel.publish();
  await new Promise((r) => setTimeout(r, 50));
}
const m = kernel.historyMemory();
console.log(
  `memory: ${(m.total / kernel.size).toFixed(2)} B/id overall; runs ${(m.runs.bytes / Math.max(1, m.runs.ids)).toFixed(2)} B/id in ${m.runs.count} runs (${fmt(m.runs.ids)} ids); hot ${fmt(m.hot.ids)} ids; frozen ${m.frozen.tables} tables; arenas grown to ${fmt(m.arenaBytes / 2 ** 20)} MiB`,
);

// The checks, on ids sampled from the whole history.
const tally = { dup: new Map(), dep: new Map(), unknown: new Map() };
const count = (map, code) => map.set(code, (map.get(code) ?? 0) + 1);
const tc = performance.now();
for (let s = 0; s < SAMPLES; s++) {
  const old = Math.floor(Math.random() * FACTS);
  count(tally.dup, kernel.tryAdmitRaw(idOf(old, id), NO_DEPS, PAYLOAD));
  const fresh = new Uint8Array(32);
  idOf(FACTS + 2 * s, fresh);
  count(tally.dep, kernel.tryAdmitRaw(fresh, [idOf(old, dep)], PAYLOAD));
  idOf(FACTS + 2 * s + 1, fresh);
  count(tally.unknown, kernel.tryAdmitRaw(fresh, [idOf(FACTS * 4 + s, dep)], PAYLOAD));
}
const checkS = (performance.now() - tc) / 1000;
const show = (map) => [...map].map(([c, n]) => `${c === 0 ? 'Ok' : admitCodeName(c)} ${fmt(n)}`).join(', ');
const ok =
  tally.dup.get(AdmitCode.DuplicateFact) === SAMPLES && tally.dep.get(AdmitCode.Ok) === SAMPLES && tally.unknown.get(AdmitCode.CausalityViolation) === SAMPLES && refused === 0;
console.log(`old duplicate: ${show(tally.dup)}; fact on an old dep: ${show(tally.dep)}; fact on an unknown dep: ${show(tally.unknown)} (${((checkS * 1e9) / (3 * SAMPLES)).toFixed(0)} ns per check)`);
console.log(ok ? 'PASS' : 'FAIL');
if (DURABLE) {
  await kernel.close();
  if (arg('dir', undefined) === undefined) fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
