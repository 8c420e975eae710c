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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...ops.checks import FLOATS
from ...ops.recurrent import PEEPHOLE_GATES
from .lowering import Arg, Lowerer, lowering

_ACTIVATIONS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
_DIRECTIONS = {"forward": "forward", "backward": "reverse", "both": "bidirectional"}
_KINDS = {"gru": "GRU", "gruCell": "GRU", "lstm": "LSTM", "lstmCell": "LSTM"}
_STATES = {"GRU": 1, "LSTM": 2}  # hidden state (and cell state)
# The gate order of ONNX's weights, in webml's gate names.
_ONNX_GATES = {"GRU": "zrn", "LSTM": "iofg"}
_DEFAULT_ACTIVATIONS = {"GRU": ("sigmoid", "tanh"), "LSTM": ("sigmoid", "tanh", "tanh")}


@lowering("gru", "gruCell", "lstm", "lstmCell", input=FLOATS)
def recurrent(  # the operands of the four, grouped by what they are
    lw: Lowerer, input: Arg, weight: Arg, recurrent_weight: Arg,
    bias: Arg | None = None, recurrent_bias: Arg | None = None, peephole_weight: Arg | None = None,
    hidden_state: Arg | None = None, cell_state: Arg | None = None,  # a cell's
    initial_hidden_state: Arg | None = None, initial_cell_state: Arg | None = None,  # a network's
    *, out: Arg | list[Arg], **attrs: Any,
) -> None:
    """The four operators as ONNX GRU and LSTM, whose outputs are the sequence Y, then the states Y_h (, Y_c).

    A cell (its weight 2-D, without the networks' leading « numDirections »
    axis) is a network of one step and one direction: Unsqueeze in, Squeeze
    out.  Its states are the required ``hidden_state`` (and ``cell_state``),
    a network's the optional ``initial_*`` ones.
    """
    kind, cell = _KINDS[lw.op], weight.rank == 2
    outputs = [out] if isinstance(out, Arg) else out
    states = ([hidden_state, cell_state] if cell else [initial_hidden_state, initial_cell_state])[: _STATES[kind]]
    rnn = _Rnn(
        lw, kind, input, weight, recurrent_weight, bias, recurrent_bias, peephole_weight, states, outputs, **attrs
    )
    if not _peephole_is_onnx(lw, peephole_weight, rnn.hidden_size):
        rnn.unrolled()
    elif not cell:
        sequence = outputs[len(states)] if rnn.return_sequence else ""
        rnn.onnx(input, [sequence, *outputs[: len(states)]])
    else:
        axis0 = lw.ints([0])
        ys = [lw.fresh(f"{kind.lower()}_{s}") for s in "hc"[: len(states)]]
        rnn.onnx(lw.emit("Unsqueeze", [input, axis0]), ["", *ys], axis0)
        for y, output in zip(ys, outputs):
            lw.emit("Squeeze", [y, axis0], output)


