/**
 * describeValue: what an error message says about an argument it refuses.
 *
 * Any value may arrive at a public function, so describing it must never throw and never take
 * long: a `Symbol` or a null-prototype object in a template string throws a TypeError, `String()`
 * of a million-element array takes seconds and yields megabytes, and a getter, `toString` or proxy
 * trap is the caller's code. So this reads types, lengths and a short preview through the
 * language's own intrinsics, calls nothing the value defines (a proxy's traps aside, whose errors
 * are caught), and caps what it returns.
 *
 * It imports nothing from the project, so any module (errors.ts included) may use it.
 */

/** The longest description returned, in characters (a message stays one readable line). */
export const MAX_DESCRIPTION_CHARS = 120;
/** Characters of a string shown before it is cut. */
const STRING_PREVIEW_CHARS = 40;
/** Elements of an array, or keys of an object, shown before `…`. */
const ITEM_PREVIEW = 3;
/** Bytes of a byte array shown (in hex) before `…`. */
const BYTE_PREVIEW = 8;
/** Bigints with more decimal digits than this are described by size, not by value. */
const BIGINT_PREVIEW_DIGITS = 30;
const BIGINT_PREVIEW_LIMIT = 10n ** BigInt(BIGINT_PREVIEW_DIGITS);

const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object;
/** %TypedArray%.prototype getters: a subclass cannot override what these report. */
const typedLength = Object.getOwnPropertyDescriptor(typedArrayProto, 'length')!.get!;
const typedTag = Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag)!.get!;
const arrayBufferLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, 'byteLength')!.get!;
const sharedBufferLength = Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'byteLength')!.get!;
const dataViewLength = Object.getOwnPropertyDescriptor(DataView.prototype, 'byteLength')!.get!;
const symbolDescription = Object.getOwnPropertyDescriptor(Symbol.prototype, 'description')!.get!;
const objectTag = Object.prototype.toString;

/**
 * A short description of `value` for an error message: its type and a bounded preview — `null`,
 * `NaN`, `10n`, `Symbol(x)`, `"text"`, `Array(1000000) [1, 2, 3, …]`, `Uint8Array(32) [00 01 …]`,
 * `Buffer(4) [de ad be ef]`, `{ id, deps, payload }`, `object (null prototype) {}`. Never throws;
 * at most {@link MAX_DESCRIPTION_CHARS} characters.
 */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = describe(value, true);
  } catch {
    text = `a value of type ${typeof value}`;
  }
  return text.length <= MAX_DESCRIPTION_CHARS ? text : `${text.slice(0, MAX_DESCRIPTION_CHARS - 1)}…`;
}

function describe(value: unknown, top: boolean): string {
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return value < BIGINT_PREVIEW_LIMIT && value > -BIGINT_PREVIEW_LIMIT ? `${String(value)}n` : `a bigint of more than ${BIGINT_PREVIEW_DIGITS} digits`;
    case 'string':
      return describeString(value);
    case 'symbol':
      return describeSymbol(value);
    case 'function':
      return describeFunction(value);
    default:
      return value === null ? 'null' : describeObject(value as object, top);
  }
}

function describeString(s: string): string {
  if (s.length <= STRING_PREVIEW_CHARS) return JSON.stringify(s);
  return `${JSON.stringify(s.slice(0, STRING_PREVIEW_CHARS)).slice(0, -1)}…" (${s.length} chars)`;
}

function describeSymbol(s: symbol): string {
  const description = symbolDescription.call(s) as string | undefined;
  if (description === undefined) return 'Symbol()';
  return `Symbol(${description.length <= STRING_PREVIEW_CHARS ? description : `${description.slice(0, STRING_PREVIEW_CHARS)}…`})`;
}

function describeFunction(f: unknown): string {
  const own = Object.getOwnPropertyDescriptor(f, 'name');
  const name = own !== undefined && typeof own.value === 'string' && own.value !== '' ? own.value : '(anonymous)';
  return `function ${name.length <= STRING_PREVIEW_CHARS ? name : `${name.slice(0, STRING_PREVIEW_CHARS)}…`}`;
}

