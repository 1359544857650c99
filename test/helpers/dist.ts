/**
 * Tests that start workers or child processes run the compiled library in dist/ (vitest only
 * transforms test files): `ensureDist()` builds it if it is missing or older than src/. The only
 * test file besides lib.ts that names dist/: paths handed to workers and children, built here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DIST_INDEX = join(ROOT, 'dist', 'index.js');
/** For `import()` in a worker or child process that loads the library itself. */
export const DIST_URL = pathToFileURL(DIST_INDEX).href;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ if it is missing or older than src/. */
export function ensureDist(): void {
  if (existsSync(DIST_INDEX) && statSync(DIST_INDEX).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  if (!existsSync(DIST_INDEX)) throw new Error(`tsc did not produce dist/index.js:\n${r.stdout}\n${r.stderr}`);
}

/** The global setup of the `threads` project (vitest.config.ts): its tests load dist/. */
export function setup(): void {
  ensureDist();
}
