"""MLOperand."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..ir import Value

if TYPE_CHECKING:
    from .builder import MLGraphBuilder


class MLOperand:
    """An operand of a graph under construction, bound to its builder."""

    __slots__ = ("__weakref__", "_builder", "_name", "_value")

    def __init__(self, builder: MLGraphBuilder, value: Value, name: str | None = None) -> None:
        self._builder = builder
        self._value = value
        self._name = name

    @property
    def data_type(self) -> str:
        return self._value.data_type

    @property
    def shape(self) -> list[int]:
        return list(self._value.shape)

    def __repr__(self) -> str:
        name = f"{self._name!r}, " if self._name else ""
        return f"MLOperand({name}{self._value.desc})"
