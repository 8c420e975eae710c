// listModels() and runModel() against a real `webml serve --model NAME=PKG` (tests/test_protected_serve.py
// starts the service and runs this with `node --test`).  Environment: WEBML_URL, WEBML_TOKEN, and
// WEBML_EXPECTED, a JSON file {model, input: {name: {dataType, shape, data}}, output: {name: {...}}}.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect } from "../src/index.js";

const { WEBML_URL: url, WEBML_TOKEN: token, WEBML_EXPECTED: expectedPath } = process.env;
if (!url || !token || !expectedPath) throw new Error("set WEBML_URL, WEBML_TOKEN and WEBML_EXPECTED");
const expected = JSON.parse(readFileSync(expectedPath, "utf8"));
const ml = await connect({ url, token });
after(() => ml.close());

test("listModels: names, inputs and outputs from the signed header, no weights", async () => {
  const models = await ml.listModels();
  assert.deepEqual(models.map((m) => m.name), [expected.model]);
  const [model] = models;
  assert.deepEqual(model.inputs, { x: { dataType: "float32", shape: [1, 256] } });
  assert.deepEqual(model.outputs, { y: { dataType: "float32", shape: [1, 8] } });
  assert.equal(model.publisher, expected.publisher);
  assert.deepEqual(Object.keys(model).sort(), ["created", "expires", "inputs", "name", "outputs", "publisher"]);
});

test("runModel: the outputs ONNX Runtime computes for the unprotected model, bit for bit", async () => {
  const x = new Float32Array(expected.input.x.data);
  const result = await ml.runModel(expected.model, { x });
  assert.deepEqual(Object.keys(result), ["y"]);
  assert.equal(result.y.dataType, "float32");
  assert.deepEqual(result.y.shape, [1, 8]);
  assert.deepEqual(Array.from(new Float32Array(result.y.data)), expected.output.y.data);
});

test("runModel: bad inputs are refused with the reason", async () => {
  await assert.rejects(ml.runModel("nope", {}), /no served model named 'nope'/);
  await assert.rejects(ml.runModel(expected.model, {}), /missing \[x\]/);
  await assert.rejects(ml.runModel(expected.model, { x: new Float32Array(3) }), /has 12 bytes, float32\[1, 256\] needs 1024/);
  await assert.rejects(ml.runModel(expected.model, { x: new Int32Array(256) }), /Int32Array cannot hold float32/);
});
