// MLGraphBuilder and MLOperand: every operator of rules.json as a method under its spec name,
// validated at the call (TypeError, synchronously) and recorded as the graph description that
// the service replays through the Python builder (docs/serve-protocol.md, "The graph description").

import { RULES } from "./rules.js";
import { Call, opMessage, show } from "./checks.js";
import { SHAPES } from "./shapes.js";
import { checkDimensions, dataBytes, descBytes, descString, parseDescriptor, scalarBytes, DATA_TYPES } from "./data.js";

/** @typedef {{dataType: string, shape: number[]}} Desc */

const BUILDERS = new WeakMap(); // MLOperand -> its builder's private state

export class MLOperand {
  /** @param {any} state @param {number} id @param {Desc} desc */
  constructor(state, id, desc) {
    BUILDERS.set(this, state);
    /** @readonly */ this._id = id;
    /** @readonly */ this._desc = desc;
    Object.freeze(this);
  }

  /** @returns {string} */
  get dataType() {
    return this._desc.dataType;
  }

  /** @returns {number[]} */
  get shape() {
    return [...this._desc.shape];
  }
}

/** @param {unknown} v */
const absent = (v) => v === undefined || v === null;

/** @param {string} op */
const outputTag = (op) => op;

export class MLGraphBuilder {
  /** @param {import("./client.js").MLContext} context */
  constructor(context) {
    const ctx = /** @type {any} */ (context);
    if (!ctx || typeof ctx._checkNotLost !== "function") throw new TypeError("MLGraphBuilder: context must be an MLContext");
    ctx._checkNotLost("MLGraphBuilder");
    /** @private */
    this._s = {
      context: ctx,
      built: false,
      nextId: 0,
      /** @type {Map<number, Desc>} */ operands: new Map(),
      /** @type {Map<string, number>} */ inputs: new Map(),
      /** @type {Map<number, Uint8Array | {tensor: any}>} */ constants: new Map(),
      /** @type {any[]} */ nodes: [],
      /** @type {Map<number, number>} */ producer: new Map(),
    };
  }

  /** @param {string} where */
  _checkCanBuild(where) {
    if (this._s.built) throw new DOMException(`${where}: the builder has already built a graph`, "InvalidStateError");
    this._s.context._checkNotLost(where);
  }

  /** @param {Desc} desc */
  _new(desc) {
    const id = this._s.nextId++;
    this._s.operands.set(id, desc);
    return new MLOperand(this._s, id, desc);
  }

  /** @param {unknown} value @param {string} where @param {string} what @returns {MLOperand} */
  _operand(value, where, what) {
    if (!(value instanceof MLOperand)) throw new TypeError(`${where}: ${what} must be an MLOperand, got ${show(value)}`);
    if (BUILDERS.get(value) !== this._s) throw new TypeError(`${where}: ${what} belongs to another MLGraphBuilder`);
    return value;
  }

  /**
   * A named graph input.
   * @param {string} name @param {{dataType: string, shape: number[]}} descriptor
   */
  input(name, descriptor) {
    this._checkCanBuild("input");
    if (typeof name !== "string") throw new TypeError(`input: name must be a string, got ${show(name)}`);
    if (!name) throw new TypeError("input: name must not be empty");
    if (this._s.inputs.has(name)) throw new TypeError(`input: an input named '${name}' already exists`);
    const where = `input '${name}'`;
    const desc = parseDescriptor(descriptor, where);
    checkDimensions(desc, where, this._s.context._maxTensorByteLength);
    this._checkIoType("input", desc, where);
    const operand = this._new(desc);
    this._s.inputs.set(name, operand._id);
    return operand;
  }

  /**
   * A constant: ``constant(descriptor, buffer)``, ``constant(type, value)`` or ``constant(tensor)``.
   * @param {any} a @param {any} [b]
   */
  constant(a, b) {
    if (arguments.length === 1 || (b === undefined && a && typeof a === "object" && "_isTensor" in a)) return this._constantTensor(a);
    this._checkCanBuild("constant");
    if (typeof a === "string") {
      if (!DATA_TYPES.includes(a)) throw new TypeError(`constant: '${a}' is not a valid MLOperandDataType`);
      if (typeof b !== "number" && typeof b !== "bigint") throw new TypeError(`constant: value must be a number, got ${show(b)}`);
      const desc = { dataType: a, shape: [] };
      this._checkIoType("constant", desc, "constant");
      const operand = this._new(desc);
      this._s.constants.set(operand._id, scalarBytes(a, b));
      return operand;
    }
    const desc = parseDescriptor(a, "constant");
    checkDimensions(desc, "constant", this._s.context._maxTensorByteLength);
    this._checkIoType("constant", desc, "constant");
    const bytes = dataBytes(b, desc, "constant");
    const operand = this._new(desc);
    this._s.constants.set(operand._id, bytes);
    return operand;
  }

