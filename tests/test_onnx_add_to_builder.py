"""webml.onnx.add_to_builder: an ONNX model added after operations already in a builder (one graph)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import webml
import webml.onnx
from webml.onnx import OnnxImportError


def _model() -> bytes:
    """y = relu(x @ w + b), x [batch, 4] (a dynamic batch)."""
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_pieces_in_front_of_a_model_are_one_graph():
    model = _model()
    context = webml.ml.create_context(backend="onnxruntime")
    b = webml.MLGraphBuilder(context)
    raw = b.input("raw", {"dataType": "uint8", "shape": [2, 4]})
    x = b.div(b.cast(raw, "float32"), b.constant("float32", 255))  # a piece before the model
    outputs = webml.onnx.add_to_builder(model, b, {"x": x})
    graph = b.build({"y": outputs["y"]})
    assert list(graph.input_descriptors) == ["raw"]
    pixels = np.array([[0, 51, 102, 255], [255, 0, 0, 10]], np.uint8)
    got = context.compute(graph, {"raw": pixels})["y"]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": pixels.astype(np.float32) / 255})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_bad_bindings_are_refused():
    model = _model()
    context = webml.ml.create_context(backend="onnxruntime")
    b = webml.MLGraphBuilder(context)
    x = b.input("x", {"dataType": "float32", "shape": [2, 5]})
    with pytest.raises(OnnxImportError, match="no input named 'image'"):
        webml.onnx.add_to_builder(model, b, {"image": x})
    with pytest.raises(OnnxImportError, match="dimension 1 is 4 in the model, 5"):
        webml.onnx.add_to_builder(model, b, {"x": x})
    ints = b.input("ints", {"dataType": "int32", "shape": [2, 4]})
    with pytest.raises(
        OnnxImportError, match="input 'x' is float32 \\[2, 4\\] in the model, the operand given is int32"
    ):
        webml.onnx.add_to_builder(model, b, {"x": ints})
    with pytest.raises(TypeError, match="inputs must be a dict of model input name -> MLOperand"):
        webml.onnx.add_to_builder(model, b, {"x": np.zeros((2, 4), np.float32)})
    with pytest.raises(TypeError, match="builder must be an MLGraphBuilder"):
        webml.onnx.add_to_builder(model, context, {})
