"""gru, gruCell, lstm, lstmCell on ONNX Runtime against the reference backend, over their options."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import webml

RNG = np.random.default_rng(5)
STEPS, BATCH, INPUT, HIDDEN = 3, 2, 3, 4


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="onnxruntime")


def run(context, build, data_type, arrays, constants):
    """``build(operand)`` on a fresh builder; operands named in ``constants`` are constants, the others inputs."""
    builder = webml.MLGraphBuilder(context)

    def operand(name):
        if name not in arrays:
            return None
        desc = {"dataType": data_type, "shape": list(arrays[name].shape)}
        return builder.constant(desc, arrays[name]) if name in constants else builder.input(name, desc)

    outs = build(builder, operand)
    outs = outs if isinstance(outs, list) else [outs]
    graph = builder.build({f"out{i}": o for i, o in enumerate(outs)})
    results = context.compute(graph, {k: v for k, v in arrays.items() if k not in constants})
    return [results[f"out{i}"] for i in range(len(outs))]


def compare(contexts, build, data_type, shapes, constants=(), zero_output_peephole=False):
    np_type = np.float16 if data_type == "float16" else np.float32
    arrays = {k: RNG.uniform(-1, 1, size=s).astype(np_type) for k, s in shapes.items() if s is not None}
    if zero_output_peephole:
        arrays["p"][..., HIDDEN : 2 * HIDDEN] = 0
    expected = run(contexts[0], build, data_type, arrays, constants)
    actual = run(contexts[1], build, data_type, arrays, constants)
    tol = 2e-3 if data_type == "float16" else 1e-5
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=tol, atol=tol)


GRU_CASES = list(
    itertools.product(
        ["forward", "backward", "both"],
        ["zrn", "rzn"],
        [True, False],  # reset_after
        ["none", "bias", "recurrent_bias", "both"],
    )
)


@pytest.mark.parametrize("direction, layout, reset_after, biases", GRU_CASES)
def test_gru(contexts, direction, layout, reset_after, biases):
    nd = 2 if direction == "both" else 1
    g = 3 * HIDDEN
    shapes = {
        "x": (STEPS, BATCH, INPUT),
        "w": (nd, g, INPUT),
        "r": (nd, g, HIDDEN),
        "b": (nd, g) if biases in ("bias", "both") else None,
        "rb": (nd, g) if biases in ("recurrent_bias", "both") else None,
        "h0": (nd, BATCH, HIDDEN) if biases == "both" else None,
    }

    def build(builder, o):
        return builder.gru(
            o("x"), o("w"), o("r"), STEPS, HIDDEN, bias=o("b"), recurrent_bias=o("rb"), initial_hidden_state=o("h0"),
            reset_after=reset_after, return_sequence=True, direction=direction, layout=layout,
            activations=["sigmoid", "relu"] if reset_after else None,
        )  # fmt: skip

    compare(contexts, build, "float32", shapes)
    compare(contexts, build, "float16", shapes, constants=("w", "r", "b"))


@pytest.mark.parametrize("layout, reset_after", [("zrn", True), ("rzn", False), ("rzn", True)])
@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_gru_cell(contexts, layout, reset_after, data_type):
    g = 3 * HIDDEN
    shapes = {"x": (BATCH, INPUT), "w": (g, INPUT), "r": (g, HIDDEN), "h": (BATCH, HIDDEN), "b": (g,), "rb": (g,)}

    def build(builder, o):
        return builder.gru_cell(
            o("x"), o("w"), o("r"), o("h"), HIDDEN, bias=o("b"), recurrent_bias=o("rb"), reset_after=reset_after,
            layout=layout, activations=["tanh", "sigmoid"] if layout == "rzn" else None,
        )  # fmt: skip

    compare(contexts, build, data_type, shapes)
    del shapes["rb"]
    compare(contexts, build, data_type, shapes, constants=("w", "b"))


# peephole: absent, an input (unrolled), a constant with a zero output-gate part (ONNX LSTM), any constant (unrolled)
PEEPHOLES = ["none", "input", "constant-io-f", "constant"]
LSTM_CASES = list(itertools.product(["forward", "backward", "both"], ["iofg", "ifgo"], PEEPHOLES, [False, True]))


def peephole_case(shapes, peephole, shape):
    constants = ["w", "r"]
    if peephole != "none":
        shapes["p"] = shape
    if peephole.startswith("constant"):
        constants.append("p")
    return constants


@pytest.mark.parametrize("direction, layout, peephole, return_sequence", LSTM_CASES)
def test_lstm(contexts, direction, layout, peephole, return_sequence):
    nd = 2 if direction == "both" else 1
    g = 4 * HIDDEN
    shapes = {
        "x": (STEPS, BATCH, INPUT),
        "w": (nd, g, INPUT),
        "r": (nd, g, HIDDEN),
        "b": (nd, g),
        "rb": (nd, g) if return_sequence else None,
        "h0": (nd, BATCH, HIDDEN) if layout == "iofg" else None,
        "c0": (nd, BATCH, HIDDEN) if direction != "forward" else None,
    }
    constants = peephole_case(shapes, peephole, (nd, 3 * HIDDEN))

    def build(builder, o):
        return builder.lstm(
            o("x"), o("w"), o("r"), STEPS, HIDDEN, bias=o("b"), recurrent_bias=o("rb"), peephole_weight=o("p"),
            initial_hidden_state=o("h0"), initial_cell_state=o("c0"), return_sequence=return_sequence,
            direction=direction, layout=layout,
            activations=["sigmoid", "relu", "tanh"] if direction == "both" else None,
        )  # fmt: skip

    for data_type in ("float32", "float16"):
        compare(contexts, build, data_type, shapes, constants, zero_output_peephole=peephole == "constant-io-f")


@pytest.mark.parametrize("layout", ["iofg", "ifgo"])
@pytest.mark.parametrize("peephole", PEEPHOLES)
@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_lstm_cell(contexts, layout, peephole, data_type):
    g = 4 * HIDDEN
    shapes = {
        "x": (BATCH, INPUT),
        "w": (g, INPUT),
        "r": (g, HIDDEN),
        "h": (BATCH, HIDDEN),
        "c": (BATCH, HIDDEN),
        "rb": (g,),
    }
    constants = peephole_case(shapes, peephole, (3 * HIDDEN,))

    def build(builder, o):
        return builder.lstm_cell(
            o("x"), o("w"), o("r"), o("h"), o("c"), HIDDEN, bias=o("b"), recurrent_bias=o("rb"), peephole_weight=o("p"),
            layout=layout, activations=["relu", "tanh", "sigmoid"] if layout == "ifgo" else None,
        )  # fmt: skip

    compare(contexts, build, data_type, shapes, constants, zero_output_peephole=peephole == "constant-io-f")


def test_lstm_peephole_lowering_paths():
    """Constant peepholes with a zero output-gate part use ONNX LSTM; others unroll."""
    from webml.backends.onnxruntime import lowering

    def model(p_array):
        builder = webml.MLGraphBuilder(webml.ml.create_context(backend="onnxruntime", keep_constants=True))
        f32 = {"dataType": "float32", "shape": [1, 1, 2]}
        w = builder.input("w", {"dataType": "float32", "shape": [1, 8, 2]})
        r = builder.input("r", {"dataType": "float32", "shape": [1, 8, 2]})
        p = builder.constant({"dataType": "float32", "shape": [1, 6]}, p_array)
        outs = builder.lstm(builder.input("x", f32), w, r, 1, 2, peephole_weight=p)
        graph = builder.build({"h": outs[0], "c": outs[1]})
        return {node.op_type for node in lowering.lower(graph.ir).model.graph.node}

    assert "LSTM" in model(np.array([[1, 2, 0, 0, 3, 4]], dtype=np.float32))
    assert "LSTM" not in model(np.array([[1, 2, 0, 5, 3, 4]], dtype=np.float32))
