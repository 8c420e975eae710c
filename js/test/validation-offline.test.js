// The JS rules against the traced WPT validation tests, without a service: the fake one answers
// build (so build-time refusals cannot show) and runs no graph.  The JS side alone must pass at
// least what the Python API passes on the reference backend (880 of the 892 tests that check
// something, 98.7%); tests/test_js_client.py replays the same traces against a real service.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

test("the WPT validation traces pass through the JS client (fake service)", () => {
  const run = fileURLToPath(new URL("../tools/replay/run.js", import.meta.url));
  const out = execFileSync(process.execPath, [run, "validation", "--fake"], { encoding: "utf8", timeout: 120_000 });
  const summary = JSON.parse(out.trim().split("\n").at(-1) ?? "{}");
  assert.equal(summary.total, 992);
  const checked = summary.passed + summary.failed;
  assert.ok(summary.passed / checked >= 880 / 892, `passed ${summary.passed} of ${checked}`);
});
