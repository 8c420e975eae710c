"""The spec layer: every operator's validation and output rules, one module per family.

Importing this package registers every operator in :data:`OPS`.  Adding an
operator takes the pieces that the checklist in ``docs/layers.md`` names (its
rule here, a reference kernel, an ONNX Runtime lowering, a gradient rule or a
not-differentiable declaration, tests, and an ONNX importer mapping where one
applies); ``tests/test_coverage.py`` names each piece still missing and where
it goes.
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
