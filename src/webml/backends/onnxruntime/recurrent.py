"""ONNX lowerings of the recurrent operators.

gru and lstm map onto ONNX GRU and LSTM: the state outputs « numDirections,
batch, hidden » and the sequence « steps, numDirections, batch, hidden » have
ONNX's layouts already, a backward direction is ONNX's ``reverse`` (whose
sequence is also indexed by time step), ``reset_after`` is
``linear_before_reset``, and the weights of the layouts ONNX does not use
(GRU: zrh, LSTM: iofc) have their gates reordered with Split+Concat, which
ONNX Runtime folds when the weights are constants.  The cells are one-step
networks (Unsqueeze in, Squeeze out).

ONNX's LSTM peephole of the output gate looks at the new cell state; webml's
at the incoming one.  Where that peephole may be non-zero, the LSTM is
unrolled into its cell equations (Gemm, Add, Mul and the activations),
computed in float32.
"""

from __future__ import annotations

import numpy as np

from .lowering import Lowerer, Op, lowering

FLOATS = ("float32", "float16")
_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
_DIRECTIONS = {"forward": "forward", "backward": "reverse", "both": "bidirectional"}
# The gate order of ONNX's weights, in webml's gate names.
_ONNX_GATES = {"GRU": "zrn", "LSTM": "iofg"}
_DEFAULT_ACTIVATIONS = {"GRU": ("sigmoid", "tanh"), "LSTM": ("sigmoid", "tanh", "tanh")}


def _reorder(lw: Lowerer, x: str, axis: int, layout: str, target: str, repeats: int = 1) -> str:
    """``x``'s gate blocks along ``axis`` (``repeats`` runs of ``layout``) reordered to ``target``'s order."""
    if layout == target:
        return x
    gates = len(layout)
    order = [r * gates + layout.index(g) for r in range(repeats) for g in target]
    parts = lw.emit("Split", [x], gates * repeats, axis=axis, num_outputs=gates * repeats)
    return lw.emit("Concat", [parts[i] for i in order], 1, axis=axis)


def _onnx_rnn(
    lw: Lowerer,
    kind: str,
    n: Op,
    x: str,
    weight: str,
    recurrent_weight: str,
    bias: str | None,
    recurrent_bias: str | None,
    peephole: str | None,
    initial_states: list[str | None],
    outputs: list[str],
    *,
    bias_shape: tuple[int, ...],
    gate_axis: int,
    unsqueeze_params: bool,
    direction: str = "forward",
) -> None:
    """An ONNX GRU/LSTM; ``outputs`` are its Y, Y_h(, Y_c) ("" for unused ones).

    ``gate_axis`` is the weights' and biases' axis of gates; the cells pass 2-D parameters, made 3-D
    (one direction) when ``unsqueeze_params``.
    """
    a = n.attrs
    layout, target = a["layout"], _ONNX_GATES[kind]
    hidden = a["hidden_size"]
    axis0 = lw.ints([0]) if unsqueeze_params else None

    def param(name: str) -> str:
        name = _reorder(lw, name, gate_axis, layout, target)
        return lw.emit("Unsqueeze", [name, axis0]) if unsqueeze_params else name

    w = param(weight)
    r = param(recurrent_weight)
    b = None
    if bias is not None or recurrent_bias is not None:
        zeros = None
        if bias is None or recurrent_bias is None:
            zeros = lw.const(np.zeros(bias_shape), n.in_type)
        both = lw.emit("Concat", [bias or zeros, recurrent_bias or zeros], 1, axis=gate_axis)
        b = _reorder(lw, both, gate_axis, layout, target, repeats=2)
        if unsqueeze_params:
            b = lw.emit("Unsqueeze", [b, axis0])
    p = None
    if peephole is not None:
        p = lw.emit("Unsqueeze", [peephole, axis0]) if unsqueeze_params else peephole
    states = [
        None if s is None else lw.emit("Unsqueeze", [s, axis0]) if unsqueeze_params else s for s in initial_states
    ]
    inputs: list[str | None] = [x, w, r, b, None, *states]
    if kind == "LSTM":
        inputs.append(p)
    while inputs[-1] is None:
        inputs.pop()
    activations = a["activations"]
    attrs = {}
    if tuple(activations) != _DEFAULT_ACTIVATIONS[kind]:
        repeats = 2 if direction == "both" else 1
        attrs["activations"] = [_ACTIVATIONS[f] for f in activations] * repeats
    if kind == "GRU":
        attrs["linear_before_reset"] = int(a["reset_after"])
    if direction != "forward":
        attrs["direction"] = _DIRECTIONS[direction]
    while outputs and not outputs[-1]:
        outputs = outputs[:-1]
    lw.emit(kind, inputs, outputs, hidden_size=hidden, **attrs)


