/**
 * FactBatch: facts packed back to back in one SharedArrayBuffer, with one result code per fact.
 *
 * A batch is what `Kernel.admitBatch` and `KernelPool.admitBatch` consume. Packing once lets a
 * pool thread read the facts where the caller wrote them (a SharedArrayBuffer crosses threads as
 * a handle, never as a copy) and write the codes back the same way, so a batch of 4,096 facts
 * costs one small message each way. Layout (docs/FORMATS.md §7):
 *
 *   record := payloadLength u32 LE ‖ depCount u32 LE ‖ id (32) ‖ deps (32 × depCount) ‖ payload,
 *             padded with zeros to a multiple of 4 bytes.
 *
 * A fact of the wrong shape (not 32-byte ids, more than 16 deps, a payload over 64 KiB or not
 * bytes) is not an exception either: it is kept as a refused record — header word 1 carries
 * REFUSED_RECORD | the code the kernel would give it (`MalformedFact` or `PayloadTooLarge`),
 * followed by 32 zero bytes — and admission reports that code for it without touching the kernel.
 */
import { MAX_DEPS, MAX_PAYLOAD_BYTES, type Fact, type FactId } from './fact.js';
import { AdmitCode } from '../codes.js';
import { InvalidArgumentError, SharedMemoryError } from '../errors.js';
import { describeValue } from '../describe-value.js';

/** Record header: payload length and dep count, one u32 each. */
export const BATCH_RECORD_HEADER_BYTES = 8;
/** Set in a record's dep-count word for a fact refused at push; the low byte is its AdmitCode. */
const REFUSED_RECORD = 0x8000_0000;
/** A refused record: its header and 32 zero bytes where the id would be. */
const REFUSED_RECORD_BYTES = BATCH_RECORD_HEADER_BYTES + 32;
/** Default room for facts when none is given: a fact with one dep and a 64-byte payload is 136 bytes. */
const DEFAULT_BYTES_PER_FACT = 136;
/** Default number of facts a batch is sized for. */
export const DEFAULT_BATCH_FACTS = 1024;
/** A batch never holds more facts than this (the count is a u32, and 2^24 facts is far past any useful task). */
export const MAX_BATCH_FACTS = 1 << 24;

/** The codes of the facts a batch held, as `admitBatch` resolves them. */
export interface BatchResult {
  /** One `AdmitCode` per fact, in batch order (0 = admitted). */
  readonly codes: Uint8Array;
  /** How many facts were admitted (codes equal to 0). */
  readonly admitted: number;
}

/** The views a reader of a batch needs; a pool thread rebuilds them from the transferred handles. */
export interface SharedBatch {
  readonly data: SharedArrayBuffer;
  readonly codes: SharedArrayBuffer;
  readonly count: number;
  readonly bytes: number;
}

/** Rounds up to a multiple of 4 (in floating point: sizes may pass 2^31). */
const pad4 = (n: number): number => Math.ceil(n / 4) * 4;
/** The largest data buffer a batch grows to: 2^32 − 4 bytes (lengths in the records are u32). */
const MAX_BATCH_BYTES = 0xffff_fffc;

const isId = (id: unknown): id is Uint8Array => id instanceof Uint8Array && id.length === 32;

/**
 * The code a kernel's `tryAdmitRaw` gives a fact of this shape before looking at anything else
 * (the payload first, as there), or 0 if the shape is fine.
 */
function shapeCode(id: unknown, deps: unknown, payload: unknown): number {
  if (!(payload instanceof Uint8Array)) return AdmitCode.MalformedFact;
  if (payload.length > MAX_PAYLOAD_BYTES) return AdmitCode.PayloadTooLarge;
  if (!isId(id) || !Array.isArray(deps) || deps.length > MAX_DEPS) return AdmitCode.MalformedFact;
  for (let d = 0; d < deps.length; d++) if (!isId(deps[d])) return AdmitCode.MalformedFact;
  return 0;
}

export class FactBatch {
  private data: SharedArrayBuffer;
  private bytes: Uint8Array;
  private words: DataView;
  private codeBuffer: SharedArrayBuffer;
  private used = 0;
  private count = 0;
  /** Set while a pool thread owns the batch: pushing or clearing then would race with it. */
  private sealed = false;

  /**
   * An empty batch with room for about `facts` facts (default 1,024) in `bytes` bytes (default
   * 136 per fact); both grow on demand while the batch is not in flight.
   */
  constructor(facts: number = DEFAULT_BATCH_FACTS, bytes?: number) {
    if (!Number.isInteger(facts) || facts < 1 || facts > MAX_BATCH_FACTS) {
      throw new InvalidArgumentError(`a batch is sized for 1..${MAX_BATCH_FACTS} facts, got ${describeValue(facts)}`);
    }
    const size = bytes ?? Math.min(facts * DEFAULT_BYTES_PER_FACT, MAX_BATCH_BYTES);
    if (!Number.isInteger(size) || size < BATCH_RECORD_HEADER_BYTES + 32 || size > MAX_BATCH_BYTES) {
      throw new InvalidArgumentError(`a batch takes ${BATCH_RECORD_HEADER_BYTES + 32}..${MAX_BATCH_BYTES} bytes, got ${describeValue(bytes)}`);
    }
    this.data = new SharedArrayBuffer(pad4(size));
    this.bytes = new Uint8Array(this.data);
    this.words = new DataView(this.data);
    this.codeBuffer = new SharedArrayBuffer(facts);
  }

