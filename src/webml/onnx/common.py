"""What the importer (:mod:`webml.onnx.importer`) and its per-operator importers share.

A module of its own so that neither imports the other for these: the
importer imports :mod:`webml.onnx.importers` (the handler table), and the
operator modules need only the element-type table and shape arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from onnx import TensorProto

__all__ = ["WEBML_TYPES", "prod", "type_name"]

#: ONNX element types -> webml data types (bool is carried as uint8).
WEBML_TYPES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.FLOAT16: "float16",
    TensorProto.INT32: "int32",
    TensorProto.UINT32: "uint32",
    TensorProto.INT64: "int64",
    TensorProto.UINT64: "uint64",
    TensorProto.INT8: "int8",
    TensorProto.UINT8: "uint8",
    TensorProto.BOOL: "uint8",
    TensorProto.INT4: "int4",
    TensorProto.UINT4: "uint4",
}


def type_name(elem_type: int) -> str:
    """The name of an ONNX element type (its number when ONNX has no such type)."""
    return TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else str(elem_type)


def prod(values: Iterable[int]) -> int:
    """The product of ``values`` as a Python int (1 for none)."""
    return int(math.prod(values))
