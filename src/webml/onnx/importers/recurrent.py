"""Recurrent ONNX operators: LSTM and GRU, as WebNN's lstm and gru.

ONNX's gate orders are WebNN's "iofg" (LSTM: input, output, forget, cell)
and "zrn" (GRU: update, reset, hidden); its bias input stacks the input and
recurrent biases, split here; ``linear_before_reset`` is WebNN's
``reset_after``.  ``layout=1`` (batch first) is transposed in and out.
"""

from __future__ import annotations

import numpy as np

from . import onnx_op

DIRECTIONS = {"forward": "forward", "reverse": "backward", "bidirectional": "both"}
ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu"}


def _check(node, attrs, analysis):
    if "clip" in attrs:
        return "clip is not supported"
    if attrs.get("input_forget", 0):  # LSTM's only
        return "input_forget=1 is not supported"
    if attrs.get("activation_alpha") or attrs.get("activation_beta"):
        return "activation_alpha/activation_beta are not supported"
    if node.op_type == "LSTM" and len(node.input) > 7 and node.input[7]:
        peephole = analysis.constant(node.input[7])
        if peephole is None or np.any(peephole):
            return (
                "peepholes (P) are not supported: ONNX's output gate looks at the new cell state, "
                "WebNN's lstm at the previous one"
            )
    direction = attrs["direction"]
    if direction not in DIRECTIONS:
        return f"direction={direction!r} is not supported"
    activations = _activations(attrs)
    unknown = sorted({a for a in activations if a not in ACTIVATIONS})
    if unknown:
        return f"activations {unknown} are not supported (only Sigmoid, Tanh and Relu)"
    if direction == "bidirectional" and activations:
        half = len(activations) // 2
        if activations[:half] != activations[half:]:
            return "different activations per direction are not supported"
    return None


def _activations(attrs) -> list[str]:
    """The activations named, lowercase; none named (the schema has no default: it differs per operator)
    leaves WebNN's defaults, which are ONNX's."""
    return [a.lower() for a in attrs.get("activations", [])]


def _arguments(imp, node, attrs, gates: int):
    """(positional arguments, the options lstm and gru share, batch first) of an LSTM or GRU node."""
    b = imp.builder
    x, w, r = imp.operand(node, 0), imp.operand(node, 1), imp.operand(node, 2)
    for name, operand in (("X", x), ("W", w), ("R", r)):
        if len(operand.shape) != 3:
            raise imp.error(f"input {name} has rank {len(operand.shape)}, not 3")
    batch_first = attrs.get("layout", 0) == 1  # from opset 14
    if batch_first:
        x = b.transpose(x, permutation=[1, 0, 2])
    hidden = attrs.get("hidden_size", r.shape[-1])  # no schema default: R's shape says it
    steps = x.shape[0]
    lens = imp.static(node, 4)
    if imp.has(node, 4) and not np.all(np.asarray(lens) == steps):
        raise imp.error("sequence_lens shorter than the sequence are not supported")
    bias = recurrent_bias = None
    if imp.has(node, 3):
        stacked = imp.value(node.input[3])
        if isinstance(stacked, np.ndarray):
            bias = imp.as_operand(np.ascontiguousarray(stacked[:, : gates * hidden]))
            recurrent_bias = imp.as_operand(np.ascontiguousarray(stacked[:, gates * hidden :]))
        else:
            bias, recurrent_bias = b.split(stacked, 2, axis=1)
    direction = DIRECTIONS[attrs["direction"]]
    activations = [ACTIVATIONS[a] for a in _activations(attrs)]
    half = len(activations) // 2 if direction == "both" else len(activations)
    options = {
        "bias": bias,
        "recurrent_bias": recurrent_bias,
        "initial_hidden_state": _state(imp, node, 5, batch_first),
        "return_sequence": bool(node.output and node.output[0]),
        "direction": direction,
        "activations": activations[:half] or None,
    }
    return (x, w, r, steps, hidden), options, batch_first


def _state(imp, node, index, batch_first):
    state = imp.operand(node, index)
    if state is not None and batch_first:
        state = imp.builder.transpose(state, permutation=[1, 0, 2])
    return state


def _outputs(imp, states, sequence, batch_first):
    """ONNX's outputs (Y, Y_h[, Y_c]) from WebNN's (states..., sequence or None)."""
    b = imp.builder
    if batch_first:
        states = [b.transpose(s, permutation=[1, 0, 2]) for s in states]
        if sequence is not None:
            sequence = b.transpose(sequence, permutation=[2, 0, 1, 3])
    return [sequence, *states]


@onnx_op("LSTM", static=(4,), check=_check)
def lstm(imp, node, attrs):
    args, options, batch_first = _arguments(imp, node, attrs, 4)
    results = imp.builder.lstm(
        *args,
        peephole_weight=imp.operand(node, 7),
        initial_cell_state=_state(imp, node, 6, batch_first),
        layout="iofg",
        **options,
    )
    sequence = results[2] if options["return_sequence"] else None
    return _outputs(imp, results[:2], sequence, batch_first)


@onnx_op("GRU", static=(4,), check=_check)
def gru(imp, node, attrs):
    args, options, batch_first = _arguments(imp, node, attrs, 3)
    results = imp.builder.gru(*args, reset_after=bool(attrs["linear_before_reset"]), layout="zrn", **options)
    if not isinstance(results, list):
        results = [results]
    sequence = results[1] if options["return_sequence"] else None
    return _outputs(imp, results[:1], sequence, batch_first)
