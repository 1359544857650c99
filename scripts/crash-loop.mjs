#!/usr/bin/env node
// Crash safety with real processes, many cycles: the CLI of the crash harness
// (test/harness/crash-loop.ts, run compiled from build/; `npm run test:crash` builds first).
//
//   node scripts/crash-loop.mjs [cycles=100] [--backend=mixed|portable|uring|auto] [--seed=N] [--dir=PATH] [--keep]
//   (npm run test:crash -- 100 --backend=portable)
//
// `mixed` (the default when io_uring works, else `portable`) alternates the backends on one
// directory. Prints one line per cycle and a summary; exits 1 on the first violation, printing
// the evidence (the directory is kept then).
//
// CTFS_CRASH_DIST: another compiled copy of the library (e.g. a mutated one) for the children and
// the checker; default dist/. (A copy outside the project needs node_modules and a package.json
// with "type": "module" beside it, and CTFS_NATIVE_PATH for io_uring.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const HARNESS = new URL('../build/test/harness/crash-loop.js', import.meta.url);
if (!fs.existsSync(HARNESS)) {
  console.error('the crash harness is not built: run `npm run build` (or `npm run test:crash`)');
  process.exit(1);
}
const LIBRARY = process.env.CTFS_CRASH_DIST ? pathToFileURL(path.join(process.env.CTFS_CRASH_DIST, 'index.js')).href : new URL('../dist/index.js', import.meta.url).href;
const lib = await import(LIBRARY);
const { CrashHarness, probeUring } = await import(HARNESS.href);

function parseArgs(argv) {
  const options = { cycles: 100, backend: undefined, seed: (Date.now() ^ (process.pid << 16)) >>> 0, dir: undefined, keep: false };
  for (const arg of argv) {
    if (/^\d+$/.test(arg)) options.cycles = Number(arg);
    else if (arg.startsWith('--backend=')) options.backend = arg.slice(10);
    else if (arg.startsWith('--seed=')) options.seed = Number(arg.slice(7)) >>> 0;
    else if (arg.startsWith('--dir=')) options.dir = arg.slice(6);
    else if (arg === '--keep') options.keep = true;
    else throw new Error(`unknown argument ${arg} (usage: crash-loop.mjs [cycles] [--backend=auto|portable|uring|mixed] [--seed=N] [--dir=PATH] [--keep])`);
  }
  if (options.backend !== undefined && !['auto', 'portable', 'uring', 'mixed'].includes(options.backend)) throw new Error(`bad backend ${options.backend}`);
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const uring = await probeUring(lib);
  options.backend ??= uring.available ? 'mixed' : 'portable';
  if ((options.backend === 'uring' || options.backend === 'mixed') && !uring.available) {
    console.error(`io_uring is not available: ${uring.reason}`);
    process.exit(1);
  }
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ctfs-crash-loop-'));
  const harness = new CrashHarness({ lib, dir, backend: options.backend === 'mixed' ? 'portable' : options.backend, seed: options.seed });
  console.log(`crash loop: ${options.cycles} cycles, backend ${options.backend}${uring.available ? '' : ` (io_uring unavailable: ${uring.reason})`}, seed ${options.seed}, dir ${dir}`);
  const started = performance.now();
  let submitted = 0;
  let last;
  for (let i = 0; i < options.cycles; i++) {
    const backend = options.backend === 'mixed' ? (i % 2 === 0 ? 'portable' : 'uring') : options.backend;
    const r = await harness.cycle({ backend });
    last = r;
    submitted += r.submitted;
    console.log(
      `cycle ${String(r.cycle + 1).padStart(3)}  ${(r.backend ?? '?').padEnd(8)} acked ${String(r.ackedTotal).padStart(7)} (+${String(r.acked).padEnd(5)})` +
        `  recovered ${String(r.recovered < 0 ? 'FAILED' : r.recovered).padStart(7)}  ckpt@${String(r.checkpoint).padEnd(7)} segments ${String(r.segments).padStart(3)}` +
        `  ${r.powerCuts === undefined ? '' : `power-loss -${r.powerCuts.reduce((n, c) => n + c.from - c.to, 0)} B${r.powerCuts.some((c) => c.zeroedHeader) ? ' (zeroed header)' : ''}  `}torn ${r.injected !== undefined ? 'yes (cut)' : !r.torn ? 'no' : r.tornByKill ? `yes: ${r.tornKind}` : `yes (power loss): ${r.tornKind}`}  kill ${r.killAfterAcks === Infinity ? `${r.killAfterMs} ms` : `${r.killAfterAcks} acks/${r.killAfterMs} ms`}  ${r.ms} ms (start ${r.startMs}, check ${r.verifyMs})`,
    );
    if (r.violations.length > 0) {
      console.log(`\nVIOLATION in cycle ${r.cycle + 1} (seed ${options.seed}, directory kept: ${dir}):`);
      for (const v of r.violations) console.log(`  - ${v}`);
      console.log(`child stderr:\n${r.stderr.trim() || '(empty)'}`);
      console.log(`last lines the child printed:\n${r.lines.slice(-20).join('\n')}`);
      if (r.tornTail !== undefined) console.log(`torn tail: ${JSON.stringify(r.tornTail)}`);
      if (r.injected !== undefined) console.log(`torn tail cut on purpose: ${JSON.stringify(r.injected)}`);
      if (r.powerCuts !== undefined) console.log(`simulated power loss (unsynced bytes dropped): ${JSON.stringify(r.powerCuts)}`);
      process.exit(1);
    }
  }
  const h = harness.history;
  console.log(
    `\nOK: ${options.cycles} cycles in ${((performance.now() - started) / 1000).toFixed(1)} s, no violation. ` +
      `submitted ${submitted}, acknowledged durable ${h.acked.size} (all recovered), recovered ${last?.recovered ?? 0}, ` +
      `torn tails ${h.tornTails} left by a kill + ${h.injected} cut on purpose, checkpoints ${h.checkpoints}, segments now ${last?.segments ?? 0}, seed ${options.seed}`,
  );
  if (!options.keep && options.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
