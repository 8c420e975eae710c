// The connection to `webml serve` and the spec's ML, MLContext, MLGraph and MLTensor over it
// (docs/serve-protocol.md).  One WebSocket per ML object; calls are answered in order.

import { decodeFrame, encodeFrame } from "./frames.js";
import { checkDimensions, dataBytes, descBytes, parseDescriptor } from "./data.js";
import { fmt } from "./checks.js";

export const SUBPROTOCOL = "webml.v1";

/** @typedef {{dataType: string, shape: number[]}} Desc */

/** An Error of a DOMException name (TypeError stays a TypeError). @param {string} name @param {string} message */
export function errorOf(name, message) {
  if (name === "TypeError") return new TypeError(message);
  if (name === "RangeError") return new RangeError(message);
  return new DOMException(message, name);
}

/** @returns {Promise<any>} the WebSocket class of this platform (the `ws` package where Node lacks one) */
async function webSocketClass() {
  if (typeof globalThis.WebSocket === "function") return { WS: globalThis.WebSocket, node: false };
  const ws = await import("ws");
  return { WS: ws.WebSocket ?? ws.default, node: true };
}

/**
 * Open the connection; rejects with NotAllowedError carrying the service's refusal.
 * @param {string} url @param {string | undefined} token
 */
async function open(url, token) {
  const { WS, node } = await webSocketClass();
  return new Promise((resolve, reject) => {
    /** @type {any} */
    let socket;
    if (node) {
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      socket = new WS(url, [SUBPROTOCOL], { headers, perMessageDeflate: false, maxPayload: 2 ** 30 });
      socket.on("unexpected-response", (/** @type {any} */ _req, /** @type {any} */ res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (/** @type {string} */ chunk) => (body += chunk));
        res.on("end", () => {
          let message = body;
          let name = "NotAllowedError";
          try {
            const parsed = JSON.parse(body);
            message = parsed.message ?? body;
            name = parsed.error ?? name;
          } catch {
            /* a body that is not JSON is reported as it is */
          }
          reject(errorOf(name, `webml serve refused the connection (HTTP ${res.statusCode}): ${message}`));
          socket.terminate?.();
        });
      });
    } else {
      const protocols = token ? [SUBPROTOCOL, `webml.token.${token}`] : [SUBPROTOCOL];
      socket = new WS(url, protocols);
    }
    socket.binaryType = "arraybuffer";
    let opened = false;
    socket.onopen = () => {
      opened = true;
      resolve(socket);
    };
    socket.onerror = (/** @type {any} */ event) => {
      if (!opened)
        setTimeout(
          () =>
            reject(
              errorOf(
                "NotAllowedError",
                `webml serve at ${url} refused or could not be reached (${event?.message ?? "the WebSocket failed"}); ` +
                  "a page's origin must be granted (webml grants add ORIGIN), a Node.js client needs the token",
              ),
            ),
          50,
        );
    };
  });
}

/**
 * What the service needs of a page to honour the `webnn` policy-controlled feature
 * (docs/serve-protocol.md): the Permissions-Policy that applies to the document and whether it
 * is a frame of another origin than its parent; null outside a page (Node.js).
 * @returns {Promise<{permissionsPolicy: string | null, crossOriginFrame: boolean} | null>}
 */
export async function pageDocument() {
  const g = /** @type {any} */ (globalThis);
  if (typeof g.document === "undefined" || typeof g.location === "undefined") return null;
  let crossOriginFrame = false;
  if (g.window && g.window.parent !== g.window) {
    try {
      crossOriginFrame = g.window.parent.location.origin !== g.location.origin;
    } catch {
      crossOriginFrame = true; // reading a cross-origin parent's location throws
    }
  }
  let permissionsPolicy = null;
  try {
    // The response header of the document (a frame's allow attribute is the embedder's, which a
    // frame cannot read when its parent is of another origin; the header is then what is sent).
    const response = await fetch(g.location.href, { method: "HEAD", cache: "force-cache", credentials: "same-origin" });
    permissionsPolicy = response.headers.get("permissions-policy");
  } catch {
    permissionsPolicy = null;
  }
  return { permissionsPolicy, crossOriginFrame };
}

