/**
 * Starting one of ctfs's own worker threads. A worker inherits the parent's `execArgv`, but a
 * program's own input (`--input-type`, with `-e`) would make the worker's module fail to load:
 * it is dropped, and if the remaining list is refused (flags such as `--expose-gc` are accepted
 * only when inherited, not when listed) the worker starts with none.
 */
import { Worker } from 'node:worker_threads';

/** Starts the worker at `url` with `workerData`. */
export function startWorker(url: URL, workerData: unknown): Worker {
  if (!process.execArgv.some((arg) => arg.startsWith('--input-type'))) return new Worker(url, { workerData });
  try {
    return new Worker(url, { workerData, execArgv: process.execArgv.filter((arg) => !arg.startsWith('--input-type')) });
  } catch {
    return new Worker(url, { workerData, execArgv: [] });
  }
}