  /** A batch holding copies of `facts`, in order. */
  static from(facts: Iterable<Fact>): FactBatch {
    if (facts === null || typeof facts !== 'object' || typeof (facts as Iterable<Fact>)[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError(`FactBatch.from takes an array (or iterable) of facts, got ${describeValue(facts)}`);
    }
    if (ArrayBuffer.isView(facts)) throw new InvalidArgumentError(`FactBatch.from takes facts, not bytes: got ${describeValue(facts)}`);
    const list = Array.isArray(facts) ? (facts as Fact[]) : [...facts];
    let size = 0;
    for (const f of list) size += FactBatch.recordBytes(f);
    const batch = new FactBatch(Math.max(1, list.length), Math.max(size, BATCH_RECORD_HEADER_BYTES + 32));
    for (const f of list) batch.push(f);
    return batch;
  }

  /** Bytes one fact takes in a batch (a fact of the wrong shape takes a refused record's 40). */
  static recordBytes(fact: Fact): number {
    if (fact === null || typeof fact !== 'object' || shapeCode(fact.id, fact.deps, fact.payload) !== 0) return REFUSED_RECORD_BYTES;
    return BATCH_RECORD_HEADER_BYTES + 32 + 32 * fact.deps.length + pad4(fact.payload.length);
  }

  /** Number of facts in the batch. */
  get length(): number {
    return this.count;
  }

  /** Bytes of fact records in the batch. */
  get byteLength(): number {
    return this.used;
  }

  /** True while a pool thread is admitting the batch (it cannot change until that settles). */
  get inFlight(): boolean {
    return this.sealed;
  }

  /**
   * Appends a copy of `fact`. Anything that is not a well-shaped fact is appended as a refused
   * record: admission gives it the code a kernel would (`MalformedFact`, `PayloadTooLarge`).
   */
  push(fact: Fact): this {
    if (fact === null || typeof fact !== 'object') return this.pushRefused(AdmitCode.MalformedFact);
    return this.pushRaw(fact.id, fact.deps, fact.payload);
  }

  /** Appends a copy of the fact `id`, `deps`, `payload` (a wrong shape becomes a refused record, as in `push`). */
  pushRaw(id: FactId, deps: readonly FactId[], payload: Uint8Array): this {
    this.notInFlight();
    if (this.count >= MAX_BATCH_FACTS) throw new InvalidArgumentError(`a batch holds at most ${MAX_BATCH_FACTS} facts`);
    const refused = shapeCode(id, deps, payload);
    if (refused !== 0) return this.pushRefused(refused);
    const record = BATCH_RECORD_HEADER_BYTES + 32 + 32 * deps.length + pad4(payload.length);
    this.reserve(this.count + 1, this.used + record);
    let at = this.used;
    this.words.setUint32(at, payload.length, true);
    this.words.setUint32(at + 4, deps.length, true);
    at += BATCH_RECORD_HEADER_BYTES;
    this.bytes.set(id, at);
    at += 32;
    for (let d = 0; d < deps.length; d++, at += 32) this.bytes.set(deps[d]!, at);
    // `set` throws on a detached array even when it holds no bytes.
    if (payload.length > 0) this.bytes.set(payload, at);
    // Padding stays zero: the buffer starts zeroed and `clear` re-zeroes what was used.
    this.used += record;
    this.count++;
    return this;
  }

  private pushRefused(code: number): this {
    this.notInFlight();
    if (this.count >= MAX_BATCH_FACTS) throw new InvalidArgumentError(`a batch holds at most ${MAX_BATCH_FACTS} facts`);
    this.reserve(this.count + 1, this.used + REFUSED_RECORD_BYTES);
    this.words.setUint32(this.used, 0, true);
    this.words.setUint32(this.used + 4, REFUSED_RECORD | code, true);
    // The 32 id bytes stay zero (the buffer is zeroed).
    this.used += REFUSED_RECORD_BYTES;
    this.count++;
    return this;
  }

  /** Empties the batch for reuse (the memory is kept). */
  clear(): void {
    this.notInFlight();
    this.bytes.fill(0, 0, this.used);
    this.used = 0;
    this.count = 0;
  }

  /** The codes of the last admission of this batch (a view, valid until the batch is admitted again). */
  get codes(): Uint8Array {
    return new Uint8Array(this.codeBuffer, 0, this.count);
  }

  /** @internal The handles a pool thread needs; seals the batch until `unseal`. */
  seal(): SharedBatch {
    this.notInFlight();
    this.sealed = true;
    return { data: this.data, codes: this.codeBuffer, count: this.count, bytes: this.used };
  }

  /** @internal */
  unseal(): void {
    this.sealed = false;
  }

  /** @internal The handles, for admission in this thread (not sealed). */
  get shared(): SharedBatch {
    return { data: this.data, codes: this.codeBuffer, count: this.count, bytes: this.used };
  }

  private notInFlight(): void {
    if (this.sealed) throw new InvalidArgumentError('the batch is being admitted by a pool thread; await admitBatch first');
  }

  /** Grows the buffers (doubling) so `facts` facts in `bytes` bytes fit. */
  private reserve(facts: number, bytes: number): void {
    if (bytes > this.data.byteLength) {
      if (bytes > MAX_BATCH_BYTES) throw new InvalidArgumentError(`a batch holds at most ${MAX_BATCH_BYTES} bytes of facts`);
      let data: SharedArrayBuffer;
      try {
        data = new SharedArrayBuffer(Math.min(MAX_BATCH_BYTES, pad4(Math.max(bytes, 2 * this.data.byteLength))));
      } catch (cause) {
        throw new InvalidArgumentError(`cannot grow the batch to ${bytes} bytes`, { cause });
      }
      const view = new Uint8Array(data);
      view.set(this.bytes.subarray(0, this.used));
      this.data = data;
      this.bytes = view;
      this.words = new DataView(data);
    }
    if (facts > this.codeBuffer.byteLength) {
      this.codeBuffer = new SharedArrayBuffer(Math.min(MAX_BATCH_FACTS, Math.max(facts, 2 * this.codeBuffer.byteLength)));
    }
  }
}

/**
 * Deps arrays reused by `admitShared`, one per dep count: admission reads deps only during the
 * call, so the same array can carry every fact's deps.
 */
const depScratch: Uint8Array[][] = Array.from({ length: MAX_DEPS + 1 }, (_, n) => new Array<Uint8Array>(n));

/** Anything that admits one fact and returns an `AdmitCode`: every kernel's `tryAdmitRaw`. */
export interface RawAdmitter {
  tryAdmitRaw(id: Uint8Array, deps: readonly Uint8Array[], payload: Uint8Array): number;
}

/**
 * Admits every fact of `batch` through `kernel.tryAdmitRaw`, in order, writing one code per fact
 * into the batch's code buffer. Returns how many were admitted. A record that runs past the
 * batch's end (a damaged or hostile buffer) and every record after it get MalformedFact.
 */
export function admitShared(batch: SharedBatch, kernel: RawAdmitter): number {
  const { count, bytes: end } = batch;
  if (!(batch.data instanceof SharedArrayBuffer) || !(batch.codes instanceof SharedArrayBuffer)) {
    throw new SharedMemoryError('a batch is a pair of SharedArrayBuffers');
  }
  if (!Number.isInteger(count) || count < 0 || count > batch.codes.byteLength || !Number.isInteger(end) || end < 0 || end > batch.data.byteLength) {
    throw new SharedMemoryError('batch count or length does not fit its buffers');
  }
  const bytes = new Uint8Array(batch.data, 0, end);
  const view = new DataView(batch.data, 0, end);
  const codes = new Uint8Array(batch.codes, 0, count);
  let at = 0;
  let admitted = 0;
  let i = 0;
  for (; i < count; i++) {
    if (at + BATCH_RECORD_HEADER_BYTES + 32 > end) break;
    const payloadLength = view.getUint32(at, true);
    const depCount = view.getUint32(at + 4, true);
    if (depCount >= REFUSED_RECORD) {
      // Refused at push: only the two codes a shape can earn; anything else is damage.
      const code = depCount - REFUSED_RECORD;
      if (payloadLength !== 0 || (code !== AdmitCode.MalformedFact && code !== AdmitCode.PayloadTooLarge)) break;
      codes[i] = code;
      at += REFUSED_RECORD_BYTES;
      continue;
    }
    if (depCount > MAX_DEPS || payloadLength > MAX_PAYLOAD_BYTES) break;
    const idAt = at + BATCH_RECORD_HEADER_BYTES;
    const payloadAt = idAt + 32 + 32 * depCount;
    const next = payloadAt + pad4(payloadLength);
    if (next > end) break;
    const deps = depScratch[depCount]!;
    for (let d = 0; d < depCount; d++) deps[d] = bytes.subarray(idAt + 32 + 32 * d, idAt + 64 + 32 * d);
    const code = kernel.tryAdmitRaw(bytes.subarray(idAt, idAt + 32), deps, bytes.subarray(payloadAt, payloadAt + payloadLength));
    codes[i] = code;
    if (code === AdmitCode.Ok) admitted++;
    at = next;
  }
  // Whatever could not be read as a record is refused, never skipped silently.
  if (i < count) codes.fill(AdmitCode.MalformedFact, i);
  return admitted;
}
