"""The spec layer: every operator's validation and output rules, one module per family.

Importing this package registers every operator in :data:`OPS`.  To add an
operator: its rule in ``ops/<family>.py`` (decorated with
:func:`~webml.ops.registry.op`), a kernel in
``backends/reference/<family>.py``, and tests; ``tests/test_coverage.py``
fails until each exists.
"""

import importlib

from .registry import OPS, Call, Limit, OpDef, op

#: Operator families; each is a module here and in every backend.
FAMILIES = (
    "elementwise",
    "logical",
    "unary",
    "activation",
    "shape",
    "indexing",
    "linalg",
    "conv",
    "pool",
    "resample",
    "normalization",
    "reduce",
    "recurrent",
    "quantize",
)

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["FAMILIES", "OPS", "Call", "Limit", "OpDef", "op"]
