"""Batched graphs run a few samples at a time (webml.backends.samples, the openvino backend's batch_chunk).

Which graphs compute each sample apart is checked on graphs that do and graphs that mix samples; the
chunked runs are checked against the float64 reference backend (an operator the proof followed wrongly
would mix or lose samples there) and against the same backend running the whole batch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import webml
from webml.backends import openvino as ovb
from webml.backends import samples
from webml.conformance import report, wpt
from webml.conformance.data import conformance_files

RNG = np.random.default_rng(0)
BATCH = 4


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _const(b: webml.MLGraphBuilder, array: np.ndarray) -> webml.MLOperand:
    return b.constant({"dataType": str(array.dtype), "shape": list(array.shape)}, array)


CONV = {"w": _f32(8, 3, 3, 3), "bias": _f32(8), "dw": _f32(8, 1, 3, 3), "mean": _f32(8), "var": np.abs(_f32(8)) + 0.5}
CONV.update(scale=_f32(8, 1, 1), fc=_f32(512, 10), fc_bias=_f32(10))
IMAGES = _f32(BATCH, 3, 8, 8)


def conv_net(b: webml.MLGraphBuilder) -> dict[str, webml.MLOperand]:
    """Convolutions, pools, normalizations and the shape operators a convolutional network uses."""
    p = {k: _const(b, v) for k, v in CONV.items()}
    x = b.input("image", {"dataType": "float32", "shape": [BATCH, 3, 8, 8]})
    c = b.clamp(b.conv2d(x, p["w"], padding=[1, 1, 1, 1], bias=p["bias"]), min_value=0.0, max_value=6.0)
    c = b.batch_normalization(c, p["mean"], p["var"], axis=1)
    dw = b.conv2d(c, p["dw"], padding=[1, 1, 1, 1], groups=8)
    up = b.resample2d(b.max_pool2d(dw, window_dimensions=[2, 2], strides=[2, 2]), scales=[2.0, 2.0])
    padded = b.pad(b.slice(up, [0, 0, 1, 1], [BATCH, 8, 6, 6]), [0, 0, 1, 1], [0, 0, 1, 1])
    first, second = b.split(b.concat([padded, dw], 1), 2, axis=1)
    mixed = b.add(first, b.mul(second, p["scale"]))
    nhwc = b.layer_normalization(b.transpose(mixed, permutation=[0, 2, 3, 1]), axes=[3])
    logits = b.gemm(b.reshape(nhwc, [BATCH, 512]), p["fc"], c=p["fc_bias"])
    means = b.reduce_mean(mixed, axes=[2, 3])
    return {"probabilities": b.softmax(logits, 1), "means": means, "best": b.arg_max(means, 1)}


SEQ = {"table": _f32(20, 16), "wq": _f32(16, 16), "wk": _f32(16, 16)}
TOKENS = RNG.integers(0, 20, (BATCH, 6)).astype(np.int32)


def attention(b: webml.MLGraphBuilder) -> dict[str, webml.MLOperand]:
    """An embedding lookup, attention's matmuls and the sequence operators."""
    p = {k: _const(b, v) for k, v in SEQ.items()}
    ids = b.input("ids", {"dataType": "int32", "shape": [BATCH, 6]})
    h = b.gather(p["table"], ids, axis=0)
    q, k = b.matmul(h, p["wq"]), b.matmul(h, p["wk"])
    scores = b.triangular(b.softmax(b.matmul(q, b.transpose(k, permutation=[0, 2, 1])), 2), upper=False)
    context = b.matmul(scores, h)
    summed = b.expand(b.reduce_sum(context, axes=[1], keep_dimensions=True), [BATCH, 6, 16])
    out = b.tile(b.add(context, summed), [1, 1, 2])
    out = b.where(b.greater(out, b.constant("float32", 0.0)), out, b.neg(out))
    return {"out": b.reverse(b.cumulative_sum(out, 1), axes=[1])}


FEEDS = {conv_net: {"image": IMAGES}, attention: {"ids": TOKENS}}


def _build(context: webml.MLContext, make: Callable) -> webml.MLGraph:
    b = webml.MLGraphBuilder(context)
    return b.build(make(b))


