/**
 * `ctfs verify <dir>`: every check recovery makes, read-only. Exit 0 and a summary when the
 * directory would open; exit 1 and the typed error — its code, and for a damaged log the file,
 * byte offset and sequence of the first fault — when it would not.
 */
import { CtfsError, WalCorruptionError } from '../errors.js';
import { verifyLog } from '../persistence/verify.js';

export interface VerifyOutcome {
  readonly ok: boolean;
  readonly text: string;
}

export function verifyDirectory(dir: string): VerifyOutcome {
  try {
    const v = verifyLog(dir);
    const torn = v.tornTail === undefined ? '' : `; a torn tail in ${v.tornTail.file} from byte ${v.tornTail.offset} (recovery drops it: never acknowledged)`;
    const checkpoints = v.checkpoints.filter((c) => c.problem === undefined).length;
    return {
      ok: true,
      text: `ok: ${dir} would open — ${v.records} record(s) in ${v.segments} segment(s) verified, sequences ${v.fromSequence}..${v.lastSequence}, ${checkpoints} of ${v.checkpoints.length} checkpoint(s) verify${torn}`,
    };
  } catch (error) {
    if (!(error instanceof CtfsError)) throw error;
    const where = error instanceof WalCorruptionError && error.position !== null && typeof error.position === 'object' ? `\nfirst fault: ${error.position.file} at byte ${error.position.offset}, sequence ${error.position.sequence}` : '';
    return { ok: false, text: `${error.code}: ${error.message}${where}` };
  }
}
