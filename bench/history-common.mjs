// What the two history benchmarks (history-runs, tiered-index) share: the run length options,
// pseudo-random ids, the median, the timing of one lookup with its outcomes tallied, and the
// table of rows each prints (a row whose outcome is not the expected one marks the run INVALID).
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

/**
 * Rows printed as they are measured (names padded to `nameWidth`), then as one markdown table by
 * `finish()`, which exits non-zero if any row saw an outcome it does not claim to measure.
 * `expected(outcome)` says whether a row's outcome is the one it claims.
 */
export function resultTable(nameWidth) {
  const rows = [];
  let invalid = 0;
  return {
    row(name, value, unit, outcome, expected) {
      const ok = expected === undefined || expected(outcome);
      if (!ok) invalid++;
      rows.push({ name, value, unit, outcome, ok });
      console.log(`  ${name.padEnd(nameWidth)} ${value.padStart(12)} ${unit.padEnd(6)} [${outcome}]${ok ? '' : '  INVALID: not the expected outcome'}`);
    },
    finish() {
      console.log('\n| benchmark | median | unit | outcome |');
      console.log('|---|---:|---|---|');
      for (const r of rows) console.log(`| ${r.name} | ${r.value} | ${r.unit} | ${r.outcome}${r.ok ? '' : ' **INVALID**'} |`);
      if (invalid > 0) {
        console.error(`\n${invalid} benchmark(s) did not see the outcome they claim to measure`);
        process.exit(1);
      }
    },
  };
}
