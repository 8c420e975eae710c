// Data types and their bytes: descriptors (WebIDL conversion, the spec's *check dimensions*),
// typed arrays, and scalar constants in packed little-endian storage (as webml.dtypes.to_bytes).

import { RULES } from "./rules.js";
import { LONG_MAX, MAX_RANK, UINT32_MAX, byteLength, castNumber, fmt, product, roundFloat16 } from "./checks.js";

/** @typedef {{dataType: string, shape: number[]}} Desc */

export const DATA_TYPES = Object.keys(RULES.dataTypes);

/** The Float16Array constructor where the platform has one. */
export const Float16 = /** @type {any} */ (globalThis).Float16Array;

/** The typed arrays that may hold data of each type (float16: Float16Array where present, else Uint16Array bits). */
const VIEWS = {
  float32: ["Float32Array"],
  float16: ["Float16Array", "Uint16Array"],
  int32: ["Int32Array"],
  uint32: ["Uint32Array"],
  int64: ["BigInt64Array"],
  uint64: ["BigUint64Array"],
  int8: ["Int8Array"],
  uint8: ["Uint8Array"],
  int4: ["Uint8Array", "Int8Array"],
  uint4: ["Uint8Array"],
};

/** @param {unknown} v @returns {v is Iterable<unknown>} */
const iterable = (v) => v !== null && typeof v === "object" && typeof (/** @type {any} */ (v))[Symbol.iterator] === "function";

/**
 * An MLOperandDescriptor -> {dataType, shape} (WebIDL conversion only).
 * @param {unknown} descriptor @param {string} where
 * @returns {Desc}
 */
export function parseDescriptor(descriptor, where) {
  if (descriptor === null || typeof descriptor !== "object")
    throw new TypeError(`${where}: the descriptor must be an object with dataType and shape, got ${String(descriptor)}`);
  const d = /** @type {any} */ (descriptor);
  if (d.dataType === undefined) throw new TypeError(`${where}: the descriptor is missing the required member 'dataType'`);
  if (!DATA_TYPES.includes(d.dataType)) throw new TypeError(`${where}: '${d.dataType}' is not a valid MLOperandDataType`);
  if (d.shape === undefined) throw new TypeError(`${where}: the descriptor is missing the required member 'shape'`);
  if (!iterable(d.shape) || typeof d.shape === "string") throw new TypeError(`${where}: shape must be a sequence of unsigned long`);
  const shape = [...d.shape].map((x) => {
    const v = typeof x === "bigint" ? Number(x) : x;
    if (typeof v !== "number") throw new TypeError(`${where}: shape must hold numbers, got ${String(x)}`);
    if (!Number.isFinite(v)) throw new TypeError(`${where}: dimension ${v} is not a finite number`);
    const t = Math.trunc(v);
    if (t < 0 || t > UINT32_MAX) throw new TypeError(`${where}: dimension ${v} is out of the range of unsigned long`);
    return t;
  });
  return { dataType: d.dataType, shape };
}

/** The spec's *check dimensions* and the byte-length limit. @param {Desc} desc @param {string} where @param {number} maxBytes */
export function checkDimensions(desc, where, maxBytes) {
  if (desc.shape.length > MAX_RANK) throw new TypeError(`${where}: rank ${desc.shape.length} exceeds the maximum rank ${MAX_RANK}`);
  for (const d of desc.shape) if (!(d > 0 && d <= LONG_MAX)) throw new TypeError(`${where}: dimension ${d} of shape ${fmt(desc.shape)} is not valid (must be > 0)`);
  if (product(desc.shape) > LONG_MAX) throw new TypeError(`${where}: the element count of shape ${fmt(desc.shape)} is too large`);
  const bytes = descBytes(desc);
  if (bytes > maxBytes) throw new TypeError(`${where}: ${descString(desc)} needs ${bytes} bytes, more than the maximum ${maxBytes}`);
}

/** @param {Desc} desc */
export const descBytes = (desc) => byteLength(desc.dataType, product(desc.shape));
/** @param {Desc} desc */
export const descString = (desc) => `${desc.dataType}${fmt(desc.shape)}`;

/**
 * The bytes of ``data`` for a tensor or constant of ``desc``: an ArrayBuffer, or a view whose type fits the data type.
 * Returns a copy (the spec copies constant and write data at the call).
 * @param {unknown} data @param {Desc} desc @param {string} where
 */
export function dataBytes(data, desc, where) {
  let bytes;
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) {
    const name = data.constructor.name;
    if (!(data instanceof DataView) && !VIEWS[/** @type {keyof typeof VIEWS} */ (desc.dataType)].includes(name))
      throw new TypeError(`${where}: a ${name} cannot hold ${desc.dataType} data (use ${VIEWS[/** @type {keyof typeof VIEWS} */ (desc.dataType)].join(" or ")})`);
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } else throw new TypeError(`${where}: the data must be an ArrayBuffer or an ArrayBufferView`);
  const want = descBytes(desc);
  if (bytes.byteLength !== want) throw new TypeError(`${where}: the data has ${bytes.byteLength} bytes, ${descString(desc)} needs ${want}`);
  return bytes.slice();
}

/** float16 bits of a number (round to nearest even). @param {number} x */
export function float16Bits(x) {
  if (Number.isNaN(x)) return 0x7e00;
  const r = roundFloat16(x);
  const sign = r < 0 || Object.is(r, -0) ? 0x8000 : 0;
  const a = Math.abs(r);
  if (a === Infinity) return sign | 0x7c00;
  if (a === 0) return sign;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}

/** The number a float16 bit pattern holds. @param {number} bits */
export function float16Value(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const f = bits & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * The packed bytes of one scalar of ``dataType`` (the spec's cast first).
 * @param {string} dataType @param {number | bigint} value
 */
export function scalarBytes(dataType, value) {
  const v = castNumber(value, dataType);
  const out = new Uint8Array(Math.max(1, RULES.dataTypes[dataType].bits / 8));
  const view = new DataView(out.buffer);
  switch (dataType) {
    case "float32": view.setFloat32(0, Number(v), true); break;
    case "float16": view.setUint16(0, float16Bits(Number(v)), true); break;
    case "int32": view.setInt32(0, Number(v), true); break;
    case "uint32": view.setUint32(0, Number(v), true); break;
    case "int64": view.setBigInt64(0, BigInt(v), true); break;
    case "uint64": view.setBigUint64(0, BigInt(v), true); break;
    case "int8": view.setInt8(0, Number(v)); break;
    case "uint8": view.setUint8(0, Number(v)); break;
    default: out[0] = Number(v) & 0x0f; // int4 / uint4: the low nibble
  }
  return out;
}
