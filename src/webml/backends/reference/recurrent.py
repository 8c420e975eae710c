"""Reference kernels of the recurrent operators, in float64.

The cells follow the equations of the spec's gruCell and lstmCell
emulations, vectorised over the batch, with the gates picked out of the
stacked weights by the layout and the activation functions the operator
holds.  gru and lstm follow the spec's decomposition into cells: a loop over
directions and time steps, the backward direction walking the steps in
reverse and writing each step's hidden state at its own time index.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...ops.recurrent import PEEPHOLE_GATES
from .kernels import kernel

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}


def gate_slices(layout: str, hidden_size: int) -> dict[str, slice]:
    """Each gate's rows of the stacked weights (and entries of the biases): the layout names their order."""
    return {g: slice(k * hidden_size, (k + 1) * hidden_size) for k, g in enumerate(layout)}


def biases(bias: np.ndarray | None, recurrent_bias: np.ndarray | None) -> np.ndarray | float:
    """bias + recurrentBias, an absent one counting as zero."""
    total = 0.0
    for b in (bias, recurrent_bias):
        if b is not None:
            total = total + b
    return total


@kernel("gruCell")
def gru_cell(
    input,
    weight,
    recurrent_weight,
    hidden_state,
    bias=None,
    recurrent_bias=None,
    *,
    out=None,
    hidden_size,
    reset_after,
    layout,
    activations,
):
    """input « batch, input », hidden_state « batch, hidden » -> the new hidden state."""
    gate, new = (ACTIVATIONS[a] for a in activations)
    s = gate_slices(layout, hidden_size)
    h = hidden_state
    x_w = input @ weight.T
    h_r = h @ recurrent_weight.T
    b = bias if bias is not None else np.zeros(len(weight))
    rb = recurrent_bias if recurrent_bias is not None else np.zeros(len(weight))
    z = gate(b[s["z"]] + rb[s["z"]] + x_w[:, s["z"]] + h_r[:, s["z"]])
    r = gate(b[s["r"]] + rb[s["r"]] + x_w[:, s["r"]] + h_r[:, s["r"]])
    if reset_after:
        # The reset gate scales the recurrent term after its matrix product.
        n = new(b[s["n"]] + x_w[:, s["n"]] + r * (rb[s["n"]] + h_r[:, s["n"]]))
    else:
        n = new(b[s["n"]] + rb[s["n"]] + x_w[:, s["n"]] + (r * h) @ recurrent_weight[s["n"]].T)
    return z * h + n * (1.0 - z)


@kernel("lstmCell")
def lstm_cell(
    input,
    weight,
    recurrent_weight,
    hidden_state,
    cell_state,
    bias=None,
    recurrent_bias=None,
    peephole_weight=None,
    *,
    out=None,
    hidden_size,
    layout,
    activations,
):
    """Returns [new hidden state, new cell state]."""
    gate, cell, filter_ = (ACTIVATIONS[a] for a in activations)
    s = gate_slices(layout, hidden_size)
    c = cell_state
    pre = biases(bias, recurrent_bias) + (input @ weight.T + hidden_state @ recurrent_weight.T)
    p = gate_slices(PEEPHOLE_GATES, hidden_size)

    def peep(g: str) -> np.ndarray | float:
        # The peepholes of the input, forget and output gates all look at the incoming cell state.
        return 0.0 if peephole_weight is None else c * peephole_weight[p[g]]

    i = gate(peep("i") + pre[:, s["i"]])
    f = gate(peep("f") + pre[:, s["f"]])
    g = cell(pre[:, s["g"]])
    o = gate(peep("o") + pre[:, s["o"]])
    c_new = f * c + i * g
    return [o * filter_(c_new), c_new]


def network(
    cell: Callable[..., Any],
    input: np.ndarray,
    direction: str,
    states: dict[str, np.ndarray | None],
    operands: dict[str, np.ndarray | None],
    *,
    hidden_size: int,
    **attrs: Any,
) -> list[np.ndarray]:
    """Run the ``cell`` kernel over time for each direction: the spec's decomposition of gru and lstm.

    ``states`` holds the cell's initial state operands by the cell's names
    (hidden first), each « numDirections, batch, hidden » or None (zeros);
    ``operands`` the cell's other operands by name, each with a leading
    « numDirections » axis or None; ``attrs`` the cell's attributes.  Returns
    the final states (same shapes), then the sequence of hidden states
    « steps, numDirections, batch, hidden », indexed by time step.
    """
    steps, batch_size = input.shape[:2]
    num_directions = operands["weight"].shape[0]
    zeros = np.zeros((num_directions, batch_size, hidden_size))
    sequence = np.empty((steps, num_directions, batch_size, hidden_size))
    finals = {name: np.empty_like(zeros) for name in states}
    for d in range(num_directions):
        current = {name: (zeros if s is None else s)[d] for name, s in states.items()}
        per_direction = {name: None if v is None else v[d] for name, v in operands.items()}
        backward = direction == "backward" or d == 1
        for t in range(steps - 1, -1, -1) if backward else range(steps):
            new = cell(input=input[t], **current, **per_direction, hidden_size=hidden_size, **attrs)
            # The cell returns its new states in the order of ``states`` (one bare).
            current = dict(zip(current, new if isinstance(new, list) else [new]))
            sequence[t, d] = current["hidden_state"]
        for name, state in current.items():
            finals[name][d] = state
    return [*finals.values(), sequence]


@kernel("gru")
def gru(
    input, weight, recurrent_weight, bias=None, recurrent_bias=None, initial_hidden_state=None,
    *, out, steps, return_sequence, direction, **attrs,
):
    operands = {"weight": weight, "recurrent_weight": recurrent_weight, "bias": bias, "recurrent_bias": recurrent_bias}
    hidden, sequence = network(gru_cell, input, direction, {"hidden_state": initial_hidden_state}, operands, **attrs)
    # One output is returned bare, several as a list (the runtime's convention).
    return [hidden, sequence] if return_sequence else hidden


@kernel("lstm")
def lstm(
    input, weight, recurrent_weight, bias=None, recurrent_bias=None, peephole_weight=None,
    initial_hidden_state=None, initial_cell_state=None, *, out, steps, return_sequence, direction, **attrs,
):
    states = {"hidden_state": initial_hidden_state, "cell_state": initial_cell_state}
    operands = {
        "weight": weight, "recurrent_weight": recurrent_weight, "bias": bias,
        "recurrent_bias": recurrent_bias, "peephole_weight": peephole_weight,
    }
    outputs = network(lstm_cell, input, direction, states, operands, **attrs)
    return outputs if return_sequence else outputs[:2]