class Connection {
  /** @param {any} socket @param {{permissionsPolicy: string | null, crossOriginFrame: boolean} | null} [document] */
  constructor(socket, document = null) {
    this.socket = socket;
    /** @type {any} sent in the first call, then never again */
    this.document = document;
    this.nextId = 1;
    /** @type {Map<number, {resolve: Function, reject: Function, op: string}>} */
    this.pending = new Map();
    /** @type {Map<number, MLContext>} */
    this.contexts = new Map();
    /** @type {string | null} */
    this.closed = null;
    socket.onmessage = (/** @type {any} */ event) => this._receive(event.data);
    socket.onclose = (/** @type {any} */ event) =>
      this._close(`the connection to webml serve closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`);
  }

  /** @param {ArrayBuffer} data */
  _receive(data) {
    let frame;
    try {
      frame = decodeFrame(data);
    } catch (e) {
      this._close(`webml serve sent a malformed frame: ${/** @type {Error} */ (e).message}`);
      this.socket.close(1002);
      return;
    }
    const { header, payload } = frame;
    if (header.event === "lost") {
      this.contexts.get(header.context)?._lose(header.message ?? "the context was lost");
      return;
    }
    const waiting = this.pending.get(header.id);
    if (!waiting) return;
    this.pending.delete(header.id);
    if (header.ok) waiting.resolve({ header, payload });
    else waiting.reject(errorOf(header.error?.name ?? "OperationError", header.error?.message ?? `${waiting.op} failed`));
  }

  /** @param {string} reason */
  _close(reason) {
    if (this.closed) return;
    this.closed = reason;
    for (const { reject } of this.pending.values()) reject(errorOf("InvalidStateError", reason));
    this.pending.clear();
    for (const context of this.contexts.values()) context._lose(reason);
  }

  /**
   * Send one call; resolves with the answer's header and payload.
   * @param {string} op @param {Record<string, unknown>} args @param {any} [payload]
   * @returns {Promise<{header: any, payload: Uint8Array}>}
   */
  call(op, args, payload) {
    if (this.closed) return Promise.reject(errorOf("InvalidStateError", this.closed));
    const id = this.nextId++;
    const header = { id, op, ...args };
    if (this.document) {
      header.document = this.document;
      this.document = null;
    }
    const message = encodeFrame(header, payload);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, op });
      this.socket.send(message);
    });
  }

  /** A call whose answer nobody awaits (writeTensor, dispatch, destroy...): its failure is kept for the context. @param {MLContext | null} context @param {string} op @param {Record<string, unknown>} args @param {any} [payload] */
  post(context, op, args, payload) {
    this.call(op, args, payload).catch((e) => {
      if (context) context._asyncErrors.push(e);
    });
  }
}

export class ML {
  /** @param {() => Promise<Connection>} connect */
  constructor(connect) {
    /** @private */ this._connect = connect;
    /** @type {Promise<Connection> | null} */ this._connection = null;
    /** @type {Map<string, any> | null} the served models, by name (listModels) */ this._models = null;
  }

