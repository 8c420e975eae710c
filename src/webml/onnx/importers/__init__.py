"""The per-operator importers of :mod:`webml.onnx.importer`, one module per ONNX op family.

Each ONNX operator is registered once with :func:`onnx_op`::

    @onnx_op("Reshape", static=(1,))
    def reshape(imp, node, attrs): ...

* ``build(imp, node, attrs)`` returns the node's outputs (MLOperands, or
  NumPy arrays for static results), using the :class:`Importer`'s helpers;
  ``attrs`` are the node's attributes with the defaults of its ONNX schema
  in the model's opset filled in (:func:`webml.onnx.importer.attributes`):
  an attribute the schema gives no default, or that is newer than the
  opset, is absent;
* ``static`` lists the input indices that must be known at import time;
* ``check(node, attrs, analysis)`` returns a reason the node cannot be
  imported (an unsupported attribute value), or None; it runs before
  anything is built so that every problem is reported at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ...ops.registry import register


@dataclass(frozen=True)
class Handler:
    op_type: str
    build: Callable[..., Any]
    static: Sequence[int] | Callable[[onnx.NodeProto, int], Sequence[int]] = ()
    check: Callable[..., str | None] | None = None
    float64_ok: frozenset[str] = field(default_factory=frozenset)

    def static_inputs(self, node: onnx.NodeProto, opset: int) -> Sequence[int]:
        return self.static(node, opset) if callable(self.static) else self.static


HANDLERS: dict[str, Handler] = {}


def onnx_op(*op_types: str, static: Any = (), check: Callable[..., str | None] | None = None):
    """Register ``build`` as the importer of ``op_types``."""

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        for op_type in op_types:
            register(HANDLERS, op_type, Handler(op_type, build, static, check), "ONNX operator")
        return build

    return decorate


def axis_index(imp: Any, axis: Any, rank: int, what: str = "axis", end_ok: bool = False) -> int:
    """``axis`` in [-rank, rank) (to ``rank`` inclusive with ``end_ok``) made non-negative; else the node's error.

    The one place ONNX axes are normalised: out-of-range values are refused, as ONNX Runtime does,
    never wrapped."""
    a = int(axis)
    high = rank + 1 if end_ok else rank
    if not -rank <= a < high:
        raise imp.error(f"{what} {a} is out of range for an input of rank {rank} (valid: {-rank} to {high - 1})")
    return a + rank if a < 0 else a


def axis_indices(imp: Any, values: Any, rank: int, what: str = "axes") -> list[int]:
    """Each of ``values`` checked and normalised by :func:`axis_index`; duplicates are refused."""
    axes = [axis_index(imp, a, rank, what) for a in np.asarray(values).reshape(-1)]
    if len(set(axes)) != len(axes):
        raise imp.error(f"{what} {[int(a) for a in np.asarray(values).reshape(-1)]} repeat an axis")
    return axes


for _module in ("elementwise", "nn", "shape", "reduce", "recurrent", "quantize"):
    importlib.import_module(f"{__name__}.{_module}")

#: The ONNX operators the importer builds (Constant and the folded Shape/Size included).
SUPPORTED_OPERATORS: list[str] = sorted({*HANDLERS, "Constant"})

__all__ = ["HANDLERS", "SUPPORTED_OPERATORS", "Handler", "axis_index", "axis_indices", "onnx_op"]
