"""gru, gruCell, lstm, lstmCell: validation per the spec's method steps and reference results."""

from __future__ import annotations

import re

import numpy as np
import pytest

import webml
from webml.ir import OperandDesc, Value
from webml.ops import OPS, Call

RNG = np.random.default_rng(11)

ACT = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def random(shape, dtype=np.float32):
    return RNG.uniform(-1, 1, size=shape).astype(dtype)


class Graph:
    """Inputs created on a builder, with random data to feed them."""

    def __init__(self, builder, data_type="float32"):
        self.builder, self.data_type, self.arrays = builder, data_type, {}

    def __call__(self, name, shape, data_type=None):
        data_type = data_type or self.data_type
        self.arrays[name] = random(shape, np.float16 if data_type == "float16" else np.float32)
        return self.builder.input(name, {"dataType": data_type, "shape": list(shape)})

    def run(self, context, outputs):
        graph = self.builder.build({f"out{i}": o for i, o in enumerate(outputs)})
        results = context.compute(graph, self.arrays)
        return [results[f"out{i}"] for i in range(len(outputs))]

    def f64(self, name):
        return None if name not in self.arrays else self.arrays[name].astype(np.float64)


# -- independent float64 models, written from the spec's cell equations -------------


def gates(t, layout):
    """Split the stacked rows (or bias entries) into a dict gate name -> block, in the layout's order."""
    return dict(zip(layout, np.split(t, len(layout), axis=0)))


def gru_cell_model(x, h, w, r, b, rb, reset_after=True, layout="zrn", activations=("sigmoid", "tanh")):
    f, g = (ACT[a] for a in activations)
    W, R = gates(w, layout), gates(r, layout)
    B = gates(b if b is not None else np.zeros(len(w)), layout)
    RB = gates(rb if rb is not None else np.zeros(len(w)), layout)
    z = f(x @ W["z"].T + h @ R["z"].T + B["z"] + RB["z"])
    rr = f(x @ W["r"].T + h @ R["r"].T + B["r"] + RB["r"])
    if reset_after:
        n = g(x @ W["n"].T + B["n"] + rr * (h @ R["n"].T + RB["n"]))
    else:
        n = g(x @ W["n"].T + B["n"] + RB["n"] + (rr * h) @ R["n"].T)
    return (1 - z) * n + z * h


