import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, installNavigatorML, MLGraphBuilder, MLTensor } from "../src/index.js";
import { encodeFrame } from "../src/frames.js";
import { fakeContext } from "../tools/helpers.js";
import { startFake } from "../tools/fake-service.js";

/** @type {Awaited<ReturnType<typeof fakeContext>>} */
let env;
before(async () => (env = await fakeContext()));
after(async () => env.close());

const desc = { dataType: "float32", shape: [2, 2], readable: true, writable: true };

test("tensors: create, write, read into a new ArrayBuffer or into a view", async () => {
  const { context } = env;
  const t = await context.createTensor(desc);
  assert.ok(t instanceof MLTensor);
  assert.deepEqual([t.dataType, t.shape, t.readable, t.writable, t.constant], ["float32", [2, 2], true, true, false]);
  context.writeTensor(t, new Float32Array([1, 2, 3, 4]));
  assert.deepEqual(new Float32Array(/** @type {ArrayBuffer} */ (await context.readTensor(t))), new Float32Array([1, 2, 3, 4]));
  const out = new Float32Array(4);
  assert.equal(await context.readTensor(t, out), undefined);
  assert.deepEqual(out, new Float32Array([1, 2, 3, 4]));
  await assert.rejects(context.readTensor(t, new Float32Array(3)), /outputData has 12 bytes, the tensor has 16/);
  assert.throws(() => context.writeTensor(t, new Float32Array(3)), /writeTensor: the data has 12 bytes/);
  const sent = env.fake.received.find((m) => m.header.op === "writeTensor");
  assert.deepEqual(new Float32Array(sent?.payload.slice().buffer ?? new ArrayBuffer(0)), new Float32Array([1, 2, 3, 4]));
  const readOnly = await context.createTensor({ ...desc, writable: false });
  assert.throws(() => context.writeTensor(readOnly, new Float32Array(4)), /not writable/);
  t.destroy();
  await assert.rejects(context.readTensor(t), /the tensor is destroyed/);
});

test("int64 tensors carry BigInt64Array data exactly", async () => {
  const { context } = env;
  const t = await context.createTensor({ dataType: "int64", shape: [2], readable: true, writable: true });
  context.writeTensor(t, new BigInt64Array([2n ** 62n + 1n, -3n]));
  assert.deepEqual(new BigInt64Array(/** @type {ArrayBuffer} */ (await context.readTensor(t))), new BigInt64Array([2n ** 62n + 1n, -3n]));
});

test("dispatch checks its tensors against the graph at the call", async () => {
  const { context } = env;
  const b = new MLGraphBuilder(context);
  const y = b.relu(b.input("x", { dataType: "float32", shape: [2, 2] }));
  const graph = await b.build({ y });
  const x = await context.createTensor(desc);
  const out = await context.createTensor(desc);
  const wrong = await context.createTensor({ ...desc, shape: [4] });
  assert.throws(() => context.dispatch(graph, { x: wrong }, { y: out }), /inputs 'x' is float32\[4\], the graph wants float32\[2, 2\]/);
  assert.throws(() => context.dispatch(graph, { z: x }, { y: out }), /inputs must be exactly x, got z/);
  assert.throws(() => context.dispatch(graph, { x }, { y: x }), /both an input and an output/);
  context.writeTensor(x, new Float32Array([1, -2, 3, -4]));
  context.dispatch(graph, { x }, { y: out });
  await context.readTensor(out); // answered after the dispatch: the calls are in order
  const sent = env.fake.received.filter((m) => m.header.op === "dispatch").at(-1);
  assert.deepEqual(sent?.header.inputs, { x: /** @type {any} */ (x)._id });
});

test("createConstantTensor makes a constant usable by builder.constant(tensor)", async () => {
  const { context } = env;
  const c = await context.createConstantTensor({ dataType: "float32", shape: [2] }, new Float32Array([7, 8]));
  assert.equal(c.constant, true);
  const b = new MLGraphBuilder(context);
  const k = b.constant(c);
  const y = b.add(b.input("x", { dataType: "float32", shape: [2] }), k);
  await b.build({ y });
  assert.deepEqual(env.fake.received.at(-1)?.header.graph.constants, { 0: { tensor: /** @type {any} */ (c)._id } });
});

test("opSupportLimits() is the service's answer, available synchronously", () => {
  const limits = env.context.opSupportLimits();
  assert.equal(limits.maxTensorByteLength, 2 ** 31);
  assert.deepEqual(limits.conv2d.input.rankRange, { min: 4, max: 4 });
});

test("context.lost resolves on the service's lost event and when the connection closes", async () => {
  const fake = await startFake();
  const ml = await connect({ url: fake.url, token: fake.token });
  const a = await ml.createContext();
  const b = await ml.createContext();
  const [socket] = fake.server.clients;
  socket.send(encodeFrame({ event: "lost", context: /** @type {any} */ (a)._id, message: "the service shut down" }));
  assert.deepEqual(await a.lost, { message: "the service shut down" });
  assert.throws(() => new MLGraphBuilder(a), { name: "InvalidStateError" });
  socket.close(1001, "restart");
  const info = await b.lost;
  assert.match(info.message, /closed \(code 1001: restart\)/);
  await assert.rejects(b.createTensor(desc), { name: "InvalidStateError" });
  await fake.close();
});

test("destroy() loses the context and rejects its reads in flight", async () => {
  const { context } = await (async () => ({ context: await env.ml.createContext() }))();
  const t = await context.createTensor(desc);
  const read = context.readTensor(t);
  context.destroy();
  await assert.rejects(read, { name: "InvalidStateError" });
  assert.deepEqual(await context.lost, { message: "the context was destroyed" });
});

test("a refused connection (no token) is reported as NotAllowedError", async () => {
  const fake = await startFake();
  await assert.rejects(connect({ url: fake.url }), { name: "NotAllowedError", message: /refused the connection \(HTTP 403\)/ });
  await fake.close();
});

test("createContext checks its options' enums", async () => {
  await assert.rejects(env.ml.createContext({ powerPreference: "fast" }), TypeError);
  await assert.rejects(env.ml.createContext(/** @type {any} */ ({ deviceType: "tpu" })), TypeError);
});

test("installNavigatorML defines navigator.ml and the interfaces when absent", async () => {
  const g = /** @type {any} */ (globalThis);
  const hadNavigator = Object.getOwnPropertyDescriptor(g, "navigator");
  try {
    Object.defineProperty(g, "navigator", { value: {}, configurable: true, writable: true });
    const ml = installNavigatorML({ url: env.fake.url, token: env.fake.token });
    assert.equal(g.navigator.ml, ml);
    assert.equal(g.MLGraphBuilder, MLGraphBuilder);
    assert.equal(installNavigatorML({ url: "ws://127.0.0.1:1/webnn" }), undefined); // already there: kept
    const context = await g.navigator.ml.createContext();
    const b = new g.MLGraphBuilder(context);
    assert.deepEqual(b.relu(b.input("x", { dataType: "float32", shape: [3] })).shape, [3]);
    g.navigator.ml.close();
  } finally {
    if (hadNavigator) Object.defineProperty(g, "navigator", hadNavigator);
    else delete g.navigator;
  }
});
