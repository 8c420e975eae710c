"""Completeness is tested: every operator has each piece that docs/layers.md's checklist names."""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any

from webml import MLGraphBuilder
from webml.backends.reference import KERNELS
from webml.conformance.data import conformance_files, validation_files
from webml.conformance.expectations import PENDING_OPERATORS
from webml.ops import FAMILIES, OPS

HERE = Path(__file__).parent
README = HERE.parent / "README.md"


@functools.cache
def _wpt_operators() -> set[str]:
    names: set[str] = set()
    for path in conformance_files():
        for case in json.loads(path.read_text())["cases"]:
            names.update(case["operatorNames"])
    return names


def _takes_operands(fn: Any, opdef: Any, collected_ok: bool = False) -> list[str]:
    """The operand names that ``fn`` does not take as named parameters (optional ones need a None default);
    ``collected_ok``: a ``**kwargs`` parameter may take those ``fn`` does not use."""
    params = inspect.signature(fn).parameters
    if collected_ok and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return [
            o.param
            for o in opdef.operands
            if o.kind == "optional" and o.param in params and params[o.param].default is not None
        ]
    missing = []
    for operand in opdef.operands:
        param = params.get(operand.param)
        if param is None or param.kind is inspect.Parameter.POSITIONAL_ONLY:
            missing.append(operand.param)
        elif operand.kind == "optional" and param.default is not None:
            missing.append(f"{operand.param}=None")
    return missing


def operator_gaps(name: str) -> list[str]:
    """What operator ``name`` lacks of the pieces that docs/layers.md's checklist names, each with where it goes."""
    from webml.backends.onnxruntime.lowering import LOWERINGS
    from webml.backends.webgpu.kernels import KERNELS as WEBGPU_KERNELS
    from webml.conformance.expectations import PENDING_BACKEND_OPERATORS
    from webml.ops.registry import GRADIENTS, NOT_DIFFERENTIABLE

    opdef = OPS[name]
    family = opdef.family
    gaps = []
    if family not in FAMILIES:
        gaps.append(f"its family {family!r} is not in webml.ops.FAMILIES (src/webml/ops/__init__.py)")
    if not any(k.startswith("output") for k in opdef.limits):
        gaps.append(f"no output limits: add output=limit(...) to its @op in src/webml/ops/{family}.py")
    where = f"src/webml/backends/reference/{family}.py"
    if name not in KERNELS:
        gaps.append(f'no reference kernel: add @kernel("{name}") in {where}')
    elif missing := _takes_operands(KERNELS[name], opdef):
        gaps.append(f"the reference kernel in {where} does not take the operands {missing} as keyword arguments")
    where = f"src/webml/backends/onnxruntime/{family}.py"
    if name in LOWERINGS:
        if missing := _takes_operands(LOWERINGS[name].fn, opdef):
            gaps.append(
                f"the onnxruntime lowering in {where} does not take the operands {missing} as keyword arguments"
            )
    elif name not in PENDING_BACKEND_OPERATORS["onnxruntime"]:
        gaps.append(
            f'no onnxruntime lowering: add @lowering("{name}", ...) in {where}, or say why not in '
            'PENDING_BACKEND_OPERATORS["onnxruntime"] (src/webml/conformance/expectations.py)'
        )
    where = f"src/webml/backends/webgpu/{family}.py"
    if name in WEBGPU_KERNELS:
        if missing := _takes_operands(WEBGPU_KERNELS[name].fn, opdef, collected_ok=True):
            gaps.append(f"the webgpu kernel in {where} does not take the operands {missing} as keyword arguments")
    elif name not in PENDING_BACKEND_OPERATORS["webgpu"]:
        gaps.append(
            f'no webgpu kernel: add @kernel("{name}", ...) in {where}, or say why not in '
            'PENDING_BACKEND_OPERATORS["webgpu"] (src/webml/conformance/expectations.py)'
        )
    where = f"src/webml/ops/{family}.py"
    if name in GRADIENTS:
        if missing := _takes_operands(GRADIENTS[name], opdef, collected_ok=True):
            gaps.append(f"the gradient rule in {where} does not take the operands {missing} as keyword arguments")
        grad_tests = HERE / f"test_grad_{family}.py"
        if family != "logical" and (not grad_tests.exists() or opdef.method not in grad_tests.read_text()):
            gaps.append(f"no finite-difference check of its gradient in tests/test_grad_{family}.py")
    elif name in NOT_DIFFERENTIABLE:
        if f"`{name}`" not in README.read_text():
            gaps.append("declared not differentiable, but the README's list of such operators does not name it")
    else:
        gaps.append(f'no gradient: add @gradient("{name}") or not_differentiable(reason, "{name}") in {where}')
    if name not in _wpt_operators():
        module = TESTED_OUTSIDE_WPT.get(name)
        if module is None:
            gaps.append(
                f"no WPT conformance cases: add tests to tests/test_ops_{family}.py and name that file in "
                "TESTED_OUTSIDE_WPT (tests/test_coverage.py)"
            )
        elif opdef.method not in (HERE / module).read_text():
            gaps.append(f"tests/{module} does not test it (TESTED_OUTSIDE_WPT says it does)")
    return gaps