def lstm_cell_model(x, h, c, w, r, b, rb, p, layout="iofg", activations=("sigmoid", "tanh", "tanh")):
    f_act, g_act, h_act = (ACT[a] for a in activations)
    W, R = gates(w, layout), gates(r, layout)
    B = gates(b if b is not None else np.zeros(len(w)), layout)
    RB = gates(rb if rb is not None else np.zeros(len(w)), layout)
    P = gates(p if p is not None else np.zeros(3 * w.shape[0] // 4), "iof")

    def pre(k):
        return x @ W[k].T + h @ R[k].T + B[k] + RB[k]

    i = f_act(pre("i") + P["i"] * c)
    f = f_act(pre("f") + P["f"] * c)
    o = f_act(pre("o") + P["o"] * c)
    c_new = f * c + i * g_act(pre("g"))
    return o * h_act(c_new), c_new


def sequence_model(cell, x, states, direction):
    """Run cell(dir, x_t, *states) -> states; returns stacked final states and the hidden sequence."""
    finals, sequences = [], []
    for d in range(states[0].shape[0]):
        backward = direction == "backward" or d == 1
        xs = x[::-1] if backward else x
        s = tuple(t[d] for t in states)
        seq = []
        for x_t in xs:
            s = cell(d, x_t, *s)
            seq.append(s[0])
        finals.append(s)
        seq = np.stack(seq)
        sequences.append(seq[::-1] if backward else seq)
    stacked = [np.stack([f[k] for f in finals]) for k in range(len(states))]
    return stacked, np.stack(sequences, axis=1)


def close(result, expected, tol=1e-5):
    np.testing.assert_allclose(result.astype(np.float64), expected, rtol=tol, atol=tol)


# -- gruCell / gru results -------------------------------------------------------------


@pytest.mark.parametrize("layout", ["zrn", "rzn"])
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize(
    "with_bias, activations", [(False, None), (True, ["relu", "sigmoid"]), (True, ["tanh", "relu"])]
)
def test_gru_cell(context, builder, layout, reset_after, with_bias, activations):
    batch, inp, hid = 3, 4, 5
    g = Graph(builder)
    options = {"reset_after": reset_after, "layout": layout, "activations": activations}
    if with_bias:
        options |= {"bias": g("b", [3 * hid]), "recurrent_bias": g("rb", [3 * hid])}
    out = builder.gru_cell(
        g("x", [batch, inp]), g("w", [3 * hid, inp]), g("r", [3 * hid, hid]), g("h", [batch, hid]), hid, **options
    )
    assert (out.data_type, out.shape) == ("float32", [batch, hid])
    (result,) = g.run(context, [out])
    acts = activations or ("sigmoid", "tanh")
    expected = gru_cell_model(*map(g.f64, "xhwr"), g.f64("b"), g.f64("rb"), reset_after, layout, acts)
    close(result, expected)


def test_gru_cell_float16(context, builder):
    g = Graph(builder, "float16")
    out = builder.gru_cell(g("x", [2, 3]), g("w", [6, 3]), g("r", [6, 2]), g("h", [2, 2]), 2)
    (result,) = g.run(context, [out])
    assert result.dtype == np.float16
    close(result, gru_cell_model(*map(g.f64, "xhwr"), None, None), tol=2e-3)


@pytest.mark.parametrize("direction", ["forward", "backward", "both"])
@pytest.mark.parametrize("return_sequence", [False, True])
@pytest.mark.parametrize("layout, reset_after", [("zrn", True), ("rzn", False)])
def test_gru(context, builder, direction, return_sequence, layout, reset_after):
    steps, batch, inp, hid = 3, 2, 3, 4
    nd = 2 if direction == "both" else 1
    g = Graph(builder)
    outs = builder.gru(
        g("x", [steps, batch, inp]),
        g("w", [nd, 3 * hid, inp]),
        g("r", [nd, 3 * hid, hid]),
        steps,
        hid,
        bias=g("b", [nd, 3 * hid]),
        recurrent_bias=g("rb", [nd, 3 * hid]),
        initial_hidden_state=g("h0", [nd, batch, hid]),
        reset_after=reset_after,
        return_sequence=return_sequence,
        direction=direction,
        layout=layout,
    )
    assert isinstance(outs, list) and len(outs) == 1 + return_sequence
    assert outs[0].shape == [nd, batch, hid]
    if return_sequence:
        assert outs[1].shape == [steps, nd, batch, hid]
    results = g.run(context, outs)
    w, r, b, rb = map(g.f64, ("w", "r", "b", "rb"))

    def cell(d, x_t, h):
        return (gru_cell_model(x_t, h, w[d], r[d], b[d], rb[d], reset_after, layout),)

    (hidden,), sequence = sequence_model(cell, g.f64("x"), [g.f64("h0")], direction)
    close(results[0], hidden)
    if return_sequence:
        close(results[1], sequence)


def test_gru_defaults_start_from_zero(context, builder):
    g = Graph(builder)
    (out,) = builder.gru(g("x", [2, 1, 3]), g("w", [1, 6, 3]), g("r", [1, 6, 2]), 2, 2)
    (result,) = g.run(context, [out])
    w, r = g.f64("w")[0], g.f64("r")[0]

    def cell(d, x_t, h):
        return (gru_cell_model(x_t, h, w, r, None, None),)

    (hidden,), _ = sequence_model(cell, g.f64("x"), [np.zeros((1, 1, 2))], "forward")
    close(result, hidden)


# -- lstmCell / lstm results -----------------------------------------------------------


@pytest.mark.parametrize("layout", ["iofg", "ifgo"])
@pytest.mark.parametrize(
    "with_options, activations", [(False, None), (True, ["relu", "tanh", "sigmoid"]), (True, None)]
)
def test_lstm_cell(context, builder, layout, with_options, activations):
    batch, inp, hid = 2, 3, 4
    g = Graph(builder)
    options = {"layout": layout, "activations": activations}
    if with_options:
        options |= {
            "bias": g("b", [4 * hid]),
            "recurrent_bias": g("rb", [4 * hid]),
            "peephole_weight": g("p", [3 * hid]),
        }
    args = (
        g("x", [batch, inp]),
        g("w", [4 * hid, inp]),
        g("r", [4 * hid, hid]),
        g("h", [batch, hid]),
        g("c", [batch, hid]),
    )
    outs = builder.lstm_cell(*args, hid, **options)
    assert [o.shape for o in outs] == [[batch, hid], [batch, hid]]
    results = g.run(context, outs)
    acts = activations or ("sigmoid", "tanh", "tanh")
    expected = lstm_cell_model(*map(g.f64, "xhcwr"), g.f64("b"), g.f64("rb"), g.f64("p"), layout, acts)
    close(results[0], expected[0])
    close(results[1], expected[1])


@pytest.mark.parametrize("direction", ["forward", "backward", "both"])
@pytest.mark.parametrize("return_sequence", [False, True])
def test_lstm(context, builder, direction, return_sequence):
    steps, batch, inp, hid = 3, 2, 3, 2
    nd = 2 if direction == "both" else 1
    g = Graph(builder)
    outs = builder.lstm(
        g("x", [steps, batch, inp]),
        g("w", [nd, 4 * hid, inp]),
        g("r", [nd, 4 * hid, hid]),
        steps,
        hid,
        bias=g("b", [nd, 4 * hid]),
        recurrent_bias=g("rb", [nd, 4 * hid]),
        peephole_weight=g("p", [nd, 3 * hid]),
        initial_hidden_state=g("h0", [nd, batch, hid]),
        initial_cell_state=g("c0", [nd, batch, hid]),
        return_sequence=return_sequence,
        direction=direction,
        layout="ifgo",
        activations=["sigmoid", "relu", "tanh"],
    )
    assert [o.shape for o in outs][: 2 + return_sequence] == [[nd, batch, hid]] * 2 + [
        [steps, nd, batch, hid]
    ] * return_sequence
    results = g.run(context, outs)
    w, r, b, rb, p = map(g.f64, ("w", "r", "b", "rb", "p"))

    def cell(d, x_t, h, c):
        return lstm_cell_model(x_t, h, c, w[d], r[d], b[d], rb[d], p[d], "ifgo", ("sigmoid", "relu", "tanh"))

    (hidden, cell_state), sequence = sequence_model(cell, g.f64("x"), [g.f64("h0"), g.f64("c0")], direction)
    close(results[0], hidden)
    close(results[1], cell_state)
    if return_sequence:
        close(results[2], sequence)


# -- validation ------------------------------------------------------------------------

F32 = "float32"


def raises(message, call):
    with pytest.raises(TypeError, match=rf"\[rnn\].*{re.escape(message)}"):
        call()


def gru_args(g, steps=2, batch=3, inp=4, hid=5, nd=1, dtypes=(F32, F32, F32)):
    return (
        g("x", [steps, batch, inp], dtypes[0]),
        g("w", [nd, 3 * hid, inp], dtypes[1]),
        g("r", [nd, 3 * hid, hid], dtypes[2]),
    )


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda b, g: b.gru(*gru_args(g), 3, 5, label="rnn"), "input.shape[0] (2) must equal steps (3)"),
        (lambda b, g: b.gru(*gru_args(g), 0, 5, label="rnn"), "must equal steps (0)"),
        (lambda b, g: b.gru(*gru_args(g), -1, 5, label="rnn"), "steps must be an unsigned long"),
        (lambda b, g: b.gru(*gru_args(g), 2, 4, label="rnn"), "weight shape [1, 15, 4] must be [1, 12, 4]"),
        (lambda b, g: b.gru(*gru_args(g), 2, 0, label="rnn"), "weight shape"),
        (lambda b, g: b.gru(*gru_args(g, nd=1), 2, 5, direction="both", label="rnn"), "must be [2, 15, 4]"),
        (lambda b, g: b.gru(*gru_args(g), 2, 5, direction="sideways", label="rnn"), "direction must be one of"),
        (lambda b, g: b.gru(*gru_args(g), 2, 5, layout="iofg", label="rnn"), "layout must be one of"),
        (lambda b, g: b.gru(*gru_args(g, dtypes=(F32, "float16", F32)), 2, 5, label="rnn"), "weight data type"),
        (lambda b, g: b.gru(*gru_args(g, dtypes=("int32",) * 3), 2, 5, label="rnn"), "input data type int32"),
        (lambda b, g: b.gru(*gru_args(g), 2, 5, bias=g("b", [1, 14]), label="rnn"), "bias shape [1, 14]"),
        (lambda b, g: b.gru(*gru_args(g), 2, 5, bias=g("b", [15]), label="rnn"), "bias rank 1"),
        (
            lambda b, g: b.gru(*gru_args(g), 2, 5, recurrent_bias=g("b", [1, 15], "float16"), label="rnn"),
            "recurrent_bias data type float16",
        ),
        (
            lambda b, g: b.gru(*gru_args(g), 2, 5, initial_hidden_state=g("h", [1, 3, 4]), label="rnn"),
            "initial_hidden_state shape [1, 3, 4] must be [1, 3, 5]",
        ),
        (lambda b, g: b.gru(*gru_args(g), 2, 5, activations=["tanh"], label="rnn"), "activations must have 2"),
        (lambda b, g: b.gru(*gru_args(g), 2, 5, activations=["tanh", "gelu"], label="rnn"), "activations[1]"),
        (lambda b, g: b.gru(*gru_args(g), 2, 5, activations="tanh", label="rnn"), "activations must be a sequence"),
    ],
)
def test_gru_invalid(builder, setup, message):
    raises(message, lambda: setup(builder, Graph(builder)))


