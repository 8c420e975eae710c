"""The graph IR: typed operands, nodes in topological order, constants.

This is the one structure that backends, importers, exporters, optimizers and
autodiff read.  It holds no numerics and knows nothing of the builder.  A
:class:`Graph` is immutable; constants are read-only NumPy arrays that are
stored once and never copied while the graph is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from . import dtypes

__all__ = ["Graph", "HasDesc", "Node", "OperandDesc", "Value", "ancestors", "freeze", "thaw"]


@dataclass(frozen=True, slots=True)
class OperandDesc:
    """An MLOperandDescriptor: data type and shape."""

    data_type: str
    shape: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def element_count(self) -> int:
        return math.prod(self.shape)

    @property
    def byte_length(self) -> int:
        return dtypes.byte_length(self.data_type, self.element_count)

    def as_dict(self) -> dict[str, Any]:
        return {"dataType": self.data_type, "shape": list(self.shape)}

    def __str__(self) -> str:
        return f"{self.data_type}{list(self.shape)}"


class HasDesc:
    """``data_type``, ``shape`` and ``rank`` of something with a ``desc`` (an OperandDesc)."""

    __slots__ = ()
    desc: OperandDesc

    @property
    def data_type(self) -> str:
        return self.desc.data_type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.desc.shape

    @property
    def rank(self) -> int:
        return len(self.desc.shape)


@dataclass(frozen=True, slots=True)
class Value(HasDesc):
    """An operand of the graph being built: its id and descriptor.

    Operator rules see operands only as Values (descriptors), never builder objects.
    """

    id: int
    desc: OperandDesc


def freeze(value: Any) -> Any:
    """Make attribute values immutable (lists become tuples, dicts read-only)."""
    if isinstance(value, (int, float, str, type(None))):  # most attributes; skips the ABC check below
        return value
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    return value


def thaw(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Node attributes as the builder takes them: :func:`freeze`'s tuples and read-only dicts as lists and dicts."""

    def thawed(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: thawed(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return [thawed(v) for v in value]
        return value

    return {k: thawed(v) for k, v in attrs.items()}


@dataclass(frozen=True, slots=True)
class Node:
    """One operator application.

    ``op`` is the spec's operator name (camelCase, e.g. ``"reduceSum"``);
    ``inputs`` maps the Python names of the operator's operand arguments
    (snake_case of the spec's: ``recurrent_weight``) to operand ids, a tuple
    of ids for a sequence argument (concat's ``inputs``); an absent optional
    operand is left out.  They are in the operator's operand order
    (:attr:`webml.ops.OpDef.operands`).  ``attrs`` are the other arguments.
    """

    op: str
    inputs: Mapping[str, int | tuple[int, ...]]
    outputs: tuple[int, ...]
    attrs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    label: str = ""

    def operand_ids(self) -> tuple[int, ...]:
        """Every input operand id, in operand order (a sequence argument's in its order)."""
        ids: list[int] = []
        for value in self.inputs.values():
            ids.extend(value if isinstance(value, tuple) else (value,))
        return tuple(ids)


@dataclass(frozen=True, slots=True)
class Graph:
    """A built computational graph.

    ``operands`` maps every operand id used to its descriptor; ``inputs`` and
    ``outputs`` map names to operand ids; ``constants`` maps constant operand
    ids to read-only arrays of the operand's NumPy dtype and shape; ``nodes``
    are in topological order.  ``constant_files`` maps the constants whose
    bytes are the whole of a file (:mod:`webml.storage`) to the
    file's path, for backends that map weights from files; the files exist
    until the backend's ``compile`` returns.  ``protected``: the graph came
    from a protected package (:mod:`webml.protected`): its constants live in
    anonymous memory only (never in files) and nothing may read them back.
    """

    operands: Mapping[int, OperandDesc]
    inputs: Mapping[str, int]
    constants: Mapping[int, np.ndarray]
    nodes: tuple[Node, ...]
    outputs: Mapping[str, int]
    constant_files: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    protected: bool = False

    def input_descs(self) -> dict[str, OperandDesc]:
        return {name: self.operands[i] for name, i in self.inputs.items()}

    def output_descs(self) -> dict[str, OperandDesc]:
        return {name: self.operands[i] for name, i in self.outputs.items()}


def ancestors(roots: Iterable[int], producer: Callable[[int], Node | None]) -> set[int]:
    """The operand ids that ``roots`` depend on, themselves included (the spec's
    queue walk of build); ``producer`` gives the node that outputs an id, or None
    for inputs and constants."""
    found: set[int] = set()
    stack = list(roots)
    while stack:
        oid = stack.pop()
        if oid in found:
            continue
        found.add(oid)
        node = producer(oid)
        if node is not None:
            stack.extend(node.operand_ids())
    return found
