/**
 * The options every kernel over an exact history accepts, and what they mean for its tiered
 * index. One place, so `prefault` and the history settings mean the same on every kernel.
 */
import { InvalidArgumentError } from '../errors.js';
import { optionsObject } from '../core/options.js';
import { describeValue } from '../describe-value.js';
import { DEFAULT_HOT_CAPACITY, checkTieredIndexOptions } from '../causal/tiered-index.js';
import type { HistoryOptions } from '../domain/causal-domain.js';

export interface KernelOptions {
  /** The most facts this kernel admits (default: no limit); beyond it, `CausalHorizonExceeded`. */
  readonly indexCapacity?: number;
  /** Seed of the exact history's hash (default random). */
  readonly indexSeed?: number;
  /**
   * Commit the hot tables' memory at creation (2 × 2.45 MiB at the default hot capacity), with
   * one madvise (the native shim), instead of a page fault per 4 KiB while the first tables fill
   * (~11–17 µs each here). Default false. Without the shim it does nothing.
   */
  readonly prefault?: boolean;
  /**
   * The most bytes of memory the exact history may hold (default: no limit); beyond it new facts
   * are refused with `CausalHorizonExceeded`, whose message gives the figures.
   */
  readonly historyBudgetBytes?: number;
  /** Ids per hot table of the exact history (default 2^16; see docs/ARCHITECTURE.md §3). */
  readonly historyHotCapacity?: number;
  /**
   * Who turns frozen hot tables into sorted runs: 'background' (default) a compactor thread;
   * 'inline' the admitting thread, right after the admission that froze a table.
   */
  readonly historyCompaction?: 'background' | 'inline';
}

/**
 * @internal A kernel's options as its history's. `defaultHotCapacity` is the kernel family's
 * (a tenant's tables are smaller); a hot table is never larger than the fact limit needs.
 */
export function historyOptionsOf(options: KernelOptions | undefined, defaultHotCapacity = DEFAULT_HOT_CAPACITY): HistoryOptions {
  const { indexCapacity, indexSeed, historyBudgetBytes, historyHotCapacity, historyCompaction } = optionsObject(options);
  if (indexCapacity !== undefined && !(Number.isInteger(indexCapacity) && indexCapacity >= 1)) {
    throw new InvalidArgumentError(`indexCapacity (the most facts a kernel admits) must be a positive integer, got ${describeValue(indexCapacity)}`);
  }
  const hotCapacity = historyHotCapacity ?? Math.min(defaultHotCapacity, indexCapacity ?? Infinity);
  if (historyCompaction !== undefined && historyCompaction !== 'background' && historyCompaction !== 'inline') {
    throw new InvalidArgumentError(`historyCompaction is 'background' or 'inline', got ${describeValue(historyCompaction)}`);
  }
  // Checked now, not when the first domain is made (a TenantKernel makes one per tenant, later).
  checkTieredIndexOptions({ hotCapacity, seed: indexSeed, budgetBytes: historyBudgetBytes, prefault: prefaultOf(options) });
  return {
    hotCapacity,
    ...(indexCapacity === undefined ? {} : { idLimit: indexCapacity }),
    ...(indexSeed === undefined ? {} : { seed: indexSeed }),
    ...(historyBudgetBytes === undefined ? {} : { budgetBytes: historyBudgetBytes }),
    ...(historyCompaction === undefined ? {} : { compaction: historyCompaction }),
    prefault: prefaultOf(options),
  };
}

/** @internal The `prefault` option, checked (absent means false). */
export function prefaultOf(options: KernelOptions | undefined): boolean {
  const value = optionsObject(options).prefault;
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError('prefault must be a boolean');
  return value === true;
}
