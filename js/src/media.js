// Camera frames as planes: a WebCodecs VideoFrame's I420 / NV12 planes as VideoFrame.copyTo gives them,
// with no canvas and no RGB conversion in the page. webml serve converts them inside a graph
// (webml.media: BT.601 / BT.709, limited or full range, resize), e.g. on the Teach API
// (POST /teach/api/samples and /teach/api/predict with the type PLANES_TYPE).
import { encodeFrame } from "./frames.js";

/** The media type of a message of planes. */
export const PLANES_TYPE = "application/x-webml-planes";
const FORMATS = ["I420", "NV12"];

/**
 * The central square of a frame's visible rect, with even offsets and side (4:2:0 chroma covers 2x2 pixels).
 * @param {{visibleRect: {x: number, y: number, width: number, height: number}}} frame
 */
export function centreSquare(frame) {
  const { x, y, width, height } = frame.visibleRect;
  const side = Math.min(width, height) & ~1;
  return { x: x + (((width - side) / 2) & ~1), y: y + (((height - side) / 2) & ~1), width: side, height: side };
}

/**
 * The planes of ``frame`` (of ``options.rect``, default the whole visible frame): ``{header, data}``, where
 * ``header`` is ``{format, width, height, layout: [{offset, stride}], colorSpace: {matrix, fullRange}}``
 * and ``data`` the bytes VideoFrame.copyTo wrote (one copy, out of the frame).
 * @param {VideoFrame} frame
 * @param {{rect?: {x: number, y: number, width: number, height: number}}} [options]
 * @returns {Promise<{header: {format: string, width: number, height: number, layout: {offset: number, stride: number}[], colorSpace: {matrix: string | null, fullRange: boolean | null}}, data: Uint8Array}>}
 */
export async function copyPlanes(frame, options = {}) {
  if (frame === null || typeof frame !== "object" || typeof frame.copyTo !== "function")
    throw new TypeError("copyPlanes: frame must be a VideoFrame");
  if (!FORMATS.includes(/** @type {string} */ (frame.format)))
    throw new TypeError(`copyPlanes: frame's format must be I420 or NV12, got ${frame.format}; draw it on a canvas instead`);
  const rect = options.rect ?? frame.visibleRect;
  if (!rect || [rect.x, rect.y, rect.width, rect.height].some((v) => !Number.isInteger(v) || v % 2 !== 0))
    throw new TypeError("copyPlanes: options.rect must have even integer x, y, width and height (4:2:0 chroma covers 2x2 pixels)");
  const box = { x: rect.x, y: rect.y, width: rect.width, height: rect.height };
  const data = new Uint8Array(frame.allocationSize({ rect: box }));
  const layout = await frame.copyTo(data, { rect: box });
  const { matrix, fullRange } = frame.colorSpace ?? {};
  return {
    header: {
      format: /** @type {string} */ (frame.format),
      width: box.width,
      height: box.height,
      layout: layout.map(({ offset, stride }) => ({ offset, stride })),
      colorSpace: { matrix: matrix ?? null, fullRange: fullRange ?? null },
    },
    data,
  };
}

/**
 * One message of the service's frame format holding the planes (what the Teach API takes as PLANES_TYPE).
 * @param {{header: Record<string, unknown>, data: Uint8Array}} planes
 */
export function encodePlanes(planes) {
  if (!planes || typeof planes !== "object" || !(planes.data instanceof Uint8Array))
    throw new TypeError("encodePlanes: planes must be what copyPlanes returned ({header, data})");
  return encodeFrame(planes.header, planes.data);
}

// -- the frame pieces as WebNN operations (any MLGraphBuilder: webml's client, or a browser's own) --------------

/** (Kr, Kb) of ITU-R BT.601 and BT.709. */
const KR_KB = /** @type {Record<string, [number, number]>} */ ({ bt601: [0.299, 0.114], bt709: [0.2126, 0.0722] });

