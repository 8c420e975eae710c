"""Batched graphs that compute each sample apart, run a few samples at a time.

A graph whose inputs all hold a batch of N samples along their first axis may
compute every sample on its own: a convolution, a matmul with constant
weights, an activation never mix samples.  :func:`sample_axes` proves it,
operation by operation, by following the axis that holds the samples through
the graph (an operation it does not know, or one that reduces, reshapes or
slices across that axis, ends the proof).  :func:`chunk_graph` then makes the
same graph for chunks of k samples, every operand's batch axis k long, and
checks each of its operations with the operator's own rule
(:mod:`webml.ops`), so a shape this module got wrong refuses the chunk rather
than computes it.

A backend runs the chunk graph N/k times (:class:`ChunkedGraph`), on views of
the callers' tensors, no copy.  Why: an engine whose kernels go through a
whole batch one layer at a time reads every activation of the batch back from
memory when it no longer fits in the cache.  OpenVINO on EfficientNet-Lite0
at batch 8 is then about 20% slower than four runs of two images
(bench/batch_chunks.py); :func:`largest_sample_bytes` is the measure the
openvino backend chooses k by.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..ir import Graph, Node, OperandDesc, Value, freeze
from ..ops import OPS
from ..ops.registry import Call
from ..ops.replay import rule_arguments
from .base import CompiledGraph

__all__ = ["ChunkedGraph", "batch_size", "chunk_graph", "largest_sample_bytes", "sample_axes"]

Axes = dict[int, int | None]  # operand id -> the axis holding the samples (None: the same for every sample)

# Operators computed element by element, with broadcasting over all their operands.
_ELEMENTWISE_FAMILIES = ("elementwise", "logical", "unary", "activation", "quantize")
_BROADCASTING = frozenset({"where", "cast"})
# Operators over a 4-D input whose first axis is the batch in both layouts, other operands constants.
_BATCH_FIRST = frozenset(
    {"conv2d", "convTranspose2d", "averagePool2d", "l2Pool2d", "maxPool2d", "instanceNormalization"}
)


def batch_size(graph: Graph) -> int:
    """N where every input of ``graph`` has a first axis N long (1 when they differ or one is a scalar)."""
    sizes = {graph.operands[oid].shape[0] if graph.operands[oid].rank else 1 for oid in graph.inputs.values()}
    return sizes.pop() if len(sizes) == 1 else 1


def sample_axes(graph: Graph) -> Axes | None:
    """The axis of each operand that holds the batch's samples, where ``graph`` computes each sample apart:
    every input and output holds N > 1 samples along its first axis and no operation mixes them.
    None where that does not hold (or cannot be shown)."""
    n = batch_size(graph)
    if n < 2:
        return None
    axes: Axes = dict.fromkeys(graph.constants)
    axes.update(dict.fromkeys(graph.inputs.values(), 0))
    for node in graph.nodes:
        try:
            found = _node_axes(node, graph.operands, axes, n)
        except (KeyError, IndexError, TypeError, ValueError):  # attributes of a form not expected: not followed
            return None
        if found is None or len(found) != len(node.outputs):
            return None
        for oid, axis in zip(node.outputs, found, strict=True):
            if axis is not None and graph.operands[oid].shape[axis] != n:
                return None
            axes[oid] = axis
    if any(axes.get(oid) != 0 for oid in graph.outputs.values()):
        return None
    return axes


def largest_sample_bytes(graph: Graph, axes: Axes) -> int:
    """The bytes of one sample of the graph's largest batched operand (an input, activation or output)."""
    n = batch_size(graph)
    return max((graph.operands[oid].byte_length // n for oid, axis in axes.items() if axis is not None), default=0)


def chunk_graph(graph: Graph, axes: Axes, chunk: int) -> Graph | None:
    """``graph`` for ``chunk`` samples at a time (``axes`` from :func:`sample_axes`; ``chunk`` divides the
    batch), sharing its constants; None where an operator's rule refuses the chunk's shapes or computes
    others than expected."""
    operands = {
        oid: desc if axes.get(oid) is None else replace(desc, shape=_with(desc.shape, axes[oid], chunk))
        for oid, desc in graph.operands.items()
    }
    nodes = []
    for node in graph.nodes:
        attrs = _chunk_attrs(node, axes, chunk)
        if not _replays(replace(node, attrs=attrs), operands):
            return None
        nodes.append(replace(node, attrs=attrs))
    return replace(graph, operands=operands, nodes=tuple(nodes))


class ChunkedGraph(CompiledGraph):
    """A graph of ``batch`` samples run chunk by chunk on ``inner``, the graph compiled for ``chunk`` samples.

    ``view(handle, start, stop)`` gives a backend tensor over samples ``start:stop`` of ``handle`` (its
    memory, no copy)."""

    def __init__(self, inner: CompiledGraph, batch: int, chunk: int, view: Callable[[Any, int, int], Any]) -> None:
        self.inner = inner
        self.chunk = chunk
        self.releases_constants = inner.releases_constants
        self._spans = [(i, i + chunk) for i in range(0, batch, chunk)]
        self._view = view

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        parts = [self.inner.run({n: a[i:j] for n, a in inputs.items()}) for i, j in self._spans]
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def dispatch(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        view = self._view
        for i, j in self._spans:
            self.inner.dispatch(
                {n: view(t, i, j) for n, t in inputs.items()}, {n: view(t, i, j) for n, t in outputs.items()}
            )

    def dispatch_arrays(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        """The chunks on host arrays (an inner graph of ONNX Runtime's, running another backend's tensors)."""
        for i, j in self._spans:
            self.inner.dispatch_arrays({n: a[i:j] for n, a in inputs.items()}, {n: a[i:j] for n, a in outputs.items()})

    def running_on(self) -> str | None:
        return self.inner.running_on()

    def wait_for_engine(self, timeout: float | None) -> bool:
        return self.inner.wait_for_engine(timeout)

    def release(self) -> None:
        self.inner.release()


def _with(shape: tuple[int, ...], axis: int, size: int) -> tuple[int, ...]:
    return (*shape[:axis], size, *shape[axis + 1 :])


def _chunk_attrs(node: Node, axes: Axes, chunk: int) -> Mapping[str, Any]:
    """The node's attributes for a chunk: the shapes it names, with the batch axis ``chunk`` long."""
    attrs = node.attrs
    if node.op in ("reshape", "expand"):
        axis = axes[node.outputs[0]]
        if axis is not None:
            return freeze({**attrs, "new_shape": _with(tuple(attrs["new_shape"]), axis, chunk)})
    if node.op == "slice":
        axis = axes[node.inputs["input"]]
        if axis is not None:
            return freeze({**attrs, "sizes": _with(tuple(attrs["sizes"]), axis, chunk)})
    return attrs


def _replays(node: Node, operands: Mapping[int, OperandDesc]) -> bool:
    """Whether the operator's rule, given the node's inputs and attributes, makes the node itself: one node
    of the same operator whose outputs have the descriptors in ``operands``."""
    opdef = OPS.get(node.op)
    if opdef is None:
        return False
    made: list[tuple[str, list[OperandDesc]]] = []

    def emit(op: str, inputs: Any, descs: list[OperandDesc], attrs: Any, label: str) -> list[Value]:
        made.append((op, descs))
        return [Value(-1 - i, d) for i, d in enumerate(descs)]

    arguments: dict[str, Any] = {
        param: [Value(i, operands[i]) for i in ids] if isinstance(ids, tuple) else Value(ids, operands[ids])
        for param, ids in node.inputs.items()
    }
    try:
        opdef.rule(
            Call(node.op, node.label, emit),
            **arguments,
            **rule_arguments(node.op, node.attrs, operands[node.outputs[0]]),
        )
    except Exception:  # the rule refuses these shapes (or these arguments): no chunk, the batch runs whole
        return False
    return len(made) == 1 and made[0][0] == node.op and made[0][1] == [operands[o] for o in node.outputs]


def _node_axes(node: Node, descs: Mapping[int, OperandDesc], axes: Axes, n: int) -> list[int | None] | None:
    """The sample axes of the node's outputs, or None where the node may mix samples (or is not known)."""
    ids = node.operand_ids()
    outputs = len(node.outputs)
    if all(axes[i] is None for i in ids):
        return [None] * outputs  # from constants only: the same for every sample
    op, attrs = node.op, node.attrs
    family = OPS[op].family if op in OPS else ""
    rank = descs[node.outputs[0]].rank

    def only(param: str) -> int | None:
        """The sample axis of ``param``, where every other operand is the same for every sample."""
        if any(axes[i] is not None for p, i in _flat(node) if p != param):
            return None
        return axes[node.inputs[param]]

    if family in _ELEMENTWISE_FAMILIES or op in _BROADCASTING:
        if op == "softmax":
            axis = only("input")
            return None if axis is None or axis == attrs["axis"] else [axis]
        return _broadcast(node, descs, axes, rank)
    if op in _BATCH_FIRST:
        return [0] if only("input") == 0 else None
    axis = only("input") if "input" in node.inputs else None
    if op == "resample2d":
        return None if axis is None or axis in attrs["axes"] else [axis]
    if op == "batchNormalization":
        return None if axis is None or axis == attrs["axis"] else [axis]
    if op == "layerNormalization":
        return None if axis is None or axis in attrs["axes"] else [axis]
    if family == "reduce":
        return _reduced(op, attrs, axis, descs[node.inputs["input"]].rank)
    if op == "transpose":
        return None if axis is None else [list(attrs["permutation"]).index(axis)]
    if op == "reshape":
        return None if axis is None else _reshaped(descs[node.inputs["input"]].shape, attrs["new_shape"], axis, n)
    if op == "expand":
        return None if axis is None else [axis + rank - descs[node.inputs["input"]].rank]
    if op == "concat":
        found = {axes[i] for i in node.inputs["inputs"]}
        return None if len(found) != 1 or None in found or attrs["axis"] in found else [found.pop()]
    if op == "split":
        return None if axis is None or axis == attrs["axis"] else [axis] * outputs
    if op == "slice":
        strides = attrs.get("strides") or [1] * rank
        whole = axis is not None and attrs["starts"][axis] == 0 and attrs["sizes"][axis] == n and strides[axis] == 1
        return [axis] if whole else None
    if op == "pad":
        unpadded = axis is not None and attrs["beginning_padding"][axis] == attrs["ending_padding"][axis] == 0
        return [axis] if unpadded else None
    if op == "tile":
        return [axis] if axis is not None and attrs["repetitions"][axis] == 1 else None
    if op == "reverse":
        reversed_axes = range(rank) if attrs.get("axes") is None else attrs["axes"]
        return None if axis is None or axis in reversed_axes else [axis]
    if op == "triangular":
        return [axis] if axis is not None and axis < rank - 2 else None
    if op == "gather":
        return _gathered(node, descs, axes)
    if op == "matmul":
        return _matmul(node, descs, axes, rank)
    if op == "gemm":
        return _gemm(node, descs, axes)
    return None  # recurrent networks, scatter, gatherElements, gatherND: not followed


def _flat(node: Node) -> list[tuple[str, int]]:
    pairs = []
    for param, ids in node.inputs.items():
        pairs.extend((param, i) for i in (ids if isinstance(ids, tuple) else (ids,)))
    return pairs


def _broadcast(node: Node, descs: Mapping[int, OperandDesc], axes: Axes, rank: int) -> list[int | None] | None:
    """The output's sample axis of an operation broadcasting its operands (right-aligned): every batched
    operand holds the samples at the same output axis, every other is 1 long there (or shorter)."""
    ids = node.operand_ids()
    found = {axes[i] + rank - descs[i].rank for i in ids if axes[i] is not None}
    if len(found) != 1:
        return None
    axis = found.pop()
    for i in ids:
        at = axis - (rank - descs[i].rank)
        if axes[i] is None and at >= 0 and descs[i].shape[at] != 1:
            return None  # an operand that differs per sample yet is not batched (a constant N long there)
    return [axis]


def _reduced(op: str, attrs: Mapping[str, Any], axis: int | None, rank: int) -> list[int | None] | None:
    if axis is None:
        return None
    if op in ("argMin", "argMax", "cumulativeSum"):
        reduced: Sequence[int] = (attrs["axis"],)
        keep = op == "cumulativeSum" or attrs["keep_dimensions"]
    else:
        reduced = range(rank) if attrs.get("axes") is None else attrs["axes"]
        keep = attrs["keep_dimensions"]
    if axis in reduced:
        return None
    return [axis if keep else axis - sum(1 for a in reduced if a < axis)]


def _reshaped(shape: Sequence[int], new_shape: Sequence[int], axis: int, n: int) -> list[int | None] | None:
    """Where a reshape puts the samples: an axis N long with as many elements before it as before ``axis``
    (row-major order then keeps every sample's elements apart, in the same order)."""
    before = math.prod(shape[:axis])
    for j, size in enumerate(new_shape):
        if size == n and math.prod(new_shape[:j]) == before:
            return [j]
    return None


def _gathered(node: Node, descs: Mapping[int, OperandDesc], axes: Axes) -> list[int | None] | None:
    data, indices = axes[node.inputs["input"]], axes[node.inputs["indices"]]
    gather_axis = node.attrs["axis"]
    if data is not None and indices is None and data != gather_axis:
        return [data if data < gather_axis else data + descs[node.inputs["indices"]].rank - 1]
    if data is None and indices is not None:
        return [gather_axis + indices]  # rows of a table, looked up per sample
    return None


def _matmul(node: Node, descs: Mapping[int, OperandDesc], axes: Axes, rank: int) -> list[int | None] | None:
    """Samples along a's rows, b's columns or a batch axis of either (never the inner axis; a's rows and b's
    columns are different output axes, so both operands batched means a batch axis of both)."""
    found = set()
    for param, inner in (("a", 1), ("b", 2)):
        oid = node.inputs[param]
        axis, own = axes[oid], descs[oid].rank
        if axis is None:
            continue
        if axis == own - inner:
            return None  # the axis summed over
        found.add(axis + rank - own)
    if len(found) != 1:
        return None
    axis = found.pop()
    if axis < rank - 2:  # a batch axis: the other operand broadcast along it, not N long there
        for param in ("a", "b"):
            oid = node.inputs[param]
            at = axis - (rank - descs[oid].rank)
            if axes[oid] is None and at >= 0 and descs[oid].shape[at] != 1:
                return None
    return [axis]


def _gemm(node: Node, descs: Mapping[int, OperandDesc], axes: Axes) -> list[int | None] | None:
    """Samples along a's rows (b and c the same for every sample)."""
    attrs = node.attrs
    if any(axes[node.inputs[p]] is not None for p in ("b", "c") if p in node.inputs):
        return None
    rows = 1 if attrs["a_transpose"] else 0
    if axes[node.inputs["a"]] != rows:
        return None
    c = node.inputs.get("c")
    if c is not None and descs[c].rank == 2 and descs[c].shape[0] != 1:
        return None  # a bias per row: per sample
    return [0]
