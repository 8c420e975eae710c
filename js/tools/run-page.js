#!/usr/bin/env node
// A page in headless Chromium that uses installNavigatorML and runs a small graph on webml serve.
//
//   node tools/run-page.js --service ws://127.0.0.1:PORT/webnn --page-port N [--timeout SECONDS]
//
// Serves js/ on http://127.0.0.1:N (the origin the service must have granted; no token is given
// to the page), opens /tools/page.html there in /usr/bin/chromium (or WEBML_CHROMIUM), and prints
// the page's JSON result: {ok, navigatorHadML, output, dataType, shape, refusal?}.  Exits 0 when the
// page ran, 1 when it reported an error, 2 when the browser could not run it.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url))); // js/
const TYPES = { ".js": "text/javascript", ".json": "application/json", ".html": "text/html" };
const { values } = parseArgs({ options: { service: { type: "string" }, "page-port": { type: "string" }, timeout: { type: "string", default: "60" } } });
const browserPath = process.env.WEBML_CHROMIUM ?? "/usr/bin/chromium";

/** @param {string} message @param {number} code @returns {never} */
function fail(message, code) {
  process.stderr.write(`run-page: ${message}\n`);
  process.exit(code);
}

if (!values.service || !values["page-port"]) fail("usage: run-page.js --service URL --page-port N", 2);
if (!existsSync(browserPath)) fail(`no Chromium at ${browserPath} (Debian: apt-get install chromium; or set WEBML_CHROMIUM)`, 2);
setTimeout(() => fail(`ran past ${values.timeout} s`, 2), Number(values.timeout) * 1000).unref();

const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
  if (path.includes("..") || !(path.startsWith("/src/") || path === "/tools/page.html")) return res.writeHead(404).end();
  try {
    const body = await readFile(join(ROOT, path));
    res.writeHead(200, { "content-type": `${TYPES[/** @type {keyof TYPES} */ (extname(path))] ?? "application/octet-stream"}; charset=utf-8` }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve, reject) => server.listen(Number(values["page-port"]), "127.0.0.1", () => resolve(undefined)).on("error", reject));

const browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox"] }).catch((e) => fail(`Chromium did not start: ${e.message}`, 2));
let code = 0;
try {
  const page = await browser.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`http://127.0.0.1:${values["page-port"]}/tools/page.html#${encodeURIComponent(values.service)}`);
  await page.waitForFunction(() => /** @type {any} */ (window).__result !== undefined, null, { timeout: Number(values.timeout) * 1000 });
  const result = await page.evaluate(() => /** @type {any} */ (window).__result);
  if (!result.ok) {
    code = 1;
    result.logs = logs;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (e) {
  fail(`the page did not finish: ${/** @type {Error} */ (e).message}`, 2);
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
