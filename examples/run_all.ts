// Runs every example in its own process and reports which passed.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const examples = [
  'quick_start',
  'basic_kernel',
  'multi_tenant',
  'two_lane_kernel',
  'escalating_kernel',
  'custom_invariant',
  'graph_invariant',
  'escrow_inventory',
  'escrow_cluster',
  'ledger_demo',
  'worker_pool',
  'pool_quick_start',
  'replication',
];
let failed = 0;
for (const name of examples) {
  console.log(`\n=== ${name} ===`);
  const run = spawnSync(process.execPath, [join(here, `${name}.js`)], { stdio: 'inherit' });
  if (run.status !== 0) failed++;
}
console.log(`\n${examples.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
