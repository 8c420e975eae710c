#!/usr/bin/env node
// Runs WGSL compute jobs in headless Chromium's WebGPU (SwiftShader, Chromium's software Vulkan).
//
//   node run-chromium.mjs JOBS.json [--timeout SECONDS]
//
// JOBS.json is [{name, source, bindings: [{binding, type: "read-only-storage"|"storage"|"uniform",
// data: base64 bytes, size}], workgroups: [x, y, z], read: [binding numbers]}] (all bindings in group
// 0; entry point `main`; size defaults to the data's length, data to zeros).  Prints
// {adapter: {...}, results: {name: {binding: base64 bytes}}, errors: {name: [messages]}} and exits 0
// when every job ran, 1 when some failed (their messages under errors), 2 when nothing could run (the
// reason on stderr), 3 when it ran past its time (default 120 s; the browser is killed).
//
// The page comes from a server on 127.0.0.1 (port 0: any free one), which makes it a secure context
// (WebGPU needs one); the browser may fetch nothing else.  The browser is /usr/bin/chromium (Debian's),
// or WEBML_CHROMIUM.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { CHROMIUM_FLAGS, CHROMIUM_PATH, startScript } from './script.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const PAGE = `<!doctype html><meta charset="utf-8"><title>webml WebGPU jobs</title><script src="/page.js"></script>`;

const { file, seconds, fail, timer } = startScript('run-chromium', 'node run-chromium.mjs JOBS.json [--timeout SECONDS]', 120);

/** @type {import('playwright-core').Browser | undefined} */
let browser;
/** @type {import('node:http').Server | undefined} */
let server;

/** @type {unknown} */
let jobs;
try {
  jobs = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  fail(`cannot read ${file}: ${/** @type {Error} */ (err).message}`, 2);
}
if (!Array.isArray(jobs)) fail(`${file} must hold a JSON array of jobs`, 2);

/** Serves the page and page.js on 127.0.0.1; nothing else. @returns {Promise<string>} its origin */
function serve() {
  const script = readFileSync(join(HERE, 'page.js'));
  server = createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    } else if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server?.once('error', reject);
    server?.listen(0, '127.0.0.1', () => {
      const address = server?.address();
      if (!address || typeof address === 'string') reject(new Error('the server has no port'));
      else resolve(`http://127.0.0.1:${address.port}`);
    });
  });
}

try {
  const origin = await serve();
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS, timeout: seconds * 1000 });
  const context = await browser.newContext({ serviceWorkers: 'block' });
  await context.route('**/*', (route) =>
    route.request().url().startsWith(`${origin}/`) ? route.continue() : route.abort('blockedbyclient'),
  );
  const page = await context.newPage();
  /** @type {string[]} */
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${origin}/`);
  // @ts-expect-error: defined by page.js
  const adapter = await page.evaluate(() => window.webmlAdapter());
  // @ts-expect-error: defined by page.js
  const outcome = await page.evaluate((j) => window.webmlRun(j), jobs);
  if (pageErrors.length) outcome.errors['(page)'] = pageErrors;
  process.stdout.write(`${JSON.stringify({ adapter, ...outcome })}\n`);
  clearTimeout(timer);
  // A graceful close, for at most 5 s; on exit Playwright kills the browser anyway.
  await Promise.race([browser.close(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
  process.exit(Object.keys(outcome.errors).length ? 1 : 0);
} catch (err) {
  fail(/** @type {Error} */ (err).stack ?? String(err), 2);
}
