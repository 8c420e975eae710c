"""Completeness is tested: every operator has its rule, a reference kernel and WPT coverage."""

from __future__ import annotations

import json
from pathlib import Path

from webml import MLGraphBuilder
from webml.backends.reference import KERNELS
from webml.conformance.data import conformance_files, validation_files
from webml.conformance.expectations import PENDING_OPERATORS
from webml.ops import FAMILIES, OPS
from webml.ops.registry import snake_case


def _wpt_operators() -> set[str]:
    names: set[str] = set()
    for path in conformance_files():
        for case in json.loads(path.read_text())["cases"]:
            names.update(case["operatorNames"])
    return names


def test_every_operator_has_a_reference_kernel():
    assert sorted(OPS.keys() - KERNELS.keys()) == []


def test_every_kernel_belongs_to_an_operator():
    assert sorted(KERNELS.keys() - OPS.keys()) == []


def test_every_operator_is_a_builder_method():
    for opdef in OPS.values():
        assert callable(getattr(MLGraphBuilder, opdef.method)), opdef.name
        assert opdef.family in FAMILIES


def test_pending_list_only_names_missing_operators():
    # An implemented operator must leave the expected-failure list.
    assert sorted(PENDING_OPERATORS.keys() & OPS.keys()) == []


def test_every_wpt_operator_is_implemented_or_pending():
    assert sorted(_wpt_operators() - OPS.keys() - PENDING_OPERATORS.keys()) == []


# Operators the vendored WPT revision has no conformance cases for; the named
# test module checks their results against NumPy instead.
TESTED_OUTSIDE_WPT = {
    "isNaN": "test_ops_logical.py",
    "isInfinite": "test_ops_logical.py",
    "roundEven": "test_ops_unary.py",
}


def test_every_implemented_operator_has_wpt_cases_or_its_own_tests():
    assert sorted(OPS.keys() - _wpt_operators() - TESTED_OUTSIDE_WPT.keys()) == []
    here = Path(__file__).parent
    for name, module in TESTED_OUTSIDE_WPT.items():
        assert OPS[name].method in (here / module).read_text(), f"{module} does not test {name}"


def test_validation_files_are_vendored():
    assert len(validation_files()) == 62


def test_every_operand_argument_and_output_has_support_limits():
    """op_support_limits() reports every operator's operands, as the spec's MLOpSupportLimits does."""
    from webml import ml

    limits = ml.create_context().op_support_limits()
    for name, opdef in OPS.items():
        operand_params = [p.name for p in list(opdef.signature.parameters.values())[1:] if "Value" in str(p.annotation)]
        declared = {snake_case(k) for k in opdef.limits}
        assert set(operand_params) <= declared, name
        assert any(k.startswith("output") for k in opdef.limits), name
        for arg, entry in limits[name].items():
            assert entry["dataTypes"], (name, arg)
            assert 0 <= entry["rankRange"]["min"] <= entry["rankRange"]["max"], (name, arg)


def test_backend_pending_lists_match_what_backends_lack():
    """A backend's pending list names exactly the operators it cannot run yet."""
    from webml.backends.onnxruntime.lowering import LOWERINGS
    from webml.conformance.expectations import PENDING_BACKEND_OPERATORS

    assert sorted(PENDING_BACKEND_OPERATORS["onnxruntime"]) == sorted(OPS.keys() - LOWERINGS.keys())
    assert sorted(LOWERINGS.keys() - OPS.keys()) == []


def test_every_operator_has_a_gradient_rule_or_is_declared_not_differentiable():
    from webml.ops.registry import GRADIENTS, NOT_DIFFERENTIABLE

    assert sorted(OPS.keys() - GRADIENTS.keys() - NOT_DIFFERENTIABLE.keys()) == []
    assert sorted(GRADIENTS.keys() & NOT_DIFFERENTIABLE.keys()) == []
    assert sorted((GRADIENTS.keys() | NOT_DIFFERENTIABLE.keys()) - OPS.keys()) == []


def test_every_gradient_rule_has_finite_difference_tests():
    """Each family with gradient rules has a tests/test_grad_<family>.py that names its operators."""
    from webml.ops.registry import GRADIENTS

    here = Path(__file__).parent
    texts = {p.name: p.read_text() for p in here.glob("test_grad_*.py")}
    corpus = "\n".join(texts.values())
    untested = [name for name in GRADIENTS if OPS[name].method not in corpus and OPS[name].family not in ("logical",)]
    assert untested == []


def test_the_readme_names_every_operator_that_is_not_differentiable():
    from webml.ops.registry import NOT_DIFFERENTIABLE

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert [name for name in NOT_DIFFERENTIABLE if f"`{name}`" not in readme] == []
