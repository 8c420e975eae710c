#!/usr/bin/env node
// Opens a folder written by `webml export --web` in headless Chromium and runs its model there.
//
//   node run-web-export.mjs TASK.json [--timeout SECONDS]
//
// TASK.json is {url, webgpu: bool, runs: [{name: {type, dims, data: base64 little-endian bytes}}],
// images: [file paths], screenshot: a PNG written at the end, or null}.  `url` is the folder's
// index.html on a loopback static server (not served here: the test serves the folder itself).
// Every request to another origin is refused and listed.
// The page's demo is used for the images (its file input; the top-5 list is read back), the module
// webml-model.js for the runs.  Prints {backend, status, runs: [{name: {dims, type, data: base64}}],
// images: [[{index, text}]] (the top-5 list), blocked: [urls], errors: [messages]} and exits 0; 2 when it
// could not run (the reason on stderr), 3 when it ran past its time (default 300 s).

import { readFileSync } from 'node:fs';

import { chromium } from 'playwright-core';

import { CHROMIUM_FLAGS, CHROMIUM_PATH, startScript } from './script.mjs';

const { file, seconds, fail, timer } = startScript('run-web-export', 'node run-web-export.mjs TASK.json [--timeout SECONDS]', 300);

const task = JSON.parse(readFileSync(file, 'utf8'));
const origin = new URL(task.url).origin;

try {
  const args = task.webgpu ? CHROMIUM_FLAGS : [];
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args, timeout: seconds * 1000 });
  const context = await browser.newContext({ serviceWorkers: 'block' });
  /** @type {string[]} */
  const blocked = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(task.url);
  await page.waitForFunction(() => document.body.dataset.backend, null, { timeout: seconds * 1000 });
  const backend = await page.evaluate(() => document.body.dataset.backend);
  const status = await page.locator('#status').textContent();
  const runs = [];
  for (const inputs of task.runs ?? []) {
    runs.push(
      await page.evaluate(async (feeds) => {
        const m = await import('./webml-model.js');
        const types = {
          float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, float64: Float64Array,
        };
        const decode = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
        const encode = (view) => {
          const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
          let s = '';
          for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
          return btoa(s);
        };
        const ins = {};
        for (const [name, f] of Object.entries(feeds)) ins[name] = { data: new types[f.type](decode(f.data)), dims: f.dims };
        const out = await m.run(ins);
        const res = {};
        for (const [name, t] of Object.entries(out)) res[name] = { type: t.type, dims: t.dims, data: encode(t.data) };
        return res;
      }, inputs),
    );
  }
  const images = [];
  for (const path of task.images ?? []) {
    await page.evaluate(() => delete document.body.dataset.done);
    await page.locator('#image-file').setInputFiles(path);
    await page.waitForFunction(() => document.body.dataset.done === 'image', null, { timeout: seconds * 1000 });
    images.push(
      await page.locator('#top li').evaluateAll((items) =>
        items.map((li) => ({ index: Number(li.dataset.index), text: li.textContent })),
      ),
    );
  }
  if (task.screenshot) await page.screenshot({ path: task.screenshot, fullPage: true });
  process.stdout.write(`${JSON.stringify({ backend, status, runs, images, blocked, errors })}\n`);
  clearTimeout(timer);
  await Promise.race([browser.close(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  process.exit(0);
} catch (err) {
  fail(/** @type {Error} */ (err).stack ?? String(err), 2);
}
