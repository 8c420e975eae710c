// Shared checks and shape algorithms of the operator rules (a port of webml/ops/checks.py).
// The data (ranks, ranges, type widths) comes from rules.json, which webml.serve.rules exports.

import { RULES } from "./rules.js";

export const MAX_RANK = RULES.maxRank;
export const UINT32_MAX = RULES.uint32Max;
export const LONG_MAX = RULES.longMax;
export const MAX_TENSOR_COUNT = RULES.maxTensorCount;

/** @param {unknown} v */
export function show(v) {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (v === undefined) return "undefined";
  if (v !== null && typeof v === "object") return v.constructor?.name ?? "object";
  return String(v);
}

/** @param {readonly number[]} shape */
export const fmt = (shape) => `[${shape.join(", ")}]`;

/** @param {readonly number[]} shape */
export const product = (shape) => shape.reduce((a, b) => a * b, 1);

/**
 * The spec's *bidirectionally broadcast the shapes*; null on failure.
 * @param {readonly number[]} a @param {readonly number[]} b @returns {number[] | null}
 */
export function broadcastBidirectional(a, b) {
  const n = Math.max(a.length, b.length);
  const pa = [...Array(n - a.length).fill(1), ...a];
  const pb = [...Array(n - b.length).fill(1), ...b];
  const out = [];
  for (let i = 0; i < n; i++) {
    if (pa[i] !== pb[i] && pa[i] !== 1 && pb[i] !== 1) return null;
    out.push(Math.max(pa[i], pb[i]));
  }
  return out;
}

/**
 * The spec's *unidirectionally broadcast the shapes*; null on failure.
 * @param {readonly number[]} from @param {readonly number[]} to @returns {number[] | null}
 */
export function broadcastUnidirectional(from, to) {
  if (from.length > to.length) return null;
  const padded = [...Array(to.length - from.length).fill(1), ...from];
  for (let i = 0; i < to.length; i++) if (padded[i] !== to[i] && padded[i] !== 1) return null;
  return [...to];
}

/** @param {number} d */
export const validDimension = (d) => Number.isInteger(d) && d > 0 && d <= LONG_MAX;

/**
 * One builder call: its operator and label, and errors that name them as webml's Python messages do.
 */
export class Call {
  /** @param {string} op @param {string} label */
  constructor(op, label) {
    this.op = op;
    this.label = label;
  }

  /** @param {string} message */
  error(message) {
    return new TypeError(opMessage(this.op, this.label, message));
  }
}

const BIDI = /[\u202a-\u202e\u2066-\u2069]/g;

