"""The traced WPT validation tests, replayed on each backend, one pytest test per file.

Every traced test must pass unless :mod:`webml.conformance.expectations`
expects it to fail (an operator in ``PENDING_OPERATORS``, or an entry of
``VALIDATION_FAILURES``); an expected failure that passes fails too, so the
list only shrinks.  A test that checks nothing (no call, or only the
builder's construction) is neither a pass nor a failure: it is counted apart.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from webml.backends import BACKENDS
from webml.conformance import expectations, report
from webml.conformance.data import validation_files
from webml.conformance.validation import TestResult, replay_file, replay_test, typed_array

BACKEND = "reference"
FILES = validation_files()

#: Traced tests (2025-03-31): 74 make no call, 26 only construct a builder (loops over
#: the types opSupportLimits() excludes, traced with every type supported).
TOTAL, NOTHING_TO_CHECK = 992, 100


def disagreements(results: list[TestResult], backend: str) -> list[str]:
    problems = []
    for r in results:
        if r.skipped:
            continue
        expected = expectations.expected_failure("validation", backend, r.key, r.operators, passed=r.passed)
        if r.empty:
            if expected:
                problems.append(f"EMPTY {r.key}: expected to fail ({expected}) but checks nothing")
        elif r.passed and expected:
            problems.append(f"XPASS {r.key}: expected to fail ({expected}) but passes; update the expectations")
        elif not r.passed and not expected:
            problems.append(f"FAIL {r.key}: {r.reason}")
    return problems


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validation_file(path, backend):
    problems = disagreements(replay_file(path, backend), backend)
    assert not problems, "\n".join(problems)


def test_suite_is_complete_and_counted_honestly():
    results = [r for p in FILES for r in replay_file(p, BACKEND)]
    assert len(results) == TOTAL
    statuses = Counter(r.status for r in results)
    assert statuses["skipped"] == 0
    assert statuses["empty"] == NOTHING_TO_CHECK
    assert not any(r.passed for r in results if r.empty), "a test that checks nothing is no pass"
    failures = len(expectations.VALIDATION_FAILURES[BACKEND])
    assert statuses == {"passed": TOTAL - NOTHING_TO_CHECK - failures, "failed": failures, "empty": NOTHING_TO_CHECK}


def test_listed_failures_exist():
    """Every VALIDATION_FAILURES entry names a real test (no stale entries)."""
    keys = {f"{p.stem}::{t}" for p in FILES for t in _names(p)}
    for backend, table in expectations.VALIDATION_FAILURES.items():
        stale = sorted(set(table) - keys)
        assert not stale, f"VALIDATION_FAILURES[{backend!r}] lists unknown tests: {stale}"


def _names(path):
    from webml.conformance.data import load

    return [t["name"] for t in load(path)["tests"]]


# -- the replayer itself, on hand-made traces ---------------------------------------------

SETUP = [{"seq": 0, "target": "navigator.ml", "method": "createContext", "args": [{}], "result": {"$context": 0}}]


def trace(*calls, expectations=(), notes=()):
    head = [
        {
            "seq": 0,
            "target": "MLGraphBuilder",
            "method": "constructor",
            "args": [{"$context": 0}],
            "result": {"$builder": 0},
        }
    ]
    numbered = [{"seq": i + 1, **c} for i, c in enumerate(calls)]
    return {
        "name": "t",
        "status": "traced",
        "notes": list(notes),
        "calls": head + numbered,
        "expectations": list(expectations),
    }


def call(method, *args, result=None, expect="success", **extra):
    return {
        "target": "builder#0",
        "method": method,
        "args": list(args),
        "result": {"$operand": result},
        "expect": expect,
        **extra,
    }


def run(test):
    return replay_test(test, SETUP, "synthetic", BACKEND)


X = call("input", "x", {"dataType": "float32", "shape": [2, 3]}, result=0)
Y = call("input", "y", {"dataType": "float32", "shape": [3]}, result=1)


def test_replay_checks_shapes_and_types():
    ok = trace(
        X,
        Y,
        call("add", {"$operand": 0}, {"$operand": 1}, result=2),
        expectations=[
            {"operand": 2, "property": "shape", "expected": [2, 3]},
            {"operand": 2, "property": "dataType", "expected": "float32"},
        ],
    )
    assert run(ok).passed
    bad = trace(
        X,
        Y,
        call("add", {"$operand": 0}, {"$operand": 1}, result=2),
        expectations=[{"operand": 2, "property": "shape", "expected": [3, 3]}],
    )
    result = run(bad)
    assert not result.passed and "shape" in result.reason and "[2, 3]" in result.reason
    assert result.operators == {"add"}


def test_replay_checks_expected_errors_and_labels():
    z = call("input", "z", {"dataType": "float32", "shape": [4]}, result=1)
    labelled = call(
        "equal",
        {"$operand": 0},
        {"$operand": 1},
        {"label": "my_op"},
        result=2,
        expect="TypeError",
        expectLabelPattern=r"\[my_op\]",
    )
    assert run(trace(X, z, labelled)).passed
    wrong_label = dict(labelled, expectLabelPattern=r"\[other\]")
    assert "matching" in run(trace(X, z, wrong_label)).reason
    no_error = call("add", {"$operand": 0}, {"$operand": 1}, result=2, expect="TypeError")
    result = run(trace(X, Y, no_error))
    assert not result.passed and "expected TypeError, got success" in result.reason
    dom = call("add", {"$operand": 0}, {"$operand": 1}, result=2, expect="DOMException:InvalidStateError")
    assert "got TypeError" in run(trace(X, z, dom)).reason


def test_replay_reports_missing_operators_and_options():
    missing = run(trace(X, call("notAnOperator", {"$operand": 0}, result=1)))
    assert not missing.passed and "operator notAnOperator not implemented" in missing.reason
    unknown_option = run(trace(X, Y, call("equal", {"$operand": 0}, {"$operand": 1}, {"fooBar": 1}, result=2)))
    assert not unknown_option.passed and "'foo_bar'" in unknown_option.reason


def test_unchecked_calls_must_not_raise():
    result = run(trace(call("input", "", {"dataType": "float32", "shape": [1]}, result=0, expect=None)))
    assert not result.passed and "must not raise" in result.reason


def test_a_test_that_checks_nothing_is_no_pass():
    for test in (trace(), {**trace(), "calls": []}):
        result = run(test)
        assert result.empty and not result.passed and result.status == "empty"
        assert "nothing to check" in result.reason
    assert run(trace(X)).status == "passed"  # input() is checked to succeed
    # The report counts it apart, and an expected failure that checks nothing is a stale entry.
    (outcome,) = report.judge("validation", BACKEND, [run(trace())])
    assert outcome.status == "EMPTY" and outcome.ok and not outcome.checked
    stale = report.Outcome("validation", BACKEND, "f::t", (), (), False, "", "some reason", empty=True)
    assert not stale.ok
    assert report.summary_line([outcome]) == "0 passed, 0 failed of 0 that check something; 1 check nothing"


def test_typed_arrays():
    a = typed_array({"$typedArray": "Float16Array", "length": 3, "data": [1.5]})
    assert a.dtype == np.float16 and a.tolist() == [1.5, 0, 0]
    assert typed_array({"$typedArray": "BigInt64Array", "length": 1, "data": [-(2**62)]}).tolist() == [-(2**62)]
    assert typed_array({"$typedArray": "Float32Array", "length": 4, "data": None}).tolist() == [0, 0, 0, 0]
    assert typed_array({"$typedArray": "Float32Array", "detached": True}).size == 0
