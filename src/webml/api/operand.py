"""MLOperand, and what its builder needs of one (:func:`operand_value`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ir import OperandDesc, Value
from .descriptors import Described
from .spelling import add_javascript_names

if TYPE_CHECKING:
    from .builder import MLGraphBuilder


class MLOperand(Described):
    """An operand of a graph under construction, bound to its builder."""

    __slots__ = ("__weakref__", "_builder", "_name", "_value")

    def __init__(self, builder: MLGraphBuilder, value: Value, name: str | None = None) -> None:
        self._builder = builder
        self._value = value
        self._name = name

    @property
    def descriptor(self) -> OperandDesc:
        return self._value.desc

    def __repr__(self) -> str:
        name = f"{self._name!r}, " if self._name else ""
        return f"MLOperand({name}{self._value.desc})"


add_javascript_names(MLOperand)


def operand_value(operand: Any, builder: MLGraphBuilder, where: str, what: str) -> Value:
    """The IR value of ``operand``, an MLOperand of ``builder``; otherwise a TypeError naming it ``what``."""
    if not isinstance(operand, MLOperand):
        raise TypeError(f"{where}: {what} must be an MLOperand, got {type(operand).__name__}")
    if operand._builder is not builder:
        raise TypeError(f"{where}: {what} was created by another MLGraphBuilder")
    return operand._value
