/** Assertions for ctfs's typed errors. */
import { expect } from 'vitest';
import { CtfsError, InvalidArgumentError, SharedMemoryError } from './lib.js';

/** `fn` throws an instance of `cls` that is also a CtfsError with the stable `code`. */
export function expectError(fn: () => unknown, cls: abstract new (...args: never[]) => Error, code: string): void {
  expectCtfsError(caught(fn), cls, code);
}

/** `error` (a thrown or rejected value) is an instance of `cls` that is also a CtfsError with the stable `code`. */
export function expectCtfsError(error: unknown, cls: abstract new (...args: never[]) => Error, code: string): void {
  expect(error).toBeInstanceOf(cls);
  expect(error).toBeInstanceOf(CtfsError);
  expect((error as CtfsError).code).toBe(code);
}

/** `fn` throws InvalidArgumentError (code 'InvalidArgument'). */
export function expectInvalid(fn: () => unknown): void {
  expectError(fn, InvalidArgumentError, 'InvalidArgument');
}

/** `fn` throws SharedMemoryError (code 'InvalidSharedMemory'). */
export function expectBadMemory(fn: () => unknown): void {
  expectError(fn, SharedMemoryError, 'InvalidSharedMemory');
}

/** What `fn` threw, or undefined if it returned (for calls that may or may not be refused). */
export function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
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

/** What `promise` rejected with; fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, got success');
}
