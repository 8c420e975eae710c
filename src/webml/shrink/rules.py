"""What :func:`webml.shrink.shrink` narrows, and what it keeps in float32 and why.

float16 (the rule, one per operator, read from the node alone):

* ``softmax``: its sum of exponentials runs over a whole axis (a vocabulary,
  a sequence); float16's 11-bit mantissa loses the small terms and the
  probabilities drift, so it runs in float32.
* any operator with a float32 constant operand beyond float16's range
  (:data:`FLOAT16_MAX`), such as the -3.4e38 of an attention mask: in
  float16 it becomes -inf and ``0 * -inf`` a NaN, so the operator runs in
  float32 (its result, cast back, may still be -inf, which softmax takes).
* ``layerNormalization`` and ``instanceNormalization``: they *compute* a mean
  and a variance over the normalized axes; the variance of float16 values
  (a difference of squares) cancels badly and a small epsilon (1e-12 in
  BERT) is below float16's smallest subnormal, so they run in float32.
  ``batchNormalization`` is not kept: its statistics are given constants, so
  it is a per-channel affine map that float16 holds well.
* the summing reductions (``reduceSum``, ``reduceMean``, ``reduceL1``,
  ``reduceL2``, ``reduceSumSquare``, ``reduceLogSumExp``, ``reduceLogSum``,
  ``reduceProduct``) over :data:`LONG_REDUCTION` elements or more: float16's
  running sum stops growing once the terms fall below its step (2048 + 1 is
  2048 in float16), so long sums run in float32; short ones stay float16.

A kept operator reads its inputs cast to float32 (its constant operands are
kept float32 rather than cast) and its result is cast back to float16 for
the next one.

int8 / int4 (weight-only; with int4, convolution filters are int8: a filter has few weights per output
channel and block, 9 for a 3x3 depthwise one, and 16 levels lose too much of them; EfficientNet-Lite0's
top-1 fell to 5%): the weight operands of ``conv2d`` (``filter``),
``matmul`` (``b``), ``gemm`` (``b``) and, unless ``keep_embeddings``,
``gather``'s table (``input``, one scale per row), when they are float32 constants of rank 2 or
more.  Kept float32: the first convolution (it reads the raw input, whose few
channels leave little to share a scale and whose error every later layer
inherits), for int4 the output layer: the last ``matmul`` / ``gemm`` when a
graph output is its result through weightless, normalization-free operators
(a classifier: its error lands on the logits unfiltered, and int4's 16 levels
moved EfficientNet-Lite0's top-1 agreement from 0.946 to 0.929; int8's 256
levels per output channel keep it, and that layer is often a quarter of the
file, so int8 quantizes it; a transformer's last feed-forward layer, which a
layer normalization follows, is not one: MiniLM-L3's cosine was the same
either way) and, by option, the embedding tables (a quantized row is an
input the model has never seen).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node

__all__ = [
    "FLOAT16_MAX",
    "LONG_REDUCTION",
    "WIDE_FLOAT16_OPS",
    "WeightSite",
    "float16_reason",
    "layer_name",
    "weight_sites",
]

#: A summing reduction over this many elements or more stays float32 (float16's step at 1024 is 1).
LONG_REDUCTION = 1024

#: Operators always kept float32 in a float16 graph, with why.
WIDE_FLOAT16_OPS = {
    "softmax": "softmax sums exponentials over a whole axis (float16 loses the small terms)",
    "layerNormalization": "normalization statistics (mean, variance) are computed in float32",
    "instanceNormalization": "normalization statistics (mean, variance) are computed in float32",
}

_SUMMING_REDUCTIONS = frozenset(
    {
        "reduceSum",
        "reduceMean",
        "reduceL1",
        "reduceL2",
        "reduceSumSquare",
        "reduceLogSumExp",
        "reduceLogSum",
        "reduceProduct",
    }
)


def layer_name(node: Node, index: int) -> str:
    """The node's label, or ``op#index`` (its place in the graph) where it has none."""
    return node.label or f"{node.op}#{index}"


#: float16's largest finite value.
FLOAT16_MAX = 65504.0


def float16_reason(graph: Graph, node: Node) -> str:
    """Why ``node`` stays float32 in a float16 graph, or '' if it is narrowed."""
    if node.op in WIDE_FLOAT16_OPS:
        return WIDE_FLOAT16_OPS[node.op]
    for operand in node.operand_ids():
        if operand in graph.constants and graph.operands[operand].data_type == "float32":
            values = np.asarray(graph.constants[operand])
            finite = values[np.isfinite(values)]
            if finite.size and np.abs(finite).max() > FLOAT16_MAX:
                return "a constant operand beyond float16's range (e.g. a -3.4e38 attention mask: inf, then NaN)"
    if node.op in _SUMMING_REDUCTIONS:
        shape = graph.operands[node.inputs["input"]].shape  # type: ignore[index]
        axes = node.attrs.get("axes")
        count = math.prod(shape[a] for a in (range(len(shape)) if axes is None else axes))
        if count >= LONG_REDUCTION:
            return f"{node.op} sums {count} elements (>= {LONG_REDUCTION}: a float16 sum stops growing)"
    return ""


