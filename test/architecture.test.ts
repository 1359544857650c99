/**
 * The layering of src/ as docs/ARCHITECTURE.md §1 states it, enforced: every import (type-only
 * and dynamic ones included) goes from a layer to one it may use, and no two modules import each
 * other, directly or round a longer cycle.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

/**
 * Which layers each layer may import (besides itself). `base` is the files directly in src/ that
 * everything uses (errors, codes, the value describer); `entry` is the public entry points.
 */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  base: [],
  core: ['base'],
  native: ['base'],
  metrics: ['base', 'core'],
  causal: ['base', 'core', 'native'],
  invariants: ['base', 'core'],
  algebra: ['base', 'core', 'invariants'],
  domain: ['base', 'core', 'causal', 'invariants'],
  persistence: ['base', 'core', 'native', 'metrics', 'causal', 'invariants', 'domain'],
  replication: ['base', 'core'],
  network: ['base', 'core', 'native', 'metrics', 'causal', 'invariants', 'algebra', 'domain', 'persistence', 'replication', 'kernels'],
  kernels: ['base', 'core', 'native', 'metrics', 'causal', 'invariants', 'algebra', 'domain', 'persistence'],
  pool: ['base', 'core', 'native', 'metrics', 'causal', 'invariants', 'algebra', 'domain', 'persistence', 'kernels'],
  workers: ['base', 'core', 'native', 'metrics', 'causal', 'invariants', 'algebra', 'domain', 'persistence', 'kernels', 'pool', 'replication', 'network'],
  entry: ['base', 'core', 'native', 'metrics', 'causal', 'invariants', 'algebra', 'domain', 'persistence', 'replication', 'kernels', 'pool', 'network'],
  cli: ['base', 'core', 'native', 'metrics', 'causal', 'invariants', 'algebra', 'domain', 'persistence', 'replication', 'kernels', 'pool', 'network'],
};
/** Files directly in src/ that are entry points (the rest there are `base`). */
const ENTRY_FILES = new Set(['index.ts', 'properties.ts', 'pool.ts', 'metrics.ts']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function layerOf(file: string): string {
  const rel = relative(SRC, file).split(/[\\/]/);
  if (rel.length === 1) return ENTRY_FILES.has(rel[0]!) ? 'entry' : 'base';
  return rel[0]!;
}

/** The src/ modules `file` imports: every static, type-only, re-export and dynamic import. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const name = (f: string): string => relative(SRC, f);

describe('architecture', () => {
  it('knows every folder of src/', () => {
    const unknown = [...new Set(files.map(layerOf))].filter((layer) => !(layer in ALLOWED));
    expect(unknown).toEqual([]);
  });

  it('resolves every relative import to a file in src/', () => {
    const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${name(f)} → ${relative(SRC, d)}`));
    expect(missing).toEqual([]);
  });

  it('imports only from allowed layers', () => {
    const broken: string[] = [];
    for (const [file, deps] of graph) {
      const from = layerOf(file);
      for (const dep of deps) {
        const to = layerOf(dep);
        if (to !== from && !ALLOWED[from]!.includes(to)) broken.push(`${name(file)} (${from}) → ${name(dep)} (${to})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('has no import cycle', () => {
    // Depth-first search with the path on a stack: a dep already on the stack closes a cycle.
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const cycles: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 'open');
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map(name).join(' → '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 'done');
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('catches what it claims to catch', () => {
    // The checks above must see type-only imports and re-exports, or they would pass vacuously.
    const probe = ts.preProcessFile("import type { A } from './a.js';\nexport { B } from '../b.js';\nconst c = import('./c.js');", true, true);
    expect(probe.importedFiles.map((f) => f.fileName)).toEqual(['./a.js', '../b.js', './c.js']);
    expect(graph.size).toBeGreaterThan(40);
  });
});
