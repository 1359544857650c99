// The seeded PRNGs of the test suite. Plain JavaScript that imports nothing, so that every test,
// the crash harness (also compiled for its CLI) and the crash child process (which cannot load
// TypeScript) run the same code.

/**
 * mulberry32: a small seeded PRNG returning floats in [0, 1).
 * @param {number} seed
 * @returns {() => number}
 */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * xorshift32: a small seeded PRNG returning u32 values (never a zero state).
 * @param {number} seed
 * @returns {() => number}
 */
export function xorshift32(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}
