"""The per-operator importers of :mod:`webml.onnx.importer`, one module per ONNX op family.

Each ONNX operator is registered once with :func:`onnx_op`::

    @onnx_op("Reshape", static=(1,))
    def reshape(imp, node, attrs): ...

* ``build(imp, node, attrs)`` returns the node's outputs (MLOperands, or
  NumPy arrays for static results), using the :class:`Importer`'s helpers;
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

import onnx


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

    def register(build: Callable[..., Any]) -> Callable[..., Any]:
        for op_type in op_types:
            if op_type in HANDLERS:
                raise RuntimeError(f"ONNX operator {op_type} registered twice")
            HANDLERS[op_type] = Handler(op_type, build, static, check)
        return build

    return register


for _module in ("elementwise", "nn", "shape", "reduce", "recurrent", "quantize"):
    importlib.import_module(f"{__name__}.{_module}")

#: The ONNX operators the importer builds (Constant and the folded Shape/Size included).
SUPPORTED_OPERATORS: list[str] = sorted({*HANDLERS, "Constant"})

__all__ = ["HANDLERS", "SUPPORTED_OPERATORS", "Handler", "onnx_op"]
