"""Recurrent network operators: gru, gruCell, lstm, lstmCell.

The sequence operators (gru, lstm) take weights stacked per direction,
« numDirections, gates * hiddenSize, ... », and the cells take one
direction's slice.  Every operand after ``input`` must share its data type
(the tables' "same as input"); the builder has already checked the allowed
data types and ranks from the limits declared here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..ir import OperandDesc, Value
from .checks import FLOATS, check_shape, limit, one_of, unsigned_long, valid_dimension
from .registry import Call, Limit, not_differentiable, op, optional

ACTIVATIONS = ("relu", "sigmoid", "tanh")  # MLRecurrentNetworkActivation
DIRECTIONS = ("forward", "backward", "both")  # MLRecurrentNetworkDirection
GRU_LAYOUTS = ("zrn", "rzn")  # MLGruWeightLayout
LSTM_LAYOUTS = ("iofg", "ifgo")  # MLLstmWeightLayout

GRU_GATES, LSTM_GATES = 3, 4
# The spec's defaults: GRU's update/reset and new gate; LSTM's input/forget/output
# gates, cell gate and the cell state's filter for the hidden state.
GRU_ACTIVATIONS = ("sigmoid", "tanh")
LSTM_ACTIVATIONS = ("sigmoid", "tanh", "tanh")


def rank(n: int) -> Limit:
    """float32 or float16 of exactly rank ``n`` (every operand of this family)."""
    return limit(FLOATS, n, n)


# -- shared checks --------------------------------------------------------------


def same_type_as_input(call: Call, input: Value, **operands: Value | None) -> None:
    """The tables' "same as input": every present operand has the input's data type."""
    for name, value in operands.items():
        if value is not None and value.data_type != input.data_type:
            raise call.error(f"{name} data type {value.data_type} must match input's {input.data_type}")


def expect_shape(call: Call, value: Value | None, name: str, shape: Sequence[int]) -> None:
    """An operand's shape must equal the one the spec derives from the other arguments."""
    if value is not None and tuple(value.shape) != tuple(shape):
        raise call.error(f"{name} shape {list(value.shape)} must be {list(shape)}")


def option(call: Call, input: Value, value: Value | None, name: str, shape: Sequence[int]) -> None:
    """An optional operand (if it exists): its data type, then its shape."""
    same_type_as_input(call, input, **{name: value})
    expect_shape(call, value, name, shape)


def bias_dimension(call: Call, hidden_size: int, gates: int) -> None:
    """hiddenSize * 2 * gates must be a valid dimension.

    Some platforms take bias and recurrentBias concatenated, « 2 * gates * hiddenSize ».
    """
    if not valid_dimension(hidden_size * 2 * gates):
        raise call.error(f"hidden_size * {2 * gates} ({hidden_size * 2 * gates}) is not a valid dimension")


def activation_names(call: Call, activations: Any) -> tuple[str, ...] | None:
    """WebIDL conversion of a ``sequence<MLRecurrentNetworkActivation>`` (None when absent)."""
    if activations is None:
        return None
    if isinstance(activations, (str, bytes, Mapping)):
        raise call.error(f"activations must be a sequence of activation names, got {activations!r}")
    try:
        items = list(activations)
    except TypeError:
        raise call.error(f"activations must be a sequence of activation names, got {activations!r}") from None
    return tuple(one_of(call, a, ACTIVATIONS, f"activations[{i}]") for i, a in enumerate(items))