/**
 * ``{a, c}`` with ``RGB = a [Y, Cb, Cr] + c`` on 0..255 code values (rows R, G, B), the standard's equations
 * as webml.media.colour.yuv_to_rgb_matrix writes them.
 * @param {string} [matrix] "bt601" or "bt709" @param {string} [range] "limited" or "full"
 */
export function yuvToRgbMatrix(matrix = "bt601", range = "limited") {
  if (!(matrix in KR_KB)) throw new TypeError(`yuvToRgbMatrix: matrix must be bt601 or bt709, got ${matrix}`);
  if (range !== "limited" && range !== "full") throw new TypeError(`yuvToRgbMatrix: range must be limited or full, got ${range}`);
  const [kr, kb] = KR_KB[matrix];
  const kg = 1 - kr - kb;
  const [luma, chroma, black] = range === "limited" ? [219, 224, 16] : [255, 255, 0];
  const normalized = [[1, 0, 2 * (1 - kr)], [1, (-2 * (1 - kb) * kb) / kg, (-2 * (1 - kr) * kr) / kg], [1, 2 * (1 - kb), 0]];
  const a = normalized.map((row) => row.map((v, j) => (255 * v) / [luma, chroma, chroma][j]));
  const c = a.map((row) => -(row[0] * black + row[1] * 128 + row[2] * 128));
  return { a, c };
}

/**
 * The colour space of a planes header's ``colorSpace`` (a VideoColorSpace's matrix and fullRange): BT.709 when
 * it says so, else BT.601; full range only when it says so (an unknown one, Chromium's usual, is limited).
 * @param {{matrix?: string | null, fullRange?: boolean | null} | null | undefined} colorSpace
 */
export function colourSpaceOf(colorSpace) {
  return { matrix: colorSpace?.matrix === "bt709" ? "bt709" : "bt601", range: colorSpace?.fullRange === true ? "full" : "limited" };
}

/**
 * The frame pieces of webml.media added to ``builder``: one uint8 input ``[rows, stride]`` per plane of
 * ``header`` (copyPlanes' header), named ``{prefix}_y``, ``{prefix}_u``, ``{prefix}_v`` (NV12: ``_y``, ``_uv``),
 * and the float32 model input they make: each plane resized bilinearly to ``size`` (the chroma from its half
 * resolution: centred siting), the BT.601 / BT.709 matrix, a clamp to 0..255, ``(x - mean) / std`` folded in,
 * NCHW ``[1, 3, H, W]`` or NHWC. The same operations as webml.media.colour.model_input with a size.
 * @param {any} builder an MLGraphBuilder
 * @param {{format: string, width: number, height: number, layout: {offset: number, stride: number}[], colorSpace?: any}} header
 * @param {{size?: [number, number], mean?: number[], std?: number[], layout?: "nchw" | "nhwc", prefix?: string}} [options]
 */
