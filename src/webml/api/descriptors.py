"""Parsing of MLOperandDescriptor / MLTensorDescriptor dictionaries (WebIDL rules)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..ir import OperandDesc
from ..ops.checks import LONG_MAX, UINT32_MAX
from ..ops.registry import MAX_RANK, snake_case
from .spelling import PythonSpelling


class Described(PythonSpelling):
    """The spec's ``dataType`` and ``shape`` attributes, read from a subclass's ``descriptor`` (MLOperand, MLTensor)."""

    __slots__ = ()

    @property
    def descriptor(self) -> OperandDesc:
        """The data type and shape as one immutable descriptor (non-spec)."""
        raise NotImplementedError

    @property
    def data_type(self) -> str:
        return self.descriptor.data_type

    @property
    def shape(self) -> list[int]:
        return list(self.descriptor.shape)


def _member(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        python = snake_case(key)
        hint = f" (it has {python!r}: dictionaries keep the spec's camelCase keys)" if python in d else ""
        raise TypeError(f"{where}: the descriptor is missing the required member '{key}'{hint}")
    return d[key]


def parse_operand_descriptor(descriptor: Any, where: str) -> OperandDesc:
    """An MLOperandDescriptor dict -> OperandDesc (WebIDL conversion only)."""
    if isinstance(descriptor, OperandDesc):
        return descriptor
    if not isinstance(descriptor, Mapping):
        raise TypeError(
            f"{where}: the descriptor must be a dict with 'dataType' and 'shape', got {type(descriptor).__name__}"
        )
    data_type = _member(descriptor, "dataType", where)
    if data_type not in dtypes.DATA_TYPES:
        raise TypeError(f"{where}: '{data_type}' is not a valid MLOperandDataType")
    shape = _member(descriptor, "shape", where)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, np.ndarray)):
        raise TypeError(f"{where}: shape must be a sequence of unsigned long, got {shape!r}")
    dims = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer, float, np.floating)):
            raise TypeError(f"{where}: shape {list(shape)} must hold numbers")
        # WebIDL [EnforceRange] unsigned long: NaN and infinities throw, fractions truncate.
        if isinstance(d, (float, np.floating)):
            if not math.isfinite(d):
                raise TypeError(f"{where}: dimension {d} is not a finite number")
            d = math.trunc(d)
        if not 0 <= d <= UINT32_MAX:
            raise TypeError(f"{where}: dimension {d} is out of the range of unsigned long")
        dims.append(int(d))
    return OperandDesc(data_type, tuple(dims))


def check_dimensions(desc: OperandDesc, where: str, max_byte_length: int) -> None:
    """The spec's *check dimensions*: every dimension and the element count valid."""
    if len(desc.shape) > MAX_RANK:
        raise TypeError(f"{where}: rank {len(desc.shape)} exceeds the maximum rank {MAX_RANK}")
    for d in desc.shape:
        if not 0 < d <= LONG_MAX:
            raise TypeError(f"{where}: dimension {d} of shape {list(desc.shape)} is not valid (must be > 0)")
    if math.prod(desc.shape) > LONG_MAX:
        raise TypeError(f"{where}: the element count of shape {list(desc.shape)} is too large")
    if desc.byte_length > max_byte_length:
        raise TypeError(f"{where}: {desc} needs {desc.byte_length} bytes, more than the maximum {max_byte_length}")


def parse_tensor_descriptor(descriptor: Any, where: str) -> tuple[OperandDesc, dict[str, bool]]:
    """An MLTensorDescriptor -> (OperandDesc, its flags ``readable``, ``writable``, ``exportable_to_gpu``)."""
    desc = parse_operand_descriptor(descriptor, where)
    flags = {"readable": "readable", "writable": "writable", "exportable_to_gpu": "exportableToGPU"}
    given = descriptor if isinstance(descriptor, Mapping) else {}
    return desc, {flag: bool(given.get(member, False)) for flag, member in flags.items()}
