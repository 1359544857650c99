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