  /**
   * @param {{powerPreference?: string, accelerated?: boolean}} [options]
   * @returns {Promise<MLContext>}
   */
  async createContext(options = {}) {
    if (options === null || typeof options !== "object") throw new TypeError("createContext: options must be a dictionary");
    if (options.powerPreference !== undefined && !["default", "high-performance", "low-power"].includes(options.powerPreference))
      throw new TypeError(`createContext: '${options.powerPreference}' is not a valid MLPowerPreference`);
    const deviceType = /** @type {any} */ (options).deviceType;
    if (deviceType !== undefined && !["cpu", "gpu", "npu"].includes(deviceType))
      throw new TypeError(`createContext: '${deviceType}' is not a valid MLDeviceType`);
    const connection = await this._connectionNow();
    /** @type {Record<string, unknown>} */
    const wanted = {};
    for (const key of ["powerPreference", "accelerated"]) if (/** @type {any} */ (options)[key] !== undefined) wanted[key] = /** @type {any} */ (options)[key];
    const { header } = await connection.call("createContext", { options: wanted });
    const limits = (await connection.call("opSupportLimits", { context: header.context })).header.limits;
    const context = new MLContext(connection, header.context, header.accelerated ?? false, limits);
    connection.contexts.set(header.context, context);
    return context;
  }

  /** The connection, opened at the first call that needs it. @private @returns {Promise<Connection>} */
  _connectionNow() {
    if (!this._connection) {
      this._connection = this._connect();
      this._connection.catch(() => (this._connection = null));
    }
    return this._connection;
  }

  /**
   * The protected models the service serves (non-spec; `webml serve --model NAME=PKG`): each one's name,
   * inputs and outputs (name -> {dataType, shape}), publisher fingerprint, created and expires.  Never weights.
   * @returns {Promise<Array<{name: string, inputs: Record<string, Desc>, outputs: Record<string, Desc>, publisher: string, created: string, expires: string | null}>>}
   */
  async listModels() {
    const connection = await this._connectionNow();
    const { header } = await connection.call("listModels", {});
    this._models = new Map(header.models.map((/** @type {any} */ m) => [m.name, m]));
    return header.models;
  }

  /**
   * Run a served protected model (non-spec): the outputs for ``inputs`` (name -> ArrayBuffer or a typed
   * array of the input's data type), as name -> {dataType, shape, data: ArrayBuffer}.  The model's weights
   * stay in the service; its quotas (runs and compute seconds per minute) apply.
   * @param {string} name @param {Record<string, ArrayBuffer | ArrayBufferView>} inputs
   * @returns {Promise<Record<string, {dataType: string, shape: number[], data: ArrayBuffer}>>}
   */
  async runModel(name, inputs) {
    if (typeof name !== "string") throw new TypeError("runModel: name must be a string");
    if (inputs === null || typeof inputs !== "object")
      throw new TypeError("runModel: inputs must be a record of name -> ArrayBuffer or typed array");
    const connection = await this._connectionNow();
    if (!this._models?.has(name)) await this.listModels();
    const model = this._models?.get(name);
    if (!model) throw new TypeError(`runModel: no served model named '${name}'`);
    const missing = Object.keys(model.inputs).filter((k) => !(k in inputs));
    const unknown = Object.keys(inputs).filter((k) => !(k in model.inputs));
    if (missing.length || unknown.length)
      throw new TypeError(`runModel: the model's inputs are ${Object.keys(model.inputs).join(", ")}; missing [${missing}], unknown [${unknown}]`);
    /** @type {Record<string, {offset: number, length: number}>} */
    const places = {};
    const parts = [];
    let length = 0;
    for (const [key, desc] of Object.entries(model.inputs)) {
      const bytes = dataBytes(inputs[key], /** @type {Desc} */ (desc), `runModel: input '${key}'`);
      places[key] = { offset: length, length: bytes.byteLength };
      parts.push(bytes);
      length += bytes.byteLength;
    }
    const payload = new Uint8Array(length);
    parts.reduce((at, p) => (payload.set(p, at), at + p.byteLength), 0);
    const { header, payload: out } = await connection.call("runModel", { model: name, inputs: places }, payload);
    /** @type {Record<string, {dataType: string, shape: number[], data: ArrayBuffer}>} */
    const result = {};
    for (const [key, o] of Object.entries(/** @type {Record<string, any>} */ (header.outputs))) {
      if (o.offset + o.length > out.byteLength)
        throw errorOf("OperationError", `runModel: webml serve sent ${out.byteLength} bytes, output '${key}' lies beyond`);
      result[key] = { dataType: o.dataType, shape: o.shape, data: out.slice(o.offset, o.offset + o.length).buffer };
    }
    return result;
  }