def activation_list(call: Call, activations: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """The method step: given activations must be exactly as many as the default's."""
    if activations is None:
        return default
    if len(activations) != len(default):
        raise call.error(f"activations must have {len(default)} entries, got {len(activations)}")
    return activations


def sequence_shapes(
    call: Call, input: Value, weight: Value, recurrent_weight: Value, steps: int, direction: str
) -> tuple[int, int, int]:
    """The steps gru and lstm share before the weights' shapes; returns (numDirections, batchSize, inputSize)."""
    same_type_as_input(call, input, weight=weight, recurrent_weight=recurrent_weight)
    if input.shape[0] != steps:
        raise call.error(f"input.shape[0] ({input.shape[0]}) must equal steps ({steps})")
    _, batch_size, input_size = input.shape
    num_directions = 2 if direction == "both" else 1
    return num_directions, batch_size, input_size


def sequence_outputs(
    call: Call, input: Value, steps: int, hidden_size: int, num_directions: int, states: int, return_sequence: bool
) -> list[OperandDesc]:
    """``states`` outputs « numDirections, batchSize, hiddenSize », then the optional 4-D sequence."""
    batch_size = input.shape[1]
    state = check_shape(call, (num_directions, batch_size, hidden_size))
    descs = [OperandDesc(input.data_type, state)] * states
    if return_sequence:
        sequence = check_shape(call, (steps, num_directions, batch_size, hidden_size), "output sequence")
        descs.append(OperandDesc(input.data_type, sequence))
    return descs


# -- gru ------------------------------------------------------------------------------


@op(
    "gru",
    family="recurrent",
    input=rank(3),
    weight=rank(3),
    recurrentWeight=rank(3),
    bias=optional(rank(2)),
    recurrentBias=optional(rank(2)),
    initialHiddenState=optional(rank(3)),
    output0=rank(3),
    output1=rank(4),
)
def gru(
    call: Call,
    input: Value,
    weight: Value,
    recurrent_weight: Value,
    steps: Any,
    hidden_size: Any,
    *,
    bias: Value | None = None,
    recurrent_bias: Value | None = None,
    initial_hidden_state: Value | None = None,
    reset_after: Any = True,
    return_sequence: Any = False,
    direction: Any = "forward",
    layout: Any = "zrn",
    activations: Any = None,
) -> list[Value]:
    """A GRU network over ``steps`` time steps; returns [last hidden state] (+ the sequence of hidden states)."""
    # WebIDL conversion of the arguments precedes the method steps.
    steps = unsigned_long(call, steps, "steps")
    hidden_size = unsigned_long(call, hidden_size, "hidden_size")
    direction = one_of(call, direction, DIRECTIONS, "direction")
    layout = one_of(call, layout, GRU_LAYOUTS, "layout")
    activations = activation_names(call, activations)
    reset_after, return_sequence = bool(reset_after), bool(return_sequence)

    num_directions, batch_size, input_size = sequence_shapes(call, input, weight, recurrent_weight, steps, direction)
    gates = GRU_GATES * hidden_size
    expect_shape(call, weight, "weight", (num_directions, gates, input_size))
    expect_shape(call, recurrent_weight, "recurrent_weight", (num_directions, gates, hidden_size))
    bias_dimension(call, hidden_size, GRU_GATES)
    option(call, input, bias, "bias", (num_directions, gates))
    option(call, input, recurrent_bias, "recurrent_bias", (num_directions, gates))
    option(call, input, initial_hidden_state, "initial_hidden_state", (num_directions, batch_size, hidden_size))
    activations = activation_list(call, activations, GRU_ACTIVATIONS)

    descs = sequence_outputs(call, input, steps, hidden_size, num_directions, 1, return_sequence)
    return call.emit(
        {
            "input": input,
            "weight": weight,
            "recurrent_weight": recurrent_weight,
            "bias": bias,
            "recurrent_bias": recurrent_bias,
            "initial_hidden_state": initial_hidden_state,
        },
        descs,
        steps=steps,
        hidden_size=hidden_size,
        reset_after=reset_after,
        return_sequence=return_sequence,
        direction=direction,
        layout=layout,
        activations=activations,
    )


@op(
    "gruCell",
    family="recurrent",
    input=rank(2),
    weight=rank(2),
    recurrentWeight=rank(2),
    hiddenState=rank(2),
    bias=optional(rank(1)),
    recurrentBias=optional(rank(1)),
    output=rank(2),
)
def gru_cell(
    call: Call,
    input: Value,
    weight: Value,
    recurrent_weight: Value,
    hidden_state: Value,
    hidden_size: Any,
    *,
    bias: Value | None = None,
    recurrent_bias: Value | None = None,
    reset_after: Any = True,
    layout: Any = "zrn",
    activations: Any = None,
) -> Value:
    """One GRU time step; returns the new hidden state « batchSize, hiddenSize »."""
    hidden_size = unsigned_long(call, hidden_size, "hidden_size")
    layout = one_of(call, layout, GRU_LAYOUTS, "layout")
    activations = activation_names(call, activations)
    reset_after = bool(reset_after)

    same_type_as_input(call, input, weight=weight, recurrent_weight=recurrent_weight, hidden_state=hidden_state)
    batch_size, input_size = input.shape
    gates = GRU_GATES * hidden_size
    expect_shape(call, weight, "weight", (gates, input_size))
    expect_shape(call, recurrent_weight, "recurrent_weight", (gates, hidden_size))
    expect_shape(call, hidden_state, "hidden_state", (batch_size, hidden_size))
    bias_dimension(call, hidden_size, GRU_GATES)
    option(call, input, bias, "bias", (gates,))
    option(call, input, recurrent_bias, "recurrent_bias", (gates,))
    activations = activation_list(call, activations, GRU_ACTIVATIONS)

    shape = check_shape(call, (batch_size, hidden_size))
    return call.emit(
        {
            "input": input,
            "weight": weight,
            "recurrent_weight": recurrent_weight,
            "hidden_state": hidden_state,
            "bias": bias,
            "recurrent_bias": recurrent_bias,
        },
        OperandDesc(input.data_type, shape),
        hidden_size=hidden_size,
        reset_after=reset_after,
        layout=layout,
        activations=activations,
    )


# -- lstm -----------------------------------------------------------------------------


@op(
    "lstm",
    family="recurrent",
    input=rank(3),
    weight=rank(3),
    recurrentWeight=rank(3),
    bias=optional(rank(2)),
    recurrentBias=optional(rank(2)),
    peepholeWeight=optional(rank(2)),
    initialHiddenState=optional(rank(3)),
    initialCellState=optional(rank(3)),
    output0=rank(3),
    output1=rank(3),
    output2=rank(4),
)
def lstm(
    call: Call,
    input: Value,
    weight: Value,
    recurrent_weight: Value,
    steps: Any,
    hidden_size: Any,
    *,
    bias: Value | None = None,
    recurrent_bias: Value | None = None,
    peephole_weight: Value | None = None,
    initial_hidden_state: Value | None = None,
    initial_cell_state: Value | None = None,
    return_sequence: Any = False,
    direction: Any = "forward",
    layout: Any = "iofg",
    activations: Any = None,
) -> list[Value]:
    """An LSTM network over ``steps`` time steps; returns [hidden state, cell state] (+ the hidden sequence)."""
    steps = unsigned_long(call, steps, "steps")
    hidden_size = unsigned_long(call, hidden_size, "hidden_size")
    direction = one_of(call, direction, DIRECTIONS, "direction")
    layout = one_of(call, layout, LSTM_LAYOUTS, "layout")
    activations = activation_names(call, activations)
    return_sequence = bool(return_sequence)

    # Unlike gru, lstm's steps name steps == 0 before comparing it with the input's shape.
    if steps == 0:
        raise call.error("steps must be greater than 0")
    num_directions, batch_size, input_size = sequence_shapes(call, input, weight, recurrent_weight, steps, direction)
    gates = LSTM_GATES * hidden_size
    expect_shape(call, weight, "weight", (num_directions, gates, input_size))
    expect_shape(call, recurrent_weight, "recurrent_weight", (num_directions, gates, hidden_size))
    bias_dimension(call, hidden_size, LSTM_GATES)
    state = (num_directions, batch_size, hidden_size)
    option(call, input, bias, "bias", (num_directions, gates))
    option(call, input, recurrent_bias, "recurrent_bias", (num_directions, gates))
    option(call, input, peephole_weight, "peephole_weight", (num_directions, 3 * hidden_size))
    option(call, input, initial_hidden_state, "initial_hidden_state", state)
    option(call, input, initial_cell_state, "initial_cell_state", state)
    activations = activation_list(call, activations, LSTM_ACTIVATIONS)

    descs = sequence_outputs(call, input, steps, hidden_size, num_directions, 2, return_sequence)
    return call.emit(
        {
            "input": input,
            "weight": weight,
            "recurrent_weight": recurrent_weight,
            "bias": bias,
            "recurrent_bias": recurrent_bias,
            "peephole_weight": peephole_weight,
            "initial_hidden_state": initial_hidden_state,
            "initial_cell_state": initial_cell_state,
        },
        descs,
        steps=steps,
        hidden_size=hidden_size,
        return_sequence=return_sequence,
        direction=direction,
        layout=layout,
        activations=activations,
    )


@op(
    "lstmCell",
    family="recurrent",
    input=rank(2),
    weight=rank(2),
    recurrentWeight=rank(2),
    hiddenState=rank(2),
    cellState=rank(2),
    bias=optional(rank(1)),
    recurrentBias=optional(rank(1)),
    peepholeWeight=optional(rank(1)),
    output0=rank(2),
    output1=rank(2),
)
def lstm_cell(
    call: Call,
    input: Value,
    weight: Value,
    recurrent_weight: Value,
    hidden_state: Value,
    cell_state: Value,
    hidden_size: Any,
    *,
    bias: Value | None = None,
    recurrent_bias: Value | None = None,
    peephole_weight: Value | None = None,
    layout: Any = "iofg",
    activations: Any = None,
) -> list[Value]:
    """One LSTM time step; returns [hidden state, cell state], each « batchSize, hiddenSize »."""
    hidden_size = unsigned_long(call, hidden_size, "hidden_size")
    layout = one_of(call, layout, LSTM_LAYOUTS, "layout")
    activations = activation_names(call, activations)

    same_type_as_input(
        call, input, weight=weight, recurrent_weight=recurrent_weight, hidden_state=hidden_state, cell_state=cell_state
    )
    batch_size, input_size = input.shape
    gates = LSTM_GATES * hidden_size
    expect_shape(call, weight, "weight", (gates, input_size))
    expect_shape(call, recurrent_weight, "recurrent_weight", (gates, hidden_size))
    expect_shape(call, hidden_state, "hidden_state", (batch_size, hidden_size))
    expect_shape(call, cell_state, "cell_state", (batch_size, hidden_size))
    bias_dimension(call, hidden_size, LSTM_GATES)
    option(call, input, bias, "bias", (gates,))
    option(call, input, recurrent_bias, "recurrent_bias", (gates,))
    option(call, input, peephole_weight, "peephole_weight", (3 * hidden_size,))
    activations = activation_list(call, activations, LSTM_ACTIVATIONS)

    desc = OperandDesc(input.data_type, check_shape(call, (batch_size, hidden_size)))
    return call.emit(
        {
            "input": input,
            "weight": weight,
            "recurrent_weight": recurrent_weight,
            "hidden_state": hidden_state,
            "cell_state": cell_state,
            "bias": bias,
            "recurrent_bias": recurrent_bias,
            "peephole_weight": peephole_weight,
        },
        [desc, desc],
        hidden_size=hidden_size,
        layout=layout,
        activations=activations,
    )


# -- gradients ------------------------------------------------------------------

not_differentiable(
    "no gradient rule for the fused recurrent operators; decompose the cell with matmul/sigmoid/tanh to train it",
    "gru",
    "gruCell",
    "lstm",
    "lstmCell",
)
