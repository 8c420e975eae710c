"""``webml shrink``: float16, int8 or int4 weights for a float32 model, and how much it lost.

>>> import numpy as np, webml
>>> from webml.shrink import shrink
>>> context = webml.ml.create_context(backend="reference")  # it keeps constants
>>> b = webml.MLGraphBuilder(context)
>>> x = b.input("x", {"dataType": "float32", "shape": [1, 64]})
>>> w = np.linspace(-1, 1, 64 * 8, dtype="float32").reshape(64, 8)
>>> h = b.matmul(x, b.constant({"dataType": "float32", "shape": [64, 8]}, w), label="hidden")
>>> graph = b.build({"y": b.matmul(h, b.constant({"dataType": "float32", "shape": [8, 2]}, w[:8, :2]))})
>>> result = shrink(graph, "int4", context=context)
>>> result.precisions
{'hidden': 'int4', 'matmul#1': 'float32'}
>>> result.kept_wide[0][1]
'the output layer, in int4 (its error reaches the outputs unfiltered)'

* :func:`shrink` makes the new graph (:mod:`.core`; what stays float32 and
  why is :mod:`.rules`; the quantization formulas :mod:`.quantize`);
* :func:`report` measures it against the float32 graph: file sizes, output
  agreement (:mod:`.metrics`), latency (:mod:`.report`);
* ``webml shrink MODEL.onnx --to int8 -o OUT.onnx`` does both from the command line.
"""

from __future__ import annotations

from . import metrics
from .core import PRECISIONS, ShrinkError, ShrinkResult, shrink, shrink_context
from .report import Report, report

__all__ = ["PRECISIONS", "Report", "ShrinkError", "ShrinkResult", "metrics", "report", "shrink", "shrink_context"]
