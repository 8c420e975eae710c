#!/usr/bin/env node
// Checks WGSL compute modules with Tint (Dawn for Node.js): every module must compile and make a
// compute pipeline (entry point `main`, layout "auto") on WebGPU's default limits.
//
//   node check-wgsl.mjs SOURCES.json [--timeout SECONDS] [--null-only]
//
// SOURCES.json is {name: wgslSource, ...}.  Prints {name: [error messages]} for the rejected modules
// ({} when all are accepted) and exits 0 when all are accepted, 1 when some are rejected, 2 when the
// check could not run (the reason on stderr), 3 when it ran past its time (default 120 s).

import { readFileSync } from 'node:fs';

import { checkAll, openDevices } from './dawn.mjs';
import { startScript } from './script.mjs';

const { file, values, fail } = startScript(
  'check-wgsl', 'node check-wgsl.mjs SOURCES.json [--timeout SECONDS] [--null-only]', 120,
  { 'null-only': { type: 'boolean', default: false } },
);

/** @type {Record<string, string>} */
let sources;
try {
  sources = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  fail(`cannot read ${file}: ${/** @type {Error} */ (err).message}`, 2);
}
if (typeof sources !== 'object' || sources === null || Array.isArray(sources)) {
  fail(`${file} must hold a JSON object {name: wgslSource}`, 2);
}
for (const [name, source] of Object.entries(sources)) {
  if (typeof source !== 'string') fail(`source ${JSON.stringify(name)} is not a string`, 2);
}

try {
  const devices = await openDevices({ nullOnly: values['null-only'] });
  const rejected = await checkAll(devices, sources);
  for (const { device } of devices) device.destroy();
  process.stdout.write(`${JSON.stringify(rejected, null, 1)}\n`);
  // dawn.node keeps the event loop alive: leave once the answer is written.
  process.exit(Object.keys(rejected).length ? 1 : 0);
} catch (err) {
  fail(/** @type {Error} */ (err).stack ?? String(err), 2);
}
