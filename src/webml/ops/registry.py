"""The operator registry: one :class:`OpDef` per WebNN operator.

An operator is declared once, in its family module, with :func:`op`::

    @op("add", family="elementwise", a=ANY, b=ANY, output=ANY)
    def add(call, a, b):
        ...validation per the spec, on descriptors...
        return call.emit([a, b], OperandDesc(a.data_type, shape))

The decorated *rule* receives a :class:`Call` and the operator's arguments
as the Python API takes them: required arguments positionally, the options
dictionary's members as keyword-only arguments in snake_case (``label`` is
handled for it).  Operands arrive as :class:`~webml.ir.Value` (id and
descriptor).  The rule raises ``call.error(...)`` (a TypeError naming the
operator and its label) for invalid arguments and returns what
``call.emit`` returns.

The keyword arguments of :func:`op` give each operand argument's allowed data
types and ranks (the spec's tables), which :mod:`webml.api.builder` checks
before the rule runs and ``op_support_limits()`` reports.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import op_message
from ..ir import OperandDesc, Value, freeze

__all__ = [
    "GRADIENTS",
    "NOT_DIFFERENTIABLE",
    "OPS",
    "Call",
    "Limit",
    "OpDef",
    "gradient",
    "not_differentiable",
    "op",
    "snake_case",
]

#: Highest rank this implementation supports (spec Issue 456 leaves it open;
#: Chromium and the WPT "rank is too large" test use 8).
MAX_RANK = 8


@dataclass(frozen=True)
class Limit:
    """Allowed data types and rank range of one argument (an MLTensorLimits)."""

    data_types: tuple[str, ...]
    min_rank: int = 0
    max_rank: int = MAX_RANK

    def ranks(self, lo: int, hi: int | None = None) -> Limit:
        return Limit(self.data_types, lo, lo if hi is None else hi)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataTypes": list(self.data_types),
            "rankRange": {"min": self.min_rank, "max": self.max_rank},
        }


@dataclass(frozen=True)
class OpDef:
    name: str  # the spec's camelCase name
    method: str  # the Python method name
    family: str
    rule: Callable[..., Any]
    limits: dict[str, Limit] = field(default_factory=dict)
    signature: inspect.Signature | None = None


OPS: dict[str, OpDef] = {}

#: Gradient rules, registered beside each operator's rule (see webml.train.autodiff).
GRADIENTS: dict[str, Callable[..., Any]] = {}
#: Operators declared not differentiable, with the reason.
NOT_DIFFERENTIABLE: dict[str, str] = {}


def gradient(*names: str):
    """Register the gradient rule of operators ``names`` (a function of a GradCall)."""

    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            if name in GRADIENTS or name in NOT_DIFFERENTIABLE:
                raise RuntimeError(f"gradient of {name} registered twice")
            GRADIENTS[name] = rule
        return rule

    return register


def not_differentiable(reason: str, *names: str) -> None:
    """Declare operators ``names`` not differentiable (gradients stop or are refused there)."""
    for name in names:
        if name in GRADIENTS or name in NOT_DIFFERENTIABLE:
            raise RuntimeError(f"gradient of {name} registered twice")
        NOT_DIFFERENTIABLE[name] = reason


def snake_case(name: str) -> str:
    """``reduceSum`` -> ``reduce_sum``, ``gatherND`` -> ``gather_nd``, ``isNaN`` -> ``is_nan``."""
    s = name.replace("NaN", "Nan")
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


def op(name: str, *, family: str, method: str | None = None, **limits: Limit):
    """Register the rule of operator ``name`` (spec camelCase) in ``family``."""

    def register(rule: Callable[..., Any]) -> Callable[..., Any]:
        if name in OPS:
            raise RuntimeError(f"operator {name} registered twice")
        OPS[name] = OpDef(
            name=name,
            method=method or snake_case(name),
            family=family,
            rule=rule,
            limits=dict(limits),
            signature=inspect.signature(rule),
        )
        return rule

    return register


class Call:
    """One builder call of an operator: its name, label and the nodes it emits."""

    __slots__ = ("_emit", "label", "op")

    def __init__(self, op: str, label: str, emit: Callable[..., Any]) -> None:
        self.op = op
        self.label = label
        self._emit = emit

    def error(self, message: str) -> TypeError:
        """A TypeError whose message names the operator and carries ``[label]``."""
        return TypeError(op_message(self.op, self.label, message))

    def emit(
        self,
        inputs: Sequence[Value | None],
        outputs: OperandDesc | Sequence[OperandDesc],
        op: str | None = None,
        **attrs: Any,
    ) -> Any:
        """Add a node; returns its output Value, or a list for a sequence of outputs."""
        single = isinstance(outputs, OperandDesc)
        descs = [outputs] if single else list(outputs)
        values = self._emit(
            op or self.op,
            tuple(None if v is None else v.id for v in inputs),
            descs,
            freeze(attrs),
            self.label,
        )
        return values[0] if single else values
