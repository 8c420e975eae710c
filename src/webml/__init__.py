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

from .api import ML, MLContext, MLGraph, MLGraphBuilder, MLOperand, MLTensor, ml
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

__version__ = "0.1.0"

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