def test_every_operator_has_all_its_pieces():
    """The checklist of docs/layers.md, operator by operator."""
    gaps = {name: operator_gaps(name) for name in OPS}
    report = [f"{name} (src/webml/ops/{OPS[name].family}.py): {gap}" for name, found in gaps.items() for gap in found]
    assert not report, "operators missing pieces (see docs/layers.md):\n" + "\n".join(report)


def test_every_kernel_lowering_and_gradient_belongs_to_an_operator():
    from webml.backends.onnxruntime.lowering import LOWERINGS
    from webml.backends.webgpu.kernels import KERNELS as WEBGPU_KERNELS
    from webml.ops.registry import GRADIENTS, NOT_DIFFERENTIABLE

    for what, names in (
        ("reference kernels", KERNELS.keys()),
        ("webgpu kernels", WEBGPU_KERNELS.keys()),
        ("onnxruntime lowerings", LOWERINGS.keys()),
        ("gradient rules and declarations", GRADIENTS.keys() | NOT_DIFFERENTIABLE.keys()),
    ):
        assert not names - OPS.keys(), f"{what} for no operator: {sorted(names - OPS.keys())}"
    assert not GRADIENTS.keys() & NOT_DIFFERENTIABLE.keys(), "operators both differentiable and not"


def test_every_operator_is_a_builder_method():
    for opdef in OPS.values():
        assert callable(getattr(MLGraphBuilder, opdef.method)), opdef.name


def test_pending_list_only_names_missing_operators():
    # An implemented operator must leave the expected-failure list.
    assert sorted(PENDING_OPERATORS.keys() & OPS.keys()) == []


def test_every_wpt_operator_is_implemented_or_pending():
    assert sorted(_wpt_operators() - OPS.keys() - PENDING_OPERATORS.keys()) == []


# Operators the vendored WPT revision has no conformance cases for, and the
# test module that checks their results against NumPy instead (none today:
# the 2025 refresh brought isNaN, isInfinite and roundEven their cases).
TESTED_OUTSIDE_WPT: dict[str, str] = {}


def test_operators_tested_outside_wpt_have_no_wpt_cases():
    assert not TESTED_OUTSIDE_WPT.keys() & _wpt_operators(), "they have WPT cases now: take them off the list"


def test_validation_files_are_vendored():
    assert len(validation_files()) == 62


def test_every_operand_argument_and_output_has_support_limits():
    """op_support_limits() reports every operator's operands, as the spec's MLOpSupportLimits does."""
    from webml import ml

    limits = ml.create_context().op_support_limits()
    for name, opdef in OPS.items():
        assert {o.name for o in opdef.operands} <= limits[name].keys(), name
        for arg, entry in limits[name].items():
            assert entry["dataTypes"], (name, arg)
            assert 0 <= entry["rankRange"]["min"] <= entry["rankRange"]["max"], (name, arg)


def test_backend_pending_lists_name_only_what_backends_lack():
    """A backend's pending list names only operators it cannot run yet."""
    from webml.backends.onnxruntime.lowering import LOWERINGS
    from webml.backends.webgpu.kernels import KERNELS as WEBGPU_KERNELS
    from webml.conformance.expectations import PENDING_BACKEND_OPERATORS

    assert not PENDING_BACKEND_OPERATORS["onnxruntime"].keys() & LOWERINGS.keys()
    assert not PENDING_BACKEND_OPERATORS["webgpu"].keys() & WEBGPU_KERNELS.keys()
