"""gru, gruCell, lstm, lstmCell on webgpu against the reference backend, on what WPT leaves out: odd sizes,
many steps (the chunked concat of the sequence), both directions with every option, the default
sigmoid/tanh activations, float16 operands (widened once, rounded once) and inputs versus constants."""

from __future__ import annotations

import numpy as np
import pytest

import webml

STEPS, BATCH, INPUT, HIDDEN = 3, 3, 5, 7  # odd, and no two equal: a wrong axis cannot hide


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="webgpu")


def _run(context, build, data_type, arrays, constants):
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


def _compare(contexts, build, shapes, data_type="float32", constants=(), seed=0):
    rng = np.random.default_rng(seed)
    np_type = np.float16 if data_type == "float16" else np.float32
    arrays = {k: rng.uniform(-1, 1, size=s).astype(np_type) for k, s in shapes.items() if s is not None}
    expected = _run(contexts[0], build, data_type, arrays, constants)
    actual = _run(contexts[1], build, data_type, arrays, constants)
    # float32: a few ULPs of sigmoid/tanh through a handful of products; float16: one rounding of the result.
    tol = 2e-3 if data_type == "float16" else 2e-5
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=tol, atol=tol)
    return actual


def _network_shapes(gates, directions, steps=STEPS, peephole=False, initial=(), biases=True):
    shapes = {
        "x": (steps, BATCH, INPUT),
        "w": (directions, gates * HIDDEN, INPUT),
        "r": (directions, gates * HIDDEN, HIDDEN),
        "b": (directions, gates * HIDDEN) if biases else None,
        "rb": (directions, gates * HIDDEN) if biases else None,
        "p": (directions, 3 * HIDDEN) if peephole else None,
    }
    for name in initial:
        shapes[name] = (directions, BATCH, HIDDEN)
    return shapes


@pytest.mark.parametrize("direction", ["forward", "backward", "both"])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("layout", ["zrn", "rzn"])
def test_gru_network_with_every_option(contexts, direction, reset_after, layout):
    directions = 2 if direction == "both" else 1

    def build(b, o):
        return b.gru(
            o("x"),
            o("w"),
            o("r"),
            STEPS,
            HIDDEN,
            bias=o("b"),
            recurrent_bias=o("rb"),
            initial_hidden_state=o("h0"),
            reset_after=reset_after,
            return_sequence=True,
            direction=direction,
            layout=layout,
        )

    _compare(contexts, build, _network_shapes(3, directions, initial=("h0",)), constants=("w", "r"))


@pytest.mark.parametrize("direction", ["forward", "backward", "both"])
@pytest.mark.parametrize("layout", ["iofg", "ifgo"])
def test_lstm_network_with_every_option(contexts, direction, layout):
    directions = 2 if direction == "both" else 1

    def build(b, o):
        return b.lstm(
            o("x"),
            o("w"),
            o("r"),
            STEPS,
            HIDDEN,
            bias=o("b"),
            recurrent_bias=o("rb"),
            peephole_weight=o("p"),
            initial_hidden_state=o("h0"),
            initial_cell_state=o("c0"),
            return_sequence=True,
            direction=direction,
            layout=layout,
        )

    shapes = _network_shapes(4, directions, peephole=True, initial=("h0", "c0"))
    _compare(contexts, build, shapes, constants=("w", "r", "p"))


def test_many_steps_lay_every_hidden_state_at_its_time_index(contexts):
    """15 steps both ways: the sequence is joined a few states per concat, in more than one round."""
    steps = 15

    def build(b, o):
        return b.lstm(o("x"), o("w"), o("r"), steps, HIDDEN, return_sequence=True, direction="both")

    h, _, sequence = _compare(contexts, build, _network_shapes(4, 2, steps=steps, biases=False))
    np.testing.assert_array_equal(sequence[-1, 0], h[0])  # forward ends at the last step
    np.testing.assert_array_equal(sequence[0, 1], h[1])  # backward at the first


def test_gru_without_biases_or_initial_state_starts_from_zeros(contexts):
    def build(b, o):
        return b.gru(o("x"), o("w"), o("r"), STEPS, HIDDEN, activations=["relu", "sigmoid"])

    _compare(contexts, build, _network_shapes(3, 1, biases=False))