@dataclass(frozen=True)
class _Rnn:
    """One recurrent node as its lowering sees it: operands, outputs and attributes."""

    lw: Lowerer
    kind: str  # "GRU" or "LSTM"
    input: Arg
    weight: Arg
    recurrent_weight: Arg
    bias: Arg | None
    recurrent_bias: Arg | None
    peephole: Arg | None
    states: list[Arg | None]  # hidden (and cell) state
    outputs: list[Arg]  # webml's: the states, then the sequence
    hidden_size: int
    layout: str
    activations: Sequence[str]
    steps: int = 1
    direction: str = "forward"
    return_sequence: bool = False
    reset_after: bool = True

    def onnx(self, x: str, outputs: list[str], axis0: str | None = None) -> None:
        """An ONNX GRU/LSTM of input ``x``; ``outputs`` are its Y, Y_h(, Y_c) ("" for unused ones).

        The weights' and biases' axis of gates is the one before last.  A cell's
        2-D parameters and states are made 3-D (one direction) by Unsqueeze on ``axis0``.
        """
        lw, kind, layout, direction = self.lw, self.kind, self.layout, self.direction
        weight, bias, recurrent_bias = self.weight, self.bias, self.recurrent_bias
        gate_axis, target = weight.rank - 2, _ONNX_GATES[kind]

        def directional(name: str | None) -> str | None:
            return name if name is None or axis0 is None else lw.emit("Unsqueeze", [name, axis0])

        w = directional(_reorder(lw, weight, gate_axis, layout, target))
        r = directional(_reorder(lw, self.recurrent_weight, gate_axis, layout, target))
        b = None
        if bias is not None or recurrent_bias is not None:
            zeros = None
            if bias is None or recurrent_bias is None:
                zeros = lw.const(np.zeros(weight.shape[:-1]), weight.data_type)
            both = lw.emit("Concat", [bias or zeros, recurrent_bias or zeros], 1, axis=gate_axis)
            b = directional(_reorder(lw, both, gate_axis, layout, target, repeats=2))
        p = directional(self.peephole)
        inputs: list[str | None] = [x, w, r, b, None, *(directional(s) for s in self.states)]
        if kind == "LSTM":
            inputs.append(p)
        attrs: dict[str, Any] = {}
        if tuple(self.activations) != _DEFAULT_ACTIVATIONS[kind]:
            repeats = 2 if direction == "both" else 1
            attrs["activations"] = [_ACTIVATIONS[f] for f in self.activations] * repeats
        if kind == "GRU":
            attrs["linear_before_reset"] = int(self.reset_after)
        if direction != "forward":
            attrs["direction"] = _DIRECTIONS[direction]
        while outputs and not outputs[-1]:
            outputs = outputs[:-1]
        lw.emit(kind, inputs, outputs, hidden_size=self.hidden_size, **attrs)

    def unrolled(self) -> None:
        """lstm or lstmCell in the cell equations, in float32 (a cell's weight is 2-D)."""
        lw, steps, outputs = self.lw, self.steps, self.outputs
        num_directions, batch = self.weight.shape[0], self.input.shape[-2]
        operands = [self.input, self.weight, self.recurrent_weight, self.bias, self.recurrent_bias, self.peephole]
        x, w, rw, bias, recurrent_bias, peephole, h0, c0 = _float32(lw, [*operands, *self.states])
        b = _bias_sum(lw, bias, recurrent_bias)
        if self.weight.rank == 2:
            xw = lw.emit("Gemm", [x, w, b], 1, transB=1)
            h_new, c_new = _Cell(lw, self.layout, self.activations, rw, peephole).step(xw, h0, c0)
            _result(lw, h_new, outputs[0])
            _result(lw, c_new, outputs[1])
            return
        zeros = lw.const(np.zeros((batch, self.hidden_size)), "float32") if h0 is None or c0 is None else None
        axis0, axes01 = lw.ints([0]), lw.ints([0, 1])

        def directions(name: str | None) -> list[str | None]:
            """``name``'s slice « ... » for each direction of « numDirections, ... »."""
            if name is None:
                return [None] * num_directions
            parts = [name] if num_directions == 1 else lw.emit("Split", [name], 2, axis=0, num_outputs=2)
            return [lw.emit("Squeeze", [part, axis0]) for part in parts]

        weights, recurrent_weights, biases, peepholes, h0s, c0s = map(directions, (w, rw, b, peephole, h0, c0))
        finals_h, finals_c, sequences = [], [], []
        for d in range(num_directions):
            cell = _Cell(lw, self.layout, self.activations, recurrent_weights[d], peepholes[d])
            # x · weightᵀ + biases for every step at once « steps, batch, 4 hidden ».
            xw = lw.emit("MatMul", [x, lw.emit("Transpose", [weights[d]], 1, perm=[1, 0])])
            if b is not None:
                xw = lw.emit("Add", [xw, biases[d]])
            backward = self.direction == "backward" or d == 1
            h, c, hs = cell.over_time(xw, h0s[d] or zeros, c0s[d] or zeros, steps, backward, axis0)
            finals_h.append(lw.emit("Unsqueeze", [h, axis0]))
            finals_c.append(lw.emit("Unsqueeze", [c, axis0]))
            if self.return_sequence:
                steps_1 = [lw.emit("Unsqueeze", [s, axes01]) for s in hs]
                sequences.append(lw.emit("Concat", steps_1, 1, axis=0) if steps > 1 else steps_1[0])
        _join(lw, finals_h, 0, outputs[0])
        _join(lw, finals_c, 0, outputs[1])
        if self.return_sequence:
            _join(lw, sequences, 1, outputs[2])


