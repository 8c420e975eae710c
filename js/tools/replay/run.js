#!/usr/bin/env node
// Replay the vendored WPT suites through the JS client against a webml serve:
//   node test/replay/run.js validation|conformance --url ws://... --token T [--out results.json] [--fake] [STEM...]
// --fake runs against test/fake-service.js (no graph runs: only what the client checks alone).
// Prints a summary line and writes every result as JSON to --out.
import { writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "../../src/index.js";
import { loadWpt, replayFile } from "./validation.js";
import { runConformanceFile } from "./conformance.js";
import { startFake } from "../fake-service.js";

const WPT = process.env.WEBML_WPT_DIR ?? resolve(dirname(fileURLToPath(import.meta.url)), "../../../third_party/wpt-webnn");
const argv = process.argv.slice(2);
const suite = argv.shift();
const options = { url: "", token: "", out: "", fake: false };
const stems = [];
while (argv.length) {
  const a = /** @type {string} */ (argv.shift());
  if (a === "--url") options.url = /** @type {string} */ (argv.shift());
  else if (a === "--token") options.token = /** @type {string} */ (argv.shift());
  else if (a === "--out") options.out = /** @type {string} */ (argv.shift());
  else if (a === "--fake") options.fake = true;
  else stems.push(a);
}
if (suite !== "validation" && suite !== "conformance") {
  console.error("usage: run.js validation|conformance --url URL --token TOKEN [--out FILE] [--fake] [STEM...]");
  process.exit(2);
}
const fake = options.fake ? await startFake() : null;
const ml = await connect(fake ? { url: fake.url, token: fake.token } : { url: options.url, token: options.token });
const index = loadWpt(join(WPT, "index.json"));
const sections = suite === "validation" ? [["validation", "validation"]] : [["conformance", "conformance"], ["supplement", "conformance_supplement"]];
const results = [];
for (const [section, folder] of sections) {
  const files = index[section].files.map((/** @type {any} */ f) => f.json).filter(Boolean).sort();
  for (const file of files) {
    const stem = file.replace(/\.json$/, "");
    if (stems.length && !stems.includes(stem)) continue;
    const path = join(WPT, folder, file);
    if (process.env.WEBML_REPLAY_PROGRESS) process.stderr.write(`${new Date().toISOString()} ${stem}\n`);
    results.push(...(suite === "validation" ? await replayFile(ml, path, stem) : await runConformanceFile(ml, path, stem)));
  }
}
ml.close();
await fake?.close();
const count = (/** @type {string} */ s) => results.filter((r) => r.status === s).length;
const summary = { suite, total: results.length, passed: count("passed"), failed: count("failed"), skipped: count("skipped"), empty: count("empty") };
if (options.out) writeFileSync(options.out, JSON.stringify({ summary, results }, null, 1));
console.log(JSON.stringify(summary));
