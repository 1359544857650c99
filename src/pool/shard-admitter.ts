/**
 * ShardAdmitter: how any thread of a pool admits into one shard — the shard's kernel, plus the
 * cross-shard rules. A dep this shard never admitted is looked up in the other shards' published
 * facts: found in a shard this one shares causality with, it is satisfied; found in any other
 * shard, the fact gets `CrossShardDependency` (the caller routed it to the wrong shard); found
 * nowhere, `CausalityViolation` as usual. The lookups run on the rejection path only.
 */
import { AdmitCode } from '../codes.js';
import type { RawAdmitter } from '../core/fact-batch.js';
import type { KernelBase } from '../kernels/kernel-base.js';
import { ACCEPT_FOREIGN_DEPS } from '../kernels/internal.js';

export class ShardAdmitter implements RawAdmitter {
  private readonly others: readonly KernelBase[];

  /**
   * `kernels`: every shard's kernel in this thread (undefined for a shard this thread could not
   * attach: it is never consulted); `peers`: the shards `shard` shares causality with.
   */
  constructor(
    readonly kernel: KernelBase,
    kernels: readonly (KernelBase | undefined)[],
    shard: number,
    peers: readonly number[],
  ) {
    const present = (k: KernelBase | undefined): k is KernelBase => k !== undefined;
    this.others = kernels.filter((_, i) => i !== shard && !peers.includes(i)).filter(present);
    const peerKernels = peers.filter((p) => p !== shard).map((p) => kernels[p]).filter(present);
    kernel[ACCEPT_FOREIGN_DEPS](peerKernels.length === 0 ? null : (dep) => peerKernels.some((k) => k.containsPublished(dep)));
  }

  tryAdmitRaw(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number {
    const code = this.kernel.tryAdmitRaw(id, deps, payload);
    return code === AdmitCode.CausalityViolation ? this.classifyMissingDep(deps) : code;
  }

  private classifyMissingDep(deps: readonly Uint8Array[]): number {
    const dep = deps[this.kernel.lastFailedDep];
    if (dep !== undefined) for (const other of this.others) if (other.containsPublished(dep)) return AdmitCode.CrossShardDependency;
    return AdmitCode.CausalityViolation;
  }
}
