"""The operator registry's contract: operand arguments are declared, not guessed; lowerings state
their types per named argument; a node's operands are named as the operator declares them."""

from __future__ import annotations

from typing import Optional

import pytest

from webml.backends.onnxruntime import OnnxRuntimeBackend
from webml.backends.onnxruntime.lowering import LOWERINGS, lowering
from webml.ir import OperandDesc, Value
from webml.ops import OPS
from webml.ops.checks import FLOATS, NUMERIC, limit
from webml.ops.registry import OPTIONAL, REQUIRED, SEQUENCE, Call, node_inputs, op, optional, sequence

NAME = "registryTrial"


@pytest.fixture
def registered():
    """Registrations made by a test are undone after it."""
    yield
    OPS.pop(NAME, None)
    LOWERINGS.pop(NAME, None)


def _value(oid: int) -> Value:
    return Value(oid, OperandDesc("float32", (2,)))


def test_operand_kinds_come_from_the_declaration_whatever_the_annotation(registered):
    # Optional[Value] once broke the builder, which read the annotation's text.
    def rule(call: Call, a: "Value", b: "Optional[Value]" = None, *, rest: "list" = (), axis: int = 0):  # noqa: UP037, UP045
        return None

    op(NAME, family="elementwise", a=limit(FLOATS), b=optional(limit(FLOATS)), rest=sequence(limit(FLOATS)),
       output=limit(FLOATS))(rule)  # fmt: skip
    operands = OPS[NAME].operands
    assert [(o.name, o.param, o.kind) for o in operands] == [
        ("a", "a", REQUIRED),
        ("b", "b", OPTIONAL),
        ("rest", "rest", SEQUENCE),
    ]
    assert node_inputs(OPS[NAME], {"a": _value(1), "rest": [_value(2), _value(3)]}) == {"a": 1, "rest": (2, 3)}


def test_a_declared_operand_must_be_a_parameter_of_the_rule(registered):
    with pytest.raises(RuntimeError, match="recurrentWeight is not a parameter .recurrent_weight."):
        op(NAME, family="recurrent", input=limit(FLOATS), recurrentWeight=limit(FLOATS), output=limit(FLOATS))(
            lambda call, input: None
        )
    assert NAME not in OPS


def test_emitted_operands_are_checked_against_the_declaration():
    conv = OPS["conv2d"]
    with pytest.raises(RuntimeError, match="no operand argument weights"):
        node_inputs(conv, {"input": _value(1), "weights": _value(2)})
    with pytest.raises(RuntimeError, match="the operand filter is missing"):
        node_inputs(conv, {"input": _value(1)})
    with pytest.raises(RuntimeError, match="by name"):
        node_inputs(conv, [_value(1), _value(2)])  # type: ignore[arg-type]
    assert node_inputs(conv, {"input": _value(1), "filter": _value(2), "bias": None}) == {"input": 1, "filter": 2}


def test_lowering_types_are_per_named_argument_in_any_keyword_order(registered):
    op(NAME, family="elementwise", a=limit(NUMERIC), b=limit(NUMERIC), output=limit(NUMERIC))(
        lambda call, a, b: None
    )
    lowering(NAME, output=FLOATS, b=("int32",))(lambda lw, a, b, *, out: None)
    backend = OnnxRuntimeBackend()
    assert backend.supports(NAME, "a", "uint8", 1)  # not named: every type the spec allows
    assert backend.supports(NAME, "b", "int32", 1) and not backend.supports(NAME, "b", "float32", 1)
    assert backend.supports(NAME, "output", "float16", 1) and not backend.supports(NAME, "output", "int32", 1)


def test_a_lowering_may_only_name_arguments_of_its_operator(registered):
    op(NAME, family="elementwise", a=limit(NUMERIC), output=limit(NUMERIC))(lambda call, a: None)
    with pytest.raises(RuntimeError, match="no argument types"):
        lowering(NAME, types=FLOATS)(lambda lw, a, *, out: None)