def _ir(make: Callable):
    return _build(webml.ml.create_context(backend="reference"), make).ir


@pytest.mark.parametrize("make", [conv_net, attention], ids=["conv_net", "attention"])
def test_a_graph_that_computes_each_sample_apart_is_found_so_and_chunked(make):
    graph = _ir(make)
    axes = samples.sample_axes(graph)
    assert axes is not None
    assert all(axes[oid] == 0 for oid in graph.outputs.values())
    chunk = samples.chunk_graph(graph, axes, 1)
    assert chunk is not None
    for name, desc in chunk.output_descs().items():
        assert desc.shape == (1, *graph.output_descs()[name].shape[1:])
    assert chunk.constants is graph.constants  # the same weights, no copy


@pytest.mark.parametrize("make", [conv_net, attention], ids=["conv_net", "attention"])
@pytest.mark.parametrize("chunk", [1, 2])
def test_openvino_runs_chunks_of_a_batch_with_the_reference_backends_results(make, chunk):
    feeds = FEEDS[make]
    reference = webml.ml.create_context(backend="reference")
    expected = reference.compute(_build(reference, make), feeds)
    whole = webml.ml.create_context(backend="openvino", batch_chunk=BATCH, startup_fallback=False)
    whole_results = whole.compute(_build(whole, make), feeds)
    context = webml.ml.create_context(backend="openvino", batch_chunk=chunk)
    graph = _build(context, make)
    # The first call runs on ONNX Runtime (startup fallback), the second on OpenVINO: both by chunks.
    inputs = {n: context.create_tensor({**d.as_dict(), "writable": True}) for n, d in graph.input_descriptors.items()}
    outputs = {n: context.create_tensor({**d.as_dict(), "readable": True}) for n, d in graph.output_descriptors.items()}
    for name, tensor in inputs.items():
        context.write_tensor(tensor, feeds[name])
    for _ in range(2):
        context.dispatch(graph, inputs, outputs)
        for name, tensor in outputs.items():
            got = context.read_tensor(tensor)
            _close(got, expected[name])
            _close(got, whole_results[name])
    for name, got in context.compute(graph, feeds).items():
        _close(got, expected[name])


def _close(got, expected) -> None:
    got, expected = np.asarray(got), np.asarray(expected)
    if expected.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk", [1, 2])
def test_the_openvino_backend_compiles_one_chunk_and_runs_it_batch_over_chunk_times(chunk):
    compiled = ovb.OpenVinoBackend(batch_chunk=chunk, startup_fallback=False).compile(_ir(conv_net))
    try:
        assert isinstance(compiled, samples.ChunkedGraph)
        assert compiled.chunk == chunk
        assert compiled.inner.graph.input_descs()["image"].shape == (chunk, 3, 8, 8)
    finally:
        compiled.release()


def _mixing(op: Callable) -> Callable:
    def make(b: webml.MLGraphBuilder) -> dict[str, webml.MLOperand]:
        return {"y": op(b, b.input("x", {"dataType": "float32", "shape": [BATCH, 6]}))}

    return make


PER_SAMPLE, MEANS = _f32(BATCH, 6), _f32(BATCH)
MIXING = {
    "reduce over the batch": lambda b, x: b.reduce_sum(x, axes=[0], keep_dimensions=True),
    "softmax over the batch": lambda b, x: b.softmax(x, 0),
    "reshape across the batch": lambda b, x: b.reshape(x, [6, BATCH]),
    "reshape merging the batch": lambda b, x: b.reshape(x, [2, 2 * 6]),
    "concat along the batch": lambda b, x: b.slice(b.concat([x, x], 0), [0, 0], [BATCH, 6]),
    "a constant per sample": lambda b, x: b.add(x, _const(b, PER_SAMPLE)),
    "slice of the batch": lambda b, x: b.pad(b.slice(x, [1, 0], [BATCH - 1, 6]), [1, 0], [0, 0]),
    "pad of the batch": lambda b, x: b.slice(b.pad(x, [1, 0], [0, 0]), [0, 0], [BATCH, 6]),
    "matmul summing the batch": lambda b, x: b.matmul(x, b.matmul(b.transpose(x), x)),
    "gemm summing the batch": lambda b, x: b.matmul(x, b.gemm(x, x, a_transpose=True)),
    "normalization over the batch": lambda b, x: b.batch_normalization(
        x, _const(b, MEANS), _const(b, np.ones(BATCH, np.float32)), axis=0
    ),
    "gather along the batch": lambda b, x: b.gather(x, _const(b, np.array([3, 2, 1, 0], np.int32)), axis=0),
    "reverse of the batch": lambda b, x: b.reverse(x, axes=[0]),
    "cumulative sum over the batch": lambda b, x: b.cumulative_sum(x, 0),
}


