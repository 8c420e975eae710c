import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { MLGraphBuilder, MLOperand, OPERATORS } from "../src/index.js";
import { RULES } from "../src/rules.js";
import { SHAPES } from "../src/shapes.js";
import { fakeContext } from "../tools/helpers.js";

/** @type {Awaited<ReturnType<typeof fakeContext>>} */
let env;
before(async () => (env = await fakeContext()));
after(async () => env.close());

const f32 = (/** @type {number[]} */ shape) => ({ dataType: "float32", shape });

test("all 95 operators are builder methods under their spec names, each with a shape rule", () => {
  assert.equal(OPERATORS.length, 95);
  for (const name of OPERATORS) {
    assert.equal(typeof MLGraphBuilder.prototype[/** @type {keyof MLGraphBuilder} */ (name)], "function", name);
    assert.equal(typeof SHAPES[name], "function", name);
  }
  for (const name of ["gatherND", "isNaN", "convTranspose2d", "l2Pool2d", "lstmCell", "reduceLogSumExp", "quantizeLinear"])
    assert.ok(OPERATORS.includes(name), name);
});

test("operands know their data type and shape at once", () => {
  const b = new MLGraphBuilder(env.context);
  const x = b.input("x", f32([1, 3, 8, 8]));
  const w = b.constant(f32([4, 3, 3, 3]), new Float32Array(108));
  const y = b.conv2d(x, w, { padding: [1, 1, 1, 1], strides: [2, 2] });
  assert.ok(y instanceof MLOperand);
  assert.equal(y.dataType, "float32");
  assert.deepEqual(y.shape, [1, 4, 4, 4]);
  const parts = b.split(y, [1, 3], { axis: 1 });
  assert.deepEqual(parts.map((p) => p.shape), [[1, 1, 4, 4], [1, 3, 4, 4]]);
  assert.deepEqual(b.reduceMean(x, { axes: [2, 3], keepDimensions: true }).shape, [1, 3, 1, 1]);
  assert.deepEqual(b.averagePool2d(x, { windowDimensions: [3, 3], strides: [2, 2], outputShapeRounding: "ceil" }).shape, [1, 3, 4, 4]);
  assert.deepEqual(b.transpose(x).shape, [8, 8, 3, 1]);
  assert.deepEqual(b.matmul(b.input("a", f32([2, 1, 3, 4])), b.input("m", f32([5, 4, 6]))).shape, [2, 5, 3, 6]);
  assert.deepEqual(b.gather(x, b.input("i", { dataType: "int32", shape: [2, 5] }), { axis: 2 }).shape, [1, 3, 2, 5, 8]);
  assert.deepEqual(b.resample2d(x, { scales: [0.7, 2] }).shape, [1, 3, 5, 16]); // floor(8 * fround(0.7)) = 5
  assert.equal(b.argMax(x, 1, { outputDataType: "int64" }).dataType, "int64");
  assert.equal(b.equal(x, x).dataType, "uint8");
  assert.equal(b.cast(x, "int8").dataType, "int8");
  const [h, c] = b.lstmCell(
    b.input("li", f32([2, 5])),
    b.input("lw", f32([16, 5])),
    b.input("lr", f32([16, 4])),
    b.input("lh", f32([2, 4])),
    b.input("lc", f32([2, 4])),
    4,
  );
  assert.deepEqual([h.shape, c.shape], [[2, 4], [2, 4]]);
  const gru = b.gru(b.input("gi", f32([3, 2, 5])), b.input("gw", f32([2, 12, 5])), b.input("gr", f32([2, 12, 4])), 3, 4, {
    direction: "both",
    returnSequence: true,
  });
  assert.deepEqual(gru.map((o) => o.shape), [[2, 2, 4], [3, 2, 2, 4]]);
});

test("invalid calls throw TypeError synchronously, naming the operator and the label", () => {
  const b = new MLGraphBuilder(env.context);
  const x = b.input("x", f32([2, 3]));
  const y = b.input("y", f32([4, 3]));
  assert.throws(() => b.add(x, y, { label: "sum" }), { name: "TypeError", message: "[sum] add: the shapes of a [2, 3] and b [4, 3] are not broadcastable" });
  assert.throws(() => b.softmax(x, 2), { name: "TypeError", message: /^softmax: axis 2 must be in the range \[0, 2\)/ });
  assert.throws(() => b.relu(b.input("u", { dataType: "uint8", shape: [2] }), { label: "r" }), { name: "TypeError", message: "[r] relu: input data type uint8 is not supported" });
  assert.throws(() => b.matmul(x, b.input("v", f32([3]))), { name: "TypeError", message: /matmul: b rank 1 is not supported/ });
  assert.throws(() => b.reshape(x, [4, 2]), /reshape: newShape \[4, 2\] has 8 elements/);
  assert.throws(() => b.concat([x, y], 1), /concat: inputs\[1\] shape \[4, 3\] must match/);
  assert.throws(() => b.clamp(x, { minValue: 2, maxValue: 1 }), /clamp: minValue 2 must not be greater than maxValue 1/);
  assert.throws(() => b.transpose(x, { permutation: [0, 0] }), /permutation \[0, 0\] must not contain duplicates/);
  assert.throws(() => b.pad(x, [1], [1, 1]), /the lengths of beginningPadding \(1\) and endingPadding \(2\) must both equal the input rank 2/);
  assert.throws(() => b.cast(x, "float64"), /cast: type must be one of/);
  assert.throws(() => b.add(x, 3), /add: b must be an MLOperand, got 3/);
  assert.throws(() => b.add(x), /the required argument b is missing/);
  assert.throws(() => b.split(x, 4, { axis: 1 }), /splits \(4\) must evenly divide the input size 3/);
  assert.throws(() => b.conv2d(b.input("i4", f32([1, 2, 4, 4])), b.input("f4", f32([1, 3, 1, 1])), { label: "c\u202e" }), {
    message: /^\[c\\u202e\] conv2d: input channels \/ groups/,
  });
});

