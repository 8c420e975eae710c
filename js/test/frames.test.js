import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeFrame, encodeFrame, parse, stringify } from "../src/frames.js";

test("a frame is a u32 LE header length, the JSON header, then the raw payload", () => {
  const payload = new Float32Array([1.5, -2]);
  const frame = encodeFrame({ id: 7, op: "writeTensor", tensor: 3 }, payload);
  const head = new TextEncoder().encode('{"id":7,"op":"writeTensor","tensor":3}');
  assert.equal(new DataView(frame.buffer).getUint32(0, true), head.length);
  assert.deepEqual(frame.subarray(4, 4 + head.length), head);
  assert.deepEqual(new Float32Array(frame.slice(4 + head.length).buffer), payload);
  const { header, payload: back } = decodeFrame(frame.buffer);
  assert.deepEqual(header, { id: 7, op: "writeTensor", tensor: 3 });
  assert.deepEqual(new Float32Array(back.slice().buffer), payload);
});

test("several payload parts are concatenated in order", () => {
  const frame = encodeFrame({ op: "build" }, [new Uint8Array([1, 2]), new Uint16Array([0x0403]).buffer]);
  assert.deepEqual([...decodeFrame(frame).payload], [1, 2, 3, 4]);
});

test("the header JSON keeps BigInts exact and non-finite numbers as Python's json reads them", () => {
  const text = stringify({ a: 2n ** 63n - 1n, b: -Infinity, c: [NaN, Infinity], d: "Infinity", e: new Int32Array([1, 2]) });
  assert.equal(text, '{"a":9223372036854775807,"b":-Infinity,"c":[NaN,Infinity],"d":"Infinity","e":[1,2]}');
  const back = parse('{"b":-Infinity,"c":[NaN,Infinity],"d":"Infinity"}');
  assert.equal(back.b, -Infinity);
  assert.ok(Number.isNaN(back.c[0]));
  assert.equal(back.c[1], Infinity);
  assert.equal(back.d, "Infinity");
});

test("malformed frames are refused", () => {
  assert.throws(() => decodeFrame(new Uint8Array([1, 0])), /at least 4 bytes/);
  assert.throws(() => decodeFrame(new Uint8Array([9, 0, 0, 0, 123])), /exceeds the frame/);
  const notObject = encodeFrame({}).slice();
  const bad = new Uint8Array([2, 0, 0, 0, 0x5b, 0x5d]); // "[]"
  assert.throws(() => decodeFrame(bad), /not a JSON object/);
  assert.deepEqual(decodeFrame(notObject).header, {});
});
