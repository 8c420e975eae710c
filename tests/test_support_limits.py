"""op_support_limits(): where the spec makes an output's data type that of an input, both list the same types.

The operator definitions hold each argument's limits, not the spec's "same as
input X" rule, so the rule is derived here independently: each operator is
built from one of its own WPT conformance cases with input X (and the inputs
that share X's data type there) retyped to every type the limits list for X,
and the built output's data type is compared with X's.  An output that always
comes out as X's type follows X; its limits must then list exactly X's.
"""

from __future__ import annotations

from typing import Any

import pytest

import webml
from test_coverage import TESTED_OUTSIDE_WPT
from webml.backends import BACKENDS
from webml.conformance.data import conformance_files, load
from webml.ops import OPS
from webml.ops.registry import snake_case


def _single_operator_cases() -> dict[str, dict[str, Any]]:
    """A WPT conformance case per operator whose graph is that operator alone."""
    found: dict[str, dict[str, Any]] = {}
    for path in conformance_files():
        for case in load(path)["cases"]:
            operators = case["graph"]["operators"]
            if len(operators) == 1:
                found.setdefault(operators[0]["name"], case)
    return found


CASES = _single_operator_cases()


def _bindings(operator: dict[str, Any], names: set[str]) -> dict[str, list[str]]:
    """Argument name (as the limits name it) -> the graph inputs passed for it."""
    bound: dict[str, list[str]] = {}
    for argument in operator["arguments"]:
        for key, value in (argument or {}).items():
            pairs = value.items() if key == "options" else [(key, value)]
            for name, v in pairs:
                refs = v if isinstance(v, list) else [v]
                if refs and all(isinstance(r, str) and r in names for r in refs):
                    bound[name] = refs
    return bound


def _build(context: webml.MLContext, case: dict[str, Any], types: dict[str, str]) -> list[str]:
    """Build the case's operator with its graph inputs typed as ``types``; the data types of its outputs."""
    builder = webml.MLGraphBuilder(context)
    graph = case["graph"]
    env = {
        name: builder.input(name, {"dataType": types[name], "shape": spec["descriptor"]["shape"]})
        for name, spec in graph["inputs"].items()
    }

    def resolve(v: Any) -> Any:
        if isinstance(v, str) and v in env:
            return env[v]
        if isinstance(v, list) and v and all(isinstance(x, str) and x in env for x in v):
            return [env[x] for x in v]
        return v

    (operator,) = graph["operators"]
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for argument in operator["arguments"]:
        for key, value in (argument or {}).items():
            if key == "options":
                kwargs.update({snake_case(k): resolve(v) for k, v in value.items()})
            else:
                args.append(resolve(value))
    result = getattr(builder, snake_case(operator["name"]))(*args, **kwargs)
    return [o.data_type for o in (result if isinstance(result, list) else [result])]


def _output_keys(limits: dict[str, Any], count: int) -> list[str]:
    keys = [k for k in limits if k.startswith("output")]
    return keys * count if keys == ["outputs"] else keys


def same_type_rules(backend: str) -> dict[tuple[str, str], str]:
    """(operator, output limit key) -> the input argument whose data type that output always has."""
    context = webml.ml.create_context(backend=backend)
    all_limits = context.op_support_limits()
    rules: dict[tuple[str, str], str] = {}
    for op_name in OPS.keys() & CASES.keys():  # the others are tested_outside_wpt()
        case = CASES[op_name]
        limits = all_limits[op_name]
        original = {n: s["descriptor"]["dataType"] for n, s in case["graph"]["inputs"].items()}
        bound = _bindings(case["graph"]["operators"][0], set(original))
        follows: dict[str, dict[str, bool]] = {}  # output key -> input argument -> always its type
        for argument, refs in bound.items():
            if argument not in limits or argument.startswith("output"):
                continue
            group = {n for n, t in original.items() if t == original[refs[0]]}
            for data_type in limits[argument]["dataTypes"]:
                types = {n: data_type if n in group else t for n, t in original.items()}
                try:
                    outputs = _build(context, case, types)
                except TypeError:
                    continue  # another argument's rule refuses this combination
                for key, out_type in zip(_output_keys(limits, len(outputs)), outputs):
                    seen = follows.setdefault(key, {})
                    seen[argument] = seen.get(argument, True) and out_type == data_type
        for key, by_argument in follows.items():
            followed = [a for a, same in by_argument.items() if same]
            if followed:
                rules[(op_name, key)] = followed[0]
    return rules


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_of_the_input_type_list_exactly_the_input_types(backend):
    limits = webml.ml.create_context(backend=backend).op_support_limits()
    rules = same_type_rules(backend)
    # The derivation finds the spec's rule where it is plain: it is no vacuous check.
    assert rules[("reduceSum", "output")] == "input"
    assert rules[("add", "output")] == "a"
    assert rules[("where", "output")] in ("trueValue", "falseValue")
    assert rules[("dequantizeLinear", "output")] == "scale"
    assert rules[("split", "outputs")] == "input"
    assert ("argMax", "output") not in rules and ("equal", "output") not in rules
    wrong = [
        f"{op}.{out}: {limits[op][out]['dataTypes']} != {arg}: {limits[op][arg]['dataTypes']}"
        for (op, out), arg in sorted(rules.items())
        if limits[op][out]["dataTypes"] != limits[op][arg]["dataTypes"]
    ]
    assert not wrong, "\n".join(wrong)


def test_every_operator_with_wpt_cases_has_one_to_derive_its_rule_from():
    # An operator outside WPT (TESTED_OUTSIDE_WPT) has its own tests, output types included.
    assert not OPS.keys() - CASES.keys() - TESTED_OUTSIDE_WPT.keys()
