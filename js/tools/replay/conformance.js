// Running the WPT conformance cases (third_party/wpt-webnn/conformance*) through the JS client:
// a port of webml/conformance/wpt.py.  A case is built as WPT's buildAndExecuteGraph does
// (inputs marked constant become builder.constant, the rest builder.input; each operator's
// arguments positional in order, its options dictionary last), dispatched through MLTensors,
// and its outputs compared under the case's tolerance (ULP on float32 bit patterns, on raw
// float16 bits, on integers, or ATOL), bit-exact for buildAndCheckCastRounding.

import { MLGraphBuilder } from "../../src/index.js";
import { RULES } from "../../src/rules.js";
import { Float16, float16Bits, float16Value } from "../../src/data.js";
import { product } from "../../src/checks.js";
import { loadWpt } from "./validation.js";

const MAX_INDEX_TO_VALIDATE = 1000;

/** @param {string} dataType @param {number} count */
function newArray(dataType, count) {
  switch (dataType) {
    case "float32": return new Float32Array(count);
    case "float16": return Float16 ? new Float16(count) : new Uint16Array(count);
    case "int32": return new Int32Array(count);
    case "uint32": return new Uint32Array(count);
    case "int64": return new BigInt64Array(count);
    case "uint64": return new BigUint64Array(count);
    case "int8": return new Int8Array(count);
    case "uint8": return new Uint8Array(count);
    default: return null; // int4 / uint4: packed by pack4
  }
}

/** Two 4-bit values a byte, low nibble first. @param {number[]} values */
function pack4(values) {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  values.forEach((v, i) => (out[i >> 1] |= (Number(v) & 0x0f) << (i % 2 ? 4 : 0)));
  return out;
}

/** The data WPT feeds for an input or constant. @param {any} spec */
function inputData(spec) {
  const { dataType, shape } = spec.descriptor;
  const count = product(shape);
  let values = Array.isArray(spec.data) ? spec.data : [spec.data];
  if (dataType === "float16" && spec.float16Bits) {
    const bits = Array.isArray(spec.float16Bits) ? spec.float16Bits : [spec.float16Bits];
    values = bits.map(float16Value);
  }
  const fill = values.length === 1 && count !== 1;
  if (dataType === "int4" || dataType === "uint4") {
    const ints = values.map((v) => Math.trunc(Number(v)));
    return pack4(fill ? Array(count).fill(ints[0]) : ints);
  }
  const out = /** @type {any} */ (newArray(dataType, count));
  const big = dataType.endsWith("64") && dataType !== "float64";
  /** @param {any} v */
  const convert = (v) => {
    if (big) return BigInt.asIntN(64, BigInt(typeof v === "bigint" ? v : Math.trunc(Number(v))));
    if (dataType === "float16" && !Float16) return float16Bits(Number(v));
    if (RULES.dataTypes[dataType].kind !== "float") return Math.trunc(Number(v));
    return Number(v);
  };
  if (fill) out.fill(convert(values[0]));
  else values.forEach((v, i) => (out[i] = convert(v)));
  return out;
}

/** The elements of a tensor's bytes, as numbers (BigInts for 64-bit integers), and float16 bits. @param {ArrayBuffer} buffer @param {string} dataType @param {number} count */
function elements(buffer, dataType, count) {
  const bytes = new Uint8Array(buffer);
  if (dataType === "int4" || dataType === "uint4") {
    return Array.from({ length: count }, (_, i) => {
      const n = (bytes[i >> 1] >> (i % 2 ? 4 : 0)) & 0x0f;
      return dataType === "int4" && n > 7 ? n - 16 : n;
    });
  }
  if (dataType === "float16") return Array.from(new Uint16Array(buffer, 0, count), float16Value);
  const Ctor = /** @type {any} */ ({
    float32: Float32Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, int8: Int8Array, uint8: Uint8Array,
  })[dataType];
  return Array.from(new Ctor(buffer, 0, count));
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** WPT's ULP key: the bit pattern of float32(|x|), negated when x < 0 (NaN as 0x7FC00000). @param {number} x */
function ulpKey(x) {
  f32[0] = Math.abs(x);
  const bits = Number.isNaN(x) ? 0x7fc00000 : u32[0];
  return Math.fround(x) < 0 ? -bits : bits;
}

/** @param {bigint | number} v @param {string} dataType */
function wrap(v, dataType) {
  const b = BigInt(v);
  if (dataType === "int64") return BigInt.asIntN(64, b);
  if (dataType === "uint64") return BigInt.asUintN(64, b);
  return b;
}

/**
 * "" when ``actual`` matches the expectation under ``tolerance``, else why not.
 * @param {ArrayBuffer} buffer @param {any} expected @param {any} tolerance @param {boolean} exactBits
 */
export function compare(buffer, expected, tolerance, exactBits) {
  const { dataType, shape } = expected.descriptor;
  const count = product(shape);
  const filled = !Array.isArray(expected.data);
  const n = filled ? Math.min(MAX_INDEX_TO_VALIDATE, count) : count;
  let values = filled ? Array(n).fill(expected.data) : expected.data;
  let bits = expected.float16Bits;
  if (bits !== undefined && filled) bits = Array(n).fill(bits);
  if (values.length < n) return `expected data has ${values.length} values for ${n} elements`;
  values = values.slice(0, n);
  const actual = elements(buffer, dataType, n);
  const { metricType: metric, value: limit } = tolerance;
  /** @param {(i: number) => boolean} ok @param {string} what */
  const report = (ok, what) => {
    const bad = [];
    for (let i = 0; i < n; i++) if (!ok(i)) bad.push(i);
    if (!bad.length) return "";
    const i = bad[0];
    return `${bad.length} of ${n} elements outside ${what}; first at [${i}]: got ${actual[i]}, expected ${values[i]}`;
  };
  const isFloat = RULES.dataTypes[dataType].kind === "float";
  if (exactBits) {
    if (isFloat) {
      /** @param {number} x */
      const bitsOf = (x) => {
        if (dataType === "float16") return float16Bits(x);
        f32[0] = x;
        return u32[0];
      };
      return report((i) => {
        const [a, e] = [Number(actual[i]), Number(values[i])];
        return (Number.isNaN(a) && Number.isNaN(e)) || bitsOf(a) === bitsOf(e);
      }, "bit-exact");
    }
    return report((i) => BigInt(actual[i]) === wrap(values[i], dataType), "exact");
  }
  if (metric === "ATOL") return report((i) => Math.abs(Number(actual[i]) - Number(values[i])) <= limit, `ATOL ${limit}`);
  if (dataType === "float32")
    return report((i) => Number(actual[i]) === Number(values[i]) || Math.abs(ulpKey(Number(actual[i])) - ulpKey(Number(values[i]))) <= limit, `${limit} ULP`);
  if (dataType === "float16") {
    const want = bits ? bits.slice(0, n).map(Number) : values.map((/** @type {number} */ v) => float16Bits(Number(v)));
    const got = Array.from(new Uint16Array(buffer, 0, n));
    return report((i) => ((got[i] & 0x7fff) === 0 && (want[i] & 0x7fff) === 0) || Math.abs(got[i] - want[i]) <= limit, `${limit} ULP`);
  }
  return report((i) => {
    const d = BigInt(actual[i]) - wrap(values[i], dataType);
    return (d < 0n ? -d : d) <= BigInt(limit);
  }, `${limit}`);
}

/** @param {any} value @param {Map<string, any>} env */
function resolve(value, env) {
  if (typeof value === "string" && env.has(value)) return env.get(value);
  if (Array.isArray(value) && value.length && value.every((v) => typeof v === "string" && env.has(v))) return value.map((v) => env.get(v));
  if (value && typeof value === "object" && !Array.isArray(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, env)]));
  return value;
}

