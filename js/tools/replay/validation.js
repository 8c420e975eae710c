// Replaying the traced WPT validation tests (third_party/wpt-webnn/validation) through the JS
// client: a port of webml/conformance/validation.py (its README section 4 describes the traces).
// Each test gets fresh objects: the file's setupCalls, then its calls in order, binding the traced
// ids to what each call returns (awaiting promises), checking each call's `expect` and the test's
// expectations.  The two artefacts of the 2025-03 traces that the Python replay undoes are undone
// here the same way (usesOpSupportLimits skips, repeated input names made unique).

import { readFileSync } from "node:fs";
import { MLGraphBuilder, MLOperand } from "../../src/index.js";
import { RULES } from "../../src/rules.js";
import { float16Bits, Float16 } from "../../src/data.js";

const BUILDER_METHODS = new Set(["input", "constant", "build"]);
const OBJECT_KINDS = new Set(["context", "builder", "operand", "operandSequence", "graph", "tensor"]);
const UNTRACKED_REJECTION = "promise_rejects_js on an untracked promise";
const USES_LIMITS = "usesOpSupportLimits";
const UNDEFINED = Symbol("undefined");

class ReplayError extends Error {}
class Skipped extends Error {}

/** JSON of the vendored suite: {"$bigint": "..."} -> BigInt, {"$float": "..."} -> Number. @param {string} path */
export function loadWpt(path) {
  return JSON.parse(readFileSync(path, "utf8"), (_k, v) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === "$bigint") return BigInt(v.$bigint);
      if (keys.length === 1 && keys[0] === "$float") return Number(v.$float);
    }
    return v;
  });
}

/** @param {any} spec */
function typedArray(spec) {
  const kind = spec.$typedArray;
  const data = spec.detached ? [] : (spec.data ?? []);
  const length = spec.detached ? 0 : (spec.length ?? data.length);
  if (kind === "Float16Array" && !Float16) {
    const out = new Uint16Array(length);
    data.forEach((/** @type {number} */ v, /** @type {number} */ i) => (out[i] = float16Bits(Number(v))));
    return out;
  }
  const Ctor = /** @type {any} */ (globalThis)[kind];
  if (typeof Ctor !== "function" || !kind.endsWith("Array")) throw new ReplayError(`unsupported typed array ${kind}`);
  const out = new Ctor(length);
  const big = kind.startsWith("Big");
  data.forEach((/** @type {any} */ v, /** @type {number} */ i) => (out[i] = big ? BigInt(v) : Number(v)));
  return out;
}

/** @param {any} value */
const tagOf = (value) => {
  const first = Object.keys(value)[0] ?? "";
  return first.startsWith("$") ? first : null;
};

/** @param {string} expect @param {any} err */
function matches(expect, err) {
  const kind = expect.replace(/^reject:/, "");
  if (kind === "TypeError") return err instanceof TypeError;
  if (kind.startsWith("DOMException:")) return err instanceof DOMException && err.name === kind.split(":")[1];
  throw new ReplayError(`unknown expectation ${expect}`);
}

/** @param {any} err */
const describe = (err) => `${err?.constructor?.name ?? typeof err}: ${err?.message ?? err}`;
/** @param {any} call */
const where = (call) => `seq ${call.seq} ${call.target}.${call.method}`;
/** @param {any} call */
const expectsSuccess = (call) => call.expect === undefined || call.expect === "success";

/** @param {any} a @param {any} b */
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

class Replay {
  /** @param {any} ml @param {string[]} notes */
  constructor(ml, notes) {
    this.ml = ml;
    /** @type {Map<string, any>} */ this.objects = new Map();
    /** @type {Set<string>} */ this.skipped = new Set();
    this.usesLimits = notes.includes(USES_LIMITS);
    this.untrackedRejection = notes.includes(UNTRACKED_REJECTION);
    /** @type {Map<any, Set<string>>} */ this.inputNames = new Map();
    /** @type {Map<any, any>} */ this.contextOf = new Map();
    this.checks = 0;
    /** @type {any[]} */ this.contexts = [];
  }

  /** @param {string} kind @param {number} id */
  lookup(kind, id) {
    const key = `${kind}#${id}`;
    if (this.objects.has(key)) return this.objects.get(key);
    if (this.skipped.has(key)) throw new Skipped();
    throw new ReplayError(`${kind} #${id} does not exist (the call that creates it failed)`);
  }