  /** Close the connection (every context is lost). */
  close() {
    this._connection?.then((c) => c.socket.close(1000)).catch(() => {});
  }
}

export class MLContext {
  /** @param {Connection} connection @param {number} id @param {boolean} accelerated @param {any} limits */
  constructor(connection, id, accelerated, limits) {
    /** @private */ this._connection = connection;
    /** @readonly */ this._id = id;
    /** @readonly */ this.accelerated = accelerated;
    /** @type {any} */ this._limits = limits;
    this._maxTensorByteLength = limits?.maxTensorByteLength ?? 2 ** 31 - 1;
    /** @type {string | null} */ this._lostMessage = null;
    /** @type {Error[]} failures of calls that return nothing (writeTensor, dispatch) */ this._asyncErrors = [];
    /** @type {Set<(e: Error) => void>} rejecters of the readTensor promises in flight */ this._reads = new Set();
    /** @type {(info: {message: string}) => void} */
    let resolveLost = () => {};
    /** @type {Promise<{message: string}>} */
    this.lost = new Promise((resolve) => (resolveLost = resolve));
    this._resolveLost = resolveLost;
  }

  /** @param {string} message */
  _lose(message) {
    if (this._lostMessage !== null) return;
    this._lostMessage = message;
    this._connection.contexts.delete(this._id);
    for (const reject of this._reads) reject(new DOMException(`readTensor: the context is lost (${message})`, "InvalidStateError"));
    this._reads.clear();
    this._resolveLost({ message });
  }

  /** @param {string} where */
  _checkNotLost(where) {
    if (this._lostMessage !== null) throw new DOMException(`${where}: the context is lost (${this._lostMessage})`, "InvalidStateError");
  }

  /** The spec's MLOpSupportLimits, as the service reported them for this context. */
  opSupportLimits() {
    return structuredClone(this._limits);
  }

  /** @param {unknown} tensor @param {string} where @returns {MLTensor} */
  _checkedTensor(tensor, where) {
    if (!(tensor instanceof MLTensor)) throw new TypeError(`${where}: expected an MLTensor`);
    if (tensor._context !== this) throw new TypeError(`${where}: the tensor belongs to another context`);
    if (tensor._destroyed) throw new TypeError(`${where}: the tensor is destroyed`);
    return tensor;
  }

  /**
   * @param {{dataType: string, shape: number[], readable?: boolean, writable?: boolean, exportableToGPU?: boolean}} descriptor
   * @returns {Promise<MLTensor>}
   */
  async createTensor(descriptor) {
    this._checkNotLost("createTensor");
    const desc = parseDescriptor(descriptor, "createTensor");
    checkDimensions(desc, "createTensor", this._maxTensorByteLength);
    const flags = { readable: Boolean(descriptor.readable), writable: Boolean(descriptor.writable), exportableToGPU: Boolean(descriptor.exportableToGPU) };
    const { header } = await this._connection.call("createTensor", { context: this._id, descriptor: { ...desc, ...flags } });
    return new MLTensor(this, header.tensor, desc, { ...flags, constant: false });
  }

  /**
   * @param {{dataType: string, shape: number[]}} descriptor @param {ArrayBuffer | ArrayBufferView} data
   * @returns {Promise<MLTensor>}
   */
  async createConstantTensor(descriptor, data) {
    this._checkNotLost("createConstantTensor");
    const desc = parseDescriptor(descriptor, "createConstantTensor");
    checkDimensions(desc, "createConstantTensor", this._maxTensorByteLength);
    const bytes = dataBytes(data, desc, "createConstantTensor");
    const { header } = await this._connection.call("createConstantTensor", { context: this._id, descriptor: desc }, bytes);
    return new MLTensor(this, header.tensor, desc, { readable: false, writable: false, exportableToGPU: false, constant: true });
  }

