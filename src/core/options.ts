/**
 * Options arguments: absent (`undefined` or `null`, meaning every default) or an object whose
 * unknown keys are ignored. A number, string, symbol or bigint where options belong is a mistake
 * (a capacity passed positionally, say), so it is refused rather than silently read as defaults.
 */
import { InvalidArgumentError } from '../errors.js';
import { describeValue } from '../describe-value.js';

/** @internal `options` as an object to destructure (`{}` when absent); InvalidArgument for a primitive. */
export function optionsObject<T extends object>(options: T | null | undefined, what = 'options'): Partial<T> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' && typeof options !== 'function') {
    throw new InvalidArgumentError(`${what} must be an object, got ${describeValue(options)}`);
  }
  return options;
}

/**
 * The longest wait or timer: 2^31 − 1 ms (~24.8 days). Node's timers fire at once beyond it, and a
 * wait of NaN or Infinity would make `Atomics.wait` sleep forever: a thread that never wakes is
 * what every bounded wait here exists to prevent.
 */
export const MAX_WAIT_MS = 0x7fff_ffff;

/**
 * @internal A duration option or argument in ms, checked: a number in [`min`, MAX_WAIT_MS] (default
 * min 0), a whole number where it feeds a timer (`integer`). Returns it; InvalidArgument otherwise.
 */
export function checkWaitMs(name: string, value: unknown, { min = 0, integer = false }: { min?: number; integer?: boolean } = {}): number {
  if (typeof value !== 'number' || !(value >= min && value <= MAX_WAIT_MS) || (integer && !Number.isInteger(value))) {
    const kind = integer ? 'an integer number' : 'a number';
    throw new InvalidArgumentError(`${name} must be ${kind} of milliseconds in [${min}, ${MAX_WAIT_MS}], got ${describeValue(value)}`);
  }
  return value;
}

/** @internal A timer's duration option: whole milliseconds in [1, MAX_WAIT_MS]. */
export function checkTimerMs(name: string, value: unknown): number {
  return checkWaitMs(name, value, { min: 1, integer: true });
}
