// What the scripts of this folder share: one input file, `--timeout SECONDS`, a `fail` that prints
// `NAME: message` and exits with a code, a timer that fails with exit code 3 when the script runs
// past its time, and Chromium's flags for a WebGPU adapter.

import { parseArgs } from 'node:util';

/** The flags that give headless Chromium a WebGPU adapter on SwiftShader (see the README). */
export const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--disable-vulkan-surface',
];

/** The browser: Debian's, or WEBML_CHROMIUM. */
export const CHROMIUM_PATH = process.env.WEBML_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Parses `node NAME.mjs FILE [--timeout SECONDS] [other options]` and starts the timer.
 * @param {string} name the script's name, the prefix of its messages
 * @param {string} usage the usage line shown when FILE is missing
 * @param {number} defaultSeconds the time limit without --timeout
 * @param {Record<string, import('node:util').ParseArgsOptionDescriptor>} [options] further options
 * @returns {{file: string, seconds: number, values: Record<string, unknown>, fail: (message: string, code: number) => never, timer: NodeJS.Timeout}}
 *   `timer` is cleared by a script that has finished, so that a late exit cannot fail it
 */
export function startScript(name, usage, defaultSeconds, options = {}) {
  /** @param {string} message @param {number} code @returns {never} */
  const fail = (message, code) => {
    process.stderr.write(`${name}: ${message}\n`);
    // Playwright kills the browsers it launched when this process exits.
    process.exit(code);
  };
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { timeout: { type: 'string', default: String(defaultSeconds) }, ...options },
  });
  if (positionals.length !== 1) fail(`usage: ${usage}`, 2);
  const seconds = Number(values.timeout);
  if (!(seconds > 0)) fail(`--timeout must be a positive number of seconds, not ${values.timeout}`, 2);
  const timer = setTimeout(() => fail(`ran past its ${seconds} s`, 3), seconds * 1000);
  timer.unref();
  return { file: positionals[0], seconds, values, fail, timer };
}
