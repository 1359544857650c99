/**
 * Same-process A/B of admission between two builds of ctfs (e.g. a commit before a change, built
 * in a worktree, and this tree): both `dist/index.js` are imported into one process and their
 * loops alternate round by round, so both see the same machine noise and the same JIT warm-up.
 * Every loop is checked to take its expected outcome on every fact.
 *
 *   node bench/ab-admission.mjs <before>/dist/index.js <after>/dist/index.js
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

const [beforePath, afterPath] = process.argv.slice(2);
if (beforePath === undefined || afterPath === undefined) {
  console.error('usage: node bench/ab-admission.mjs <before>/dist/index.js <after>/dist/index.js');
  process.exit(2);
}
const load = (p) => import(pathToFileURL(resolve(p)).href);
const builds = { before: await load(beforePath), after: await load(afterPath) };
const N = 1 << 15;
const ROUNDS = 25;
const { factId, i128le } = builds.before;
const payload = i128le(1n);
const ids = []; let prev = [];
const chainIds = [];
for (let i = 0; i < N; i++) { const p = i128le(BigInt(i + 1)); ids.push({ id: factId([], p), p }); }
for (let i = 0; i < N; i++) { const p = i128le(BigInt(i + 1)); const id = factId(prev, p); chainIds.push({ id, deps: prev, p }); prev = [id]; }
const missing = [new Uint8Array(32).fill(0xab)];
const orphans = []; for (let i = 0; i < N; i++) { const p = i128le(BigInt(10_000_000 + i)); orphans.push({ id: factId(missing, p), p }); }
const loops = {
  'no deps': (lib) => { const k = new lib.Kernel(new lib.TotalSupplyInvariant(), { indexCapacity: 65536 }); const t = performance.now(); let ok = 0; for (let i = 0; i < N; i++) ok += k.tryAdmitRaw(ids[i].id, [], ids[i].p) === 0 ? 1 : 0; return [performance.now() - t, ok]; },
  '1-dep chain': (lib) => { const k = new lib.Kernel(new lib.TotalSupplyInvariant(), { indexCapacity: 65536 }); const t = performance.now(); let ok = 0; for (let i = 0; i < N; i++) { const c = chainIds[i]; ok += k.tryAdmitRaw(c.id, c.deps, c.p) === 0 ? 1 : 0; } return [performance.now() - t, ok]; },
  'CausalityViolation': (lib) => { const k = new lib.Kernel(new lib.TotalSupplyInvariant(), { indexCapacity: 65536 }); for (let i = 0; i < 1000; i++) k.tryAdmitRaw(ids[i].id, [], ids[i].p); const t = performance.now(); let rej = 0; for (let i = 0; i < N; i++) rej += k.tryAdmitRaw(orphans[i].id, missing, orphans[i].p) === 1 ? 1 : 0; return [performance.now() - t, rej]; },
};
const res = {};
for (let r = 0; r < ROUNDS; r++) for (const [name, loop] of Object.entries(loops)) for (const b of (r % 2 ? ['before', 'after'] : ['after', 'before'])) {
  const [ms, n] = loop(builds[b]);
  if (n !== N) throw new Error(`${name} ${b}: ${n} of ${N} on the expected path`);
  ((res[name] ??= {})[b] ??= []).push(ms * 1e6 / N);
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
for (const [name, r] of Object.entries(res)) console.log(`${name.padEnd(20)} before ${med(r.before).toFixed(1)} ns  after ${med(r.after).toFixed(1)} ns  ratio ${(med(r.after) / med(r.before)).toFixed(3)}  (every loop on its expected outcome, ${ROUNDS} rounds each)`);
