"""The onnxruntime backend's weights after build (prepacking, keep_constants) and its thread options."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

import webml
import webml.onnx
from webml.backends import create_backend
from webml.errors import InvalidStateError

WIDTH = 512  # a 512x1024 float32 weight is 2 MiB: a shared-memory constant


def weight(seed: int = 0, shape: tuple[int, ...] = (WIDTH, 1024)) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def matmul_graph(context: webml.MLContext, w: np.ndarray) -> webml.MLGraph:
    """relu(x @ w) and gemm(x, w) + bias: two copies of ``w`` and a small bias, three constants."""
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [2, w.shape[0]]})

    def const(array: np.ndarray) -> webml.MLOperand:
        return builder.constant({"dataType": "float32", "shape": list(array.shape)}, array)

    y = builder.relu(builder.matmul(x, const(w)))
    z = builder.gemm(x, const(w), c=const(np.arange(w.shape[1], dtype=np.float32)))
    return builder.build({"y": y, "z": z})


def conv_graph(context: webml.MLContext, f: np.ndarray) -> webml.MLGraph:
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [1, f.shape[1], 8, 8]})
    c = builder.constant({"dataType": "float32", "shape": list(f.shape)}, f)
    return builder.build({"y": builder.conv2d(x, c, padding=[1, 1, 1, 1])})


def run(context: webml.MLContext, make, param: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    return context.compute(make(context, param), {"x": x})


@pytest.mark.parametrize(
    ("make", "param", "x_shape"),
    [
        (matmul_graph, weight(), (2, WIDTH)),
        (matmul_graph, weight(3, (128, 256)), (2, 128)),  # 128 KiB: a shared-memory file too
        (matmul_graph, weight(4, (16, 32)), (2, 16)),  # 2 KiB: an OrtValue; its 128-byte bias is embedded
        (conv_graph, weight(1, (64, 128, 3, 3)), (1, 128, 8, 8)),
    ],
    ids=["matmul-gemm", "matmul-gemm-medium", "matmul-gemm-small", "conv2d"],
)
def test_prepacked_results_match_unpacked_and_reference(make, param, x_shape):
    x = np.random.default_rng(2).standard_normal(x_shape).astype(np.float32)
    reference = run(webml.ml.create_context(backend="reference"), make, param, x)
    for options in ({}, {"prepack_weights": False}, {"keep_constants": True}):
        got = run(webml.ml.create_context(backend="onnxruntime", **options), make, param, x)
        for name, expected in reference.items():
            np.testing.assert_allclose(got[name], expected, rtol=1e-4, atol=1e-3, err_msg=f"{options} {name}")


def test_by_default_the_graph_releases_its_constants_after_build(tmp_path):
    context = webml.ml.create_context(backend="onnxruntime")
    w = weight()
    graph = matmul_graph(context, w)
    assert not graph.keeps_constants
    # The ids stay (the IR still describes the graph); reading a constant is refused clearly.
    assert len(graph.ir.constants) == 3 and all(i in graph.ir.operands for i in graph.ir.constants)
    with pytest.raises(InvalidStateError, match="keep_constants=True"):
        graph.ir.constants[next(iter(graph.ir.constants))]
    for call in (lambda: webml.onnx.save(graph, tmp_path / "m.onnx"), lambda: webml.onnx.to_model(graph)):
        with pytest.raises(InvalidStateError, match=r"webml.onnx.save.*released after build.*keep_constants=True"):
            call()
    assert not (tmp_path / "m.onnx").exists()
    x = np.ones((2, WIDTH), np.float32)
    np.testing.assert_allclose(context.compute(graph, {"x": x})["y"], np.maximum(x @ w, 0), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("context_args", [{"backend": "onnxruntime", "keep_constants": True}, {"backend": "reference"}])
def test_a_graph_that_keeps_its_constants_saves(tmp_path, context_args):
    context = webml.ml.create_context(**context_args)
    w = weight()
    graph = matmul_graph(context, w)
    assert graph.keeps_constants
    np.testing.assert_array_equal(graph.ir.constants[next(i for i, a in graph.ir.constants.items() if a.ndim == 2)], w)
    path = webml.onnx.save(graph, tmp_path / "m.onnx")
    x = np.random.default_rng(3).standard_normal((2, WIDTH)).astype(np.float32)
    other = webml.ml.create_context(backend="onnxruntime")
    expected = context.compute(graph, {"x": x})
    for name, array in other.compute(webml.onnx.load(path, other), {"x": x}).items():
        np.testing.assert_allclose(array, expected[name], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("option", "value"),
    [("allow_spinning", "yes"), ("allow_spinning", None), ("keep_constants", 1), ("prepack_weights", "on")],
)
def test_bool_options_refuse_other_values(option, value):
    with pytest.raises(TypeError, match=f"createContext: {option} must be a bool"):
        webml.ml.create_context(backend="onnxruntime", **{option: value})


def test_the_reference_backend_refuses_onnxruntime_options():
    with pytest.raises(TypeError, match="keep_constants"):
        webml.ml.create_context(backend="reference", keep_constants=True)


def spinning(backend) -> str:
    return backend.session_options(False).get_session_config_entry("session.intra_op.allow_spinning")


def test_spinning_is_off_unless_asked():
    assert spinning(create_backend("onnxruntime")) == "0"
    assert spinning(create_backend("onnxruntime", allow_spinning=True)) == "1"
    for preference in ("low-power", "high-performance"):
        backend = create_backend("onnxruntime")
        backend.prefer(preference)
        assert spinning(backend) == "0"


def test_power_preference_sets_the_default_threads():
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    expected = {"default": None, "low-power": max(1, cores // 2), "high-performance": cores}
    for preference, threads in expected.items():
        backend = create_backend("onnxruntime")
        backend.prefer(preference)
        assert backend.threads() == threads, preference
        explicit = create_backend("onnxruntime", intra_op_threads=3)
        explicit.prefer(preference)
        assert explicit.threads() == 3  # an explicit option wins
        if threads is not None:
            assert backend.session_options(False).intra_op_num_threads == threads


@pytest.mark.parametrize("preference", ["low-power", "high-performance"])
def test_contexts_of_each_power_preference_compute_the_same(preference):
    w = weight()
    x = np.ones((2, WIDTH), np.float32)
    context = webml.ml.create_context(backend="onnxruntime", power_preference=preference, allow_spinning=True)
    assert context.power_preference == preference
    np.testing.assert_allclose(
        context.compute(matmul_graph(context, w), {"x": x})["y"], np.maximum(x @ w, 0), rtol=1e-4, atol=1e-3
    )


def test_released_constants_handed_over_as_ortvalues_stay_valid(monkeypatch):
    """Without a shared-memory file system the weights go to ONNX Runtime as OrtValues: once the
    graph has released its arrays (and the heap has reused their memory) the session still runs."""
    import webml.storage

    monkeypatch.setattr(webml.storage, "_SHM", webml.storage._SHM / "not-a-directory")
    context = webml.ml.create_context(backend="onnxruntime")
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [512, 1024]})
    w, m = weight(0, (512, 1024)), weight(1, (1024, 512))
    added = builder.add(x, builder.constant({"dataType": "float32", "shape": [512, 1024]}, w))  # not packed
    product = builder.matmul(added, builder.constant({"dataType": "float32", "shape": [1024, 512]}, m))
    graph = builder.build({"y": product})
    assert not graph.keeps_constants
    ones = np.ones((512, 1024), np.float32)
    expected = (ones + w) @ m
    del builder, x, added, product, w, m
    gc.collect()
    junk = [np.full((512, 1024), 7.0, np.float32) for _ in range(8)]  # reuses freed memory, if any
    np.testing.assert_allclose(context.compute(graph, {"x": ones})["y"], expected, rtol=1e-4, atol=1e-2)
    assert junk[-1][0, 0] == 7.0
