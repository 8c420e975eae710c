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
from .quantize import Quantized

__all__ = ["Plan", "rebuild"]


@dataclass
class Plan:
    """What :func:`rebuild` changes.

    ``narrow``: "float16" to narrow every float32 operand (but those of the
    nodes in ``wide``, by index), or None to keep the graph's types.
    ``io_type``: the data type of the graph's float inputs and outputs.
    ``weights``: node index -> (argument, quantized weight) read through a dequantizeLinear.
    """

    narrow: str | None = None
    io_type: str = "float32"
    wide: set[int] = field(default_factory=set)
    weights: dict[int, tuple[str, int, Quantized]] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)  # node index -> layer name (for the new nodes' labels)


class _Replay:
    def __init__(self, graph: Graph, builder: MLGraphBuilder, plan: Plan) -> None:
        self.graph, self.b, self.plan = graph, builder, plan
        self.made: dict[tuple[int, str], MLOperand] = {}  # (old operand id, data type) -> new operand
        self.native: dict[int, str] = {}  # old operand id -> the data type it was made in
        self.dequantized: dict[int, MLOperand] = {}  # old constant id -> its dequantizeLinear

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

    def dequantize(self, oid: int, q: Quantized, label: str) -> MLOperand:
        if oid not in self.dequantized:
            b = self.b
            values = b.constant({"dataType": q.data_type, "shape": list(q.values.shape)}, q.values)
            blocks = list(q.scale.shape)
            scale = b.constant({"dataType": "float32", "shape": blocks}, q.scale)
            zero_point = b.constant({"dataType": q.data_type, "shape": blocks}, q.zero_point)
            self.dequantized[oid] = b.dequantize_linear(values, scale, zero_point, label=f"{label}.dequantize")
        return self.dequantized[oid]

    def node(self, index: int, node: Node) -> None:
        plan = self.plan
        wide = index in plan.wide
        want = None if plan.narrow is None else ("float32" if wide else plan.narrow)
        kwargs: dict[str, Any] = {}
        for param, ids in node.inputs.items():
            kwargs[param] = [self.get(i, want) for i in ids] if isinstance(ids, tuple) else self.get(ids, want)
        if index in plan.weights:
            param, oid, q = plan.weights[index]
            kwargs[param] = self.dequantize(oid, q, plan.labels.get(index, node.label))
        attrs = dict(node.attrs)
        if want == plan.narrow and plan.narrow and node.op == "cast" and attrs.get("data_type") == "float32":
            attrs["data_type"] = plan.narrow  # a cast to float32 inside the graph makes its narrow type
        result = getattr(self.b, OPS[node.op].method)(**kwargs, **_arguments(attrs), label=node.label)
        for oid, operand in zip(node.outputs, result if isinstance(result, list) else [result], strict=True):
            self.add(oid, operand)


def _arguments(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Node attributes as builder arguments: the IR's frozen tuples and mappings as lists and dicts."""

    def thaw(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: thaw(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return [thaw(v) for v in value]
        return value

    return {k: thaw(v) for k, v in attrs.items()}


def rebuild(graph: Graph, context: MLContext, plan: Plan) -> MLGraph:
    """A new MLGraph of ``context``: ``graph`` with ``plan``'s changes (same input and output names)."""
    b = MLGraphBuilder(context)
    replay = _Replay(graph, b, plan)
    for name, oid in graph.inputs.items():
        desc = graph.operands[oid]
        data_type = plan.io_type if desc.data_type == "float32" else desc.data_type
        replay.add(oid, b.input(name, {"dataType": data_type, "shape": list(desc.shape)}))
    for index, node in enumerate(graph.nodes):
        replay.node(index, node)
    return b.build({name: replay.get(oid, plan.io_type) for name, oid in graph.outputs.items()})
