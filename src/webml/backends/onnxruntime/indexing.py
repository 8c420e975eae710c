"""ONNX lowerings of the indexing operators.

webml clamps an index to [-N, N-1] for an axis of size N and counts a
negative one from the end (the reference kernels).  ONNX's Gather*/Scatter*
accept negative indices in [-N, N-1] but reject (or crash on) others, so the
lowering only clamps: one Clip (Max/Min per coordinate for the ND forms).
uint32 indices, which the ONNX operators do not take, are cast to int64 and
clamped from above.  Constant indices are resolved while lowering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..reference.indexing import resolve
from .lowering import Lowerer, Op, lowering

ALL = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
_NP = {"int32": np.int32, "int64": np.int64}


def _constant(lw: Lowerer, n: Op, index: int) -> np.ndarray | None:
    oid = n.node.inputs[index]
    array = lw.graph.constants.get(oid) if oid is not None else None
    return None if array is None else np.asarray(array).reshape(n.in_descs[index].shape)


def _clamped(lw: Lowerer, n: Op, index: int, sizes: Sequence[int], *, nd: bool = False) -> str:
    """Input ``index`` (indices) clamped to [-size, size-1].

    ``sizes`` is one size, or one per coordinate when ``nd`` (GatherND and
    ScatterND, which take int64 indices only).
    """
    name, data_type = n.inputs[index], n.in_descs[index].data_type
    assert name is not None
    constant = _constant(lw, n, index)
    if constant is not None:
        size = np.asarray(sizes if nd else sizes[0], dtype=np.int64)
        return lw.const(resolve(constant.astype(np.int64), size).astype(np.int64))
    if nd and data_type == "int32":
        name, data_type = lw.cast(name, "int64"), "int64"
    if data_type == "uint32":
        # Never negative: only the upper bound matters, in int64 (which ONNX takes).
        wide = lw.cast(name, "int64")
        if not nd:
            return lw.emit("Clip", [wide, None, lw.const(sizes[0] - 1, "int64")])
        return lw.emit("Min", [wide, lw.const(np.asarray(sizes, dtype=np.int64) - 1)])
    dtype = _NP[data_type]
    if not nd:
        return lw.emit("Clip", [name, lw.const(-sizes[0], data_type), lw.const(sizes[0] - 1, data_type)])
    sizes_array = np.asarray(sizes, dtype=dtype)
    low = lw.emit("Max", [name, lw.const(-sizes_array)])
    return lw.emit("Min", [low, lw.const(sizes_array - 1)])


def _nd_sizes(n: Op) -> list[int]:
    """The sizes of the axes the [..., k] coordinates of a gatherND/scatterND index."""
    k = n.in_descs[1].shape[-1]
    return list(n.in_descs[0].shape[:k])


@lowering("gather", input=ALL)
def gather(lw: Lowerer, n: Op) -> None:
    axis = n.attrs["axis"]
    indices = _clamped(lw, n, 1, [n.in_descs[0].shape[axis]])
    lw.emit("Gather", [n.input, indices], n.output, axis=axis)


@lowering("gatherElements", input=ALL)
def gather_elements(lw: Lowerer, n: Op) -> None:
    axis = n.attrs["axis"]
    indices = _clamped(lw, n, 1, [n.in_descs[0].shape[axis]])
    lw.emit("GatherElements", [n.input, indices], n.output, axis=axis)


@lowering("gatherND", input=ALL)
def gather_nd(lw: Lowerer, n: Op) -> None:
    indices = _clamped(lw, n, 1, _nd_sizes(n), nd=True)
    lw.emit("GatherND", [n.input, indices], n.output)


@lowering("scatterElements", input=ALL)
def scatter_elements(lw: Lowerer, n: Op) -> None:
    axis = n.attrs["axis"]
    indices = _clamped(lw, n, 1, [n.in_descs[0].shape[axis]])
    lw.emit("ScatterElements", [n.input, indices, n.inputs[2]], n.output, axis=axis)


@lowering("scatterND", input=ALL)
def scatter_nd(lw: Lowerer, n: Op) -> None:
    indices = _clamped(lw, n, 1, _nd_sizes(n), nd=True)
    lw.emit("ScatterND", [n.input, indices, n.inputs[2]], n.output)
