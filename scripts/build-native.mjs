#!/usr/bin/env node
// Builds the optional io_uring addon native/build/Release/ctfs_native.node with
// node-gyp. Runs as the package's "install" script, so it must never break an
// install: on any failure it prints one warning and exits 0 (ctfs then uses its
// portable fs backend), unless CTFS_REQUIRE_NATIVE=1, which makes it exit 1.
//
//   node scripts/build-native.mjs [--force]
//   --force                 rebuild even if the addon is newer than its sources
//   CTFS_REQUIRE_NATIVE=1   fail (exit 1) when the addon cannot be built
//   CTFS_NATIVE_VERBOSE=1   show node-gyp's output instead of logging it to a file

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const addon = join(nativeDir, 'build', 'Release', 'ctfs_native.node');
const logFile = join(nativeDir, 'build', 'ctfs-build.log');
const force = process.argv.includes('--force');
const required = process.env.CTFS_REQUIRE_NATIVE === '1';
const verbose = process.env.CTFS_NATIVE_VERBOSE === '1';
const rel = (p) => relative(root, p);

function fail(reason) {
  console.warn(`ctfs: native io_uring backend not built (${reason}); the portable fs backend will be used`);
  process.exit(required ? 1 : 0);
}

if (process.platform !== 'linux') fail(`io_uring is Linux-only, this is ${process.platform}`);

function newestSource(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const sourcesMtime = Math.max(statSync(join(nativeDir, 'binding.gyp')).mtimeMs, newestSource(join(nativeDir, 'src')));
if (!force && existsSync(addon) && statSync(addon).mtimeMs > sourcesMtime) {
  console.log(`ctfs: native io_uring backend up to date (${rel(addon)}; --force rebuilds)`);
  process.exit(0);
}

// The node-gyp that ships with npm. npm puts it in npm_config_node_gyp for
// lifecycle scripts; run by hand, find it next to npm or next to node.
function findNodeGyp() {
  const bin = ['node_modules', 'node-gyp', 'bin', 'node-gyp.js'];
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', ...bin),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', ...bin),
  ];
  try {
    candidates.push(createRequire(join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a dependency of the project: fine
  }
  return candidates.find((p) => p && existsSync(p));
}

// Without a configured nodedir, node-gyp downloads headers from nodejs.org.
// Distribution and tarball installs ship them under <prefix>/include/node;
// use those when they are for this very Node version.
function localNodedir() {
  if (process.env.npm_config_nodedir) return undefined;  // npm/.npmrc already decided
  const prefix = join(dirname(process.execPath), '..');
  try {
    const h = readFileSync(join(prefix, 'include', 'node', 'node_version.h'), 'utf8');
    const v = ['MAJOR', 'MINOR', 'PATCH'].map((k) => h.match(new RegExp(`define NODE_${k}_VERSION (\\d+)`))?.[1]);
    return v.join('.') === process.versions.node ? prefix : undefined;
  } catch {
    return undefined;
  }
}

const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found; run through npm or install node-gyp');
const nodedir = localNodedir();
const args = [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];

const t0 = performance.now();
const r = spawnSync(process.execPath, args, {
  cwd: nativeDir,
  stdio: verbose ? 'inherit' : 'pipe',
  encoding: 'utf8',
  timeout: 5 * 60_000,  // a header download that hangs must not hang the install
});
const secs = ((performance.now() - t0) / 1000).toFixed(1);
if (!verbose) {
  mkdirSync(dirname(logFile), { recursive: true });
  writeFileSync(logFile, `$ ${process.execPath} ${args.join(' ')}\n${r.stdout ?? ''}${r.stderr ?? ''}`);
}
if (r.error || r.status !== 0 || !existsSync(addon)) {
  const output = `${r.stdout ?? ''}\n${r.stderr ?? ''}`;
  const firstError = output.split('\n').find((l) => /\berror\b|gyp ERR!/i.test(l))?.trim().slice(0, 160);
  const why = r.error ? r.error.message : r.signal ? `node-gyp killed by ${r.signal}` : `node-gyp exited with ${r.status}`;
  fail(`${why}${firstError ? `: ${firstError}` : ''}${verbose ? '' : `; log: ${rel(logFile)}`}`);
}

// A build that does not load is no build (wrong headers, missing symbols).
try {
  const native = createRequire(import.meta.url)(addon);
  if (native.backend() !== 'io_uring') throw new Error(`unexpected backend ${native.backend()}`);
  const usable = native.probe() ? 'io_uring usable here' : 'io_uring not usable in this process';
  console.log(`ctfs: native io_uring backend built in ${secs} s (${rel(addon)}; ${usable})`);
} catch (e) {
  fail(`built but does not load: ${e.message}`);
}