@lowering("gru", input=FLOATS)
def gru(lw: Lowerer, n: Op) -> None:
    x, weight, recurrent_weight, bias, recurrent_bias, h0 = n.inputs
    a = n.attrs
    sequence = n.outputs[1] if a["return_sequence"] else ""
    _onnx_rnn(
        lw,
        "GRU",
        n,
        x,
        weight,
        recurrent_weight,
        bias,
        recurrent_bias,
        None,
        [h0],
        [sequence, n.outputs[0]],
        bias_shape=n.in_descs[1].shape[:2],
        gate_axis=1,
        unsqueeze_params=False,
        direction=a["direction"],
    )


@lowering("gruCell", input=FLOATS)
def gru_cell(lw: Lowerer, n: Op) -> None:
    x, weight, recurrent_weight, h, bias, recurrent_bias = n.inputs
    axis0 = lw.ints([0])
    y_h = lw.fresh("gru_h")
    _onnx_rnn(
        lw,
        "GRU",
        n,
        lw.emit("Unsqueeze", [x, axis0]),
        weight,
        recurrent_weight,
        bias,
        recurrent_bias,
        None,
        [h],
        ["", y_h],
        bias_shape=n.in_descs[1].shape[:1],
        gate_axis=0,
        unsqueeze_params=True,
    )
    lw.emit("Squeeze", [y_h, axis0], n.output)


def _peephole_is_onnx(lw: Lowerer, n: Op, index: int, hidden: int) -> bool:
    """Whether the peephole at input ``index`` is absent, or a constant whose output-gate part is zero.

    Only then do ONNX's LSTM semantics match webml's (ONNX's output-gate
    peephole looks at the new cell state).  Peepholes are packed i, o, f.
    """
    if n.inputs[index] is None:
        return True
    array = lw.graph.constants.get(n.node.inputs[index])
    if array is None:
        return False
    return not np.any(np.asarray(array)[..., hidden : 2 * hidden])


@lowering("lstm", input=FLOATS)
def lstm(lw: Lowerer, n: Op) -> None:
    x, weight, recurrent_weight, bias, recurrent_bias, peephole, h0, c0 = n.inputs
    a = n.attrs
    if not _peephole_is_onnx(lw, n, 5, a["hidden_size"]):
        _unrolled_lstm(lw, n)
        return
    sequence = n.outputs[2] if a["return_sequence"] else ""
    _onnx_rnn(
        lw,
        "LSTM",
        n,
        x,
        weight,
        recurrent_weight,
        bias,
        recurrent_bias,
        peephole,
        [h0, c0],
        [sequence, n.outputs[0], n.outputs[1]],
        bias_shape=n.in_descs[1].shape[:2],
        gate_axis=1,
        unsqueeze_params=False,
        direction=a["direction"],
    )


@lowering("lstmCell", input=FLOATS)
def lstm_cell(lw: Lowerer, n: Op) -> None:
    x, weight, recurrent_weight, h, c, bias, recurrent_bias, peephole = n.inputs
    if not _peephole_is_onnx(lw, n, 7, n.attrs["hidden_size"]):
        _unrolled_lstm_cell(lw, n)
        return
    axis0 = lw.ints([0])
    y_h, y_c = lw.fresh("lstm_h"), lw.fresh("lstm_c")
    _onnx_rnn(
        lw,
        "LSTM",
        n,
        lw.emit("Unsqueeze", [x, axis0]),
        weight,
        recurrent_weight,
        bias,
        recurrent_bias,
        peephole,
        [h, c],
        ["", y_h, y_c],
        bias_shape=n.in_descs[1].shape[:1],
        gate_axis=0,
        unsqueeze_params=True,
    )
    lw.emit("Squeeze", [y_h, axis0], n.outputs[0])
    lw.emit("Squeeze", [y_c, axis0], n.outputs[1])


# -- LSTM with webml's peepholes: the cell equations ---------------------------------------


class _Cell:
    """One direction's LSTM parameters (float32, 2-D) and its step equations."""

    def __init__(self, lw: Lowerer, n: Op, recurrent_weight: str, peephole: str) -> None:
        self.lw, self.layout = lw, n.attrs["layout"]
        self.activations = [_ACTIVATIONS[f] for f in n.attrs["activations"]]
        self.recurrent_weight = recurrent_weight
        self.peepholes = dict(zip("iof", lw.emit("Split", [peephole], 3, axis=0, num_outputs=3)))

    def step(self, xw: str, h: str, c: str) -> tuple[str, str]:
        """``xw`` = x · weightᵀ + biases « batch, 4 hidden »; returns the new (h, c)."""
        lw = self.lw
        gate, cell, filter_ = self.activations
        pre = lw.emit("Gemm", [h, self.recurrent_weight, xw], 1, transB=1)
        parts = dict(zip(self.layout, lw.emit("Split", [pre], 4, axis=1, num_outputs=4)))

        def peep(g: str) -> str:
            return lw.emit(gate, [lw.emit("Add", [parts[g], lw.emit("Mul", [c, self.peepholes[g]])])])

        i, f, o = peep("i"), peep("f"), peep("o")
        g = lw.emit(cell, [parts["g"]])
        c_new = lw.emit("Add", [lw.emit("Mul", [f, c]), lw.emit("Mul", [i, g])])
        h_new = lw.emit("Mul", [o, lw.emit(filter_, [c_new])])
        return h_new, c_new