@pytest.mark.parametrize("op, gates", [("gru", 3), ("lstm", 4)])
def test_hidden_size_too_large(op, gates):
    # No input of the reference backend (2 GiB at most) is large enough to reach this step
    # through the builder, so the rule runs on bare descriptors: gates * hiddenSize rows
    # are a valid dimension, but bias and recurrentBias concatenated would not be.
    hid = 2**31 // (2 * gates) + 1
    shapes = ([1, 1, 1], [1, gates * hid, 1], [1, gates * hid, hid])
    x, w, r = (Value(i, OperandDesc(F32, tuple(s))) for i, s in enumerate(shapes))
    call = Call(op, "rnn", lambda *a: pytest.fail("emitted"))
    raises(f"hidden_size * {2 * gates}", lambda: OPS[op].rule(call, x, w, r, 1, hid))


@pytest.mark.parametrize(
    "shapes, options, message",
    [
        ({"x": [3, 4, 1]}, {}, "input rank 3"),
        ({"w": [15, 3]}, {}, "weight shape [15, 3] must be [15, 4]"),
        ({"r": [15, 4]}, {}, "recurrent_weight shape [15, 4] must be [15, 5]"),
        ({"h": [2, 5]}, {}, "hidden_state shape [2, 5] must be [3, 5]"),
        ({}, {"bias": [14]}, "bias shape [14] must be [15]"),
        ({}, {"recurrent_bias": [1, 15]}, "recurrentBias rank 2"),
        ({}, {"activations": ["relu"] * 3}, "activations must have 2"),
        ({}, {"layout": "nrz"}, "layout must be one of"),
    ],
)
def test_gru_cell_invalid(builder, shapes, options, message):
    g = Graph(builder)
    s = {"x": [3, 4], "w": [15, 4], "r": [15, 5], "h": [3, 5]} | shapes
    options = {k: g(k, v) if k.endswith("bias") else v for k, v in options.items()}
    raises(
        message,
        lambda: builder.gru_cell(
            g("x", s["x"]), g("w", s["w"]), g("r", s["r"]), g("h", s["h"]), 5, label="rnn", **options
        ),
    )


