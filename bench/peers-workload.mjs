/**
 * The one workload of the side-by-side benchmark (bench/peers.mjs): a balance with a floor.
 *
 * A seeded sequence of signed amounts; a decrement that would take the balance below zero is
 * refused. Decrements are a little more likely than increments (DECREMENT_SHARE), so the balance
 * drifts down from START to the floor within a few thousand operations and then stays near it:
 * from there on roughly one operation in thirteen is refused, so every system under test decides
 * refusals as well as acceptances for most of the run, not only the easy case.
 *
 * Every operation carries a 200-byte fact: the amount as an i128 (what TotalSupplyInvariant
 * reads), the operation's number (so no two facts are equal, however long a run cycles through
 * the sequence), and filler up to FACT_BYTES.
 */
import { prng } from '../test/helpers/random.mjs';

/** The fact size the comparison is stated for. */
export const FACT_BYTES = 200;
/** The balance every run starts from. */
export const START = 10_000;
/** Amounts are 1..MAX_AMOUNT. */
const MAX_AMOUNT = 100;
/** 55% decrements: a downward drift of about 5 per operation (mean amount 50.5 × 0.1). */
const DECREMENT_SHARE = 0.55;
/** Operations in the sequence; a run longer than this cycles through it with fresh numbers. */
export const SEQUENCE_LENGTH = 1 << 20;
const SEQUENCE_MASK = SEQUENCE_LENGTH - 1;

/** The amounts, seeded: the same sequence for every system in a run. */
export function amounts(seed = 20261208) {
  const next = prng(seed);
  const out = new Int32Array(SEQUENCE_LENGTH);
  for (let i = 0; i < SEQUENCE_LENGTH; i++) {
    const amount = 1 + Math.floor(next() * MAX_AMOUNT);
    out[i] = next() < DECREMENT_SHARE ? -amount : amount;
  }
  return out;
}

/** The amount of operation `i`. */
export const amountOf = (deltas, i) => deltas[i & SEQUENCE_MASK];

/**
 * Writes operation `i`'s fact into `out` (FACT_BYTES): the amount as an i128 little-endian (sign
 * extended), the operation number as a u64 at 16, and a fixed filler after it.
 */
export function writeFact(out, i, amount) {
  const v = new DataView(out.buffer, out.byteOffset, FACT_BYTES);
  v.setInt32(0, amount, true);
  const sign = amount < 0 ? -1 : 0;
  v.setInt32(4, sign, true);
  v.setInt32(8, sign, true);
  v.setInt32(12, sign, true);
  v.setUint32(16, i >>> 0, true);
  v.setUint32(20, Math.floor(i / 4294967296), true);
  return out;
}

/** A fresh fact buffer with the filler in place (bytes 24..200), for `writeFact`. */
export function factBuffer() {
  const out = new Uint8Array(FACT_BYTES);
  for (let k = 24; k < FACT_BYTES; k++) out[k] = k & 0xff;
  return out;
}

/**
 * What one client applying operations 0..n-1 in order against a central store must end with: the
 * balance, and how many operations were accepted and refused.
 */
export function expected(deltas, n) {
  let balance = START;
  let accepted = 0;
  for (let i = 0; i < n; i++) {
    const d = amountOf(deltas, i);
    if (d < 0 && balance + d < 0) continue;
    balance += d;
    accepted++;
  }
  return { balance, accepted, refused: n - accepted };
}
