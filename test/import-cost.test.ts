/**
 * What importing the package costs: the root entry loads neither piscina nor prom-client (they
 * load when a pool or a registry is first made), the `ctfs/pool` and `ctfs/metrics` entries
 * resolve through the package's exports and give the same objects as the root, and nothing is
 * written to stdout. Each case runs in a fresh process, since module caches are per process.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureDist } from './helpers/dist.js';

const execFileAsync = promisify(execFile);

/** Runs an ES module program from the package root (so `ctfs/...` resolves to this package); returns its stdout and stderr. */
async function run(program: string): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, ['--input-type=module', '-e', program], { cwd: ROOT, timeout: 60_000, env: { ...process.env, NODE_DEBUG: '' } });
}

/** A program fragment: prints which of the heavy dependencies are loaded now, as JSON on stderr. */
const REPORT = `
  {
    const { createRequire } = await import('node:module');
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    const has = (name) => loaded.some((file) => file.includes('/node_modules/' + name + '/'));
    process.stderr.write(JSON.stringify({ piscina: has('piscina'), promClient: has('prom-client') }) + '\\n');
  }
`;

function reports(stderr: string): { piscina: boolean; promClient: boolean }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { piscina: boolean; promClient: boolean });
}

beforeAll(() => ensureDist());

describe('importing ctfs', () => {
  it('loads neither piscina nor prom-client until a pool or a registry is made, and prints nothing', async () => {
    const { stdout, stderr } = await run(`
      const ctfs = await import('ctfs');
      ${REPORT}
      ctfs.createMetricsRegistry({});
      ${REPORT}
      const pool = await ctfs.KernelPool.create({ shards: 1, threads: 1, invariant: { builtin: 'GCounter' } });
      ${REPORT}
      await pool.close();
    `);
    expect(stdout).toBe('');
    expect(reports(stderr)).toEqual([
      { piscina: false, promClient: false },
      { piscina: false, promClient: true },
      { piscina: true, promClient: true },
    ]);
  });

  it('ctfs/pool and ctfs/metrics are the same objects as the root exports', async () => {
    const { stdout } = await run(`
      const root = await import('ctfs');
      const pool = await import('ctfs/pool');
      const metrics = await import('ctfs/metrics');
      const same = [
        pool.KernelPool === root.KernelPool,
        pool.ShardLocks === root.ShardLocks,
        pool.routeKey === root.routeKey,
        metrics.MetricsServer === root.MetricsServer,
        metrics.createMetricsRegistry === root.createMetricsRegistry,
      ];
      console.log(JSON.stringify({ same, poolKeys: Object.keys(pool).sort(), metricsKeys: Object.keys(metrics).sort() }));
    `);
    const result = JSON.parse(stdout) as { same: boolean[]; poolKeys: string[]; metricsKeys: string[] };
    expect(result.same).toEqual([true, true, true, true, true]);
    expect(result.poolKeys).toEqual(['KernelPool', 'LOCK_ACQUIRED', 'LOCK_POISONED', 'LOCK_TIMED_OUT', 'MAX_SHARDS', 'ShardLocks', 'routeKey', 'routeTenant']);
    expect(result.metricsKeys).toEqual(['MetricsServer', 'createMetricsRegistry']);
  });
});
