"""resample2d (spec §7.9): resize two dimensions of a 4-D tensor.

The output size along ``axes[i]`` is ``sizes[i]`` when given, else
``floor(inputSize * scales[i])`` with ``scales[i]`` a WebIDL ``float``, i.e.
rounded to float32 first (0.7 is 0.699999988..., so ``floor(10 * 0.7)`` is 6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from ..ir import OperandDesc, Value
from .checks import FLOATS, check_shape, finite_float, limit, one_of, unsigned_longs
from .registry import Call, op

MODES = ("nearest-neighbor", "linear")

# The spec's table: float32, float16, uint8, int8; rank 4.
RESAMPLE = limit((*FLOATS, "uint8", "int8"), 4, 4)


def _floats(call: Call, values: Any, name: str) -> tuple[float, ...]:
    """A WebIDL ``sequence<float>``: finite values, each rounded to float32."""
    if isinstance(values, (str, bytes)):
        raise call.error(f"{name} must be a sequence of float, got {values!r}")
    if not isinstance(values, Sequence):
        try:
            values = list(values)
        except TypeError:
            raise call.error(f"{name} must be a sequence of float, got {values!r}") from None
    return tuple(float(np.float32(finite_float(call, v, f"{name}[{i}]"))) for i, v in enumerate(values))


@op("resample2d", family="resample", input=RESAMPLE, output=RESAMPLE)
def resample2d(
    call: Call,
    input: Value,
    *,
    mode: str = "nearest-neighbor",
    scales: Sequence[float] | None = None,
    sizes: Sequence[int] | None = None,
    axes: Sequence[int] | None = None,
) -> Value:
    """Resample ``input`` along ``axes`` (default [2, 3]) to ``sizes`` or by ``scales``."""
    # WebIDL conversion of the options dictionary.
    mode = one_of(call, mode, MODES, "mode")
    if scales is not None:
        scales = _floats(call, scales, "scales")
    if sizes is not None:
        sizes = unsigned_longs(call, sizes, "sizes")
    if axes is not None:
        axes = unsigned_longs(call, axes, "axes")

    # The input's data type and rank (4) were checked by the limits.
    if scales is None:
        scales = (1.0, 1.0)
    elif len(scales) != 2:
        raise call.error(f"the length of scales ({len(scales)}) must be 2")
    elif any(s <= 0 for s in scales):
        raise call.error(f"scales {list(scales)} must be greater than 0")
    if sizes is not None:
        if len(sizes) != 2:
            raise call.error(f"the length of sizes ({len(sizes)}) must be 2")
        if 0 in sizes:
            raise call.error(f"sizes {list(sizes)} must not contain 0")
    if axes is None:
        axes = (2, 3)
    else:
        # The spec's steps index sizes/scales by axes, so there must be 2 axes (as WPT checks).
        if len(axes) != 2:
            raise call.error(f"the length of axes ({len(axes)}) must be 2")
        if len(set(axes)) != len(axes):
            raise call.error(f"axes {list(axes)} must not contain duplicates")
        for axis in axes:
            if axis >= input.rank:
                raise call.error(f"axes value {axis} must be in the range [0, {input.rank})")

    shape = list(input.shape)
    for index, axis in enumerate(axes):
        if sizes is not None:
            size = sizes[index]
        else:
            # Exact: the float32 scale times the size, floored.
            size = math.floor(Fraction(scales[index]) * input.shape[axis])
        if not 0 < size <= 2**31 - 1:
            source = f"sizes[{index}]" if sizes is not None else f"floor({input.shape[axis]} * scales[{index}])"
            raise call.error(f"the output size {size} of axis {axis} ({source}) is not a valid dimension")
        shape[axis] = size
    shape = check_shape(call, shape)
    return call.emit([input], OperandDesc(input.data_type, shape), mode=mode, axes=tuple(axes))