/** webml.errors.sanitize_label: control and bidi-override characters escaped. @param {string} label */
export function sanitizeLabel(label) {
  const hex = (/** @type {string} */ c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  // eslint-disable-next-line no-control-regex
  return label.replace(BIDI, hex).replace(/[\u0000-\u001f\u007f-\u009f]/g, hex);
}

/** webml.errors.op_message: ``[label] op: message``. @param {string} op @param {string} label @param {string} message */
export function opMessage(op, label, message) {
  return `${label ? `[${sanitizeLabel(label)}] ` : ""}${op}: ${message}`;
}

/**
 * Every dimension and the element count must be valid dimensions, the rank at most MAX_RANK.
 * @param {Call} call @param {readonly number[]} shape @param {string} [what]
 */
export function checkShape(call, shape, what = "output") {
  if (shape.length > MAX_RANK) throw call.error(`the ${what} rank ${shape.length} exceeds the maximum rank ${MAX_RANK}`);
  if (!shape.every(validDimension) || !validDimension(product(shape)))
    throw call.error(`the ${what} shape ${fmt(shape)} is not valid`);
  return [...shape];
}

/**
 * WebIDL [EnforceRange] integer conversion (NaN and infinities throw, fractions truncate).
 * @param {Call} call @param {unknown} value @param {string} name @param {number} lo @param {number} hi @param {string} idl
 */
export function enforceRange(call, value, name, lo, hi, idl) {
  let v = value;
  if (typeof v === "bigint") v = Number(v);
  if (typeof v !== "number" || !Number.isFinite(v)) throw call.error(`${name} must be ${idl}, got ${show(value)}`);
  v = Math.trunc(v);
  if (v < lo || v > hi) throw call.error(`${name} must be ${idl} (an integer in [${lo}, ${hi}]), got ${show(value)}`);
  return v;
}

/** @param {Call} call @param {unknown} v @param {string} name */
export const unsignedLong = (call, v, name) => enforceRange(call, v, name, 0, UINT32_MAX, "an unsigned long");
/** @param {Call} call @param {unknown} v @param {string} name */
export const long = (call, v, name) => enforceRange(call, v, name, -(2 ** 31), LONG_MAX, "a long");

/** @param {unknown} v @returns {v is Iterable<unknown>} */
const isSequence = (v) =>
  v !== null && typeof v === "object" && typeof (/** @type {any} */ (v)[Symbol.iterator]) === "function";

/** A sequence<[EnforceRange] unsigned long>. @param {Call} call @param {unknown} values @param {string} name */
export function unsignedLongs(call, values, name) {
  if (!isSequence(values)) throw call.error(`${name} must be a sequence of unsigned long, got ${show(values)}`);
  return [...values].map((v, i) => unsignedLong(call, v, `${name}[${i}]`));
}

/** @param {Call} call @param {unknown} axis @param {number} rank @param {string} [name] */
export function axisInRank(call, axis, rank, name = "axis") {
  const a = unsignedLong(call, axis, name);
  if (a >= rank) throw call.error(`${name} ${a} must be in the range [0, ${rank}) for rank ${rank}`);
  return a;
}

/** @param {Call} call @param {unknown} axes @param {number} rank @param {string} [name] */
export function axesInRank(call, axes, rank, name = "axes") {
  const out = unsignedLongs(call, axes, name);
  for (const a of out) if (a >= rank) throw call.error(`${name} value ${a} must be in the range [0, ${rank}) for rank ${rank}`);
  if (new Set(out).size !== out.length) throw call.error(`${name} ${fmt(out)} must not contain duplicates`);
  return out;
}

/**
 * All operands must share the first one's data type.
 * @param {Call} call @param {{dataType: string}[]} operands @param {string[]} names
 */
export function sameType(call, operands, names) {
  const [first, ...others] = operands;
  others.forEach((o, i) => {
    if (o.dataType !== first.dataType)
      throw call.error(`${names[i + 1]} data type ${o.dataType} must match ${names[0]}'s ${first.dataType}`);
  });
}

/** A WebIDL enum value. @param {Call} call @param {unknown} value @param {readonly string[]} choices @param {string} name */
export function oneOf(call, value, choices, name) {
  if (typeof value !== "string" || !choices.includes(value))
    throw call.error(`${name} must be one of ${choices.map((c) => `'${c}'`).join(", ")}, got ${show(value)}`);
  return value;
}

/** An MLNumber: a number or a bigint. @param {Call} call @param {unknown} value @param {string} name */
export function number(call, value, name) {
  if (typeof value === "boolean") return Number(value);
  if (typeof value === "number" || typeof value === "bigint") return value;
  throw call.error(`${name} must be a number, got ${show(value)}`);
}

/** A WebIDL (restricted) float: finite, within float32's range. @param {Call} call @param {unknown} value @param {string} name */
export function finiteFloat(call, value, name) {
  const v = Number(number(call, value, name));
  if (!Number.isFinite(v) || Math.abs(v) > 3.4028234663852886e38) throw call.error(`${name} must be a finite float, got ${show(value)}`);
  return v;
}

/**
 * An optional sequence<unsigned long>: the default when absent, else exactly ``size`` items.
 * @param {Call} call @param {unknown} value @param {string} name @param {number} size @param {number[]} def
 */
export function listOption(call, value, name, size, def) {
  if (value === undefined || value === null) return [...def];
  const values = unsignedLongs(call, value, name);
  if (values.length !== size) throw call.error(`${name} must have ${size} values, got ${values.length}: ${fmt(values)}`);
  return values;
}

/** @param {Call} call @param {number[]} values @param {string} name */
export function nonzero(call, values, name) {
  if (values.includes(0)) throw call.error(`${name} ${fmt(values)} must not contain 0`);
  return values;
}

/** float16 rounding (to nearest, ties to even) of a number. @param {number} x */
export function roundFloat16(x) {
  if (!Number.isFinite(x) || x === 0) return x;
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  if (a >= 65520) return sign * Infinity;
  // 10 fraction bits: at exponent e the spacing is 2^(e-10); subnormals have 2^-24.
  const step = 2 ** (Math.max(Math.floor(Math.log2(a)), -14) - 10);
  const q = a / step;
  const fl = Math.floor(q);
  const d = q - fl;
  return sign * (d > 0.5 || (d === 0.5 && fl % 2 === 1) ? fl + 1 : fl) * step;
}

/**
 * The spec's *cast* of an MLNumber to a data type (webml.dtypes.cast_number).
 * @param {number | bigint} value @param {string} dataType @returns {number | bigint}
 */
export function castNumber(value, dataType) {
  const t = RULES.dataTypes[dataType];
  if (t.kind === "float") {
    const x = Number(value);
    return dataType === "float32" ? Math.fround(x) : roundFloat16(x);
  }
  const lo = t.kind === "uint" ? 0n : -(2n ** BigInt(t.bits - 1));
  const hi = t.kind === "uint" ? 2n ** BigInt(t.bits) - 1n : 2n ** BigInt(t.bits - 1) - 1n;
  /** @param {bigint} v */
  const clamp = (v) => (v < lo ? lo : v > hi ? hi : v);
  let big;
  if (typeof value === "bigint") big = clamp(value);
  else if (Number.isNaN(value)) big = 0n;
  else if (!Number.isFinite(value)) big = value > 0 ? hi : lo;
  else {
    const c = Math.min(Math.max(value, Number(lo)), Number(hi));
    const fl = Math.floor(c);
    const d = c - fl;
    const r = d > 0.5 || (d === 0.5 && fl % 2 !== 0) ? fl + 1 : fl;
    big = clamp(BigInt(r));
  }
  return t.bits > 32 ? big : Number(big);
}

/** Bytes of packed storage for ``count`` elements. @param {string} dataType @param {number} count */
export const byteLength = (dataType, count) => Math.ceil((count * RULES.dataTypes[dataType].bits) / 8);
