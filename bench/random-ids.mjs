// Pseudo-random 32-byte ids for the history benchmarks, the same for a given salt in every run.

/** `n` ids end to end (xorshift32 over the words; `salt` separates sets). */
export function randomIds(n, salt) {
  const words = new Uint32Array(8 * n);
  let x = (0x9e3779b9 ^ Math.imul(salt, 0x85ebca6b)) | 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer);
}
