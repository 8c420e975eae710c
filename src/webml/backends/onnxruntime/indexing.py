"""ONNX lowerings of the indexing operators.

webml clamps an index to [-N, N-1] for an axis of size N and counts a
negative one from the end (:func:`webml.ops.indexing.resolve_indices`).
ONNX's Gather*/Scatter* accept negative indices in [-N, N-1] but reject (or
crash on) others, so the lowering only clamps: one Clip (Max/Min per
coordinate for the ND forms).
uint32 indices, which the ONNX operators do not take, are cast to int64 and
clamped from above.  Constant indices are resolved while lowering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...ops.checks import SPEC_TYPES
from ...ops.indexing import coordinate_sizes, resolve_indices
from .lowering import Arg, Lowerer, lowering

_NP = {"int32": np.int32, "int64": np.int64}


def _clamped(lw: Lowerer, indices: Arg, sizes: Sequence[int], *, nd: bool = False) -> str:
    """``indices`` clamped to [-size, size-1].

    ``sizes`` is one size, or one per coordinate when ``nd`` (GatherND and
    ScatterND, which take int64 indices only).
    """
    name, data_type = str(indices), indices.data_type
    constant = lw.constant_value(indices)
    if constant is not None:
        size = np.asarray(sizes if nd else sizes[0], dtype=np.int64)
        resolved = resolve_indices(np.asarray(constant).reshape(indices.shape).astype(np.int64), size)
        return lw.const(resolved.astype(np.int64))
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


def _along(lw: Lowerer, input: Arg, indices: Arg, axis: int) -> str:
    """``indices`` clamped for ``input``'s axis ``axis`` (gather, gatherElements, scatterElements)."""
    return _clamped(lw, indices, [input.shape[axis]])


def _nd(lw: Lowerer, input: Arg, indices: Arg) -> str:
    """``indices`` clamped per coordinate (gatherND, scatterND)."""
    return _clamped(lw, indices, coordinate_sizes(input.shape, indices.shape), nd=True)


@lowering("gather", input=SPEC_TYPES)
def gather(lw: Lowerer, input: Arg, indices: Arg, *, out: Arg, axis: int) -> None:
    lw.emit("Gather", [input, _along(lw, input, indices, axis)], out, axis=axis)


@lowering("gatherElements", input=SPEC_TYPES)
def gather_elements(lw: Lowerer, input: Arg, indices: Arg, *, out: Arg, axis: int) -> None:
    lw.emit("GatherElements", [input, _along(lw, input, indices, axis)], out, axis=axis)


@lowering("gatherND", input=SPEC_TYPES)
def gather_nd(lw: Lowerer, input: Arg, indices: Arg, *, out: Arg) -> None:
    lw.emit("GatherND", [input, _nd(lw, input, indices)], out)


@lowering("scatterElements", input=SPEC_TYPES)
def scatter_elements(lw: Lowerer, input: Arg, indices: Arg, updates: Arg, *, out: Arg, axis: int) -> None:
    lw.emit("ScatterElements", [input, _along(lw, input, indices, axis), updates], out, axis=axis)


@lowering("scatterND", input=SPEC_TYPES)
def scatter_nd(lw: Lowerer, input: Arg, indices: Arg, updates: Arg, *, out: Arg) -> None:
    lw.emit("ScatterND", [input, _nd(lw, input, indices), updates], out)
