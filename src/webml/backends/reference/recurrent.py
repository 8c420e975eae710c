"""Reference kernels of the recurrent operators, in float64.

The cells follow the equations of the spec's gruCell and lstmCell
emulations, vectorised over the batch, with the gates picked out of the
stacked weights by the layout and the activation functions the operator
holds.  gru and lstm follow the spec's decomposition into cells: a loop over
directions and time steps, the backward direction walking the steps in
reverse and writing each step's hidden state at its own time index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .kernels import kernel

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}

# LSTM's peephole weights are packed input, output, forget whatever the layout.
PEEPHOLE_GATES = "iof"


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


def gru_step(x, h, weight, recurrent_weight, bias, recurrent_bias, *, hidden_size, reset_after, layout, activations):
    """gruCell: x « batch, input », h « batch, hidden » -> the new hidden state."""
    gate, new = (ACTIVATIONS[a] for a in activations)
    s = gate_slices(layout, hidden_size)
    x_w = x @ weight.T
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


def lstm_step(x, h, c, weight, recurrent_weight, bias, recurrent_bias, peephole, *, hidden_size, layout, activations):
    """lstmCell: returns (new hidden state, new cell state)."""
    gate, cell, filter_ = (ACTIVATIONS[a] for a in activations)
    s = gate_slices(layout, hidden_size)
    pre = biases(bias, recurrent_bias) + (x @ weight.T + h @ recurrent_weight.T)
    p = gate_slices(PEEPHOLE_GATES, hidden_size)

    def peep(g: str) -> np.ndarray | float:
        # The peepholes of the input, forget and output gates all look at the incoming cell state.
        return 0.0 if peephole is None else c * peephole[p[g]]

    i = gate(peep("i") + pre[:, s["i"]])
    f = gate(peep("f") + pre[:, s["f"]])
    g = cell(pre[:, s["g"]])
    o = gate(peep("o") + pre[:, s["o"]])
    c_new = f * c + i * g
    return o * filter_(c_new), c_new


def run_directions(
    input: np.ndarray,
    direction: str,
    initial: Sequence[np.ndarray],
    step: Callable[[int, np.ndarray, tuple[np.ndarray, ...]], tuple[np.ndarray, ...]],
) -> tuple[list[np.ndarray], np.ndarray]:
    """Run ``step(dir, x_t, states) -> states`` over time for each direction.

    ``initial`` holds each state « numDirections, batch, hidden ».  Returns the
    final states (same shapes) and the sequence of hidden states (the first
    state) « steps, numDirections, batch, hidden », indexed by time step.
    """
    steps = input.shape[0]
    num_directions = initial[0].shape[0]
    sequence = np.empty((steps, *initial[0].shape))
    finals = [np.empty_like(s) for s in initial]
    for d in range(num_directions):
        states = tuple(s[d] for s in initial)
        backward = direction == "backward" or d == 1
        for t in range(steps - 1, -1, -1) if backward else range(steps):
            states = step(d, input[t], states)
            sequence[t, d] = states[0]
        for final, state in zip(finals, states):
            final[d] = state
    return finals, sequence


def initial_state(state: np.ndarray | None, num_directions: int, batch_size: int, hidden_size: int) -> np.ndarray:
    """An initial state, zeros when not given."""
    return np.zeros((num_directions, batch_size, hidden_size)) if state is None else state


def per_direction(t: np.ndarray | None, d: int) -> np.ndarray | None:
    return None if t is None else t[d]


@kernel("gruCell")
def gru_cell(input, weight, recurrent_weight, hidden_state, bias=None, recurrent_bias=None, *, out, **attrs):
    return gru_step(input, hidden_state, weight, recurrent_weight, bias, recurrent_bias, **attrs)


@kernel("gru")
def gru(
    input,
    weight,
    recurrent_weight,
    bias=None,
    recurrent_bias=None,
    initial_hidden_state=None,
    *,
    out,
    steps,
    hidden_size,
    reset_after,
    return_sequence,
    direction,
    layout,
    activations,
):
    num_directions = weight.shape[0]
    h0 = initial_state(initial_hidden_state, num_directions, input.shape[1], hidden_size)

    def step(d, x, states):
        (h,) = states
        args = (weight[d], recurrent_weight[d], per_direction(bias, d), per_direction(recurrent_bias, d))
        h = gru_step(
            x, h, *args, hidden_size=hidden_size, reset_after=reset_after, layout=layout, activations=activations
        )
        return (h,)

    (hidden,), sequence = run_directions(input, direction, [h0], step)
    # One output is returned bare, several as a list (the runtime's convention).
    return [hidden, sequence] if return_sequence else hidden


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
    out,
    **attrs,
):
    h, c = lstm_step(
        input, hidden_state, cell_state, weight, recurrent_weight, bias, recurrent_bias, peephole_weight, **attrs
    )
    return [h, c]


@kernel("lstm")
def lstm(
    input,
    weight,
    recurrent_weight,
    bias=None,
    recurrent_bias=None,
    peephole_weight=None,
    initial_hidden_state=None,
    initial_cell_state=None,
    *,
    out,
    steps,
    hidden_size,
    return_sequence,
    direction,
    layout,
    activations,
):
    num_directions, batch_size = weight.shape[0], input.shape[1]
    h0 = initial_state(initial_hidden_state, num_directions, batch_size, hidden_size)
    c0 = initial_state(initial_cell_state, num_directions, batch_size, hidden_size)

    def step(d, x, states):
        h, c = states
        args = (
            weight[d],
            recurrent_weight[d],
            per_direction(bias, d),
            per_direction(recurrent_bias, d),
            per_direction(peephole_weight, d),
        )
        return lstm_step(x, h, c, *args, hidden_size=hidden_size, layout=layout, activations=activations)

    (hidden, cell), sequence = run_directions(input, direction, [h0, c0], step)
    return [hidden, cell, sequence] if return_sequence else [hidden, cell]
