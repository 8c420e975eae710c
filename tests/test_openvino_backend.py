"""The openvino backend: the ONNX lowering compiled by OpenVINO in exact float32, tensors set on the
infer request (no host copies between chained dispatches), weights shared.  The real models
(tests/test_onnx_bert_fixture.py, tests/test_zoo_efficientnet.py) and the WPT suites run on it with the others."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import webml
from test_onnxruntime_backend import F32, scale_graph
from webml.backends import openvino as ovb
from webml.backends.onnxruntime import lowering
from webml.backends.openvino import ov  # OpenVINO without its converter, whose import writes telemetry


@pytest.fixture
def context():
    """OpenVINO itself runs every call (tests/test_openvino_startup.py tests the startup fallback)."""
    return webml.ml.create_context(backend="openvino", startup_fallback=False)


def test_chained_dispatches_copy_nothing_through_the_host(context, monkeypatch):
    g1, g2 = scale_graph(context, 2.0), scale_graph(context, 10.0)
    # b is neither readable nor writable: it never leaves the backend.
    a, b, c = (context.create_tensor({**F32, **usage}) for usage in ({"writable": True}, {}, {"readable": True}))
    context.write_tensor(a, np.arange(6, dtype=np.float32).reshape(2, 3))
    memory = b._handle.array

    calls = []
    real_infer = ov.InferRequest.infer
    monkeypatch.setattr(ov.InferRequest, "infer", lambda self, *a, **k: calls.append((a, k)) or real_infer(self))
    context.dispatch(g1, {"x": a}, {"y": b})
    context.dispatch(g2, {"x": b}, {"y": c})
    assert calls == [((), {}), ((), {})]  # the set tensors run: no inputs passed, no outputs copied back
    monkeypatch.undo()
    assert b._handle.array is memory and b._handle.value.data.ctypes.data == memory.ctypes.data
    np.testing.assert_array_equal(memory, np.arange(6, dtype=np.float32).reshape(2, 3) * 2)
    np.testing.assert_array_equal(context.read_tensor(c), np.arange(6, dtype=np.float32).reshape(2, 3) * 20)


def test_compute_after_dispatch_leaves_the_tensors_alone(context):
    graph = scale_graph(context, 2.0)
    x, y = context.create_tensor({**F32, "writable": True}), context.create_tensor({**F32, "readable": True})
    context.write_tensor(x, np.ones((2, 3), np.float32))
    context.dispatch(graph, {"x": x}, {"y": y})
    np.testing.assert_array_equal(context.compute(graph, {"x": np.full((2, 3), 5, np.float32)})["y"], 10)
    np.testing.assert_array_equal(context.read_tensor(y), 2)  # compute wrote none of dispatch's tensors
    context.write_tensor(x, np.full((2, 3), 3, np.float32))
    context.dispatch(graph, {"x": x}, {"y": y})
    np.testing.assert_array_equal(context.read_tensor(y), 6)


def test_each_graph_is_lowered_once_by_the_onnx_lowering(context, monkeypatch):
    calls = []
    real = lowering.lower
    monkeypatch.setattr(ovb, "lower", lambda g, **k: calls.append(1) or real(g, **k))
    graph = scale_graph(context, 3.0)
    for _ in range(3):
        np.testing.assert_array_equal(context.compute(graph, {"x": np.ones((2, 3), np.float32)})["y"], 3)
    assert calls == [1]


def test_compiled_in_exact_float32_without_dynamic_quantization(context):
    graph = scale_graph(context, 3.0)
    compiled = graph._compiled.compiled
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    assert compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE") == 0


def test_reduced_precision_only_by_option():
    assert ovb.OpenVinoBackend().config()["INFERENCE_PRECISION_HINT"] == "f32"
    assert ovb.OpenVinoBackend(precision="bf16").config()["INFERENCE_PRECISION_HINT"] == "bf16"
    assert ovb.OpenVinoBackend(intra_op_threads=1).config()["INFERENCE_NUM_THREADS"] == "1"
    with pytest.raises(TypeError, match="precision must be one of f32, bf16"):
        webml.ml.create_context(backend="openvino", precision="f16")
    with pytest.raises(TypeError, match="intra_op_threads must be a non-negative int"):
        webml.ml.create_context(backend="openvino", intra_op_threads=-1)


def test_large_weights_are_shared_not_serialized(context, monkeypatch):
    """A constant of 4 MiB reaches OpenVINO as a constant over the same memory, not inside the model bytes."""
    sizes = []
    real = ov.Core.read_model
    monkeypatch.setattr(ov.Core, "read_model", lambda self, m, w: sizes.append(len(m)) or real(self, m, w))
    weights = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [2, 1024]})
    w = builder.constant({"dataType": "float32", "shape": [1024, 1024]}, weights)
    graph = builder.build({"y": builder.matmul(x, w)})
    assert sizes and sizes[0] < 100_000
    x_value = np.random.default_rng(1).standard_normal((2, 1024)).astype(np.float32)
    np.testing.assert_allclose(context.compute(graph, {"x": x_value})["y"], x_value @ weights, rtol=1e-4, atol=1e-3)


def test_support_limits_are_the_lowerings_narrowed(context, monkeypatch):
    ort_limits = webml.ml.create_context(backend="onnxruntime").op_support_limits()
    assert context.op_support_limits()["add"] == ort_limits["add"]
    monkeypatch.setitem(ovb.limits.UNSUPPORTED, ("add", "a"), (("int64",), "a reason"))
    assert not context._backend.supports("add", "a", "int64", 2)
    assert context._backend.supports("add", "a", "int32", 2)


def test_greater_with_nan_is_false(context):
    """OpenVINO's own Greater answers true for some NaN lanes; the lowering asks b < a instead."""
    desc = {"dataType": "float32", "shape": [64]}
    builder = webml.MLGraphBuilder(context)
    a, b = builder.input("a", desc), builder.input("b", desc)
    graph = builder.build({"gt": builder.greater(a, b), "ge": builder.greater_or_equal(a, b)})
    out = context.compute(graph, {"a": np.arange(64, dtype=np.float32), "b": np.full(64, np.nan, np.float32)})
    assert not out["gt"].any() and not out["ge"].any()


