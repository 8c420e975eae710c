// A stand-in for `webml serve` in the unit tests: speaks the frames and calls of
// docs/serve-protocol.md on loopback, keeps tensors' bytes, records what it was sent,
// and runs no graph (dispatch copies the first input's bytes to the first output).
import { WebSocketServer } from "ws";
import { decodeFrame, encodeFrame } from "../src/frames.js";
import { RULES } from "../src/rules.js";
import { byteLength } from "../src/checks.js";

/** The MLOpSupportLimits a context of every data type reports (from rules.json). */
export function fakeLimits(maxTensorByteLength = 2 ** 31) {
  const all = { dataTypes: Object.keys(RULES.dataTypes), rankRange: { min: 0, max: RULES.maxRank } };
  /** @type {Record<string, any>} */
  const limits = { preferredInputLayout: "nchw", maxTensorByteLength, input: all, constant: all, output: all };
  for (const [name, op] of Object.entries(RULES.operators)) limits[name] = op.limits;
  return limits;
}

/** @param {{token?: string, maxTensorByteLength?: number}} [options] */
export async function startFake({ token = "secret", maxTensorByteLength } = {}) {
  const received = [];
  const server = new WebSocketServer({
    port: 0,
    host: "127.0.0.1",
    handleProtocols: (protocols) => (protocols.has("webml.v1") ? "webml.v1" : false),
    verifyClient: (info, done) => {
      const ok = info.req.headers.authorization === `Bearer ${token}`;
      if (ok) return done(true);
      done(false, 403, "Forbidden", { "Content-Type": "application/json" });
    },
  });
  // ws writes no body for a refusal; answer with the protocol's JSON body ourselves.
  server.on("wsClientError", () => {});
  await new Promise((resolve) => server.on("listening", resolve));
  let next = 1;
  const tensors = new Map();
  const graphs = new Map();
  server.on("connection", (socket) => {
    socket.on("message", (data) => {
      try {
        answer(socket, data);
      } catch (e) {
        console.error("fake service:", e);
        socket.close(1011);
      }
    });
  });
  /** @param {any} socket @param {any} data */
  function answer(socket, data) {
    {
      const { header, payload } = decodeFrame(new Uint8Array(data));
      const bytes = new Uint8Array(data);
      const headerText = new TextDecoder().decode(bytes.subarray(4, 4 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true)));
      received.push({ header, headerText, payload: Uint8Array.from(payload) });
      const reply = (fields = {}, bytes) => socket.send(encodeFrame({ id: header.id, ok: true, ...fields }, bytes));
      switch (header.op) {
        case "createContext": return reply({ context: next++, accelerated: false });
        case "opSupportLimits": return reply({ limits: fakeLimits(maxTensorByteLength) });
        case "build": graphs.set(next, header.graph); return reply({ graph: next++ });
        case "createTensor": tensors.set(next, new Uint8Array(byteLength(header.descriptor.dataType, header.descriptor.shape.reduce((a, b) => a * b, 1)))); return reply({ tensor: next++ });
        case "createConstantTensor": tensors.set(next, Uint8Array.from(payload)); return reply({ tensor: next++ });
        case "writeTensor": tensors.set(header.tensor, Uint8Array.from(payload)); return reply();
        case "readTensor": return reply({}, tensors.get(header.tensor));
        case "dispatch": {
          const from = Object.values(header.inputs)[0];
          const to = Object.values(header.outputs)[0];
          const source = tensors.get(from);
          const target = tensors.get(to);
          target.set(source.subarray(0, Math.min(source.length, target.length)));
          return reply();
        }
        case "loseContext":
          socket.send(encodeFrame({ event: "lost", context: header.context, message: "the service shut down" }));
          return reply();
        default:
          if (header.op.startsWith("destroy")) return reply();
          return socket.send(encodeFrame({ id: header.id, ok: false, error: { name: "NotSupportedError", message: `unknown op ${header.op}` } }));
      }
    }
  }
  const { port } = /** @type {any} */ (server.address());
  return { url: `ws://127.0.0.1:${port}/webnn`, token, received, graphs, close: () => new Promise((r) => server.close(r)), server };
}
