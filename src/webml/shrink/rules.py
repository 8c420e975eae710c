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
channel and block, 9 for a 3x3 depthwise one, and 16 levels lose too much of them): the weight operands
of ``conv2d`` (``filter``),
``matmul`` (``b``), ``gemm`` (``b``) and, unless ``keep_embeddings``,
``gather``'s table (``input``, one scale per row), when they are float32 constants of rank 2 or
more.  Kept float32: the first convolution (it reads the raw input, whose few
channels leave little to share a scale and whose error every later layer
inherits), for int4 the last ``matmul`` / ``gemm`` (the classifier or
output projection: its error lands on the outputs unfiltered, and int4's 16
levels move logits by several percent; int8's 256 levels per output channel
keep them within about 1%, and that layer is often a quarter of the file, as
EfficientNet-Lite0's classifier, so int8 quantizes it) and, by option, the
embedding tables (a quantized row is an input the model has never seen).
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


def _site(graph: Graph, index: int, node: Node) -> WeightSite | None:
    def axes_of(param: str) -> tuple[int, int] | None:
        if node.op == "conv2d":
            return _FILTER_AXES.get(node.attrs.get("filter_layout", "oihw"))
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


def weight_sites(graph: Graph, to: str, keep_embeddings: bool) -> Iterator[tuple[WeightSite, str]]:
    """Every weight that ``to`` (int8 or int4) could quantize, with why it stays float32 ('' if it is quantized)."""
    sites = [s for i, n in enumerate(graph.nodes) if (s := _site(graph, i, n)) is not None]
    convs = [s.index for s in sites if graph.nodes[s.index].op == "conv2d"]
    projections = [s.index for s in sites if graph.nodes[s.index].op in ("matmul", "gemm")]
    for site in sites:
        if convs and site.index == convs[0]:
            yield site, "the first convolution (it reads the raw input; every later layer inherits its error)"
        elif to == "int4" and projections and site.index == projections[-1]:
            yield site, "the last matmul/gemm, in int4 (the output projection: its error reaches the outputs)"
        elif site.embedding and keep_embeddings:
            yield site, "an embedding table (keep_embeddings=True)"
        else:
            yield site, ""
