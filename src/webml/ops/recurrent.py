"""Recurrent network operators: gru, gruCell, lstm, lstmCell.

The sequence operators (gru, lstm) take weights stacked per direction,
« numDirections, gates * hiddenSize, ... », and the cells take one
direction's slice.  Every operand after ``input`` must share its data type
(the tables' "same as input"); the builder has already checked the allowed
data types and ranks from the limits declared here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..ir import OperandDesc, Value
from .checks import FLOATS, check_shape, limit, one_of, unsigned_long, valid_dimension
from .registry import OPS, OPTIONAL, Call, Limit, not_differentiable, op, optional

ACTIVATIONS = ("relu", "sigmoid", "tanh")  # MLRecurrentNetworkActivation
DIRECTIONS = ("forward", "backward", "both")  # MLRecurrentNetworkDirection
GRU_LAYOUTS = ("zrn", "rzn")  # MLGruWeightLayout
LSTM_LAYOUTS = ("iofg", "ifgo")  # MLLstmWeightLayout

GRU_GATES, LSTM_GATES = 3, 4
# LSTM's peephole weights are packed input, output, forget whatever the layout.
PEEPHOLE_GATES = "iof"
Shape = tuple[int, ...]
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


@dataclass(frozen=True)
class CellKind:
    """GRU or LSTM: what sets them apart in the validation their four operators share.

    The networks (gru, lstm) and the cells (gruCell, lstmCell) take the same
    arguments and check them in the same steps: a network's operands have a
    leading « numDirections » axis that a cell's lack, and a network's states
    are the optional ``initial_*`` operands where a cell's are required (the
    operator's declaration says which).  Each rule hands over its arguments
    by name (its ``locals()``, taken first thing: exactly its parameters).
    """

    gates: int
    layouts: tuple[str, ...]
    activations: tuple[str, ...]  # the spec's defaults
    states: int  # hidden state (and cell state): as many outputs
    # lstm names steps == 0 before comparing it with the input's shape; gru does not.
    positive_steps: bool
    flags: tuple[str, ...] = ()  # boolean options kept as attributes (gru's reset_after)

    def network(self, call: Call, arguments: Mapping[str, Any]) -> list[Value]:
        """gru and lstm: [states] (+ the sequence of hidden states « steps, numDirections, batchSize, hiddenSize »)."""
        # WebIDL conversion of the arguments precedes the method steps.
        steps = unsigned_long(call, arguments["steps"], "steps")
        hidden_size = unsigned_long(call, arguments["hidden_size"], "hidden_size")
        direction = one_of(call, arguments["direction"], DIRECTIONS, "direction")
        layout, activations, flags = self.options(call, arguments)
        return_sequence = bool(arguments["return_sequence"])

        if self.positive_steps and steps == 0:
            raise call.error("steps must be greater than 0")
        num_directions = 2 if direction == "both" else 1
        operands = self.check(call, arguments, hidden_size, (num_directions,), steps)
        activations = activation_list(call, activations, self.activations)

        input = operands["input"]
        state = (num_directions, input.shape[1], hidden_size)
        descs = [OperandDesc(input.data_type, check_shape(call, state))] * self.states
        if return_sequence:
            descs.append(OperandDesc(input.data_type, check_shape(call, (steps, *state), "output sequence")))
        attrs = {"steps": steps, "hidden_size": hidden_size, **flags, "return_sequence": return_sequence}
        return call.emit(operands, descs, **attrs, direction=direction, layout=layout, activations=activations)

    def cell(self, call: Call, arguments: Mapping[str, Any]) -> Any:
        """gruCell and lstmCell: the new state(s), each « batchSize, hiddenSize » (one bare, several as a list)."""
        hidden_size = unsigned_long(call, arguments["hidden_size"], "hidden_size")
        layout, activations, flags = self.options(call, arguments)

        operands = self.check(call, arguments, hidden_size, ())
        activations = activation_list(call, activations, self.activations)

        input = operands["input"]
        desc = OperandDesc(input.data_type, check_shape(call, (input.shape[0], hidden_size)))
        outputs = desc if self.states == 1 else [desc] * self.states
        return call.emit(operands, outputs, hidden_size=hidden_size, **flags, layout=layout, activations=activations)

    def options(self, call: Call, arguments: Mapping[str, Any]) -> tuple[str, tuple[str, ...] | None, dict[str, bool]]:
        """WebIDL conversion of the weight layout, the activations and the boolean flags."""
        layout = one_of(call, arguments["layout"], self.layouts, "layout")
        activations = activation_names(call, arguments["activations"])
        return layout, activations, {name: bool(arguments[name]) for name in self.flags}

    def check(
        self,
        call: Call,
        arguments: Mapping[str, Any],
        hidden_size: int,
        directions: tuple[int, ...],
        steps: int | None = None,
    ) -> dict[str, Value | None]:
        """The method steps all four share; returns the operands by name.

        The required operands' data types (then, for a network, ``steps``
        against the input), their shapes, the bias dimension, then each
        optional operand's data type and shape.  ``directions`` leads every
        shape but the input's: « numDirections » for a network, () for a cell.
        """
        declared = OPS[call.op].operands
        operands = {o.param: arguments[o.param] for o in declared}
        input = operands["input"]
        shapes = operand_shapes(input, hidden_size, self.gates, directions)
        required = {o.param: operands[o.param] for o in declared if o.kind != OPTIONAL and o.param != "input"}
        same_type_as_input(call, input, **required)
        if steps is not None and input.shape[0] != steps:
            raise call.error(f"input.shape[0] ({input.shape[0]}) must equal steps ({steps})")
        for name, value in required.items():
            expect_shape(call, value, name, shapes[name])
        bias_dimension(call, hidden_size, self.gates)
        for name in (o.param for o in declared if o.kind == OPTIONAL):
            option(call, input, operands[name], name, shapes[name])
        return operands


def operand_shapes(input: Value, hidden_size: int, gates: int, directions: tuple[int, ...]) -> dict[str, Shape]:
    """Each operand's shape as the spec derives it from the input, hiddenSize and the directions."""
    batch_size, input_size = input.shape[-2:]
    stacked = (*directions, gates * hidden_size)
    state = (*directions, batch_size, hidden_size)
    return {
        "weight": (*stacked, input_size),
        "recurrent_weight": (*stacked, hidden_size),
        "bias": stacked,
        "recurrent_bias": stacked,
        "peephole_weight": (*directions, len(PEEPHOLE_GATES) * hidden_size),
        "hidden_state": state,
        "cell_state": state,
        "initial_hidden_state": state,
        "initial_cell_state": state,
    }


GRU = CellKind(GRU_GATES, GRU_LAYOUTS, GRU_ACTIVATIONS, states=1, positive_steps=False, flags=("reset_after",))
LSTM = CellKind(LSTM_GATES, LSTM_LAYOUTS, LSTM_ACTIVATIONS, states=2, positive_steps=True)


# -- the operators ----------------------------------------------------------------------


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
    return GRU.network(call, locals())


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
    return GRU.cell(call, locals())


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
    return LSTM.network(call, locals())


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
    return LSTM.cell(call, locals())


# -- gradients ------------------------------------------------------------------

not_differentiable(
    "no gradient rule for the fused recurrent operators; decompose the cell with matmul/sigmoid/tanh to train it",
    "gru",
    "gruCell",
    "lstm",
    "lstmCell",
)
