"""The reference kernel registry.

A kernel is registered per operator with :func:`kernel` in the family module
of the same name as in :mod:`webml.ops`.  It receives the node's operands as
keyword arguments of their Python names (``input``, ``filter``, ``bias``...),
as arrays *lifted* for exact arithmetic (floats as float64, integers as
int64, uint64 as uint64; a list for a sequence operand; an absent optional
operand is not passed, so its parameter defaults to None), the output
descriptor(s) as ``out`` and the node's attributes as keyword arguments.  It returns one
array, or a list for multi-output operators; the runtime rounds each result
to the output's data type with the spec's casting rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...ops.registry import registrar

KERNELS: dict[str, Callable[..., Any]] = {}


#: ``@kernel("add", "sub")``: register a reference kernel for operators named in spec camelCase.
kernel = registrar(KERNELS, "reference kernel for")


def lift(array: np.ndarray) -> np.ndarray:
    """Widen an operand array for exact float64 / 64-bit integer arithmetic."""
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float64)
    if array.dtype == np.uint64:
        return array
    if kind in "iu":
        return array.astype(np.int64)
    # ml_dtypes int4/uint4 report kind 'V'; their values fit int64.
    return array.astype(np.int64)