def _float32(lw: Lowerer, n: Op, name: str | None) -> str | None:
    return name if name is None or n.in_type == "float32" else lw.cast(name, "float32")


def _result(lw: Lowerer, n: Op, name: str, output: str) -> None:
    """``name`` written to ``output``, cast back to the operator's data type."""
    if n.in_type == "float32":
        lw.emit("Identity", [name], output)
    else:
        lw.cast(name, n.in_type, output)


def _bias_sum(lw: Lowerer, bias: str | None, recurrent_bias: str | None) -> str | None:
    if bias is None or recurrent_bias is None:
        return bias or recurrent_bias
    return lw.emit("Add", [bias, recurrent_bias])


def _unrolled_lstm_cell(lw: Lowerer, n: Op) -> None:
    x, weight, recurrent_weight, h, c, bias, recurrent_bias, peephole = (_float32(lw, n, i) for i in n.inputs)
    b = _bias_sum(lw, bias, recurrent_bias)
    xw = lw.emit("Gemm", [x, weight, b], 1, transB=1)
    h_new, c_new = _Cell(lw, n, recurrent_weight, peephole).step(xw, h, c)
    _result(lw, n, h_new, n.outputs[0])
    _result(lw, n, c_new, n.outputs[1])


def _unrolled_lstm(lw: Lowerer, n: Op) -> None:
    x, weight, recurrent_weight, bias, recurrent_bias, peephole, h0, c0 = (_float32(lw, n, i) for i in n.inputs)
    a = n.attrs
    steps, hidden = a["steps"], a["hidden_size"]
    num_directions, batch = n.in_descs[1].shape[0], n.in_descs[0].shape[1]
    b = _bias_sum(lw, bias, recurrent_bias)
    zeros = lw.const(np.zeros((batch, hidden)), "float32") if h0 is None or c0 is None else None
    axis0, axes01 = lw.ints([0]), lw.ints([0, 1])

    def directions(name: str | None) -> list[str | None]:
        """``name``'s slice « ... » for each direction of « numDirections, ... »."""
        if name is None:
            return [None] * num_directions
        parts = [name] if num_directions == 1 else lw.emit("Split", [name], 2, axis=0, num_outputs=2)
        return [lw.emit("Squeeze", [part, axis0]) for part in parts]

    weights, recurrent_weights, biases, peepholes, h0s, c0s = map(
        directions, (weight, recurrent_weight, b, peephole, h0, c0)
    )
    finals_h, finals_c, sequences = [], [], []
    for d in range(num_directions):
        cell = _Cell(lw, n, recurrent_weights[d], peepholes[d])
        # x · weightᵀ + biases for every step at once « steps, batch, 4 hidden ».
        xw = lw.emit("MatMul", [x, lw.emit("Transpose", [weights[d]], 1, perm=[1, 0])])
        if b is not None:
            xw = lw.emit("Add", [xw, biases[d]])
        per_step = lw.emit("Split", [xw], steps, axis=0, num_outputs=steps) if steps > 1 else [xw]
        h, c = h0s[d] or zeros, c0s[d] or zeros
        hs: list[str] = [""] * steps
        backward = a["direction"] == "backward" or d == 1
        for t in range(steps - 1, -1, -1) if backward else range(steps):
            h, c = cell.step(lw.emit("Squeeze", [per_step[t], axis0]), h, c)
            hs[t] = h
        finals_h.append(lw.emit("Unsqueeze", [h, axis0]))
        finals_c.append(lw.emit("Unsqueeze", [c, axis0]))
        if a["return_sequence"]:
            steps_1 = [lw.emit("Unsqueeze", [s, axes01]) for s in hs]
            sequences.append(lw.emit("Concat", steps_1, 1, axis=0) if steps > 1 else steps_1[0])
    _join(lw, n, finals_h, 0, n.outputs[0])
    _join(lw, n, finals_c, 0, n.outputs[1])
    if a["return_sequence"]:
        _join(lw, n, sequences, 1, n.outputs[2])


def _join(lw: Lowerer, n: Op, parts: list[str], axis: int, output: str) -> None:
    """The directions' ``parts`` concatenated along ``axis``, cast back, written to ``output``."""
    if len(parts) == 1:
        _result(lw, n, parts[0], output)
        return
    joined = lw.emit("Concat", parts, output if n.in_type == "float32" else 1, axis=axis)
    if n.in_type != "float32":
        lw.cast(joined, n.in_type, output)