/** Run one case: {status, reason}. @param {any} ml @param {any} testCase */
export async function runCase(ml, testCase) {
  let context;
  try {
    context = await ml.createContext();
    const builder = new MLGraphBuilder(context);
    const g = testCase.graph;
    const env = new Map();
    /** @type {Record<string, any>} */
    const feeds = {};
    for (const [name, spec] of Object.entries(/** @type {Record<string, any>} */ (g.inputs))) {
      const data = inputData(spec);
      if (spec.constant) env.set(name, builder.constant(spec.descriptor, data));
      else {
        env.set(name, builder.input(name, spec.descriptor));
        feeds[name] = { descriptor: spec.descriptor, data };
      }
    }
    for (const operator of g.operators) {
      const rules = RULES.operators[operator.name];
      if (!rules) throw new TypeError(`unknown operator ${operator.name}`);
      /** @type {any[]} */
      const args = [];
      let options;
      for (const argument of operator.arguments) {
        if (argument === null) continue;
        for (const [key, value] of Object.entries(argument)) {
          if (key === "options") options = resolve(value, env);
          else args.push(resolve(value, env));
        }
      }
      if (options !== undefined) {
        while (args.length < rules.arguments.length) args.push(undefined);
        args.push(options);
      }
      const result = /** @type {any} */ (builder)[operator.name](...args);
      if (Array.isArray(operator.outputs)) operator.outputs.forEach((/** @type {string} */ n, /** @type {number} */ i) => env.set(n, result[i]));
      else env.set(operator.outputs, result);
    }
    const outputs = Object.fromEntries(Object.keys(g.expectedOutputs).map((n) => [n, env.get(n)]));
    const graph = await builder.build(outputs);
    /** @type {Record<string, any>} */
    const inputs = {};
    for (const [name, { descriptor, data }] of Object.entries(feeds)) {
      inputs[name] = await context.createTensor({ ...descriptor, writable: true });
      context.writeTensor(inputs[name], data);
    }
    /** @type {Record<string, any>} */
    const outTensors = {};
    for (const [name, operand] of Object.entries(outputs))
      outTensors[name] = await context.createTensor({ dataType: operand.dataType, shape: operand.shape, readable: true });
    context.dispatch(graph, inputs, outTensors);
    const exact = testCase.buildFunction === "buildAndCheckCastRounding";
    const reasons = [];
    for (const [name, expected] of Object.entries(/** @type {Record<string, any>} */ (g.expectedOutputs))) {
      const t = outTensors[name];
      if (t.dataType !== expected.descriptor.dataType) reasons.push(`${name}: data type ${t.dataType} != expected ${expected.descriptor.dataType}`);
      else if (String(t.shape) !== String(expected.descriptor.shape)) reasons.push(`${name}: shape [${t.shape}] != expected [${expected.descriptor.shape}]`);
      else {
        const why = compare(/** @type {ArrayBuffer} */ (await context.readTensor(t)), expected, testCase.tolerance, exact);
        if (why) reasons.push(`${name}: ${why}`);
      }
    }
    return { status: reasons.length ? "failed" : "passed", reason: reasons.join("; ") };
  } catch (e) {
    return { status: "failed", reason: `${/** @type {any} */ (e)?.constructor?.name}: ${/** @type {any} */ (e)?.message ?? e}` };
  } finally {
    context?.destroy();
  }
}

/** @param {any} ml @param {string} path @param {string} stem */
export async function runConformanceFile(ml, path, stem) {
  const doc = loadWpt(path);
  const results = [];
  for (const c of doc.cases) results.push({ file: stem, name: c.name, operators: c.operatorNames, ...(await runCase(ml, c)) });
  return results;
}
