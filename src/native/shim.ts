/**
 * Loader of the native io_uring shim (`native/`, built by `npm ci` through node-gyp). Optional:
 * when it is missing or io_uring is refused (other kernels, seccomp, `io_uring_disabled`), the
 * portable backend is used instead.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the shim exports (native/README.md). */
export interface NativeShim {
  backend(): string;
  probe(): boolean;
  ringOpen(entries: number): unknown;
  /** Writes `ranges` ([start, length]* within `data`) at `fileOffset`, then syncs (1 fdatasync, 2 fsync); returns bytes written. */
  ringWrite(ring: unknown, fd: number, data: Uint8Array, ranges: Uint32Array, fileOffset: number, sync: number): number;
  ringClose(ring: unknown): void;
  fallocate(fd: number, offset: number, length: number): void;
  /** Prefaults the whole pages inside the view (MADV_POPULATE_WRITE); false where unsupported. */
  populate(view: Uint8Array): boolean;
}

const ADDON = path.join('native', 'build', 'Release', 'ctfs_native.node');

let loaded: { shim: NativeShim | undefined; reason: string } | undefined;

/** The addon's path: `CTFS_NATIVE_PATH`, else the first `native/build/…` above this module. */
function findAddon(): string | undefined {
  const forced = process.env['CTFS_NATIVE_PATH'];
  if (forced !== undefined && forced !== '') return forced;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 5; up++) {
    const candidate = path.join(dir, ADDON);
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** The shim if it is built and io_uring works in this process; else undefined and why. */
export function loadNative(): { shim: NativeShim | undefined; reason: string } {
  if (loaded !== undefined) return loaded;
  const file = findAddon();
  if (process.platform !== 'linux') loaded = { shim: undefined, reason: `io_uring needs Linux (this is ${process.platform})` };
  else if (file === undefined) loaded = { shim: undefined, reason: 'the native shim is not built (npm run build:native)' };
  else {
    try {
      const shim = createRequire(import.meta.url)(file) as NativeShim;
      loaded = shim.probe() ? { shim, reason: '' } : { shim: undefined, reason: 'io_uring_setup is refused on this system' };
    } catch (error) {
      loaded = { shim: undefined, reason: `the native shim failed to load: ${(error as Error).message}` };
    }
  }
  return loaded;
}

/**
 * Prefaults a SharedArrayBuffer a kernel is about to fill (its exact index, the WAL arena): one
 * madvise instead of a page fault per 4 KiB on first touch (~17 µs each on these VMs, ~7× the
 * kernel's own cost). Commits the memory now. Returns false without the shim.
 */
export function prefault(buffer: SharedArrayBuffer): boolean {
  const { shim } = loadNative();
  if (shim === undefined || typeof shim.populate !== 'function') return false;
  try {
    return shim.populate(new Uint8Array(buffer));
  } catch {
    return false;
  }
}

/** Prefaults the whole pages inside `view` (part of a buffer: a hot table in its arena). Returns false without the shim. */
export function prefaultRange(view: Uint8Array): boolean {
  const { shim } = loadNative();
  if (shim === undefined || typeof shim.populate !== 'function') return false;
  try {
    return shim.populate(view);
  } catch {
    return false;
  }
}
