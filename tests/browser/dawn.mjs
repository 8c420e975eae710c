// Dawn (the `webgpu` package, Dawn for Node.js) devices for checking WGSL with Tint, the WGSL compiler
// of Chromium's WebGPU.
//
// Two devices, both with every feature their adapter has:
// - "null": Dawn's null backend.  It runs all of Tint's front end (parsing, resolving, validation) and
//   WebGPU's pipeline validation, and offers every feature (shader-f16, subgroups, ...), but generates
//   no machine code.
// - "swiftshader": Dawn's Vulkan backend on SwiftShader (Chromium's own software Vulkan, shipped with
//   Debian's chromium).  Tint also writes SPIR-V and SwiftShader compiles it, as in headless Chromium,
//   but it lacks shader-f16, so a module whose `enable`s it lacks is checked on "null" alone.
// Both use WebGPU's default limits, the ones a web page gets without asking for more.

import { existsSync } from 'node:fs';

/** @typedef {{name: string, device: GPUDevice, features: Set<string>, keep: object[]}} CheckDevice */

/** Chromium's SwiftShader Vulkan driver (Debian's chromium package), or WEBML_SWIFTSHADER_ICD. */
export const SWIFTSHADER_ICD = process.env.WEBML_SWIFTSHADER_ICD ?? '/usr/lib/chromium/vk_swiftshader_icd.json';

/** WGSL `enable` extensions and the GPU features they need. */
const EXTENSION_FEATURES = /** @type {Record<string, string>} */ ({
  f16: 'shader-f16',
  subgroups: 'subgroups',
  clip_distances: 'clip-distances',
  dual_source_blending: 'dual-source-blending',
  primitive_index: 'primitive-index',
});

/**
 * The GPU features a module's `enable` directives need (unknown extensions map to themselves, so that
 * no device claims them and Tint's own message says what is wrong).
 * @param {string} source
 * @returns {string[]}
 */
export function neededFeatures(source) {
  const found = [];
  for (const match of source.matchAll(/^\s*enable\s+([^;]+);/gm)) {
    for (const ext of match[1].split(',').map((s) => s.trim()).filter(Boolean)) {
      found.push(EXTENSION_FEATURES[ext] ?? ext);
    }
  }
  return found;
}

/**
 * @param {string} name
 * @param {string[]} flags dawn.node's options, e.g. "backend=null"
 * @returns {Promise<CheckDevice>}
 */
async function openDevice(name, flags) {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  const gpu = create(flags);
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new Error(`Dawn gave no WebGPU adapter for ${name} (dawn.node options ${flags.join(' ')})`);
  }
  const features = [...adapter.features];
  const device = await adapter.requestDevice({ requiredFeatures: /** @type {GPUFeatureName[]} */ (features) });
  device.addEventListener('uncapturederror', () => {}); // errors are read through error scopes
  // dawn.node crashes (in Dawn's threads) once the GPU object and adapter are collected: keep them.
  return { name, device, features: new Set(features), keep: [gpu, adapter] };
}

/**
 * Opens the "null" device and, unless `nullOnly`, the "swiftshader" one (an error when it cannot be had).
 * @param {{nullOnly?: boolean}} [options]
 * @returns {Promise<CheckDevice[]>}
 */
export async function openDevices({ nullOnly = false } = {}) {
  // Vulkan's loader reads the ICD list when Dawn makes its instance: name SwiftShader alone, before that.
  if (!nullOnly) {
    if (!existsSync(SWIFTSHADER_ICD)) {
      throw new Error(`no SwiftShader Vulkan driver at ${SWIFTSHADER_ICD} (Debian's chromium package has it)`);
    }
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    process.env.VK_DRIVER_FILES = SWIFTSHADER_ICD;
  }
  const devices = [await openDevice('null', ['backend=null'])];
  if (!nullOnly) devices.push(await openDevice('swiftshader', ['backend=vulkan']));
  return devices;
}

/**
 * Tint's and WebGPU's error messages for one module on one device: compilation errors ("line:col:
 * message"), then errors of creating the module and its compute pipeline (entry point `main`, layout
 * "auto").  Empty when the device accepts it.
 * @param {GPUDevice} device
 * @param {string} source
 * @returns {Promise<string[]>}
 */
export async function moduleErrors(device, source) {
  const errors = [];
  device.pushErrorScope('validation');
  device.pushErrorScope('internal');
  const module = device.createShaderModule({ code: source });
  const info = await module.getCompilationInfo();
  const internal = await device.popErrorScope();
  const validation = await device.popErrorScope();
  for (const m of info.messages) {
    if (m.type === 'error') errors.push(`${m.lineNum}:${m.linePos}: ${m.message}`);
  }
  // Creating the module reports the same compilation errors again; keep only what they do not say.
  for (const e of [validation, internal]) {
    if (e && !(errors.length && e.message.startsWith('Error while parsing WGSL'))) errors.push(e.message.trim());
  }
  if (errors.length) return errors;
  try {
    await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  } catch (err) {
    const e = /** @type {Error & {reason?: string}} */ (err);
    errors.push(`pipeline (${e.reason ?? e.name}): ${e.message.trim()}`);
  }
  return errors;
}

/**
 * Every rejected module's messages, by name (a module is checked on each device that has the features
 * its `enable`s need; messages from "swiftshader" say so).  Empty when all are accepted.
 * @param {CheckDevice[]} devices
 * @param {Record<string, string>} sources
 * @returns {Promise<Record<string, string[]>>}
 */
export async function checkAll(devices, sources) {
  /** @type {Record<string, string[]>} */
  const rejected = {};
  for (const [name, source] of Object.entries(sources)) {
    const needs = neededFeatures(source);
    for (const { name: where, device, features } of devices) {
      if (where !== 'null' && !needs.every((f) => features.has(f))) continue;
      const errors = await moduleErrors(device, source);
      if (errors.length) {
        rejected[name] = where === 'null' ? errors : errors.map((e) => `[${where}] ${e}`);
        break;
      }
    }
  }
  return rejected;
}
