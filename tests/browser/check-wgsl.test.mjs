// node --test: check-wgsl.mjs accepts valid WGSL and rejects invalid WGSL with Tint's message.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { neededFeatures } from './dawn.mjs';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'check-wgsl.mjs');

const DOUBLE = `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&a)) { a[g.x] = 2.0 * a[g.x]; }
}`;

/**
 * Runs check-wgsl.mjs on the given sources.
 * @param {Record<string, string>} sources
 * @param {string[]} [extra]
 * @returns {{status: number | null, rejected: Record<string, string[]>, stderr: string}}
 */
function check(sources, extra = []) {
  const dir = mkdtempSync(join(tmpdir(), 'check-wgsl-'));
  try {
    const path = join(dir, 'sources.json');
    writeFileSync(path, JSON.stringify(sources));
    const run = spawnSync(process.execPath, [SCRIPT, path, '--timeout', '60', ...extra], { encoding: 'utf8', timeout: 90_000 });
    assert.equal(run.error, undefined, String(run.error));
    const rejected = run.stdout ? JSON.parse(run.stdout) : {};
    return { status: run.status, rejected, stderr: run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('valid kernels are accepted, on both devices', () => {
  const f16 = `enable f16;
@group(0) @binding(0) var<storage, read_write> a: array<f16>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { a[g.x] = a[g.x] * 2h; }`;
  const subgroups = `enable subgroups;
@group(0) @binding(0) var<storage, read_write> a: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(subgroup_invocation_id) i: u32) { a[i] = subgroupAdd(i); }`;
  const run = check({ double: DOUBLE, f16, subgroups });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.rejected, {});
});

test('an invalid kernel is rejected with Tint\'s message and its position', () => {
  const run = check({ double: DOUBLE, mistyped: '@compute @workgroup_size(1) fn main() {\n  let x: i32 = 1u;\n}' });
  assert.equal(run.status, 1, run.stderr);
  assert.deepEqual(Object.keys(run.rejected), ['mistyped']);
  assert.match(run.rejected.mistyped[0], /^2:\d+: cannot initialize 'let' of type 'i32' with value of type 'u32'/);
});

test('pipeline errors count: no entry point main, a workgroup past the default limits', () => {
  const run = check({
    other: '@compute @workgroup_size(1) fn other() {}',
    wide: '@compute @workgroup_size(512) fn main() {}',
  });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.rejected.other.join('\n'), /pipeline .*Entry point .*main.* doesn't exist/s);
  assert.match(run.rejected.wide.join('\n'), /workgroup_size\(512, 1, 1\).*exceeds/s);
});

test('subgroup builtins need `enable subgroups;` in Tint', () => {
  const run = check({ bare: '@compute @workgroup_size(64) fn main(@builtin(subgroup_invocation_id) i: u32) {}' });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.rejected.bare[0], /requires enabling extension 'subgroups'/);
});

test('enables map to the features they need', () => {
  assert.deepEqual(neededFeatures('enable f16, subgroups;\nenable clip_distances;\nfn f() {}'), ['shader-f16', 'subgroups', 'clip-distances']);
  assert.deepEqual(neededFeatures('// enable f16;\nfn f() {}'), []);
});

test('a bad input file is an error of its own (exit 2), not a verdict', () => {
  const run = check(/** @type {any} */ (['not', 'an', 'object']));
  assert.equal(run.status, 2);
  assert.match(run.stderr, /must hold a JSON object/);
});