@pytest.mark.parametrize("op", list(MIXING.values()), ids=list(MIXING))
def test_a_graph_that_mixes_samples_is_found_so_and_runs_whole(op):
    make = _mixing(op)
    assert samples.sample_axes(_ir(make)) is None
    feeds = {"x": _f32(BATCH, 6)}
    reference = webml.ml.create_context(backend="reference")
    expected = reference.compute(_build(reference, make), feeds)["y"]
    context = webml.ml.create_context(backend="openvino", batch_chunk=1, startup_fallback=False)
    _close(context.compute(_build(context, make), feeds)["y"], expected)


def test_inputs_of_different_batches_or_an_output_without_one_are_not_chunked():
    def two_batches(b):
        x = b.input("x", {"dataType": "float32", "shape": [BATCH, 6]})
        y = b.input("y", {"dataType": "float32", "shape": [BATCH + 1, 6]})
        return {"x": b.relu(x), "y": b.relu(y)}

    def shared_output(b):
        x = b.input("x", {"dataType": "float32", "shape": [BATCH, 6]})
        return {"x": b.relu(x), "w": b.relu(_const(b, _f32(BATCH, 6)))}

    for make in (two_batches, shared_output):
        assert samples.sample_axes(_ir(make)) is None


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((8, 1024, 1024), 2), ((6, 1024, 1024), 2), ((8, 3 * 1024 * 1024), 1), ((8, 16, 16), None)],
)
def test_the_default_chunk_is_the_largest_divisor_whose_activations_fit_in_chunk_bytes(shape, expected):
    """A sample of 4 MiB: two of them fit in CHUNK_BYTES (10 MiB), four do not; 12 MiB: one at a time;
    a batch of small samples runs whole."""
    assert ovb.CHUNK_BYTES == 10 * 2**20

    def make(b):
        return {"y": b.relu(b.input("x", {"dataType": "float32", "shape": list(shape)}))}

    graph = _ir(make)
    batch, chunk, target = ovb.OpenVinoBackend().chunking(graph)
    assert (batch, chunk) == (shape[0], expected or shape[0])
    assert target.input_descs()["x"].shape == (expected or shape[0], *shape[1:])


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_batch_chunk_must_be_a_positive_int_or_none(value):
    with pytest.raises(TypeError, match="batch_chunk must be a positive int or None"):
        webml.ml.create_context(backend="openvino", batch_chunk=value)


FILES = conformance_files()


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_wpt_conformance_holds_with_every_batched_graph_run_one_sample_at_a_time(path, monkeypatch):
    """The openvino backend's conformance, judged by the same expectations, with batch_chunk=1: each graph
    that computes its samples apart (701 of the suite's graphs) runs as one run per sample."""
    monkeypatch.setattr(wpt, "own_engine_options", lambda backend: {"startup_fallback": False, "batch_chunk": 1})
    chunked = []
    real = ovb.ChunkedGraph

    def counted(*args, **kwargs):
        chunked.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ovb, "ChunkedGraph", counted)
    outcomes = report.judge("conformance", "openvino", wpt.run_file(path, "openvino"))
    wrong = [f"{o.status} {o.key}: {o.reason or o.expected_reason}" for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)
    if path.stem in ("conv2d", "gemm", "relu", "batch_normalization"):
        assert chunked, f"no graph of {path.name} was chunked"
