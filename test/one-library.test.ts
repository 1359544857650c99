/**
 * The test suite's structure, checked so it stays as designed:
 *  - one library per test process: only test/helpers/lib.ts imports from src/ or dist/; every
 *    other test file and helper reaches the library through it. Excepted: test/helpers/dist.ts,
 *    which builds the dist/ paths handed to workers and child processes (they cannot run
 *    TypeScript), and the fixtures test/fixtures/*.mjs, which ARE such workers and children and
 *    load dist/ themselves (not .ts, so not scanned);
 *  - the `unit` project (vitest.config.ts) stays in-process: none of its files reaches, directly
 *    or through a helper, node:worker_threads, node:child_process or the dist/ build helper.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import config, { THREADS_FILES } from '../vitest.config.js';

const ROOT = join(import.meta.dirname, '..');
const TEST = join(ROOT, 'test');
const LIB = 'test/helpers/lib.ts';
const DIST_HELPER = 'test/helpers/dist.ts';

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.name.endsWith('.ts') ? [relative(ROOT, p)] : [];
  });
}

/**
 * Module specifiers in `source`: static imports and re-exports (`from '…'`), side-effect
 * imports, dynamic `import('…')` and `import('…')` types, and `new URL('…', import.meta.url)`.
 */
export function specifiers(source: string): string[] {
  const re = /\bfrom\s+(['"])([^'"]+)\1|\bimport\s+(['"])([^'"]+)\3|\bimport\(\s*(['"])([^'"]+)\5|\bnew URL\(\s*(['"])([^'"]+)\7/g;
  const out: string[] = [];
  for (const m of source.matchAll(re)) out.push((m[2] ?? m[4] ?? m[6] ?? m[8])!);
  return out;
}

/** True if a relative specifier written in `file` leads into src/ or dist/. */
function intoLibrary(file: string, spec: string): boolean {
  if (!spec.startsWith('.')) return false;
  const top = relative(ROOT, resolve(ROOT, dirname(file), spec)).split(/[\\/]/)[0];
  return top === 'src' || top === 'dist';
}

const files = tsFiles(TEST);
const read = (file: string): string => readFileSync(join(ROOT, file), 'utf8');

describe('one library per test process', () => {
  it('the scanner sees every form of import (so the checks below can fail)', () => {
    // Built from parts, so this file itself names no library path.
    const [src, dist] = ['src', 'dist'];
    const sample = [
      `import { Kernel } from '../${src}/index.js';`,
      `export * from '../${dist}/index.js';`,
      `import '../${src}/core/platform.js';`,
      `const lib = await import('../${dist}/core/fact-batch.js');`,
      `let k: import('../${src}/index.js').Kernel;`,
      `new URL('../${dist}/index.js', import.meta.url)`,
      "import { x } from './helpers/lib.js';",
    ].join('\n');
    const found = specifiers(sample);
    expect(found).toHaveLength(7);
    expect(found.filter((s) => intoLibrary('test/x.test.ts', s))).toHaveLength(6);
    expect(intoLibrary('test/helpers/lib.ts', `../../${src}/index.js`)).toBe(true);
    expect(intoLibrary('test/helpers/x.ts', './lib.js')).toBe(false);
  });

  it(`only ${LIB} imports from src/ or dist/`, () => {
    expect(files).toContain(LIB);
    const offenders = files
      .filter((f) => f !== LIB && f !== DIST_HELPER)
      .flatMap((f) => specifiers(read(f)).filter((s) => intoLibrary(f, s)).map((s) => `${f}: ${s}`));
    expect(offenders).toEqual([]);
  });

  it(`${LIB} loads one copy: src/ (the threads project maps it to dist/ as a whole)`, () => {
    const specs = specifiers(read(LIB));
    expect(specs).toContain('../../src/index.js');
    expect(specs.filter((s) => !s.startsWith('../../src/'))).toEqual([]);
  });
});

describe('the unit project stays in-process', () => {
  const FORBIDDEN = ['node:worker_threads', 'node:child_process', 'worker_threads', 'child_process', DIST_HELPER];
  const tests = files.filter((f) => f.endsWith('.test.ts'));
  const unit = tests.filter((f) => !THREADS_FILES.includes(f));

  /** What `file` reaches through its imports within test/ (the library itself not followed). */
  function reaches(file: string, seen = new Set<string>()): Set<string> {
    for (const spec of specifiers(read(file))) {
      if (!spec.startsWith('.')) {
        seen.add(spec);
        continue;
      }
      const target = relative(ROOT, resolve(ROOT, dirname(file), spec)).replace(/\.js$/, '.ts');
      // Fixtures that are absent on purpose (a test of a missing module) reach nothing.
      if (seen.has(target) || !target.startsWith('test/') || !existsSync(join(ROOT, target))) continue;
      seen.add(target);
      reaches(target, seen);
    }
    return seen;
  }

  it('every file named in the threads project exists, and both projects have files', () => {
    // Projects extend the root config and add to its `include`: one there would run every file
    // in the threads project too.
    expect(config.test?.include).toBeUndefined();
    expect(THREADS_FILES.filter((f) => !tests.includes(f))).toEqual([]);
    expect(unit.length).toBeGreaterThan(0);
    expect(THREADS_FILES.length).toBeGreaterThan(0);
  });

  it('the check finds what a file reaches directly and through helpers', () => {
    expect([...reaches('test/shard-locks.test.ts')]).toContain('node:worker_threads');
    expect([...reaches('test/pool.test.ts')]).toContain(DIST_HELPER);
    // Through test/harness/crash-loop.ts.
    expect([...reaches('test/crash.test.ts')]).toContain('node:child_process');
  });

  it('no unit file reaches worker_threads, child_process or the dist/ helper', () => {
    const offenders = unit.flatMap((f) => [...reaches(f)].filter((r) => FORBIDDEN.includes(r)).map((r) => `${f}: ${r}`));
    expect(offenders).toEqual([]);
  });
});