@dataclass(frozen=True)
class WeightSite:
    """A weight operand that int8/int4 may quantize: node ``index`` reads constant ``operand`` as its
    argument ``param``; ``out_axis`` is its output channel, ``in_axis`` the axis that is summed."""

    index: int
    param: str
    operand: int
    out_axis: int
    in_axis: int
    embedding: bool = False


# conv2d filter layout -> (output channel axis, input channel axis)
_FILTER_AXES = {"oihw": (0, 1), "hwio": (3, 2), "ohwi": (0, 3), "ihwo": (3, 0)}


def filter_axes(node: Node) -> tuple[int, int]:
    """A conv2d node's filter axes: (output channel, input channel)."""
    return _FILTER_AXES[node.attrs.get("filter_layout", "oihw")]


def _site(graph: Graph, index: int, node: Node) -> WeightSite | None:
    def axes_of(param: str) -> tuple[int, int] | None:
        if node.op == "conv2d":
            return filter_axes(node)
        if node.op == "matmul":
            return (rank - 1, rank - 2)
        if node.op == "gemm":
            return (0, 1) if node.attrs.get("b_transpose") else (1, 0)
        return (0, 1)  # gather: one scale per row (token), blocks along the embedding

    param = {"conv2d": "filter", "matmul": "b", "gemm": "b", "gather": "input"}.get(node.op)
    operand = node.inputs.get(param) if param else None
    if not isinstance(operand, int) or operand not in graph.constants:
        return None
    desc = graph.operands[operand]
    rank = desc.rank
    if desc.data_type != "float32" or rank < 2:
        return None
    axes = axes_of(param)  # type: ignore[arg-type]
    if axes is None:
        return None
    return WeightSite(index, param, operand, *axes, embedding=node.op == "gather")  # type: ignore[arg-type]


#: Operators through which a projection's result is still "the outputs" (no weights, no normalization).
_PASS_THROUGH = frozenset(
    {"add", "sub", "mul", "div", "reshape", "transpose", "identity", "cast", "softmax", "sigmoid", "tanh",
     "relu", "clamp", "expand", "slice", "concat", "split"}
)


def _is_output_layer(graph: Graph, index: int) -> bool:
    """Whether some graph output is node ``index``'s result through :data:`_PASS_THROUGH` operators only
    (a classifier's logits; not a transformer's last feed-forward layer, which a normalization follows)."""
    readers: dict[int, list[Node]] = {}
    for node in graph.nodes:
        for ids in node.inputs.values():
            for oid in ids if isinstance(ids, tuple) else (ids,):
                readers.setdefault(oid, []).append(node)
    outputs = set(graph.outputs.values())
    pending, seen = list(graph.nodes[index].outputs), set()
    while pending:
        oid = pending.pop()
        if oid in outputs:
            return True
        if oid in seen:
            continue
        seen.add(oid)
        pending += [o for node in readers.get(oid, []) if node.op in _PASS_THROUGH for o in node.outputs]
    return False


FIRST_CONVOLUTION = "the first convolution (it reads the raw input; every later layer inherits its error)"


def weight_sites(graph: Graph, to: str, keep_embeddings: bool) -> Iterator[tuple[WeightSite, str, str]]:
    """Every weight that ``to`` (int8 or int4) could quantize, with the precision it gets ("float32",
    "int8" or ``to``) and why, where that is not ``to``."""
    sites = [s for i, n in enumerate(graph.nodes) if (s := _site(graph, i, n)) is not None]
    convs = [s.index for s in sites if graph.nodes[s.index].op == "conv2d"]
    projections = [s.index for s in sites if graph.nodes[s.index].op in ("matmul", "gemm")]
    output_layer = projections[-1] if to == "int4" and projections else None
    for site in sites:
        if convs and site.index == convs[0]:
            yield site, "float32", FIRST_CONVOLUTION
        elif site.index == output_layer and _is_output_layer(graph, site.index):
            yield site, "float32", "the output layer, in int4 (its error reaches the outputs unfiltered)"
        elif site.embedding and keep_embeddings:
            yield site, "float32", "an embedding table (keep_embeddings=True)"
        elif to == "int4" and graph.nodes[site.index].op == "conv2d":
            yield site, "int8", "a convolution under int4 (a filter's few weights per channel take 16 levels badly)"
        else:
            yield site, to, ""