def resident_bytes(mapped: Callable[[str], bool]) -> int:
    """Resident bytes of this process's mappings whose /proc/self/smaps header line ``mapped`` accepts."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                inside = mapped(line.rstrip("\n"))
            elif inside and first == "Rss:":
                total += int(line.split()[1]) * 1024
    return total


def _resident_constant_pages() -> int:
    """Resident bytes of this process's mappings of webml.storage's (unlinked) constant files."""
    return resident_bytes(lambda header: "/webml-" in header)


def test_originals_of_packed_weights_leave_resident_memory_after_build(context):
    """OpenVINO keeps every original after packing its own copy: the backend's files are on disk
    and their pages are dropped after compile; a constant OpenVINO reads as it is maps back."""
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((1024, 1024)).astype(np.float32)  # 4 MiB, packed by OpenVINO
    big_bias = rng.standard_normal((1024, 1024)).astype(np.float32)  # 4 MiB, added as it is
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [1024, 1024]})
    w = builder.constant({"dataType": "float32", "shape": [1024, 1024]}, weights)
    b = builder.constant({"dataType": "float32", "shape": [1024, 1024]}, big_bias)
    graph = builder.build({"y": builder.add(builder.matmul(x, w), b)})
    before = _resident_constant_pages()
    x_value = rng.standard_normal((1024, 1024)).astype(np.float32)
    got = context.compute(graph, {"x": x_value})["y"]
    np.testing.assert_allclose(got, x_value @ weights + big_bias, rtol=1e-4, atol=1e-3)
    after = _resident_constant_pages()
    assert before < 1 << 20, before  # nothing of either file stays resident after build
    assert after < big_bias.nbytes + (1 << 20), after  # the added one maps back; the packed one does not


def _matmul_graph(context, weights: np.ndarray):
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [4, weights.shape[0]]})
    w = builder.constant({"dataType": "float32", "shape": list(weights.shape)}, weights)
    return builder.build({"y": builder.relu(builder.matmul(x, w))})


def test_model_cache_is_opt_in_owner_only_and_keyed_by_the_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 256)).astype(np.float32)
    weights = [rng.standard_normal((256, 256)).astype(np.float32) for _ in range(2)]
    plain = webml.ml.create_context(backend="openvino", startup_fallback=False)
    expected = [plain.compute(_matmul_graph(plain, w), {"x": x})["y"] for w in weights]
    folder = tmp_path / "cache"
    for round_ in range(2):  # the first fills the cache, the second imports from it
        cached = webml.ml.create_context(backend="openvino", cache_dir=folder, startup_fallback=False)
        for w, want in zip(weights, expected):
            got = cached.compute(_matmul_graph(cached, w), {"x": x})["y"]
            # Same structure, other weights: a cache hit must never give the other graph's results.
            np.testing.assert_array_equal(got, want, err_msg=f"round {round_}")
        blobs = sorted(folder.iterdir())
        assert len([b for b in blobs if b.suffix == ".blob"]) == 2, blobs
    assert folder.stat().st_mode & 0o777 == 0o700
    np.testing.assert_allclose(expected[0], np.maximum(x.astype(np.float64) @ weights[0], 0), rtol=1e-5, atol=1e-4)


def test_model_cache_option_is_checked(tmp_path):
    with pytest.raises(TypeError, match="cache_dir must be a folder path or None"):
        webml.ml.create_context(backend="openvino", cache_dir=3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(TypeError, match="cache_dir .* cannot be made a folder"):
        webml.ml.create_context(backend="openvino", cache_dir=tmp_path / "file" / "sub")
    assert "CACHE_DIR" not in ovb.OpenVinoBackend().config()