def _reorder(lw: Lowerer, x: str, axis: int, layout: str, target: str, repeats: int = 1) -> str:
    """``x``'s gate blocks along ``axis`` (``repeats`` runs of ``layout``) reordered to ``target``'s order."""
    if layout == target:
        return x
    gates = len(layout)
    order = [r * gates + layout.index(g) for r in range(repeats) for g in target]
    parts = lw.emit("Split", [x], gates * repeats, axis=axis, num_outputs=gates * repeats)
    return lw.emit("Concat", [parts[i] for i in order], 1, axis=axis)


def _peephole_is_onnx(lw: Lowerer, peephole: Arg | None, hidden_size: int) -> bool:
    """Whether the peephole is absent, or a constant whose output-gate part is zero.

    Only then do ONNX's LSTM semantics match webml's (ONNX's output-gate
    peephole looks at the new cell state).
    """
    if peephole is None:
        return True
    array = lw.constant_value(peephole)
    if array is None:
        return False
    o = PEEPHOLE_GATES.index("o")
    return not np.any(np.asarray(array)[..., o * hidden_size : (o + 1) * hidden_size])


# -- LSTM with webml's peepholes: the cell equations ---------------------------------------


class _Cell:
    """One direction's LSTM parameters (float32, 2-D) and its step equations."""

    def __init__(
        self, lw: Lowerer, layout: str, activations: Sequence[str], recurrent_weight: str, peephole: str
    ) -> None:
        self.lw, self.layout = lw, layout
        self.activations = [_ACTIVATIONS[f] for f in activations]
        self.recurrent_weight = recurrent_weight
        self.peepholes = dict(zip(PEEPHOLE_GATES, lw.emit("Split", [peephole], 3, axis=0, num_outputs=3)))

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

    def over_time(
        self, xw: str, h: str, c: str, steps: int, backward: bool, axis0: str
    ) -> tuple[str, str, list[str]]:
        """``xw`` for every step « steps, batch, 4 hidden »; returns the final (h, c) and each step's h."""
        per_step = self.lw.emit("Split", [xw], steps, axis=0, num_outputs=steps) if steps > 1 else [xw]
        hs: list[str] = [""] * steps
        for t in range(steps - 1, -1, -1) if backward else range(steps):
            h, c = self.step(self.lw.emit("Squeeze", [per_step[t], axis0]), h, c)
            hs[t] = h
        return h, c, hs


def _float32(lw: Lowerer, operands: Sequence[Arg | None]) -> list[str | None]:
    """The operands in float32 (the unrolled equations' type), absent ones None."""
    return [a if a is None or a.data_type == "float32" else lw.cast(a, "float32") for a in operands]


def _result(lw: Lowerer, name: str, output: Arg) -> None:
    """``name`` written to ``output``, cast back to its data type."""
    if output.data_type == "float32":
        lw.emit("Identity", [name], output)
    else:
        lw.cast(name, output.data_type, output)


def _bias_sum(lw: Lowerer, bias: str | None, recurrent_bias: str | None) -> str | None:
    if bias is None or recurrent_bias is None:
        return bias or recurrent_bias
    return lw.emit("Add", [bias, recurrent_bias])


def _join(lw: Lowerer, parts: list[str], axis: int, output: Arg) -> None:
    """The directions' ``parts`` concatenated along ``axis``, cast back, written to ``output``."""
    if len(parts) == 1:
        _result(lw, parts[0], output)
        return
    joined = lw.emit("Concat", parts, output if output.data_type == "float32" else 1, axis=axis)
    if output.data_type != "float32":
        lw.cast(joined, output.data_type, output)
