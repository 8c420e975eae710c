"""The transform: a float32 graph's IR replayed, node by node, into a new MLGraphBuilder.

Replaying through the builder (rather than writing IR) keeps every check of
the builder: the new graph is validated as any other, and an operator or
data type the context's backend lacks is refused there with the builder's
message.  Each old operand maps to new operands by data type, made on first
use: constants directly in the type asked for (no cast node for a weight),
other operands through one cached ``cast``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..api.builder import MLGraphBuilder
from ..api.context import MLContext
from ..api.graph import MLGraph
from ..api.operand import MLOperand
from ..ir import Graph, Node
from ..ops import OPS
from ..ops.replay import rule_arguments
from .quantize import Quantized

__all__ = ["Plan", "rebuild"]


@dataclass
class Plan:
    """What :func:`rebuild` changes.

    ``narrow``: "float16" to narrow every float32 operand (but those of the
    nodes in ``wide``, by index), or None to keep the graph's types.
    ``io_type``: the data type of the graph's float inputs and outputs.
    ``weights``: node index -> (argument, quantized weight) read through a dequantizeLinear.
    ``shifts``: node index -> a vector added to its output channels (bias correction): into a
    conv2d's constant bias, else by an ``add`` after the node.
    ``half``: node index -> (argument, constant) read as a float16 constant cast to float32.
    """

    narrow: str | None = None
    io_type: str = "float32"
    wide: set[int] = field(default_factory=set)
    weights: dict[int, tuple[str, int, Quantized]] = field(default_factory=dict)
    shifts: dict[int, np.ndarray] = field(default_factory=dict)
    half: dict[int, tuple[str, int]] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)  # node index -> layer name (for the new nodes' labels)

    def without(self, index: int) -> None:
        """Node ``index`` back to its float32 weight (no shift)."""
        for part in (self.weights, self.shifts, self.half):
            part.pop(index, None)

    def only(self, index: int) -> Plan:
        """A plan that changes node ``index``'s weight alone, as this one does."""
        alone = Plan(labels={index: self.labels.get(index, "")})
        for mine, theirs in ((self.weights, alone.weights), (self.shifts, alone.shifts), (self.half, alone.half)):
            if index in mine:
                theirs[index] = mine[index]
        return alone


