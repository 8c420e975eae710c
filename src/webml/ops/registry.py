"""The operator registry: one :class:`OpDef` per WebNN operator.

An operator is declared once, in its family module, with :func:`op`::

    @op("add", family="elementwise", a=ANY, b=ANY, output=ANY)
    def add(call, a, b):
        ...validation per the spec, on descriptors...
        return call.emit({"a": a, "b": b}, OperandDesc(a.data_type, shape))

The keyword arguments of :func:`op` declare the operator's operand arguments
and outputs with their allowed data types and ranks (the spec's tables, as
``op_support_limits()`` reports them): every argument whose name does not
start with ``output`` is an operand argument, required unless wrapped in
:func:`optional` (an options member such as conv2d's ``bias``) or
:func:`sequence` (concat's ``inputs``).  Their order is the operator's
operand order.  :mod:`webml.api.builder` converts and checks the operand
arguments before the rule runs.

The decorated *rule* receives a :class:`Call` and the operator's arguments
as the Python API takes them: required arguments positionally, the options
dictionary's members as keyword-only arguments in snake_case (``label`` is
handled for it).  Operands arrive as :class:`~webml.ir.Value` (id and
descriptor).  The rule raises ``call.error(...)`` (a TypeError naming the
operator and its label) for invalid arguments and returns what
``call.emit`` returns: it names the node's operands by their Python names,
``call.emit({"a": a, "b": b}, desc)``, and the IR node keeps them so
(:attr:`webml.ir.Node.inputs`).  Kernels, lowerings and gradient rules then
take them as keyword arguments of those names, the attributes as keyword
arguments too.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
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
    "Operand",
    "gradient",
    "not_differentiable",
    "op",
    "optional",
    "register",
    "registrar",
    "sequence",
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


#: Operand kinds: a required operand, an optional one (absent: None), a sequence of operands.
REQUIRED, OPTIONAL, SEQUENCE = "required", "optional", "sequence"


@dataclass(frozen=True)
class _Kind:
    limit: Limit
    kind: str


def optional(limit: Limit) -> _Kind:
    """Declare an optional operand argument (``bias=optional(limit(FLOATS, 1, 1))``)."""
    return _Kind(limit, OPTIONAL)


def sequence(limit: Limit) -> _Kind:
    """Declare an argument taking a sequence of operands (concat's ``inputs``)."""
    return _Kind(limit, SEQUENCE)


@dataclass(frozen=True)
class Operand:
    """One operand argument of an operator."""

    name: str  # the spec's name (``recurrentWeight``), as in op_support_limits()
    param: str  # the Python name (``recurrent_weight``): of the rule's parameter and the IR node's input
    kind: str  # REQUIRED, OPTIONAL or SEQUENCE
    limit: Limit


@dataclass(frozen=True)
class OpDef:
    name: str  # the spec's camelCase name
    method: str  # the Python method name
    family: str
    rule: Callable[..., Any]
    limits: dict[str, Limit] = field(default_factory=dict)  # every operand argument and output, spec names
    signature: inspect.Signature | None = None
    operands: tuple[Operand, ...] = ()  # in operand order

    def operand(self, param: str) -> Operand | None:
        """The operand argument of Python name ``param``, or None."""
        return next((o for o in self.operands if o.param == param), None)


OPS: dict[str, OpDef] = {}


def register(table: dict[str, Any], name: str, entry: Any, what: str) -> None:
    """Add ``entry`` to ``table`` under ``name``; a second registration is a programming error."""
    if name in table:
        raise RuntimeError(f"{what} {name} registered twice")
    table[name] = entry


def registrar(table: dict[str, Any], what: str) -> Callable[..., Callable[[Callable], Callable]]:
    """A decorator factory registering one function under each of several operator names."""

    def names(*op_names: str) -> Callable[[Callable], Callable]:
        def decorate(fn: Callable) -> Callable:
            for name in op_names:
                register(table, name, fn, what)
            return fn

        return decorate

    return names

#: Gradient rules, registered beside each operator's rule (see webml.train.autodiff).
GRADIENTS: dict[str, Callable[..., Any]] = {}
#: Operators declared not differentiable, with the reason.
NOT_DIFFERENTIABLE: dict[str, str] = {}


def gradient(*names: str):
    """Register the gradient rule of operators ``names``.

    The rule takes a GradCall, the node's operands (MLOperands) as keyword
    arguments of their Python names and the node's attributes as keyword
    arguments, and returns a dict of operand name -> cotangent (an absent
    name or None: no cotangent flows there; a list for a sequence operand).
    """

    def decorate(rule: Callable[..., Any]) -> Callable[..., Any]:
        for name in names:
            _check_no_gradient(name)
            GRADIENTS[name] = rule
        return rule

    return decorate


def not_differentiable(reason: str, *names: str) -> None:
    """Declare operators ``names`` not differentiable (gradients stop or are refused there)."""
    for name in names:
        _check_no_gradient(name)
        NOT_DIFFERENTIABLE[name] = reason


def _check_no_gradient(name: str) -> None:
    if name in GRADIENTS or name in NOT_DIFFERENTIABLE:
        raise RuntimeError(f"gradient of {name} registered twice")


def snake_case(name: str) -> str:
    """``reduceSum`` -> ``reduce_sum``, ``gatherND`` -> ``gather_nd``, ``isNaN`` -> ``is_nan``."""
    s = name.replace("NaN", "Nan")
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


def op(name: str, *, family: str, method: str | None = None, **arguments: Limit | _Kind):
    """Register the rule of operator ``name`` (spec camelCase) in ``family``.

    ``arguments``: each operand argument's and output's limits (see the module docstring).
    """

    def decorate(rule: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(rule)
        limits, operands = {}, []
        for arg, declared in arguments.items():
            kind, lim = (declared.kind, declared.limit) if isinstance(declared, _Kind) else (REQUIRED, declared)
            limits[arg] = lim
            if arg.startswith("output"):
                if kind != REQUIRED:
                    raise RuntimeError(f"{name}: output {arg} cannot be {kind}")
                continue
            param = snake_case(arg)
            if param not in signature.parameters:
                raise RuntimeError(f"{name}: operand argument {arg} is not a parameter ({param}) of its rule")
            operands.append(Operand(arg, param, kind, lim))
        opdef = OpDef(name, method or snake_case(name), family, rule, limits, signature, tuple(operands))
        register(OPS, name, opdef, "operator")
        return rule

    return decorate


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
        inputs: Mapping[str, Value | Sequence[Value] | None],
        outputs: OperandDesc | Sequence[OperandDesc],
        op: str | None = None,
        **attrs: Any,
    ) -> Any:
        """Add a node of this operator (or ``op``) with ``inputs`` named by their Python
        names (None: an absent optional operand); returns its output Value, or a list
        for a sequence of outputs."""
        name = op or self.op
        single = isinstance(outputs, OperandDesc)
        descs = [outputs] if single else list(outputs)
        values = self._emit(name, freeze(node_inputs(OPS[name], inputs)), descs, freeze(attrs), self.label)
        return values[0] if single else values


def node_inputs(opdef: OpDef, inputs: Mapping[str, Any]) -> dict[str, int | tuple[int, ...]]:
    """The IR node inputs (operand ids by Python name, absent optional operands left out)
    of ``opdef`` for ``inputs`` (Values by Python name)."""
    if not isinstance(inputs, Mapping):
        raise RuntimeError(f"{opdef.name}: a rule emits its operands by name, not {type(inputs).__name__}")
    unknown = set(inputs) - {o.param for o in opdef.operands}
    if unknown:
        raise RuntimeError(f"{opdef.name} has no operand argument {', '.join(sorted(unknown))}")
    ids: dict[str, int | tuple[int, ...]] = {}
    for operand in opdef.operands:
        value = inputs.get(operand.param)
        if value is None:
            if operand.kind != OPTIONAL:
                raise RuntimeError(f"{opdef.name}: the operand {operand.param} is missing")
        elif operand.kind == SEQUENCE:
            ids[operand.param] = tuple(v.id for v in value)
        else:
            ids[operand.param] = value.id
    return ids
