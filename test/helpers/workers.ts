/**
 * Worker threads started by tests (threads project only): started through here, they are
 * terminated by `terminateWorkers()` after each test, and a worker's first message (its report,
 * or its "ready") is awaited with a timeout, failing on an error, an exit or a failure report
 * instead of hanging; `until` waits for what a worker signals through shared memory.
 */
import { Worker } from 'node:worker_threads';

const started: Worker[] = [];

/** Starts `file` (a fixture, which loads dist/) with `workerData`; terminated after the test. */
export function startWorker(file: string | URL, workerData: unknown): Worker {
  const worker = new Worker(file, { workerData });
  started.push(worker);
  return worker;
}

/** Terminates every worker started since the last call (for afterEach). */
export async function terminateWorkers(): Promise<void> {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
}

export interface FirstMessageOptions<T> {
  readonly timeoutMs: number;
  /** What the timeout is reported as. */
  readonly what?: string;
  /** A reason to reject the message with, or undefined to accept it. */
  readonly failed?: (message: T) => string | undefined;
}

/** `worker`'s first message; rejects on an error, an exit before it, a timeout, or `failed`. */
export function firstMessage<T>(worker: Worker, { timeoutMs, what = 'worker', failed }: FirstMessageOptions<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const settle = (): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (m: T): void => {
      settle();
      const reason = failed?.(m);
      if (reason === undefined) resolve(m);
      else reject(new Error(reason));
    };
    const onError = (e: Error): void => {
      settle();
      reject(e);
    };
    const onExit = (code: number): void => {
      settle();
      reject(new Error(`${what} exited (${code}) without reporting`));
    };
    const timer = setTimeout(() => {
      settle();
      reject(new Error(`${what} timed out`));
    }, timeoutMs);
    worker.once('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}

/** Resolves once `cond()` holds (polled every millisecond); throws after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Starts `file` and resolves with its one report (see `firstMessage`). */
export function runWorker<T>(file: string | URL, workerData: unknown, options: FirstMessageOptions<T>): Promise<T> {
  return firstMessage(startWorker(file, workerData), options);
}
