"""The one explicit list of expected WPT failures.

``PENDING_OPERATORS`` names operators not implemented yet: every case or
test that uses one is expected to fail.  The list must shrink as operators
land: ``tests/test_coverage.py`` fails when a listed operator is registered,
and the conformance tests fail when an expected failure passes.

``CONFORMANCE_FAILURES`` / ``VALIDATION_FAILURES`` list single cases per
backend that are known to fail, each with its reason (shown in
``docs/conformance.md``).
"""

from __future__ import annotations

_ISSUE3 = "issue 3: not implemented yet"

PENDING_OPERATORS: dict[str, str] = {
    name: _ISSUE3
    for name in (
        "argMax",
        "argMin",
        "averagePool2d",
        "batchNormalization",
        "conv2d",
        "convTranspose2d",
        "cumulativeSum",
        "dequantizeLinear",
        "gru",
        "gruCell",
        "instanceNormalization",
        "l2Pool2d",
        "layerNormalization",
        "lstm",
        "lstmCell",
        "maxPool2d",
        "quantizeLinear",
        "reduceL1",
        "reduceL2",
        "reduceLogSum",
        "reduceLogSumExp",
        "reduceMax",
        "reduceMean",
        "reduceMin",
        "reduceProduct",
        "reduceSum",
        "reduceSumSquare",
        "resample2d",
    )
}

_SOFTMAX_AXIS = (
    "spec: softmax(input, axis) takes a required axis; this WPT revision still calls the "
    "earlier softmax(input) without one"
)

CONFORMANCE_FAILURES: dict[str, dict[str, str]] = {
    "reference": {
        **{
            f"softmax::softmax {t} 2D {kind} all {sign}": _SOFTMAX_AXIS
            for t in ("float32", "float16")
            for kind, sign in (("constant tensor", "positive"), ("tensor", "positive"), ("tensor", "negative"))
        },
        "pad::pad float32 4D tensor options.mode='symmetric'": (
            "spec: MLPaddingMode is constant, edge or reflection; 'symmetric' was removed from "
            "the spec after this WPT revision, so pad() raises TypeError"
        ),
    },
}

VALIDATION_FAILURES: dict[str, dict[str, str]] = {
    "reference": {},
}


def pending_reason(operators: set[str] | tuple[str, ...]) -> str:
    """Why a case using ``operators`` is expected to fail, or '' if it is not."""
    pending = sorted(set(operators) & PENDING_OPERATORS.keys())
    if not pending:
        return ""
    return f"{', '.join(pending)}: {PENDING_OPERATORS[pending[0]]}"


def expected_failure(kind: str, backend: str, key: str, operators: set[str] | tuple[str, ...]) -> str:
    """The reason a case/test is expected to fail ('' if it must pass).

    ``kind`` is "conformance" or "validation"; ``key`` is ``file::name``.
    """
    table = CONFORMANCE_FAILURES if kind == "conformance" else VALIDATION_FAILURES
    return table.get(backend, {}).get(key, "") or pending_reason(operators)
