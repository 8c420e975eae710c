// webml-model.js: the model of this folder, run in the browser by onnxruntime-web (written by `webml export --web`).
//
//   import { load, run, classifyImage } from './webml-model.js';
//   const info = await load();          // {backend: 'webgpu' | 'wasm', inputs, outputs, image?, labels?}
//   const out = await run({ x: { data: Float32Array.from(...), dims: [1, 3, 224, 224] } });
//   out.logits.data, out.logits.dims     // every output: {type, data (a typed array), dims}
//   const top = await classifyImage(imgOrCanvasOrBitmap, 5);   // image models: [{label, index, score}]
//
// run(inputs) takes, for each input of model.json, {data, dims} where data is a typed array or a plain
// array (converted to the input's type; int64 inputs take numbers or BigInts) and dims the shape.
// WebGPU runs the model when the browser has an adapter and onnxruntime-web accepts the model on it;
// Wasm (single-threaded unless the page is cross-origin isolated) otherwise. Every file comes from this
// folder: nothing is fetched from elsewhere.

import * as ort from './ort.webgpu.bundle.min.mjs';

const HERE = new URL('./', import.meta.url);
const ARRAYS = {
  float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array,
  int16: Int16Array, uint32: Uint32Array, uint64: BigUint64Array, float64: Float64Array, bool: Uint8Array,
};

let state = null;

async function hasWebGPU() {
  if (!('gpu' in navigator)) return false;
  try {
    return (await navigator.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

/**
 * Loads model.json and model.onnx and makes the session: WebGPU when it can, Wasm otherwise.
 * @param {{backend?: 'webgpu' | 'wasm'}} [options] force one execution provider
 */
export async function load(options = {}) {
  if (state) return state.info;
  // The bundle holds the Wasm glue code; only its binary is fetched, from this folder.
  ort.env.wasm.wasmPaths = { wasm: new URL('ort-wasm-simd-threaded.asyncify.wasm', HERE).href };
  if (!globalThis.crossOriginIsolated) ort.env.wasm.numThreads = 1;
  const info = await (await fetch(new URL('model.json', HERE))).json();
  const bytes = new Uint8Array(await (await fetch(new URL('model.onnx', HERE))).arrayBuffer());
  const wanted = options.backend ? [options.backend] : (await hasWebGPU()) ? ['webgpu', 'wasm'] : ['wasm'];
  let session = null;
  let backend = null;
  const errors = [];
  for (const ep of wanted) {
    try {
      // On WebGPU, nodes its provider lacks run on Wasm.
      const executionProviders = ep === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'];
      session = await ort.InferenceSession.create(bytes, { executionProviders });
      backend = ep;
      break;
    } catch (err) {
      errors.push(`${ep}: ${err.message}`);
    }
  }
  if (!session) throw new Error(`onnxruntime-web could not load the model (${errors.join('; ')})`);
  state = { session, info: { ...info, backend, fallbacks: errors } };
  return state.info;
}

function tensor(spec, value) {
  const Type = ARRAYS[spec.type];
  if (!Type) throw new Error(`input ${spec.name}: type ${spec.type} is not supported here`);
  if (!value || !value.dims) throw new Error(`input ${spec.name}: expected {data, dims}`);
  let data = value.data;
  if (!(data instanceof Type)) {
    const list = Array.from(data);
    data = Type === BigInt64Array || Type === BigUint64Array ? Type.from(list, (v) => BigInt(v)) : Type.from(list);
  }
  return new ort.Tensor(spec.type, data, value.dims);
}

/** Runs the model on {name: {data, dims}}; returns {name: {type, data, dims}} for every output. */
export async function run(inputs) {
  if (!state) await load();
  const feeds = {};
  for (const spec of state.info.inputs) {
    if (!(spec.name in inputs)) throw new Error(`missing input ${spec.name}`);
    feeds[spec.name] = tensor(spec, inputs[spec.name]);
  }
  const results = await state.session.run(feeds);
  const out = {};
  for (const [name, t] of Object.entries(results)) {
    out[name] = { type: t.type, data: await t.getData(), dims: Array.from(t.dims) };
  }
  return out;
}

/** An image (img, canvas, ImageBitmap, video) as the model's input: model.json's size, crop and normalization. */
export function imageInput(image) {
  const spec = state.info.image;
  if (!spec) throw new Error('this model does not take images');
  const w = image.naturalWidth || image.videoWidth || image.width;
  const h = image.naturalHeight || image.videoHeight || image.height;
  let sx = 0, sy = 0, sw = w, sh = h;
  if (spec.crop !== 1) {
    const side = Math.min(w, h) * spec.crop;
    sx = (w - side) / 2; sy = (h - side) / 2; sw = side; sh = side;
  }
  const canvas = new OffscreenCanvas(spec.width, spec.height);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingQuality = 'medium';
  ctx.drawImage(image, sx, sy, sw, sh, 0, 0, spec.width, spec.height);
  const rgba = ctx.getImageData(0, 0, spec.width, spec.height).data;
  const n = spec.width * spec.height;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (rgba[4 * i + c] - spec.mean[c]) / spec.std[c];
      data[spec.layout === 'NCHW' ? c * n + i : 3 * i + c] = v;
    }
  }
  const dims = spec.layout === 'NCHW' ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3];
  return { [spec.input]: { data, dims } };
}

/** The top k classes of an image: [{label, index, score}], score a softmax probability. */
export async function classifyImage(image, k = 5) {
  if (!state) await load();
  const out = await run(imageInput(image));
  const first = out[state.info.outputs[0].name].data;
  let probs = Array.from(first, Number);
  if (state.info.image.softmax) {
    const m = Math.max(...probs);
    const e = probs.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    probs = e.map((v) => v / s);
  }
  const labels = state.info.labels;
  return probs
    .map((score, index) => ({ index, score, label: labels ? labels[index].split(',')[0] : String(index) }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k);
}
