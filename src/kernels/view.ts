/** Consistent pictures of a kernel: its state, frontier and clock at one moment. */
import type { CausalClock } from '../causal/causal-clock.js';
import type { FactId } from '../core/fact.js';
import type { StateCell } from '../core/state-cell.js';

export interface View {
  /** A copy of the state cell. */
  readonly state: StateCell;
  /** The frontier's heads, oldest first. */
  readonly frontier: readonly FactId[];
  /** A copy of the Bloom clock. */
  readonly clock: CausalClock;
  /** Number of facts admitted. */
  readonly size: number;
  /** Fraction of the Bloom clock's bits set. */
  readonly saturation: number;
}

/** What `sync()` returns: the writer's last publication. */
export interface Snapshot extends View {
  /** How many times the writer has published; compare two to see whether anything changed. */
  readonly publication: number;
}
