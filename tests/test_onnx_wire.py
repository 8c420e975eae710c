"""webml.onnx.wire: large initializers' raw data lifted out of a model file before parsing, checked against
protobuf's own parse of the same bytes; anything unexpected lifts nothing (protobuf then decides)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import webml
import webml.onnx
from webml.onnx import OnnxImportError
from webml.onnx.wire import LIFT_MIN_BYTES, lift

RNG = np.random.default_rng(0)
BIG = RNG.standard_normal((128, 256)).astype(np.float32)  # 128 KiB: lifted
SMALL = RNG.standard_normal((256,)).astype(np.float32)  # 1 KiB: stays


def model_bytes(weight: np.ndarray = BIG, bias: np.ndarray = SMALL) -> bytes:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, weight.shape[1]])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_lifted_bytes_parse_to_the_model_without_its_large_raw_data():
    data = model_bytes()
    lifted = lift(memoryview(data))
    assert lifted is not None and list(lifted.data) == [0]  # the weight, not the 1 KiB bias
    offset, length = lifted.data[0]
    assert length == BIG.nbytes >= LIFT_MIN_BYTES
    np.testing.assert_array_equal(np.frombuffer(data[offset : offset + length], np.float32).reshape(BIG.shape), BIG)
    small, whole = onnx.ModelProto(), onnx.ModelProto()
    small.ParseFromString(lifted.model)
    whole.ParseFromString(data)
    assert len(lifted.model) < len(data) - BIG.nbytes + 64
    assert not small.graph.initializer[0].HasField("raw_data")
    whole.graph.initializer[0].ClearField("raw_data")
    assert small == whole  # everything else as protobuf reads it


def test_a_loaded_file_computes_as_onnx_runtime(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(model_bytes())
    x = RNG.standard_normal((2, 128)).astype(np.float32)
    context = webml.ml.create_context(backend="onnxruntime")
    got = context.compute(webml.onnx.load(path, context), {"x": x})
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got["y"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "tamper",
    ["truncated", "two graphs", "two raw_data fields", "group wire type"],
)
def test_bytes_it_does_not_expect_lift_nothing(tamper):
    data = model_bytes()
    if tamper == "truncated":
        data = data[: len(data) // 2]
    elif tamper == "two graphs":  # protobuf merges concatenated messages: the graph twice
        data = data + model_bytes()
    elif tamper == "two raw_data fields":  # protobuf keeps the last of a repeated scalar field
        tensor = numpy_helper.from_array(BIG, "w").SerializeToString() + bytes([9 << 3 | 2, 4]) + b"\0\0\0\0"
        graph = helper.make_graph([], "g", [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, None)])
        graph_bytes = graph.SerializeToString() + bytes([5 << 3 | 2]) + _varint(len(tensor)) + tensor
        data = bytes([7 << 3 | 2]) + _varint(len(graph_bytes)) + graph_bytes
    else:
        data = bytes([1 << 3 | 3]) + data
    assert lift(memoryview(data)) is None


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def test_a_large_tensor_whose_data_does_not_fit_its_dimensions_is_refused_as_before(tmp_path):
    data = model_bytes()
    model = onnx.ModelProto()
    model.ParseFromString(data)
    model.graph.initializer[0].dims[1] = 255  # declares fewer values than its 128 KiB hold
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(OnnxImportError, match="initializer 'w'.*declare"):
        webml.onnx.load(path, webml.ml.create_context(backend="reference"))
