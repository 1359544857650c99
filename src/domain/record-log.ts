/**
 * The seam through which a causal domain logs what it admits: a durable kernel's WAL arena, and
 * next to it any other consumer that must see exactly the admitted facts in admission order (an
 * outbound replication ring). A domain with a log calls `reserve` after every check and before the
 * invariant, and `stage` after the commit.
 */
export interface RecordLog {
  /**
   * Makes sure a record of this shape can be staged: 0 once it is sure to fit, else the code that
   * refuses the fact (`ArenaFull`, `DurabilityFailed`) while nothing has changed yet. A
   * reservation changes nothing anyone else can observe: if the invariant then refuses the fact,
   * `stage` is simply not called and the next `reserve` starts over.
   */
  reserve(depCount: number, payloadLength: number): number;
  /**
   * Writes the record into the space `reserve` found; cannot fail. `idWords`: the id's eight
   * little-endian words, already read by the admission (saves a copy).
   */
  stage(idWords: Uint32Array, deps: readonly Uint8Array[], payload: Uint8Array): void;
}

/**
 * Two logs as one: a fact is reserved in both before the invariant runs, and staged in both
 * after the commit — or, if either has no room, refused with nothing staged in either (a
 * reservation is invisible until staged, so the other one is simply dropped).
 */
export function teeRecordLogs(first: RecordLog, second: RecordLog): RecordLog {
  return {
    reserve(depCount: number, payloadLength: number): number {
      return first.reserve(depCount, payloadLength) || second.reserve(depCount, payloadLength);
    },
    stage(idWords: Uint32Array, deps: readonly Uint8Array[], payload: Uint8Array): void {
      first.stage(idWords, deps, payload);
      second.stage(idWords, deps, payload);
    },
  };
}