export function addFrameInput(builder, header, options = {}) {
  const where = "addFrameInput";
  if (!header || typeof header !== "object") throw new TypeError(`${where}: header must be copyPlanes' header`);
  const { format, width, height, layout } = header;
  if (!FORMATS.includes(format)) throw new TypeError(`${where}: header.format must be I420 or NV12, got ${format}`);
  for (const [name, v] of [["width", width], ["height", height]])
    if (!Number.isInteger(v) || v < 2 || v % 2) throw new TypeError(`${where}: header.${name} must be an even integer >= 2, got ${v}`);
  const names = format === "I420" ? ["y", "u", "v"] : ["y", "uv"];
  if (!Array.isArray(layout) || layout.length !== names.length) throw new TypeError(`${where}: header.layout must list ${names.length} planes`);
  const [h2, w2] = [height / 2, width / 2];
  const rowBytes = format === "I420" ? [width, w2, w2] : [width, width];
  const rows = [height, h2, h2];
  layout.forEach((p, i) => {
    if (!Number.isInteger(p?.stride) || p.stride < rowBytes[i])
      throw new TypeError(`${where}: plane ${names[i]}'s stride must be an integer of at least ${rowBytes[i]}, got ${p?.stride}`);
  });
  const [oh, ow] = options.size ?? [height, width];
  const mean = options.mean ?? [0, 0, 0];
  const std = options.std ?? [1, 1, 1];
  if (mean.length !== 3 || std.length !== 3 || std.some((s) => s === 0)) throw new TypeError(`${where}: mean and std are 3 numbers, std not 0`);
  const prefix = options.prefix ?? "frame";
  const b = builder;
  const inputs = names.map((n, i) => b.input(`${prefix}_${n}`, { dataType: "uint8", shape: [rows[i], layout[i].stride] }));
  const pixels = inputs.map((p, i) => (layout[i].stride === rowBytes[i] ? p : b.slice(p, [0, 0], [rows[i], rowBytes[i]])));
  const f32 = (/** @type {any} */ x) => b.cast(x, "float32");
  let y = b.reshape(f32(pixels[0]), [1, 1, height, width]);
  let uv =
    format === "I420"
      ? b.concat(pixels.slice(1).map((p) => b.reshape(f32(p), [1, 1, h2, w2])), 1)
      : b.reshape(b.transpose(b.reshape(f32(pixels[1]), [h2, w2, 2]), { permutation: [2, 0, 1] }), [1, 2, h2, w2]);
  if (oh !== height || ow !== width) y = b.resample2d(y, { mode: "linear", sizes: [oh, ow] });
  uv = b.resample2d(uv, { mode: "linear", sizes: [oh, ow] });
  const { matrix, range } = colourSpaceOf(header.colorSpace);
  const { a, c } = yuvToRgbMatrix(matrix, range);
  // The normalization folds into the matrix, its bias and the clamp's bounds (they commute with an affine map).
  const scaled = a.map((row, i) => row.map((v) => v / std[i]));
  const bias = c.map((v, i) => (v - mean[i]) / std[i]);
  const lows = [0, 1, 2].map((i) => Math.min(-mean[i] / std[i], (255 - mean[i]) / std[i]));
  const highs = [0, 1, 2].map((i) => Math.max(-mean[i] / std[i], (255 - mean[i]) / std[i]));
  const f32c = (/** @type {number[]} */ values, /** @type {number[]} */ shape) => b.constant({ dataType: "float32", shape }, new Float32Array(values));
  let rgb = b.add(b.matmul(f32c(scaled.flat(), [3, 3]), b.reshape(b.concat([y, uv], 1), [3, oh * ow])), f32c(bias, [3, 1]));
  const same = (/** @type {number[]} */ v) => v.every((x) => Math.fround(x) === Math.fround(v[0]));
  rgb = same(lows) && same(highs)
    ? b.clamp(rgb, { minValue: lows[0], maxValue: highs[0] })
    : b.max(b.min(rgb, f32c(highs, [3, 1])), f32c(lows, [3, 1]));
  rgb = b.reshape(rgb, [1, 3, oh, ow]);
  return options.layout === "nhwc" ? b.transpose(rgb, { permutation: [0, 2, 3, 1] }) : rgb;
}

/**
 * The planes as MLTensors for a graph of addFrameInput: one writable uint8 ``[rows, stride]`` tensor per plane,
 * written with its bytes (the one upload), keyed by input name.
 * @param {any} context an MLContext @param {{header: any, data: Uint8Array}} planes @param {string} [prefix]
 */
export async function planeTensors(context, planes, prefix = "frame") {
  const { format, height, layout } = planes.header;
  const names = format === "I420" ? ["y", "u", "v"] : ["y", "uv"];
  /** @type {Record<string, any>} */
  const out = {};
  for (const [i, name] of names.entries()) {
    const rows = i === 0 ? height : height / 2;
    const { offset, stride } = layout[i];
    if (offset + rows * stride > planes.data.byteLength) throw new TypeError(`planeTensors: plane ${name} runs past the data`);
    const tensor = await context.createTensor({ dataType: "uint8", shape: [rows, stride], writable: true });
    context.writeTensor(tensor, planes.data.subarray(offset, offset + rows * stride));
    out[`${prefix}_${name}`] = tensor;
  }
  return out;
}