  /** @param {any} value @returns {any} */
  decode(value) {
    if (Array.isArray(value)) return value.map((v) => this.decode(v)).map((v) => (v === UNDEFINED ? undefined : v));
    if (value === null || typeof value !== "object") return value;
    const tag = tagOf(value);
    if (tag === null) {
      /** @type {Record<string, any>} */
      const out = {};
      for (const [k, v] of Object.entries(value)) {
        const d = this.decode(v);
        if (d !== UNDEFINED) out[k] = d;
      }
      return out;
    }
    if (OBJECT_KINDS.has(tag.slice(1))) return this.lookup(tag.slice(1), value[tag]);
    if (tag === "$typedArray") return typedArray(value);
    if (tag === "$arrayBuffer") return new Uint8Array(value[tag]).buffer;
    if (tag === "$undefined") return UNDEFINED;
    throw new ReplayError(`cannot replay a ${tag} value: ${JSON.stringify(value)}`);
  }

  /** @param {any} call @param {any} value @param {boolean} [skipped] */
  bind(call, value, skipped = false) {
    const result = call.result;
    if (result && typeof result === "object" && Object.keys(result).length === 1) {
      const [tag, id] = Object.entries(result)[0];
      const key = `${tag.slice(1)}#${id}`;
      if (skipped) this.skipped.add(key);
      else this.objects.set(key, value);
    }
  }

  /** @param {any} call @returns {{fn: () => any, builder?: any, op?: string, args: any[]}} */
  prepare(call) {
    const { target, method } = call;
    let args = call.args.map((/** @type {any} */ a) => this.decode(a));
    while (args.length && args[args.length - 1] === UNDEFINED) args.pop();
    args = args.map((/** @type {any} */ a) => (a === UNDEFINED ? undefined : a));
    if (target === "navigator.ml") {
      if (method !== "createContext") throw new ReplayError(`unknown navigator.ml.${method}`);
      return {
        fn: async () => {
          const context = await this.ml.createContext(...args);
          this.contexts.push(context);
          return context;
        },
        args,
      };
    }
    if (target === "MLGraphBuilder") {
      if (method !== "constructor") throw new ReplayError(`unknown static call MLGraphBuilder.${method}`);
      return { fn: () => new MLGraphBuilder(args[0]), args };
    }
    const [kind, id] = target.split("#");
    if (!OBJECT_KINDS.has(kind) || !/^\d+$/.test(id ?? "")) throw new ReplayError(`unknown call target ${target}`);
    const obj = this.lookup(kind, Number(id));
    if (typeof obj?.[method] !== "function") throw new ReplayError(`${kind} has no method ${method}`);
    if (kind === "builder" && method === "input" && typeof args[0] === "string" && expectsSuccess(call))
      args[0] = this.uniqueInputName(obj, args[0]);
    const op = kind === "builder" && !BUILDER_METHODS.has(method) ? method : undefined;
    return { fn: () => obj[method](...args), builder: kind === "builder" ? obj : undefined, op, args };
  }

  /** @param {any} builder @param {string} name */
  uniqueInputName(builder, name) {
    const names = this.inputNames.get(builder) ?? new Set();
    if (!names.has(name)) return name;
    let n = 1;
    while (names.has(`${name}_${n}`)) n++;
    return `${name}_${n}`;
  }

  /** A data type of the call's operands the context's opSupportLimits() excludes, or "". @param {any} prepared @param {string} method */
  unsupported(prepared, method) {
    const context = this.contextOf.get(prepared.builder);
    if (!context) return "";
    const limits = context.opSupportLimits();
    if (method === "input") {
      const dt = prepared.args[1]?.dataType;
      return limits.input.dataTypes.includes(dt) ? "" : String(dt);
    }
    const rules = RULES.operators[prepared.op];
    if (!rules || !limits[prepared.op]) return "";
    const options = prepared.args[rules.arguments.length] ?? {};
    const values = [
      ...rules.arguments.map((/** @type {any} */ a, /** @type {number} */ i) => [a, prepared.args[i]]),
      ...rules.options.map((/** @type {any} */ o) => [o, options?.[o.name]]),
    ];
    for (const [arg, value] of values) {
      if (!arg.operand) continue;
      for (const o of Array.isArray(value) ? value : [value])
        if (o instanceof MLOperand && !limits[prepared.op][arg.limit].dataTypes.includes(o.dataType)) return o.dataType;
    }
    return "";
  }

