// copyPlanes / encodePlanes on real WebCodecs VideoFrames, in headless Chromium (playwright-core and
// Debian's chromium, or WEBML_CHROMIUM): Node has no VideoFrame.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url))); // js/
const browserPath = process.env.WEBML_CHROMIUM ?? "/usr/bin/chromium";

/** Runs ``fn`` in a page of http://127.0.0.1 (a secure context) that can import /src/*.js. @param {Function} fn */
async function inChromium(fn) {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (path === "/") return res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>media</title>");
    if (path.includes("..") || !path.startsWith("/src/")) return res.writeHead(404).end();
    try {
      res.writeHead(200, { "content-type": "text/javascript" }).end(await readFile(join(ROOT, path)));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const port = /** @type {import("node:net").AddressInfo} */ (server.address()).port;
  const browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    return await page.evaluate(fn);
  } finally {
    await browser.close();
    server.close();
  }
}

test("copyPlanes gives a rect of an I420 VideoFrame as copyTo lays it out; encodePlanes frames it", async () => {
  const result = await inChromium(async () => {
    const { copyPlanes, encodePlanes, centreSquare, PLANES_TYPE } = await import("/src/media.js");
    const { decodeFrame } = await import("/src/frames.js");
    const W = 8, H = 6;
    const buffer = new Uint8Array((W * H * 3) / 2);
    for (let i = 0; i < W * H; i++) buffer[i] = i; // Y
    for (let i = 0; i < (W * H) / 4; i++) { buffer[W * H + i] = 100 + i; buffer[(W * H * 5) / 4 + i] = 200 + i; }
    const colorSpace = { matrix: "bt709", fullRange: false, primaries: "bt709", transfer: "bt709" };
    const frame = new VideoFrame(buffer, { format: "I420", codedWidth: W, codedHeight: H, timestamp: 0, colorSpace });
    const planes = await copyPlanes(frame, { rect: { x: 2, y: 2, width: 4, height: 4 } });
    const message = decodeFrame(encodePlanes(planes));
    const errors = [];
    for (const rect of [{ x: 1, y: 2, width: 4, height: 4 }, { x: 2, y: 2, width: 3, height: 4 }]) {
      try { await copyPlanes(frame, { rect }); } catch (e) { errors.push(`${e.name}: ${e.message}`); }
    }
    const canvas = new OffscreenCanvas(4, 4);
    canvas.getContext("2d").fillRect(0, 0, 4, 4);
    const rgba = new VideoFrame(canvas, { timestamp: 0 });
    try { await copyPlanes(rgba); } catch (e) { errors.push(`${e.name}: ${e.message}`); }
    try { await copyPlanes("frame"); } catch (e) { errors.push(`${e.name}: ${e.message}`); }
    const square = centreSquare(frame);
    frame.close(); rgba.close();
    return { header: planes.header, data: Array.from(planes.data), message: { header: message.header, bytes: Array.from(message.payload) },
      square, errors, type: PLANES_TYPE, rgbaFormat: rgba.format };
  });
  const { header, data } = result;
  assert.equal(header.format, "I420");
  assert.equal(header.width, 4);
  assert.equal(header.height, 4);
  assert.deepEqual(header.colorSpace, { matrix: "bt709", fullRange: false });
  // The bytes at each plane's offset, row by row with its stride, are the rect's pixels.
  const rows = (plane, count, width) => Array.from({ length: count }, (_, r) =>
    data.slice(header.layout[plane].offset + r * header.layout[plane].stride, header.layout[plane].offset + r * header.layout[plane].stride + width));
  const expectY = [2, 3, 4, 5].map((r) => [2, 3, 4, 5].map((c) => r * 8 + c));
  assert.deepEqual(rows(0, 4, 4), expectY);
  assert.deepEqual(rows(1, 2, 2), [1, 2].map((r) => [1, 2].map((c) => 100 + r * 4 + c)));
  assert.deepEqual(rows(2, 2, 2), [1, 2].map((r) => [1, 2].map((c) => 200 + r * 4 + c)));
  assert.deepEqual(result.message.header, header);
  assert.deepEqual(result.message.bytes, data);
  assert.deepEqual(result.square, { x: 0, y: 0, width: 6, height: 6 }); // (8 - 6) / 2 = 1, rounded down to even
  assert.equal(result.type, "application/x-webml-planes");
  assert.match(result.errors[0], /^TypeError: copyPlanes: options.rect must have even integer/);
  assert.match(result.errors[1], /^TypeError: copyPlanes: options.rect must have even integer/);
  assert.match(result.errors[2], /^TypeError: copyPlanes: frame's format must be I420 or NV12, got (RGBA|BGRA|RGBX|BGRX)/);
  assert.equal(result.errors[3], "TypeError: copyPlanes: frame must be a VideoFrame");
});