test("operands of another builder are refused", () => {
  const b1 = new MLGraphBuilder(env.context);
  const b2 = new MLGraphBuilder(env.context);
  const x = b1.input("x", f32([2]));
  assert.throws(() => b2.relu(x), /relu: input belongs to another MLGraphBuilder/);
});

test("outputs over maxTensorByteLength are refused at the call", async () => {
  const small = await fakeContext({ maxTensorByteLength: 64 });
  try {
    const b = new MLGraphBuilder(small.context);
    const x = b.input("x", f32([4, 4]));
    assert.throws(() => b.tile(x, [2, 1], { label: "t" }), { name: "TypeError", message: "[t] tile: the output float32[8, 4] needs 128 bytes, more than the maximum 64" });
    assert.throws(() => b.input("big", f32([17])), /needs 68 bytes, more than the maximum 64/);
  } finally {
    await small.close();
  }
});

test("descriptors and constant data are checked as WebIDL and the spec say", () => {
  const b = new MLGraphBuilder(env.context);
  assert.throws(() => b.input("x", { dataType: "float64", shape: [1] }), /'float64' is not a valid MLOperandDataType/);
  assert.throws(() => b.input("x", { dataType: "float32", shape: [0] }), /dimension 0 of shape \[0\] is not valid/);
  assert.throws(() => b.input("", f32([1])), /name must not be empty/);
  b.input("x", f32([1]));
  assert.throws(() => b.input("x", f32([1])), /an input named 'x' already exists/);
  assert.throws(() => b.constant(f32([2]), new Float32Array(3)), /the data has 12 bytes, float32\[2\] needs 8/);
  assert.throws(() => b.constant(f32([2]), new Int32Array(2)), /a Int32Array cannot hold float32 data/);
  const big = b.constant({ dataType: "int64", shape: [2] }, new BigInt64Array([1n, -(2n ** 62n)]));
  assert.equal(big.dataType, "int64");
  const half = b.constant({ dataType: "float16", shape: [2] }, new Uint16Array([0x3c00, 0xc000]));
  assert.deepEqual(half.shape, [2]);
  assert.equal(b.constant("int8", 300).dataType, "int8");
});

test("build sends the graph description and the constants' bytes; a builder builds once", async () => {
  const b = new MLGraphBuilder(env.context);
  const x = b.input("x", f32([2, 2]));
  const w = b.constant(f32([2, 2]), new Float32Array([1, 2, 3, 4]));
  b.constant(f32([1]), new Float32Array([9])); // unused: not sent
  const bias = b.constant(f32([2]), new Float32Array([5, 6]));
  const y = b.gemm(x, w, { c: bias, bTranspose: true, label: "fc" });
  const z = b.clamp(y, { minValue: -Infinity, maxValue: 2n ** 70n });
  const graph = await b.build({ z });
  const sent = env.fake.received.at(-1);
  assert.equal(sent.header.op, "build");
  const g = sent.header.graph;
  assert.deepEqual(g.inputs, { x: 0 });
  assert.deepEqual(g.outputs, { z: 5 });
  assert.deepEqual(g.constants, { 1: { offset: 0, length: 16 }, 3: { offset: 16, length: 8 } });
  assert.deepEqual(new Float32Array(sent.payload.slice().buffer), new Float32Array([1, 2, 3, 4, 5, 6]));
  assert.deepEqual(g.nodes[0], { op: "gemm", args: [0, 1], options: { c: { operand: 3 }, bTranspose: true, label: "fc" }, outputs: [4], label: "fc" });
  assert.equal(g.nodes[1].options.minValue, -Infinity);
  assert.match(sent.headerText, /"options":\{"minValue":-Infinity,"maxValue":1180591620717411303424\}/);
  assert.equal(String(g.operands[5].shape), "2,2");
  assert.ok(graph);
  await assert.rejects(b.build({ z }), { name: "InvalidStateError" });
  assert.throws(() => b.relu(x), { name: "InvalidStateError" });
});

test("build refuses inputs and constants as outputs", async () => {
  const b = new MLGraphBuilder(env.context);
  const x = b.input("x", f32([2]));
  await assert.rejects(b.build({ x }), /build: output 'x' is an input or a constant/);
  await assert.rejects(b.build({}), /outputs must not be empty/);
});

test("rules.json holds every operator's arguments, options with defaults and limits", () => {
  const conv = RULES.operators.conv2d;
  assert.deepEqual(conv.arguments.map((/** @type {any} */ a) => a.name), ["input", "filter"]);
  assert.deepEqual(Object.fromEntries(conv.options.map((/** @type {any} */ o) => [o.name, o.default])), {
    padding: null, strides: null, dilations: null, groups: 1, inputLayout: "nchw", filterLayout: "oihw", bias: null,
  });
  assert.deepEqual(conv.limits.input, { dataTypes: ["float32", "float16"], rankRange: { min: 4, max: 4 } });
  assert.equal(RULES.dataTypes.int4.bits, 4);
});
