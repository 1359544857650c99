/**
 * Symbols that key the kernels' internal entry points. They are not exported from the package, so
 * no user can call these or pass these options by accident; the modules that need them (other
 * kernels, the pool) import them from here.
 */

/** Constructor option: build the kernel over this shared memory (the `attach` factories). */
export const ATTACH_MEMORY: unique symbol = Symbol('ctfs.kernel.attachMemory');
/** Method: set a fresh kernel's state cell (the `withState` factories). */
export const SET_INITIAL_STATE: unique symbol = Symbol('ctfs.kernel.setInitialState');
/** Method: accept deps another kernel vouches for (pool shards that share causality). */
export const ACCEPT_FOREIGN_DEPS: unique symbol = Symbol('ctfs.kernel.acceptForeignDeps');
/**
 * Method: replace the kernel's history with a domain image (a verified snapshot of a peer's): the
 * replication layer's reanchor of an in-memory kernel. The caller checks the image fits.
 */
export const RESTORE_IMAGE: unique symbol = Symbol('ctfs.kernel.restoreImage');
/**
 * Property: the kernel's record log (the seam every admission is logged through). The replication
 * layer tees its outbound ring in next to a durable kernel's WAL arena, and takes it out on close.
 */
export const RECORD_LOG: unique symbol = Symbol('ctfs.kernel.recordLog');
/** Getter: a durable kernel's durability control block (the worker reads the fsync watermark). */
export const DURABILITY_CONTROL: unique symbol = Symbol('ctfs.kernel.durabilityControl');
