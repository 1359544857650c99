// What the two history benchmarks (history-runs, tiered-index) share: the run length options,
// pseudo-random ids, the median, and the timing of one lookup with its outcomes tallied.
import { measure } from 'mitata';

/** `--quick`: small sizes and one round, to check a bench runs. */
export const QUICK = process.argv.includes('--quick');
export const ROUNDS = QUICK ? 1 : Number(process.env.CTFS_BENCH_ROUNDS ?? 5);

/** `n` pseudo-random ids end to end (xorshift32 over the words; `salt` separates sets). */
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

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * mitata p50 of one `lookup(probes, offset)`, median over ROUNDS rounds; offsets cycle through the
 * probe array (a power of two of 32-byte ids) and the answers are tallied.
 */
export async function lookupNs(probes, lookup) {
  const mask = probes.length / 32 - 1;
  const tally = [0, 0];
  let i = 0;
  const fn = () => {
    i = (i + 1) & mask;
    tally[lookup(probes, 32 * i) ? 1 : 0]++;
  };
  const p50s = [];
  for (let r = 0; r < ROUNDS; r++) p50s.push((await measure(fn, { min_cpu_time: QUICK ? 20e6 : 300e6 })).p50);
  return { ns: median(p50s), trues: tally[1], falses: tally[0] };
}
