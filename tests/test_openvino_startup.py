"""The openvino backend's startup fallback (webml.backends.openvino.startup): ONNX Runtime runs a graph's
first call while OpenVINO compiles it in a background thread, and OpenVINO every later one.

The compile is held back by a gate, so that each test sees both engines at work whatever the machine's
speed; results are checked against a float64 reference on both."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import webml
from webml.backends import openvino as ovb
from webml.backends.onnxruntime import OnnxRuntimeBackend
from webml.errors import InvalidStateError

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 256)).astype(np.float32)
W = RNG.standard_normal((256, 256)).astype(np.float32)
EXPECTED = np.maximum(X.astype(np.float64) @ W.astype(np.float64), 0)


def _graph(context: webml.MLContext) -> webml.MLGraph:
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [4, 256]})
    w = builder.constant({"dataType": "float32", "shape": [256, 256]}, W)
    return builder.build({"y": builder.relu(builder.matmul(x, w))})


def _check(got: np.ndarray) -> None:
    np.testing.assert_allclose(got, EXPECTED, rtol=1e-5, atol=1e-4)


def _compile_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "webml-openvino-compile"]


@pytest.fixture
def gate(monkeypatch):
    """OpenVINO's compiles wait until the test sets this event (set again at the end, whatever happens)."""
    event = threading.Event()
    real = ovb.OpenVinoBackend._compile
    built = []

    def held(self, *args):
        assert event.wait(60)
        built.append(real(self, *args))
        return built[-1]

    monkeypatch.setattr(ovb.OpenVinoBackend, "_compile", held)
    event.built = built
    yield event
    event.set()
    for thread in _compile_threads():
        thread.join(60)


@pytest.fixture
def fallbacks(monkeypatch):
    """The ONNX Runtime graphs the backend makes as fallbacks."""
    made = []
    real = OnnxRuntimeBackend.compile_lowered

    def record(self, graph, lowered):
        assert not self.prepack_weights  # the fallback uses the weights where they are: no second copy
        made.append(real(self, graph, lowered))
        return made[-1]

    monkeypatch.setattr(OnnxRuntimeBackend, "compile_lowered", record)
    return made


def test_the_first_call_runs_on_onnx_runtime_and_later_ones_on_openvino(gate, fallbacks):
    context = webml.ml.create_context()  # the default: openvino, with the fallback on
    assert context.backend == "openvino"
    graph = _graph(context)
    assert graph.engine == "onnxruntime" and len(fallbacks) == 1
    assert graph.wait_for_engine(0) is False
    first = context.compute(graph, {"x": X})["y"]  # OpenVINO is still compiling: the gate is shut
    _check(first)
    assert graph.engine == "openvino"  # the next call's: it waits for the compile
    assert fallbacks[0].session is not None  # kept until OpenVINO's graph is there
    gate.set()
    second = context.compute(graph, {"x": X})["y"]
    _check(second)
    assert fallbacks[0].session is None  # released once both the first call and the compile are done
    np.testing.assert_array_equal(context.compute(graph, {"x": X})["y"], second)  # OpenVINO from now on


def test_the_first_call_is_on_onnx_runtime_even_when_openvino_is_ready(fallbacks):
    """The engine of a call depends on the calls made, never on how fast OpenVINO compiled: the same bits
    at every run of a program."""
    context = webml.ml.create_context(backend="openvino")
    graph = _graph(context)
    for thread in _compile_threads():
        thread.join(60)
    assert graph.engine == "onnxruntime"
    alone = webml.ml.create_context(backend="onnxruntime", prepack_weights=False)  # the fallback's engine
    expected = alone.compute(_graph(alone), {"x": X})["y"]
    np.testing.assert_array_equal(context.compute(graph, {"x": X})["y"], expected)
    assert graph.engine == "openvino" and fallbacks[0].session is None
    _check(context.compute(graph, {"x": X})["y"])


