"""ONNX lowering of resample2d.

Both modes are ONNX's Resize with the ``half_pixel`` coordinate
transformation and the output ``sizes`` (so the scale is the ratio of the
actual sizes, as in the reference kernel); nearest-neighbor rounds ties to
the smaller index (``round_prefer_floor``).

Nearest-neighbor: ONNX Runtime computes the source coordinates in float32,
which near ties can select the other neighbour (36 -> 21 does).  The
lowering checks, once per (input size, output size) pair, that Resize's
mapping is the exact one, and otherwise gathers along the axis with the
exact indices.

Linear: ONNX Runtime's kernel resizes only the two innermost axes or axes
1 and 2 of a 4-D tensor; other axes are transposed there and back.  int8 and
uint8 are interpolated as the reference does, in float64 (Gather, Mul, Add
per axis), and rounded to the nearest integer (half to even): ONNX Runtime's
Resize has no float64 kernel, and in float32 it rounds some .5s the other way.
"""

from __future__ import annotations

import functools

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from ...ops.resample import TYPES, linear_taps, nearest_indices
from .lowering import OPSET, Arg, Lowerer, lowering

_RESIZE = {"coordinate_transformation_mode": "half_pixel"}


@functools.lru_cache(maxsize=1024)
def _resize_is_exact(in_size: int, out_size: int) -> bool:
    """Whether ONNX Runtime's nearest Resize maps ``in_size`` to ``out_size`` with the exact indices."""
    if in_size == out_size:
        return True
    x = helper.make_tensor_value_info("x", TensorProto.INT32, [1, in_size])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [1, out_size])
    sizes = numpy_helper.from_array(np.asarray([out_size], dtype=np.int64), "sizes")
    node = helper.make_node(
        "Resize", ["x", "", "", "sizes"], ["y"], mode="nearest", nearest_mode="round_prefer_floor", axes=[1], **_RESIZE
    )
    graph = helper.make_graph([node], "probe", [x], [y], initializer=[sizes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (mapping,) = session.run(None, {"x": np.arange(in_size, dtype=np.int32).reshape(1, in_size)})
    return bool(np.array_equal(mapping.ravel(), nearest_indices(in_size, out_size)))


@lowering("resample2d", input=TYPES)
def resample2d(lw: Lowerer, input: Arg, *, out: Arg, mode: str, axes) -> None:
    axes = list(axes)
    in_shape, out_shape = input.shape, out.shape
    sizes = [out_shape[a] for a in axes]
    if mode == "nearest-neighbor":
        if all(_resize_is_exact(in_shape[a], out_shape[a]) for a in axes):
            lw.emit(
                "Resize",
                [input, None, None, lw.ints(sizes)],
                out,
                mode="nearest",
                nearest_mode="round_prefer_floor",
                axes=axes,
                **_RESIZE,
            )
            return
        value = input
        changed = [a for a in (axes[1], axes[0]) if in_shape[a] != out_shape[a]]
        for i, axis in enumerate(changed):
            indices = lw.const(nearest_indices(in_shape[axis], out_shape[axis]))
            value = lw.emit("Gather", [value, indices], out if i == len(changed) - 1 else 1, axis=axis)
        if not changed:
            lw.emit("Identity", [value], out)
        return
    if input.data_type in ("int8", "uint8"):
        _linear_integer(lw, input, out, axes)
        return
    if sorted(axes) in ([2, 3], [1, 2]):
        lw.emit("Resize", [input, None, None, lw.ints(sizes)], out, mode="linear", axes=axes, **_RESIZE)
        return
    # Move the axes to 2 and 3, resize, and move them back.
    perm = [a for a in range(4) if a not in axes] + axes
    inverse = [perm.index(a) for a in range(4)]
    moved = lw.emit("Transpose", [input], perm=perm)
    resized = lw.emit("Resize", [moved, None, None, lw.ints(sizes)], mode="linear", axes=[2, 3], **_RESIZE)
    lw.emit("Transpose", [resized], out, perm=inverse)


def _linear_integer(lw: Lowerer, input: Arg, out: Arg, axes: list[int]) -> None:
    """int8/uint8 linear: the reference's float64 interpolation (x, then y), rounded half to even.

    Resize would interpolate in float32 with float32 weights, which lands on
    the other side of some .5s; these are the reference's operations exactly.
    """
    value = lw.emit("Cast", [input], to=TensorProto.DOUBLE)
    for axis in (axes[1], axes[0]):
        in_size, out_size = input.shape[axis], out.shape[axis]
        if in_size == out_size:
            continue  # every coordinate is an input one
        i0, i1, t = linear_taps(in_size, out_size)
        t = t.reshape([-1 if d == axis else 1 for d in range(4)])
        v0 = lw.emit("Gather", [value, lw.const(i0)], axis=axis)
        v1 = lw.emit("Gather", [value, lw.const(i1)], axis=axis)
        value = lw.emit("Add", [lw.emit("Mul", [v0, lw.const(1 - t)]), lw.emit("Mul", [v1, lw.const(t)])])
    lw.cast(lw.emit("Round", [value]), out.data_type, out)
