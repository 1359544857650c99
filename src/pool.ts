/**
 * The `ctfs/pool` entry: the worker pool — shards of kernels in shared memory admitted by pool
 * threads, their locks and routing. (The root entry re-exports it.)
 */
export { KernelPool } from './pool/kernel-pool.js';
export type { KernelPoolOptions } from './pool/kernel-pool.js';
export type { BuiltinInvariantName, InvariantSpec } from './pool/invariant-spec.js';
export { routeKey, routeTenant } from './pool/routing.js';
export { LOCK_ACQUIRED, LOCK_POISONED, LOCK_TIMED_OUT, MAX_SHARDS, ShardLocks } from './pool/shard-locks.js';
export type { LockStats } from './pool/shard-locks.js';