@pytest.mark.parametrize(
    "shapes, args, options, message",
    [
        ({}, (0, 5), {}, "steps must be greater than 0"),
        ({}, (3, 5), {}, "input.shape[0] (2) must equal steps (3)"),
        ({"w": [1, 15, 4]}, (2, 5), {}, "weight shape [1, 15, 4] must be [1, 20, 4]"),
        ({"r": [1, 20]}, (2, 5), {}, "recurrentWeight rank 2"),
        ({}, (2, 5), {"bias": [1, 15]}, "bias shape [1, 15] must be [1, 20]"),
        ({}, (2, 5), {"peephole_weight": [1, 20]}, "peephole_weight shape [1, 20] must be [1, 15]"),
        ({}, (2, 5), {"initial_cell_state": [1, 3, 4]}, "initial_cell_state shape [1, 3, 4] must be [1, 3, 5]"),
        ({}, (2, 5), {"activations": ["relu", "relu"]}, "activations must have 3"),
        ({}, (2, 5), {"direction": "both"}, "weight shape [1, 20, 4] must be [2, 20, 4]"),
    ],
)
def test_lstm_invalid(builder, shapes, args, options, message):
    g = Graph(builder)
    s = {"x": [2, 3, 4], "w": [1, 20, 4], "r": [1, 20, 5]} | shapes
    options = {k: v if k in ("activations", "direction") else g(k, v) for k, v in options.items()}
    raises(message, lambda: builder.lstm(g("x", s["x"]), g("w", s["w"]), g("r", s["r"]), *args, label="rnn", **options))


