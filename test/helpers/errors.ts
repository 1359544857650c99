/** Assertions for ctfs's typed errors. */
import { expect } from 'vitest';
import { CtfsError, InvalidArgumentError } from './lib.js';

/** `fn` throws an instance of `cls` that is also a CtfsError with the stable `code`. */
export function expectError(fn: () => unknown, cls: abstract new (...args: never[]) => Error, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(cls);
  expect(caught).toBeInstanceOf(CtfsError);
  expect((caught as CtfsError).code).toBe(code);
}

/** `fn` throws InvalidArgumentError (code 'InvalidArgument'). */
export function expectInvalid(fn: () => unknown): void {
  expectError(fn, InvalidArgumentError, 'InvalidArgument');
}

/** What `fn` threw; fails the test if it returned instead. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to throw');
}
