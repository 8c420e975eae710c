"""The reference kernel registry.

A kernel is registered per operator with :func:`kernel` in the family module
of the same name as in :mod:`webml.ops`.  It receives the node's input arrays
*lifted* for exact arithmetic (floats as float64, integers as int64, uint64
as uint64, absent optional inputs as None), the output descriptor(s) as
``out`` and the node's attributes as keyword arguments.  It returns one
array, or a list for multi-output operators; the runtime rounds each result
to the output's data type with the spec's casting rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

KERNELS: dict[str, Callable[..., Any]] = {}


def kernel(*names: str):
    """Register a reference kernel for the operators ``names`` (spec camelCase)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            if name in KERNELS:
                raise RuntimeError(f"reference kernel for {name} registered twice")
            KERNELS[name] = fn
        return fn

    return register


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