def test_dispatch_runs_the_backend_tensors_on_both_engines(gate):
    context = webml.ml.create_context(backend="openvino")
    graph = _graph(context)
    x = context.create_tensor({"dataType": "float32", "shape": [4, 256], "writable": True})
    y = context.create_tensor({"dataType": "float32", "shape": [4, 256], "readable": True, "writable": True})
    context.write_tensor(x, X)
    context.dispatch(graph, {"x": x}, {"y": y})  # ONNX Runtime, on OpenVINO tensors' memory
    _check(context.read_tensor(y))
    gate.set()
    context.write_tensor(y, np.zeros((4, 256), np.float32))
    context.dispatch(graph, {"x": x}, {"y": y})  # the same tensors, on OpenVINO's infer request
    _check(context.read_tensor(y))


def test_waiting_for_the_engine_makes_openvino_run_every_call(gate, fallbacks):
    context = webml.ml.create_context(backend="openvino")
    graph = _graph(context)
    gate.set()
    assert graph.wait_for_engine(60) is True
    assert graph.engine == "openvino" and fallbacks[0].session is None
    reference = webml.ml.create_context(backend="openvino", startup_fallback=False)
    np.testing.assert_array_equal(
        context.compute(graph, {"x": X})["y"], reference.compute(_graph(reference), {"x": X})["y"]
    )


def test_startup_fallback_false_compiles_before_build_returns(fallbacks):
    context = webml.ml.create_context(backend="openvino", startup_fallback=False)
    graph = _graph(context)
    assert graph.engine == "openvino" and graph.wait_for_engine(0) is True
    assert not fallbacks
    _check(context.compute(graph, {"x": X})["y"])


def test_reduced_precision_has_no_fallback(fallbacks):
    """ONNX Runtime computes float32: with bf16 asked for, every call is OpenVINO's."""
    context = webml.ml.create_context(backend="openvino", precision="bf16")
    assert _graph(context).engine == "openvino" and not fallbacks


def test_where_onnx_runtime_refuses_the_model_openvino_compiles_before_build_returns(monkeypatch):
    def refuse(self, graph, lowered):
        raise RuntimeError("ONNX Runtime has no kernel for this")

    monkeypatch.setattr(OnnxRuntimeBackend, "compile_lowered", refuse)
    context = webml.ml.create_context(backend="openvino")
    graph = _graph(context)
    assert graph.engine == "openvino"
    _check(context.compute(graph, {"x": X})["y"])


def test_a_failed_compile_leaves_the_graph_on_onnx_runtime_and_warns_once(monkeypatch):
    def fail(self, *args):
        raise RuntimeError("OpenVINO ran out of something")

    monkeypatch.setattr(ovb.OpenVinoBackend, "_compile", fail)
    context = webml.ml.create_context(backend="openvino")
    graph = _graph(context)
    assert graph.wait_for_engine(60) is False and graph.engine == "onnxruntime"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first call is the fallback's anyway: no warning
        _check(context.compute(graph, {"x": X})["y"])
    with pytest.warns(RuntimeWarning, match=r"OpenVINO could not compile the graph \(RuntimeError: OpenVINO ran out"):
        _check(context.compute(graph, {"x": X})["y"])
    assert graph.engine == "onnxruntime"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        _check(context.compute(graph, {"x": X})["y"])


def test_destroying_a_graph_while_openvino_compiles_releases_both(gate, fallbacks):
    context = webml.ml.create_context(backend="openvino")
    graph = _graph(context)
    graph.destroy()
    assert fallbacks[0].session is None
    with pytest.raises(InvalidStateError, match="compute: the graph is destroyed"):
        context.compute(graph, {"x": X})
    with pytest.raises(InvalidStateError, match="engine: the graph is destroyed"):
        _ = graph.engine
    gate.set()
    for thread in _compile_threads():
        thread.join(60)
    assert len(gate.built) == 1 and gate.built[0].compiled is None  # what it compiled is released at once


def test_options_are_checked():
    with pytest.raises(TypeError, match="createContext: startup_fallback must be a bool, got 'yes'"):
        webml.ml.create_context(backend="openvino", startup_fallback="yes")
    graph = _graph(webml.ml.create_context(backend="openvino", startup_fallback=False))
    for bad in (-1, "1", True, float("nan"), None.__class__):
        with pytest.raises(TypeError, match="wait_for_engine: timeout must be None or a number of seconds >= 0"):
            graph.wait_for_engine(bad)
