// Frames of the webml serve protocol (docs/serve-protocol.md): u32 little-endian header
// length, a UTF-8 JSON header, then the raw payload bytes.
//
// The header's JSON is written so that Python's json module reads every MLNumber exactly:
// BigInts as integer literals and non-finite numbers as the tokens NaN, Infinity and -Infinity.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MARK = "\u2063webml:"; // an invisible separator: JSON.stringify keeps it as it is

/** @param {unknown} _key @param {unknown} value */
function replacer(_key, value) {
  if (typeof value === "bigint") return `${MARK}${value}`;
  if (typeof value === "number" && !Number.isFinite(value)) return `${MARK}${value}`;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(/** @type {any} */ (value));
  return value;
}

/** JSON text of ``value`` with BigInts and non-finite numbers as Python's json reads them. @param {unknown} value */
export function stringify(value) {
  return JSON.stringify(value, replacer).replaceAll(new RegExp(`"${MARK}([^"]*)"`, "g"), "$1");
}

/** Parse a header (Python's json may write NaN / Infinity tokens). @param {string} text */
export function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(text.replace(/(?<=[:,[]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, `"${MARK}$1"`), (_k, v) =>
      typeof v === "string" && v.startsWith(MARK) ? Number(v.slice(MARK.length)) : v,
    );
  }
}

/**
 * One message: the header object and the payload (bytes: a view, an ArrayBuffer, or a list of them).
 * @param {Record<string, unknown>} header
 * @param {ArrayBufferView | ArrayBuffer | (ArrayBufferView | ArrayBuffer)[]} [payload]
 * @returns {Uint8Array}
 */
export function encodeFrame(header, payload = []) {
  const head = encoder.encode(stringify(header));
  const parts = (Array.isArray(payload) ? payload : [payload]).map(bytesOf);
  const total = 4 + head.length + parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  let offset = 4 + head.length;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

/**
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {{header: any, payload: Uint8Array}}
 */
export function decodeFrame(data) {
  const bytes = bytesOf(data);
  if (bytes.byteLength < 4) throw new TypeError(`a frame needs at least 4 bytes, got ${bytes.byteLength}`);
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + length > bytes.byteLength) throw new TypeError(`the header length ${length} exceeds the frame (${bytes.byteLength} bytes)`);
  const header = parse(decoder.decode(bytes.subarray(4, 4 + length)));
  if (header === null || typeof header !== "object" || Array.isArray(header)) throw new TypeError("the frame header is not a JSON object");
  return { header, payload: bytes.subarray(4 + length) };
}

/** The bytes of a view or buffer, without copying. @param {ArrayBuffer | ArrayBufferView} data */
export function bytesOf(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer))
    return new Uint8Array(data);
  throw new TypeError(`expected an ArrayBuffer or an ArrayBufferView, got ${Object.prototype.toString.call(data)}`);
}
