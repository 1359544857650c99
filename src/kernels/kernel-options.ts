/**
 * The options every kernel over exact indexes accepts, and what they mean for the index. One
 * place, so `prefault` and the index settings mean the same on every kernel that takes them.
 */
import { InvalidArgumentError } from '../errors.js';
import { optionsObject } from '../core/options.js';
import type { ExactIndexOptions } from '../causal/exact-index.js';

export interface KernelOptions {
  /** Exact-index capacity: the most facts this kernel can admit (default 2^20 = 1,048,576). */
  readonly indexCapacity?: number;
  /** Seed of the exact index's hash (default random). */
  readonly indexSeed?: number;
  /**
   * Commit the exact index's memory at creation, with one madvise (the native shim), instead of a
   * page fault per 4 KiB on first touch (~11–17 µs each here; ~100–300 ns per admission while a
   * fresh kernel fills, and the same per record while a durable kernel replays its log). Default
   * false on every kernel: it commits the whole capacity (39 MiB at the default) up front, once per
   * kernel — or per tenant of a TenantKernel. Without the shim it does nothing.
   */
  readonly prefault?: boolean;
}

/** @internal A kernel's options as the options of its exact index. */
export function indexOptionsOf(options: KernelOptions | undefined): ExactIndexOptions {
  const { indexCapacity, indexSeed } = optionsObject(options);
  return { capacity: indexCapacity, seed: indexSeed };
}

/** @internal The `prefault` option, checked (absent means false). */
export function prefaultOf(options: KernelOptions | undefined): boolean {
  const value = optionsObject(options).prefault;
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError('prefault must be a boolean');
  return value === true;
}
