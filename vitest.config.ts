import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vitest/config';

const ROOT = fileURLToPath(new URL('.', import.meta.url));
const LIB = fileURLToPath(new URL('./test/helpers/lib.ts', import.meta.url));

/**
 * Test files that start worker threads or child processes, use real disks for durability, build
 * dist/, or scrape Prometheus. Every other test file is `unit`: in-process and fast, run from the
 * TypeScript source with no build (test/one-library.test.ts checks that a unit file imports no
 * worker_threads, child_process or dist helper).
 */
export const THREADS_FILES = [
  'test/checkpoint.test.ts',
  'test/crash.test.ts',
  'test/durable-damage.test.ts',
  'test/durable-kernel.test.ts',
  'test/error-wire.test.ts',
  'test/examples.test.ts',
  'test/history-compactor.test.ts',
  'test/import-cost.test.ts',
  'test/metrics.test.ts',
  'test/networking.test.ts',
  'test/escrow-network.test.ts',
  'test/escrow-processes.test.ts',
  'test/cli.test.ts',
  'test/bench-peers.test.ts',
  'test/replication-processes.test.ts',
  'test/replication-netns.test.ts',
  'test/pool-exactness.test.ts',
  'test/pool-failures.test.ts',
  'test/pool.test.ts',
  'test/shard-locks.test.ts',
  'test/shared-memory.test.ts',
  'test/spsc-ring.test.ts',
  'test/vocabulary-threads.test.ts',
  'test/wal-recovery.test.ts',
];

/**
 * In the threads project the library comes from dist/: test/helpers/lib.ts's imports of src/ are
 * resolved to the compiled files, because DurableKernel and KernelPool start their workers from
 * the .js files beside their module. One copy per test process either way (see lib.ts).
 */
function libFromDist(): Plugin {
  return {
    name: 'ctfs-lib-from-dist',
    enforce: 'pre',
    resolveId(source, importer) {
      if (importer !== LIB || !source.startsWith('../../src/')) return null;
      return `${ROOT}dist/${source.slice('../../src/'.length)}`;
    },
  };
}

export default defineConfig({
  test: {
    // No `include` here: a project extending this config would add its own to it, not replace it.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: keep suites from fighting over them (several spawn worker threads).
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: THREADS_FILES },
      },
      {
        extends: true,
        plugins: [libFromDist()],
        test: { name: 'threads', include: THREADS_FILES, globalSetup: ['test/helpers/dist.ts'] },
      },
    ],
  },
});
