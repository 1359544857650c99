/**
 * `Atomics.waitAsync` (ES2024; Node 20 has it) is not in the ES2023 lib the project compiles
 * against: typed here. It lets one thread wait on many shared words at once without blocking.
 */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };

/** Resolves when `words[index]` is notified, or after `timeoutMs`, or at once if it no longer holds `expected`. */
export async function waitAsync(words: Int32Array, index: number, expected: number, timeoutMs: number): Promise<void> {
  const result = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): WaitAsyncResult }).waitAsync(words, index, expected, timeoutMs);
  if (result.async) await result.value;
}