  /** @param {any} tensor */
  _constantTensor(tensor) {
    const t = this._s.context._checkedTensor(tensor, "constant");
    if (!t.constant) throw new TypeError("constant: the tensor is not a constant tensor");
    this._checkCanBuild("constant");
    const operand = this._new({ dataType: t.dataType, shape: t.shape });
    this._s.constants.set(operand._id, { tensor: t });
    return operand;
  }

  /** @param {string} kind @param {Desc} desc @param {string} where */
  _checkIoType(kind, desc, where) {
    const limits = this._s.context._limits?.[kind];
    if (limits && !limits.dataTypes.includes(desc.dataType))
      throw new TypeError(`${where}: ${desc.dataType} of rank ${desc.shape.length} is not supported by the context`);
  }

  /**
   * Build the graph of ``outputs`` (name -> MLOperand); once per builder.
   * @param {Record<string, MLOperand>} outputs
   * @returns {Promise<import("./client.js").MLGraph>}
   */
  async build(outputs) {
    this._checkCanBuild("build");
    if (outputs === null || typeof outputs !== "object") throw new TypeError("build: outputs must be a record of name -> MLOperand");
    const entries = Object.entries(outputs);
    if (!entries.length) throw new TypeError("build: outputs must not be empty");
    const s = this._s;
    const inputIds = new Set(s.inputs.values());
    /** @type {Record<string, number>} */
    const out = {};
    for (const [name, operand] of entries) {
      const o = this._operand(operand, "build", `output '${name}'`);
      if (s.constants.has(o._id) || inputIds.has(o._id))
        throw new TypeError(`build: output '${name}' is an input or a constant; use identity() to output it`);
      out[name] = o._id;
    }
    // The operands and nodes the outputs need.
    const needed = new Set();
    const nodes = new Set();
    const stack = Object.values(out);
    while (stack.length) {
      const id = /** @type {number} */ (stack.pop());
      if (needed.has(id)) continue;
      needed.add(id);
      const n = s.producer.get(id);
      if (n !== undefined && !nodes.has(n)) {
        nodes.add(n);
        stack.push(...s.nodes[n].inputs);
      }
    }
    const order = [...nodes].sort((x, y) => x - y).map((i) => s.nodes[i]);
    for (const node of order) for (const id of node.outputs) needed.add(id);
    /** @type {Record<string, Desc>} */
    const operands = {};
    for (const id of [...needed].sort((x, y) => x - y)) operands[id] = /** @type {Desc} */ (s.operands.get(id));
    /** @type {Record<string, number>} */
    const inputs = {};
    for (const [name, id] of s.inputs) if (needed.has(id)) inputs[name] = id;
    /** @type {Record<string, any>} */
    const constants = {};
    /** @type {Uint8Array[]} */
    const payload = [];
    let offset = 0;
    for (const [id, c] of s.constants) {
      if (!needed.has(id)) continue;
      if (c instanceof Uint8Array) {
        constants[id] = { offset, length: c.byteLength };
        payload.push(c);
        offset += c.byteLength;
      } else constants[id] = { tensor: c.tensor._id };
    }
    const graph = {
      operands,
      inputs,
      constants,
      nodes: order.map(({ op, args, options, outputs: o, label }) => ({ op, args, options, outputs: o, label })),
      outputs: out,
    };
    s.built = true;
    s.constants = new Map();
    const descs = Object.fromEntries(Object.entries(out).map(([name, id]) => [name, operands[id]]));
    const inputDescs = Object.fromEntries(Object.entries(inputs).map(([name, id]) => [name, operands[id]]));
    return s.context._build(graph, payload, inputDescs, descs);
  }
}

// -- the operator methods, from rules.json ---------------------------------------------------

/**
 * The value of an argument as the graph description records it: operands as their id,
 * a sequence of operands as a list of ids (inside options: ``{"operand": id}``).
 * @param {unknown} v @param {boolean} inOptions
 */
function wire(v, inOptions) {
  if (v instanceof MLOperand) return inOptions ? { operand: v._id } : v._id;
  if (Array.isArray(v) && v.some((x) => x instanceof MLOperand)) return v.map((x) => (x instanceof MLOperand ? x._id : x));
  if (ArrayBuffer.isView(v)) return Array.from(/** @type {any} */ (v));
  if (v !== null && typeof v === "object" && !Array.isArray(v) && typeof (/** @type {any} */ (v))[Symbol.iterator] === "function")
    return [.../** @type {Iterable<unknown>} */ (v)];
  return v;
}