class _Replay:
    def __init__(self, graph: Graph, builder: MLGraphBuilder, plan: Plan) -> None:
        self.graph, self.b, self.plan = graph, builder, plan
        self.made: dict[tuple[int, str], MLOperand] = {}  # (old operand id, data type) -> new operand
        self.native: dict[int, str] = {}  # old operand id -> the data type it was made in
        self.dequantized: dict[int, MLOperand] = {}  # old constant id -> its dequantizeLinear
        self.quantized: dict[int, tuple[MLOperand, MLOperand, MLOperand]] = {}  # old constant id -> its parts

    def add(self, oid: int, operand: MLOperand) -> None:
        self.made[(oid, operand.data_type)] = operand
        self.native[oid] = operand.data_type

    def get(self, oid: int, want: str | None) -> MLOperand:
        """Old operand ``oid`` as a new operand; a float32 one in ``want`` (None: as made)."""
        desc = self.graph.operands[oid]
        if want is None or desc.data_type != "float32":
            data_type = self.native.get(oid, desc.data_type)  # as made (a constant: as it is)
        else:
            data_type = want
        found = self.made.get((oid, data_type))
        if found is not None:
            return found
        if oid in self.graph.constants:
            array = np.asarray(self.graph.constants[oid]).astype(np.dtype(data_type), copy=False)
            made = self.b.constant({"dataType": data_type, "shape": list(desc.shape)}, array)
        else:
            made = self.b.cast(self.made[(oid, self.native[oid])], data_type)
        self.made[(oid, data_type)] = made
        return made

    def parts(self, oid: int, q: Quantized) -> tuple[MLOperand, MLOperand, MLOperand]:
        """The constants of quantized weight ``oid``: its values, scale and zero point."""
        if oid not in self.quantized:
            b = self.b
            blocks = list(q.scale.shape)
            self.quantized[oid] = (
                b.constant({"dataType": q.data_type, "shape": list(q.values.shape)}, q.values),
                b.constant({"dataType": "float32", "shape": blocks}, q.scale),
                b.constant({"dataType": q.data_type, "shape": blocks}, q.zero_point),
            )
        return self.quantized[oid]

    def dequantize(self, oid: int, q: Quantized, label: str) -> MLOperand:
        if oid not in self.dequantized:
            self.dequantized[oid] = self.b.dequantize_linear(*self.parts(oid, q), label=f"{label}.dequantize")
        return self.dequantized[oid]

    def gathered_rows(self, node: Node, q: Quantized, oid: int, indices: MLOperand, label: str) -> MLOperand | None:
        """An int8 embedding table's rows gathered, then dequantized: only the rows read are dequantized at
        each inference, not the table (an engine that does not fold the dequantizeLinear of a constant,
        as ONNX Runtime, would otherwise dequantize MiniLM's 11.7M weights per sentence).  Only for int8
        with one scale per row: int4 rows would leave the dequantizeLinear without a constant input,
        which the ONNX export then stores in the 8-bit carrier, doubling the file."""
        if q.data_type != "int8" or node.attrs.get("axis", 0) != 0 or q.scale.shape[0] != q.values.shape[0]:
            return None
        rows = [self.b.gather(part, indices, axis=0) for part in self.parts(oid, q)]
        return self.b.dequantize_linear(*rows, label=f"{label}.dequantize")

    def node(self, index: int, node: Node) -> None:
        plan = self.plan
        wide = index in plan.wide
        want = None if plan.narrow is None else ("float32" if wide else plan.narrow)
        kwargs: dict[str, Any] = {}
        for param, ids in node.inputs.items():
            kwargs[param] = [self.get(i, want) for i in ids] if isinstance(ids, tuple) else self.get(ids, want)
        label = plan.labels.get(index, node.label)
        if index in plan.weights:
            param, oid, q = plan.weights[index]
            if node.op == "gather" and (rows := self.gathered_rows(node, q, oid, kwargs["indices"], label)):
                self.add(node.outputs[0], rows)
                return
            kwargs[param] = self.dequantize(oid, q, label)
        if index in plan.half:
            param, oid = plan.half[index]
            kwargs[param] = self.b.cast(self.get(oid, "float16"), "float32", label=f"{label}.float16")
        shift = plan.shifts.get(index)
        bias = node.inputs.get("bias") if node.op == "conv2d" else None
        if shift is not None and node.op == "conv2d" and (bias is None or bias in self.graph.constants):
            total = shift if bias is None else np.asarray(self.graph.constants[bias], np.float32) + shift
            kwargs["bias"] = self.b.constant({"dataType": "float32", "shape": [shift.size]}, total)
            shift = None
        attrs = dict(node.attrs)
        if want == plan.narrow and plan.narrow and node.op == "cast" and attrs.get("data_type") == "float32":
            attrs["data_type"] = plan.narrow  # a cast to float32 inside the graph makes its narrow type
        result = getattr(self.b, OPS[node.op].method)(
            **kwargs, **rule_arguments(node.op, attrs, self.graph.operands[node.outputs[0]]), label=node.label
        )
        if shift is not None:
            result = self.b.add(result, self.shift_constant(node, shift), label=f"{label}.bias_correction")
        for oid, operand in zip(node.outputs, result if isinstance(result, list) else [result], strict=True):
            self.add(oid, operand)

    def shift_constant(self, node: Node, shift: np.ndarray) -> MLOperand:
        """``shift`` shaped to broadcast along the node's output channels."""
        shape = [shift.size]
        if node.op == "conv2d" and node.attrs.get("input_layout", "nchw") == "nchw":
            shape = [shift.size, 1, 1]
        return self.b.constant({"dataType": "float32", "shape": shape}, shift.reshape(shape))


def rebuild(
    graph: Graph, context: MLContext, plan: Plan, means: Mapping[str, tuple[int, int]] | None = None
) -> MLGraph:
    """A new MLGraph of ``context``: ``graph`` with ``plan``'s changes (same input and output names).

    ``means`` adds outputs: name -> (operand, axis) gives the operand's mean over every axis but ``axis``.
    """
    b = MLGraphBuilder(context)
    replay = _Replay(graph, b, plan)
    for name, oid in graph.inputs.items():
        desc = graph.operands[oid]
        data_type = plan.io_type if desc.data_type == "float32" else desc.data_type
        replay.add(oid, b.input(name, {"dataType": data_type, "shape": list(desc.shape)}))
    for index, node in enumerate(graph.nodes):
        replay.node(index, node)
    outputs = {name: replay.get(oid, plan.io_type) for name, oid in graph.outputs.items()}
    for name, (oid, axis) in (means or {}).items():
        operand = replay.get(oid, None)
        outputs[name] = b.reduce_mean(operand, axes=[a for a in range(len(operand.shape)) if a != axis])
    return b.build(outputs)