  /** @param {MLTensor} tensor @param {ArrayBuffer | ArrayBufferView} data */
  writeTensor(tensor, data) {
    this._checkNotLost("writeTensor");
    const t = this._checkedTensor(tensor, "writeTensor");
    if (!t.writable) throw new TypeError("writeTensor: the tensor is not writable");
    const bytes = dataBytes(data, t._desc, "writeTensor");
    this._connection.post(this, "writeTensor", { tensor: t._id }, bytes);
  }

  /**
   * The tensor's bytes: a new ArrayBuffer, or copied into ``outputData``.
   * @param {MLTensor} tensor @param {ArrayBuffer | ArrayBufferView} [outputData]
   * @returns {Promise<ArrayBuffer | undefined>}
   */
  async readTensor(tensor, outputData) {
    this._checkNotLost("readTensor");
    const t = this._checkedTensor(tensor, "readTensor");
    if (!t.readable) throw new TypeError("readTensor: the tensor is not readable");
    const want = descBytes(t._desc);
    if (outputData !== undefined) {
      const n = outputData instanceof ArrayBuffer ? outputData.byteLength : ArrayBuffer.isView(outputData) ? outputData.byteLength : -1;
      if (n < 0) throw new TypeError("readTensor: outputData must be an ArrayBuffer or an ArrayBufferView");
      if (n < want) throw new TypeError(`readTensor: outputData has ${n} bytes, the tensor has ${want}`);
    }
    /** @type {(e: Error) => void} */
    let lost = () => {};
    const read = this._connection.call("readTensor", { tensor: t._id });
    const abandoned = new Promise((_resolve, reject) => (lost = reject));
    this._reads.add(lost);
    let payload;
    try {
      ({ payload } = /** @type {{payload: Uint8Array}} */ (await Promise.race([read, abandoned])));
    } finally {
      this._reads.delete(lost);
    }
    read.catch(() => {});
    if (payload.byteLength !== want)
      throw errorOf("OperationError", `readTensor: webml serve sent ${payload.byteLength} bytes for a tensor of ${want}`);
    if (outputData === undefined) return payload.slice().buffer;
    const target = outputData instanceof ArrayBuffer ? new Uint8Array(outputData) : new Uint8Array(outputData.buffer, outputData.byteOffset, outputData.byteLength);
    target.set(payload);
    return undefined;
  }

  /**
   * @param {MLGraph} graph @param {Record<string, MLTensor>} inputs @param {Record<string, MLTensor>} outputs
   */
  dispatch(graph, inputs, outputs) {
    this._checkNotLost("dispatch");
    if (!(graph instanceof MLGraph) || graph._context !== this) throw new TypeError("dispatch: graph must be an MLGraph of this context");
    if (graph._destroyed) throw new DOMException("dispatch: the graph is destroyed", "InvalidStateError");
    /** @param {Record<string, MLTensor>} given @param {Record<string, Desc>} expected @param {string} what */
    const ids = (given, expected, what) => {
      if (given === null || typeof given !== "object") throw new TypeError(`dispatch: ${what} must be a record of name -> MLTensor`);
      const names = Object.keys(given);
      if (names.length !== Object.keys(expected).length || names.some((n) => !(n in expected)))
        throw new TypeError(`dispatch: ${what} must be exactly ${Object.keys(expected).join(", ")}, got ${names.join(", ")}`);
      /** @type {Record<string, number>} */
      const out = {};
      for (const n of names) {
        const t = this._checkedTensor(given[n], `dispatch: ${what} '${n}'`);
        const d = expected[n];
        if (t.dataType !== d.dataType || fmt(t.shape) !== fmt(d.shape))
          throw new TypeError(`dispatch: ${what} '${n}' is ${t.dataType}${fmt(t.shape)}, the graph wants ${d.dataType}${fmt(d.shape)}`);
        out[n] = t._id;
      }
      return out;
    };
    const inIds = ids(inputs, graph._inputs, "inputs");
    const outIds = ids(outputs, graph._outputs, "outputs");
    const outSet = new Set(Object.values(outIds));
    if (outSet.size !== Object.keys(outIds).length) throw new TypeError("dispatch: an output tensor is used twice");
    if (Object.values(inIds).some((id) => outSet.has(id))) throw new TypeError("dispatch: a tensor is both an input and an output");
    this._connection.post(this, "dispatch", { context: this._id, graph: graph._id, inputs: inIds, outputs: outIds });
  }

