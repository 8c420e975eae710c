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