function describeObject(o: object, top: boolean): string {
  if (ArrayBuffer.isView(o)) return o instanceof DataView ? `DataView(${dataViewLength.call(o)})` : describeTypedArray(o, top);
  if (Array.isArray(o)) return describeArray(o, top);
  const tag = objectTag.call(o);
  if (tag === '[object ArrayBuffer]') return `ArrayBuffer(${arrayBufferLength.call(o)})`;
  if (tag === '[object SharedArrayBuffer]') return `SharedArrayBuffer(${sharedBufferLength.call(o)})`;
  const proto = Object.getPrototypeOf(o) as object | null;
  const name = proto === null ? 'object (null prototype)' : constructorName(proto);
  if (!top) return name === 'Object' ? '{…}' : `${name} {…}`;
  const keys = ownKeyPreview(o);
  const body = keys.length === 0 ? '{}' : `{ ${keys.join(', ')} }`;
  return name === 'Object' ? body : `${name} ${body}`;
}

function describeTypedArray(view: object, top: boolean): string {
  const tag = typedTag.call(view) as string;
  const length = typedLength.call(view) as number;
  const proto = Object.getPrototypeOf(view) as object | null;
  const shown = proto === null ? tag : constructorName(proto);
  const name = `${shown}(${length})`;
  if (!top || length === 0) return name;
  const n = Math.min(length, BYTE_PREVIEW);
  const items: string[] = [];
  // Element reads of a typed array are plain memory reads (no user code), even on a subclass.
  const elements = view as ArrayLike<number | bigint>;
  if (tag === 'Uint8Array' || tag === 'Int8Array' || tag === 'Uint8ClampedArray') {
    for (let i = 0; i < n; i++) items.push(((elements[i] as number) & 0xff).toString(16).padStart(2, '0'));
    return `${name} [${items.join(' ')}${length > n ? ' …' : ''}]`;
  }
  const m = Math.min(length, ITEM_PREVIEW);
  for (let i = 0; i < m; i++) items.push(String(elements[i]));
  return `${name} [${items.join(', ')}${length > m ? ', …' : ''}]`;
}

function describeArray(a: unknown[], top: boolean): string {
  const name = `Array(${a.length})`;
  if (!top || a.length === 0) return name;
  const items: string[] = [];
  const n = Math.min(a.length, ITEM_PREVIEW);
  for (let i = 0; i < n; i++) {
    const own = Object.getOwnPropertyDescriptor(a, i);
    // A hole, or a getter (not run: it is the caller's code).
    items.push(own === undefined ? '<empty>' : 'value' in own ? describe(own.value, false) : '<getter>');
  }
  return `${name} [${items.join(', ')}${a.length > n ? ', …' : ''}]`;
}

/** The name of the constructor on `proto`, read without running getters; 'Object' if none. */
function constructorName(proto: object): string {
  const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
  if (typeof ctor !== 'function') return 'Object';
  const own = Object.getOwnPropertyDescriptor(ctor, 'name');
  const name = own !== undefined && typeof own.value === 'string' && own.value !== '' ? own.value : 'Object';
  return name.length <= STRING_PREVIEW_CHARS ? name : `${name.slice(0, STRING_PREVIEW_CHARS)}…`;
}

/** The first few own string keys (a proxy's `ownKeys` trap runs; its errors are caught above). */
function ownKeyPreview(o: object): string[] {
  const keys: string[] = [];
  for (const key in o) {
    if (!Object.prototype.hasOwnProperty.call(o, key)) continue;
    if (keys.length === ITEM_PREVIEW) {
      keys.push('…');
      break;
    }
    keys.push(/^[A-Za-z_$][\w$]*$/.test(key) && key.length <= STRING_PREVIEW_CHARS ? key : describeString(key));
  }
  return keys;
}