  /** @param {any} graph @param {Uint8Array[]} payload @param {Record<string, Desc>} inputs @param {Record<string, Desc>} outputs */
  async _build(graph, payload, inputs, outputs) {
    const { header } = await this._connection.call("build", { context: this._id, graph }, payload);
    return new MLGraph(this, header.graph, inputs, outputs);
  }

  /** @param {string} op @param {string} key @param {number} id */
  _destroyObject(op, key, id) {
    if (this._lostMessage === null) this._connection.post(null, op, { [key]: id });
  }

  destroy() {
    if (this._lostMessage !== null) return;
    this._connection.post(null, "destroyContext", { context: this._id });
    this._lose("the context was destroyed");
  }
}

export class MLGraph {
  /** @param {MLContext} context @param {number} id @param {Record<string, Desc>} inputs @param {Record<string, Desc>} outputs */
  constructor(context, id, inputs, outputs) {
    this._context = context;
    this._id = id;
    this._inputs = inputs;
    this._outputs = outputs;
    this._destroyed = false;
  }

  destroy() {
    if (this._destroyed) return;
    this._destroyed = true;
    this._context._destroyObject("destroyGraph", "graph", this._id);
  }
}

export class MLTensor {
  /** @param {MLContext} context @param {number} id @param {Desc} desc @param {{readable: boolean, writable: boolean, exportableToGPU: boolean, constant: boolean}} flags */
  constructor(context, id, desc, flags) {
    this._context = context;
    this._id = id;
    this._desc = desc;
    this._isTensor = true;
    this.readable = flags.readable;
    this.writable = flags.writable;
    this.exportableToGPU = flags.exportableToGPU;
    this.constant = flags.constant;
    this._destroyed = false;
  }

  get dataType() {
    return this._desc.dataType;
  }

  get shape() {
    return [...this._desc.shape];
  }

  destroy() {
    if (this._destroyed) return;
    this._destroyed = true;
    this._context._destroyObject("destroyTensor", "tensor", this._id);
  }
}

/**
 * Connect to `webml serve`: the spec's ML over one WebSocket.
 * @param {{url?: string, token?: string}} [options]
 * @returns {Promise<ML>}
 */
export async function connect({ url = "ws://127.0.0.1:8765/webnn", token } = {}) {
  const socket = await open(url, token);
  const connection = new Connection(socket, await pageDocument());
  return new ML(async () => connection);
}

/**
 * Define ``navigator.ml`` (and the WebNN interfaces on globalThis) when the platform has none.
 * Pages give no token: the service admits them by their granted origin.  The connection opens
 * at the first createContext.
 * @param {{url?: string, token?: string}} [options]
 * @returns {ML | undefined} the ML it installed, or undefined when navigator.ml existed
 */
export function installNavigatorML({ url = "ws://127.0.0.1:8765/webnn", token } = {}) {
  const g = /** @type {any} */ (globalThis);
  if (g.navigator?.ml) return undefined;
  const ml = new ML(async () => new Connection(await open(url, token), await pageDocument()));
  if (!g.navigator) Object.defineProperty(g, "navigator", { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator, "ml", { value: ml, configurable: true, enumerable: true });
  return ml;
}