  /** @param {any[]} calls @param {any[]} expectations @param {boolean} [setup] */
  async run(calls, expectations, setup = false) {
    const untracked = this.untrackedRejection && !setup;
    let rejected = false;
    for (const call of calls) {
      let prepared;
      try {
        prepared = this.prepare(call);
      } catch (e) {
        if (e instanceof Skipped) {
          this.bind(call, null, true);
          continue;
        }
        if (e instanceof ReplayError) return `${where(call)}: ${e.message}`;
        throw e;
      }
      let outcome;
      let err = null;
      try {
        outcome = await prepared.fn();
      } catch (e) {
        err = e;
      }
      if (err instanceof TypeError && untracked && call.expect === undefined) {
        rejected = true;
        this.checks++;
        continue;
      }
      if (err instanceof TypeError && this.usesLimits && expectsSuccess(call) && prepared.builder) {
        if (this.unsupported(prepared, call.method)) {
          this.bind(call, null, true);
          continue;
        }
      }
      const reason = this.check(call, outcome, err);
      if (reason) return reason;
      if (!setup && !(call.target === "MLGraphBuilder" && call.method === "constructor")) this.checks++;
      if (err === null) {
        this.bind(call, outcome);
        if (call.target === "MLGraphBuilder" && prepared.args.length) this.contextOf.set(outcome, prepared.args[0]);
        else if (call.method === "input" && prepared.builder) {
          if (!this.inputNames.has(prepared.builder)) this.inputNames.set(prepared.builder, new Set());
          this.inputNames.get(prepared.builder)?.add(prepared.args[0]);
        }
      }
    }
    if (untracked && !rejected) return "expected a call to reject with TypeError (promise_rejects_js), none did";
    for (const e of expectations) {
      const reason = this.expectation(e);
      if (reason) return reason;
    }
    return "";
  }

  /** @param {any} call @param {any} outcome @param {any} err */
  check(call, outcome, err) {
    const expect = call.expect;
    if (expect === undefined || expect === "success") {
      if (err === null) return "";
      return `${where(call)}: ${expect ? "expected success" : "unchecked set-up call must not raise"}, got ${describe(err)}`;
    }
    if (err === null) return `${where(call)}: expected ${expect}, got success (returned ${outcome?.constructor?.name ?? typeof outcome})`;
    if (!matches(expect, err)) return `${where(call)}: expected ${expect}, got ${describe(err)}`;
    const pattern = call.expectLabelPattern;
    if (pattern && !new RegExp(pattern).test(String(err.message)))
      return `${where(call)}: expected ${expect} with a message matching /${pattern}/, got ${describe(err)}`;
    return "";
  }

  /** @param {any} e */
  expectation(e) {
    const { operand: id, property, expected } = e;
    let obj;
    let found = false;
    for (const kind of ["operand", "operandSequence"]) {
      const key = `${kind}#${id}`;
      if (this.objects.has(key)) {
        obj = this.objects.get(key);
        found = true;
        break;
      }
      if (this.skipped.has(key)) return "";
    }
    if (!found) return `operand #${id} ${property}: expected ${JSON.stringify(expected)}, but the operand was not created`;
    let actual;
    if (property === "dataType") actual = obj.dataType;
    else if (property === "shape") actual = obj.shape;
    else if (property === "length") actual = obj.length;
    else return `operand #${id}: unknown property ${property}`;
    if (!same(actual, expected)) return `operand #${id} ${property}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    this.checks++;
    return "";
  }
}

/** @param {any} test */
const operatorsOf = (test) =>
  [...new Set(test.calls.filter((/** @type {any} */ c) => c.target.startsWith("builder#") && !BUILDER_METHODS.has(c.method)).map((/** @type {any} */ c) => c.method))];

/**
 * Replay one test: {status: passed|failed|skipped|empty, reason}.
 * @param {any} ml @param {any} test @param {any[]} setup
 */
export async function replayTest(ml, test, setup) {
  if (test.status !== "traced") return { status: "skipped", reason: `trace status ${test.status}` };
  const replay = new Replay(ml, test.notes ?? []);
  let reason;
  try {
    reason = await replay.run(setup, [], true);
    if (reason) reason = `setup: ${reason}`;
    else reason = await replay.run(test.calls, test.expectations ?? []);
  } finally {
    for (const context of replay.contexts) context.destroy();
  }
  if (!reason && !replay.checks) return { status: "empty", reason: "nothing to check" };
  return { status: reason ? "failed" : "passed", reason };
}

/**
 * Replay every test of a validation file.
 * @param {any} ml @param {string} path @param {string} stem
 */
export async function replayFile(ml, path, stem) {
  const doc = loadWpt(path);
  const results = [];
  for (const test of doc.tests) {
    const r = await replayTest(ml, test, doc.setupCalls ?? []);
    results.push({ file: stem, name: test.name, operators: operatorsOf(test), ...r });
  }
  return results;
}
