// webml: the W3C WebNN API for Node.js and web pages, backed by `webml serve`.
//
//   import { connect, MLGraphBuilder } from "webml";
//   const ml = await connect({ url: "ws://127.0.0.1:8765/webnn", token });
//   const context = await ml.createContext();
//   const builder = new MLGraphBuilder(context);
import { installNavigatorML as install } from "./client.js";
import { MLGraphBuilder, MLOperand } from "./builder.js";
import { ML, MLContext, MLGraph, MLTensor } from "./client.js";

export { connect, ML, MLContext, MLGraph, MLTensor, SUBPROTOCOL } from "./client.js";
export { MLGraphBuilder, MLOperand, OPERATORS } from "./builder.js";
export { encodeFrame, decodeFrame } from "./frames.js";
export { PLANES_TYPE, addFrameInput, centreSquare, colourSpaceOf, copyPlanes, encodePlanes, planeTensors, yuvToRgbMatrix } from "./media.js";

/**
 * Define ``navigator.ml`` and the WebNN interfaces (MLGraphBuilder, ...) on globalThis where the
 * platform has none.  Pages pass no token: their origin must be granted (``webml grants add``).
 * @param {{url?: string, token?: string}} [options]
 */
export function installNavigatorML(options) {
  const g = /** @type {any} */ (globalThis);
  for (const [name, value] of Object.entries({ ML, MLContext, MLGraph, MLTensor, MLGraphBuilder, MLOperand }))
    if (!(name in g)) Object.defineProperty(g, name, { value, configurable: true, writable: true });
  return install(options);
}
