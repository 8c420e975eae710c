"""The onnxruntime backend: compile once, no host copies between chained dispatches, options, export."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import webml
import webml.onnx
from webml.backends.onnxruntime import lowering

F32 = {"dataType": "float32", "shape": [2, 3]}


@pytest.fixture
def context():
    return webml.ml.create_context(backend="onnxruntime")


def scale_graph(context, factor):
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", F32)
    return builder.build({"y": builder.mul(x, builder.constant("float32", factor))})


def test_chained_dispatches_copy_nothing_through_the_host(context, monkeypatch):
    g1, g2 = scale_graph(context, 2.0), scale_graph(context, 10.0)
    a = context.create_tensor({**F32, "writable": True})
    b = context.create_tensor(F32)  # neither readable nor writable: it never leaves the backend
    c = context.create_tensor({**F32, "readable": True})
    context.write_tensor(a, np.arange(6, dtype=np.float32).reshape(2, 3))
    pointer = b._handle.value.data_ptr()

    host_copies = []
    monkeypatch.setattr(ort.OrtValue, "numpy", lambda self: host_copies.append("numpy"))
    monkeypatch.setattr(ort.OrtValue, "update_inplace", lambda self, a: host_copies.append("update"))
    monkeypatch.setattr(ort.InferenceSession, "run", lambda *a, **k: host_copies.append("run"))
    context.dispatch(g1, {"x": a}, {"y": b})
    context.dispatch(g2, {"x": b}, {"y": c})
    assert host_copies == []  # only IOBinding runs: no numpy round trip, no session.run
    assert b._handle.value.data_ptr() == pointer  # ONNX Runtime wrote into the bound tensor
    monkeypatch.undo()
    np.testing.assert_array_equal(context.read_tensor(c), np.arange(6, dtype=np.float32).reshape(2, 3) * 20)


def test_each_graph_is_lowered_once_at_build(context, monkeypatch):
    calls = []
    real = lowering.lower
    monkeypatch.setattr("webml.backends.onnxruntime.lower", lambda g, **k: calls.append(1) or real(g, **k))
    graph = scale_graph(context, 3.0)
    assert calls == [1]
    x = context.create_tensor({**F32, "writable": True})
    y = context.create_tensor({**F32, "readable": True})
    for _ in range(3):
        context.dispatch(graph, {"x": x}, {"y": y})
        context.compute(graph, {"x": np.ones((2, 3), np.float32)})
    assert calls == [1]


def test_large_weights_are_not_serialized_into_the_model():
    graph_ir = None
    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True)  # to lower graph.ir again
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [1, 512]})
    w = np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)  # 2 MiB
    graph = builder.build({"y": builder.matmul(x, builder.constant({"dataType": "float32", "shape": [512, 1024]}, w))})
    graph_ir = graph.ir
    lowered = lowering.lower(graph_ir)
    assert lowered.model.ByteSize() < 10_000  # the weight is external data or an OrtValue, not protobuf bytes
    out = context.compute(graph, {"x": np.ones((1, 512), np.float32)})["y"]
    np.testing.assert_allclose(out, np.ones((1, 512), np.float32) @ w, rtol=1e-4, atol=1e-3)


def test_options():
    ctx = webml.ml.create_context(backend="onnxruntime", intra_op_threads=1, graph_optimization_level="basic")
    assert ctx.backend == "onnxruntime"
    np.testing.assert_array_equal(
        ctx.compute(scale_graph(ctx, 2.0), {"x": np.ones((2, 3), np.float32)})["y"], np.full((2, 3), 2, np.float32)
    )
    with pytest.raises(TypeError, match="graph_optimization_level"):
        webml.ml.create_context(backend="onnxruntime", graph_optimization_level="max")
    with pytest.raises(TypeError, match="intra_op_threads"):
        webml.ml.create_context(backend="onnxruntime", intra_op_threads=-1)
    with pytest.raises(TypeError):
        webml.ml.create_context(backend="onnxruntime", threads=2)


def test_save_writes_what_the_backend_runs(tmp_path):
    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", F32)
    w = builder.constant(F32, np.arange(6, dtype=np.float32))
    graph = builder.build({"y": builder.sub(builder.mul(x, w), w)})
    path = webml.onnx.save(graph, tmp_path / "model.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = np.full((2, 3), 3, np.float32)
    expected = context.compute(graph, {"x": feed})["y"]
    np.testing.assert_array_equal(session.run(None, {"x": feed})[0], expected)
    with pytest.raises(TypeError, match="expected an MLGraph"):
        webml.onnx.save("not a graph", tmp_path / "x.onnx")


def test_telemetry_is_disabled_before_onnxruntime_loads():
    import os

    assert os.environ.get("ORT_DISABLE_TELEMETRY") == "1"


def test_destroying_a_tensor_drops_the_cached_binding(context):
    graph = scale_graph(context, 2.0)
    x = context.create_tensor({**F32, "writable": True})
    y = context.create_tensor({**F32, "readable": True})
    context.dispatch(graph, {"x": x}, {"y": y})
    assert graph._compiled._binding is not None
    x.destroy()
    assert graph._compiled._binding is None  # nothing keeps the destroyed tensor's memory
    x2 = context.create_tensor({**F32, "writable": True})
    context.write_tensor(x2, np.ones((2, 3), np.float32))
    context.dispatch(graph, {"x": x2}, {"y": y})
    np.testing.assert_array_equal(context.read_tensor(y), np.full((2, 3), 2, np.float32))
