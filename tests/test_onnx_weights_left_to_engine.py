"""``webml.onnx.load`` leaves the computing of weights (an int8 weight's Cast and scale, its
DequantizeLinear, a transposed weight) to a backend that folds constants when it compiles: the
importer builds those nodes rather than computing them in Python, the file's smaller weights go to
the engine as they are (no copy), and the results are the model's formula in float64, within float32
rounding.  A backend that does not fold gets them computed at import, as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import webml
import webml.onnx
from webml import storage
from webml.onnx.importer import analyse, read_model

WIDTH = 512  # weights of 256 KiB in int8, 1 MiB once float32: folded, they would be copied into storage


def _weight_model(path: Path) -> dict[str, np.ndarray]:
    """y = x @ (Cast(qa) * sa) + x @ DequantizeLinear(qb, sb, zb) + x @ Transpose(wc); its weights."""
    rng = np.random.default_rng(0)
    weights = {
        "qa": rng.integers(-127, 128, (WIDTH, WIDTH), dtype=np.int8),
        "sa": (rng.random(WIDTH) / 64 + 1e-3).astype(np.float32),
        "qb": rng.integers(-127, 128, (WIDTH, WIDTH), dtype=np.int8),
        "sb": (rng.random(WIDTH) / 64 + 1e-3).astype(np.float32),
        "zb": rng.integers(-3, 4, WIDTH, dtype=np.int8),
        "wc": rng.standard_normal((WIDTH, WIDTH)).astype(np.float32) / 16,
    }
    inits = [numpy_helper.from_array(a, n) for n, a in weights.items()]
    nodes = [
        helper.make_node("Cast", ["qa"], ["fa"], to=TensorProto.FLOAT, name="cast_a"),
        helper.make_node("Mul", ["fa", "sa"], ["wa"], name="scale_a"),
        helper.make_node("DequantizeLinear", ["qb", "sb", "zb"], ["wb"], axis=1, name="dq_b"),
        helper.make_node("Transpose", ["wc"], ["tc"], perm=[1, 0], name="transpose_c"),
        *(helper.make_node("MatMul", ["x", w], [f"m{w}"]) for w in ("wa", "wb", "tc")),
        helper.make_node("Sum", ["mwa", "mwb", "mtc"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", WIDTH])],
        inits,
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return weights


def _float64(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The model's formula in float64 (ONNX Runtime's own session is no truth here: by default it fuses the
    DequantizeLinear and MatMul into MatMulNBits, whose default accuracy level quantizes the activations to
    int8; webml's sessions set level 0)."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    total = w["qa"] * w["sa"] + (w["qb"] - w["zb"]) * w["sb"] + w["wc"].T
    return x.astype(np.float64) @ total


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_weight_nodes_are_left_to_the_engine_and_compute_the_models_formula(tmp_path, backend, monkeypatch):
    path = tmp_path / "weights.onnx"
    weights = _weight_model(path)
    x = np.random.default_rng(1).standard_normal((4, WIDTH)).astype(np.float32)
    context = webml.ml.create_context(backend=backend, intra_op_threads=1)
    assert context.folds_constants

    model = read_model(path)
    analysis = analyse(model, None, None, context)
    assert analysis.deferred == {"fa", "wb", "tc"} and not analysis.problems

    def no_copies(self, array, directory):
        raise AssertionError(f"a weight of {array.nbytes} bytes was computed and copied into webml's storage")

    monkeypatch.setattr(storage.ConstantStore, "_copy_to_file", no_copies)
    got = webml.onnx.load(path, context)(x=x)["y"]
    np.testing.assert_allclose(got, _float64(weights, x), rtol=1e-5, atol=1e-4)  # exact float32: no int8 activations


def test_a_backend_that_does_not_fold_gets_the_weights_computed_at_import(tmp_path):
    path = tmp_path / "weights.onnx"
    weights = _weight_model(path)
    context = webml.ml.create_context(backend="reference")
    assert not context.folds_constants
    assert analyse(read_model(path), None, None, context).deferred == set()
    x = np.random.default_rng(1).standard_normal((4, WIDTH)).astype(np.float32)
    # The DequantizeLinear of opset 17 has no onnx.reference kernel: the builder computes it instead.
    got = webml.onnx.load(path, context)(x=x)["y"]
    np.testing.assert_allclose(got, _float64(weights, x), rtol=1e-5, atol=1e-4)


def test_a_weight_node_a_later_node_needs_at_import_time_is_folded_after_all(tmp_path):
    """Reshape's shape comes from an Identity of a large initializer: left to the engine, it would not be
    static, so the importer folds as it did."""
    big = np.arange(5000, dtype=np.int64)
    big[:2] = [2, 8]
    nodes = [
        helper.make_node("Identity", ["big"], ["same"]),
        helper.make_node("Slice", ["same", "start", "end"], ["shape"]),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
        [
            numpy_helper.from_array(big, "big"),
            numpy_helper.from_array(np.array([0], np.int64), "start"),
            numpy_helper.from_array(np.array([2], np.int64), "end"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    context = webml.ml.create_context(backend="onnxruntime", intra_op_threads=1)
    assert analyse(model, None, None, context).deferred == set()
    x = np.arange(16, dtype=np.float32)
    np.testing.assert_array_equal(context.compute(webml.onnx.load(model, context), {"x": x})["y"], x.reshape(2, 8))