def test_a_compiled_graph_runs_twice_alike(contexts):
    """The zero initial state is a scratch nothing writes: a second run must not see the first's states."""
    context = contexts[1]
    b = webml.MLGraphBuilder(context)
    rng = np.random.default_rng(3)
    shapes = _network_shapes(3, 2)
    arrays = {k: rng.uniform(-1, 1, size=shapes[k]).astype(np.float32) for k in ("x", "w", "r", "b")}
    ops = {k: b.input(k, {"dataType": "float32", "shape": list(v.shape)}) for k, v in arrays.items()}
    out = b.gru(ops["x"], ops["w"], ops["r"], STEPS, HIDDEN, bias=ops["b"], direction="both")
    graph = b.build({"h": out[0]})
    first = context.compute(graph, arrays)["h"]
    second = context.compute(graph, arrays)["h"]
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_cell(contexts, reset_after):
    shapes = {
        "x": (BATCH, INPUT),
        "w": (3 * HIDDEN, INPUT),
        "r": (3 * HIDDEN, HIDDEN),
        "h": (BATCH, HIDDEN),
        "b": (3 * HIDDEN,),
        "rb": (3 * HIDDEN,),
    }

    def build(b, o):
        return b.gru_cell(
            o("x"),
            o("w"),
            o("r"),
            o("h"),
            HIDDEN,
            bias=o("b"),
            recurrent_bias=o("rb"),
            reset_after=reset_after,
            layout="rzn",
            activations=["sigmoid", "relu"],
        )

    _compare(contexts, build, shapes)


def test_lstm_cell_with_peepholes(contexts):
    shapes = {
        "x": (BATCH, INPUT),
        "w": (4 * HIDDEN, INPUT),
        "r": (4 * HIDDEN, HIDDEN),
        "h": (BATCH, HIDDEN),
        "c": (BATCH, HIDDEN),
        "b": (4 * HIDDEN,),
        "p": (3 * HIDDEN,),
    }

    def build(b, o):
        return b.lstm_cell(o("x"), o("w"), o("r"), o("h"), o("c"), HIDDEN, bias=o("b"), peephole_weight=o("p"))

    _compare(contexts, build, shapes)


def test_float16_lstm_and_gru_compute_in_float32(contexts):
    """float16 operands: results within one float16 rounding of the float64 reference, shapes of odd size
    so the packed halves of the last word are exercised."""

    def lstm(b, o):
        return b.lstm(
            o("x"),
            o("w"),
            o("r"),
            STEPS,
            HIDDEN,
            bias=o("b"),
            recurrent_bias=o("rb"),
            peephole_weight=o("p"),
            return_sequence=True,
            direction="both",
        )

    def gru_cell(b, o):
        return b.gru_cell(o("x"), o("w"), o("r"), o("h"), HIDDEN, bias=o("b"), reset_after=False)

    _compare(contexts, lstm, _network_shapes(4, 2, peephole=True), data_type="float16", constants=("w",))
    cell = {
        "x": (BATCH, INPUT),
        "w": (3 * HIDDEN, INPUT),
        "r": (3 * HIDDEN, HIDDEN),
        "h": (BATCH, HIDDEN),
        "b": (3 * HIDDEN,),
    }
    _compare(contexts, gru_cell, cell, data_type="float16")


def test_lstm_cell_beyond_one_grid_row(contexts):
    """A batch of 33,001: the gate products (« batch, 4 * 32 », 4.22M elements) need more than 65,535
    workgroups of 64, so the 2-D grid of every composed kernel is exercised."""
    batch, hidden, features = 33001, 32, 3
    shapes = {
        "x": (batch, features),
        "w": (4 * hidden, features),
        "r": (4 * hidden, hidden),
        "h": (batch, hidden),
        "c": (batch, hidden),
        "b": (4 * hidden,),
        "rb": (4 * hidden,),
    }

    def build(b, o):
        return b.lstm_cell(o("x"), o("w"), o("r"), o("h"), o("c"), hidden, bias=o("b"), recurrent_bias=o("rb"))

    assert batch * 4 * hidden > 65535 * 64
    _compare(contexts, build, shapes, constants=("w", "r"))
