"""webml: the W3C Web Neural Network API (WebNN) for Python.

>>> import webml
>>> context = webml.ml.create_context()
>>> builder = webml.MLGraphBuilder(context)
>>> a = builder.input("a", {"dataType": "float32", "shape": [2, 2]})
>>> b = builder.constant({"dataType": "float32", "shape": [2, 2]},
...                      __import__("numpy").ones((2, 2), "float32"))
>>> graph = builder.build({"c": builder.matmul(a, b)})
>>> context.compute(graph, {"a": [[1, 2], [3, 4]]})["c"]
array([[3., 3.],
       [7., 7.]], dtype=float32)
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .errors import (
    AbortError,
    DataError,
    DOMException,
    InvalidStateError,
    NotAllowedError,
    NotSupportedError,
    OperationError,
    SecurityError,
    UnknownError,
)

if TYPE_CHECKING:
    from .api import ML, MLContext, MLGraph, MLGraphBuilder, MLOperand, MLTensor, ml

__version__ = "0.1.0"

#: The API layer's names, imported on first use: importing it loads the operator registry and ml_dtypes
#: (most of a second), which ``webml --help``, ``webml --version`` and ``import webml.errors`` do not need.
_API_NAMES = frozenset({"ML", "MLContext", "MLGraph", "MLGraphBuilder", "MLOperand", "MLTensor", "ml"})

__all__ = [
    "ML",
    "AbortError",
    "DOMException",
    "DataError",
    "InvalidStateError",
    "MLContext",
    "MLGraph",
    "MLGraphBuilder",
    "MLOperand",
    "MLTensor",
    "NotAllowedError",
    "NotSupportedError",
    "OperationError",
    "SecurityError",
    "UnknownError",
    "ml",
]


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from . import api

        value = getattr(api, name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # ``import webml; webml.dtypes...`` worked while the API was imported eagerly: a submodule still loads.
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API_NAMES)