@pytest.mark.parametrize(
    "shapes, options, message",
    [
        ({"c": [3, 4]}, {}, "cell_state shape [3, 4] must be [3, 5]"),
        ({"h": [5, 3]}, {}, "hidden_state shape [5, 3] must be [3, 5]"),
        ({"w": [20, 5]}, {}, "weight shape [20, 5] must be [20, 4]"),
        ({}, {"peephole_weight": [20]}, "peephole_weight shape [20] must be [15]"),
        ({}, {"recurrent_bias": [15]}, "recurrent_bias shape [15] must be [20]"),
        ({}, {"activations": ["relu", "relu"]}, "activations must have 3"),
        ({}, {"layout": "zrn"}, "layout must be one of"),
    ],
)
def test_lstm_cell_invalid(builder, shapes, options, message):
    g = Graph(builder)
    s = {"x": [3, 4], "w": [20, 4], "r": [20, 5], "h": [3, 5], "c": [3, 5]} | shapes
    options = {k: v if k in ("activations", "layout") else g(k, v) for k, v in options.items()}
    ops = [g(k, s[k]) for k in "xwrhc"]
    raises(message, lambda: builder.lstm_cell(*ops, 5, label="rnn", **options))


def test_lstm_cell_type_mismatch(builder):
    g = Graph(builder)
    ops = [
        g(k, shape, "float16" if k == "c" else F32)
        for k, shape in zip("xwrhc", [[3, 4], [20, 4], [20, 5], [3, 5], [3, 5]])
    ]
    raises("cell_state data type float16 must match input's float32", lambda: builder.lstm_cell(*ops, 5, label="rnn"))


def test_op_support_limits(context):
    limits = context.op_support_limits()
    assert set(limits["lstm"]) == {
        "input",
        "weight",
        "recurrentWeight",
        "bias",
        "recurrentBias",
        "peepholeWeight",
        "initialHiddenState",
        "initialCellState",
        "output0",
        "output1",
        "output2",
    }
    assert limits["gru"]["output1"]["rankRange"] == {"min": 4, "max": 4}
    assert limits["gruCell"]["bias"]["rankRange"] == {"min": 1, "max": 1}
    assert set(limits["lstmCell"]["input"]["dataTypes"]) == {"float32", "float16"}
