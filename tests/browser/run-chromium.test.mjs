// node --test: run-chromium.mjs runs WGSL compute jobs in headless Chromium's WebGPU.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'run-chromium.mjs');

/** @param {number[]} values @returns {string} float32 bytes, base64 */
const f32 = (values) => Buffer.from(new Float32Array(values).buffer).toString('base64');
/** @param {string} b64 @returns {number[]} */
const floats = (b64) => {
  const bytes = Buffer.from(b64, 'base64');
  return [...new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)];
};

/**
 * Runs run-chromium.mjs on the given jobs.
 * @param {object[]} jobs
 * @returns {{status: number | null, out: any, stderr: string}}
 */
function run(jobs) {
  const dir = mkdtempSync(join(tmpdir(), 'run-chromium-'));
  try {
    const path = join(dir, 'jobs.json');
    writeFileSync(path, JSON.stringify(jobs));
    const child = spawnSync(process.execPath, [SCRIPT, path, '--timeout', '90'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(child.error, undefined, String(child.error));
    return { status: child.status, out: child.stdout ? JSON.parse(child.stdout) : undefined, stderr: child.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ADD = `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> scale: vec4f;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&c)) { c[g.x] = (a[g.x] + b[g.x]) * scale.x; }
}`;

test('an add kernel computes the right numbers in Chromium, and a broken one reports why', () => {
  const n = 100;
  const a = Array.from({ length: n }, (_, i) => i * 0.5);
  const b = Array.from({ length: n }, (_, i) => 1000 - i);
  const { status, out, stderr } = run([
    {
      name: 'add',
      source: ADD,
      bindings: [
        { binding: 0, type: 'read-only-storage', data: f32(a) },
        { binding: 1, type: 'read-only-storage', data: f32(b) },
        { binding: 2, type: 'storage', size: n * 4 },
        { binding: 3, type: 'uniform', data: f32([2, 0, 0, 0]) },
      ],
      workgroups: [Math.ceil(n / 64), 1, 1],
      read: [2],
    },
    { name: 'broken', source: '@compute @workgroup_size(1) fn main() { let x: i32 = 1u; }', bindings: [], workgroups: [1], read: [] },
  ]);
  assert.equal(status, 1, stderr);
  assert.equal(out.adapter.architecture, 'swiftshader');
  assert.deepEqual(floats(out.results.add['2']), a.map((x, i) => (x + b[i]) * 2));
  assert.deepEqual(Object.keys(out.results), ['add']);
  assert.match(out.errors.broken[0], /^1:\d+: cannot initialize 'let' of type 'i32'/);
});
