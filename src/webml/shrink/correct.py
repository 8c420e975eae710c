"""Bias correction: the mean shift that quantizing a weight causes, measured and taken back.

A quantized weight ``Wq = W + D`` moves its layer's output by ``D x``; over
the calibration inputs the *mean* of that move, ``D E[x]``, is a systematic
error per output channel that every later layer inherits, and it can be
taken back exactly by subtracting it from the layer's bias (Nagel et al.,
"Data-Free Quantization Through Weight Equalization and Bias Correction",
ICCV 2019, their empirical variant).  ``E[x]`` is the mean of the layer's
input per input channel on the float32 graph, measured in one pass over the
calibration inputs by means computed inside the graph (only one vector per
layer comes back).  Image borders are treated as the rest of the image (the
mean ignores the zero padding), as in the paper.

Which layers: conv2d (its ``bias``, added where it has none), and matmul
and gemm of a 2-D weight (an ``add`` after them); embeddings (gather) read
rows rather than sum them and have nothing to correct.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ..api.context import MLContext
from ..ir import Graph, Node
from .quantize import Quantized, dequantize
from .transform import Plan, rebuild

__all__ = ["bias_shift", "input_means"]

Feed = Mapping[str, np.ndarray]
#: conv2d's input channel axis by input layout.
_CHANNEL_AXIS = {"nchw": 1, "nhwc": 3}


def _input_channel_axis(graph: Graph, node: Node) -> int | None:
    """The axis of the node's activation input that the weight contracts, or None if not corrected."""
    rank = graph.operands[node.inputs["a" if node.op in ("matmul", "gemm") else "input"]].rank
    if node.op == "conv2d":
        return _CHANNEL_AXIS[node.attrs.get("input_layout", "nchw")]
    if node.op == "matmul" and graph.operands[node.inputs["b"]].rank == 2:
        return rank - 1
    if node.op == "gemm":
        return 0 if node.attrs.get("a_transpose") else 1
    return None


def _shift(graph: Graph, node: Node, difference: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``D E[x]`` per output channel of ``node`` for the weight error ``difference``."""
    if node.op == "conv2d":
        from .rules import filter_axes

        out_axis, in_axis = filter_axes(node)
        d = np.moveaxis(difference, (out_axis, in_axis), (0, 1)).sum(axis=(2, 3))  # [out, in per group]
        groups = int(node.attrs.get("groups", 1))
        per_group = d.shape[0] // groups
        grouped_mean = mean.reshape(groups, d.shape[1])[np.arange(d.shape[0]) // per_group]
        return (d * grouped_mean).sum(axis=1)
    if node.op == "gemm":
        d = difference.T if node.attrs.get("b_transpose") else difference  # [K, N]
        return float(node.attrs.get("alpha", 1.0)) * (mean @ d)
    return mean @ difference  # matmul: [K] @ [K, N]


def input_means(
    graph: Graph, context: MLContext, indices: Iterable[int], feeds: Sequence[Feed]
) -> dict[int, np.ndarray]:
    """Node index -> the mean of its activation input per contracted channel on ``feeds`` (float64), for
    the nodes of ``indices`` that bias correction applies to."""
    axes = {}
    for index in indices:
        node = graph.nodes[index]
        axis = _input_channel_axis(graph, node)
        if axis is not None:
            axes[index] = (node.inputs["a" if node.op in ("matmul", "gemm") else "input"], axis)
    if not axes:
        return {}
    means = {f"mean{index}": tap for index, tap in axes.items()}
    probe = rebuild(graph, context, Plan(), means=means)
    totals: dict[str, np.ndarray] = {}
    for feed in feeds:
        for name, value in context.compute(probe, dict(feed)).items():
            if name in means:
                totals[name] = totals.get(name, 0.0) + np.asarray(value, np.float64)
    return {index: totals[f"mean{index}"] / len(feeds) for index in axes}


def bias_shift(graph: Graph, index: int, quantized: Quantized, mean: np.ndarray) -> np.ndarray:
    """What to add to node ``index``'s output channels so that, with ``quantized`` for its weight, its
    mean output on inputs of mean ``mean`` is the float32 layer's (float32)."""
    node = graph.nodes[index]
    oid = node.inputs["b" if node.op in ("matmul", "gemm") else "filter"]
    difference = dequantize(quantized).astype(np.float64) - np.asarray(graph.constants[oid], np.float64)
    return (-_shift(graph, node, difference, mean)).astype(np.float32)