/**
 * @param {string} name @param {any} rules
 */
function makeMethod(name, rules) {
  const args = rules.arguments;
  const optionNames = rules.options.map((/** @type {any} */ o) => o.name);
  const kinds = new Map([...args, ...rules.options].filter((x) => x.operand).map((x) => [x.name, x]));
  const rule = SHAPES[name];
  const limits = rules.limits;

  /** @this {MLGraphBuilder} @param {...any} given */
  function method(...given) {
    let options = given.length > args.length ? given[args.length] : undefined;
    if (absent(options)) options = {};
    else if (typeof options !== "object") throw new TypeError(opMessage(name, "", `the options must be a dictionary, got ${show(options)}`));
    const label = absent(options.label) ? "" : options.label;
    if (typeof label !== "string") throw new TypeError(opMessage(name, "", `label must be a string, got ${show(label)}`));
    const call = new Call(name, label);
    const where = opMessage(name, label, "").replace(/: $/, "");
    this._checkCanBuild(where);
    /** @type {Record<string, any>} */
    const a = {};
    args.forEach((/** @type {any} */ arg, /** @type {number} */ i) => {
      const v = given[i];
      if (v === undefined) throw new TypeError(`${where}: the required argument ${arg.name} is missing`);
      a[arg.name] = v;
    });
    for (const opt of rules.options) {
      const v = options[opt.name];
      a[opt.name] = v === undefined ? (opt.default ?? undefined) : v;
    }
    // Operand arguments: operands of this builder, of supported data types and ranks.
    const context = this._s.context;
    for (const [argName, info] of kinds) {
      const v = a[argName];
      if (info.operand === "optional" && absent(v)) {
        a[argName] = undefined;
        continue;
      }
      /** @type {MLOperand[]} */
      let operands;
      if (info.operand === "sequence") {
        if (!Array.isArray(v)) throw new TypeError(`${where}: ${argName} must be a sequence of MLOperand, got ${show(v)}`);
        operands = v.map((x, i) => this._operand(x, where, `${argName}[${i}]`));
      } else operands = [this._operand(v, where, argName)];
      const lim = limits[info.limit];
      const types = context._limits?.[name]?.[info.limit]?.dataTypes ?? lim.dataTypes;
      for (const o of operands) {
        if (!lim.dataTypes.includes(o.dataType) || !types.includes(o.dataType))
          throw new TypeError(`${where}: ${info.limit} data type ${o.dataType} is not supported`);
        const rank = o._desc.shape.length;
        if (rank < lim.rankRange.min || rank > lim.rankRange.max)
          throw new TypeError(`${where}: ${info.limit} rank ${rank} is not supported (supported: ${lim.rankRange.min} to ${lim.rankRange.max})`);
      }
    }
    const descs = /** @type {Desc | Desc[]} */ (rule(call, a));
    const list = Array.isArray(descs) ? descs : [descs];
    const max = context._maxTensorByteLength;
    for (const d of list)
      if (descBytes(d) > max) throw call.error(`the output ${descString(d)} needs ${descBytes(d)} bytes, more than the maximum ${max}`);
    const results = list.map((d) => this._new(d));
    const s = this._s;
    /** @type {Record<string, any>} */
    const wireOptions = {};
    for (const key of optionNames) if (options[key] !== undefined) wireOptions[key] = wire(options[key], true);
    if (label) wireOptions.label = label;
    const inputs = [];
    for (const [argName] of kinds) {
      const v = a[argName];
      if (v instanceof MLOperand) inputs.push(v._id);
      else if (Array.isArray(v)) inputs.push(...v.map((x) => x._id));
    }
    s.nodes.push({
      op: outputTag(name),
      args: args.map((/** @type {any} */ arg, /** @type {number} */ i) => wire(given[i], false)),
      options: wireOptions,
      outputs: results.map((r) => r._id),
      label,
      inputs,
    });
    for (const r of results) s.producer.set(r._id, s.nodes.length - 1);
    return Array.isArray(descs) ? results : results[0];
  }
  Object.defineProperty(method, "name", { value: name });
  return method;
}

for (const [name, rules] of Object.entries(RULES.operators)) {
  Object.defineProperty(MLGraphBuilder.prototype, name, { value: makeMethod(name, rules), writable: true, configurable: true });
}

/** The spec names of every operator method. */
export const OPERATORS = Object.keys(RULES.operators);
