"""The one explicit list of expected WPT failures.

``PENDING_OPERATORS`` names operators not implemented yet: every case or
test that uses one is expected to fail.  The list must shrink as operators
land: ``tests/test_coverage.py`` fails when a listed operator is registered,
and the conformance tests fail when an expected failure passes.

``CONFORMANCE_FAILURES`` / ``VALIDATION_FAILURES`` list single cases per
backend that are known to fail, each with its reason (shown in
``docs/conformance.md``).  Today every entry holds on every backend: each is
a place where this WPT revision disagrees with the current spec, or where
its data is wrong, or what a synchronous Python API cannot do.
"""

from __future__ import annotations

PENDING_OPERATORS: dict[str, str] = {}

#: Operators a backend does not run yet (the builder refuses them there).
PENDING_BACKEND_OPERATORS: dict[str, dict[str, str]] = {"onnxruntime": {}}

_SOFTMAX_AXIS = (
    "spec: softmax(input, axis) takes a required axis; this WPT revision still calls the "
    "earlier softmax(input) without one"
)

_QDQ_RANK = (
    "spec: scale and zeroPoint must have input's rank (blockwise broadcastable); this WPT revision "
    "still passes lower-rank scale/zeroPoint aligned to input's trailing dimensions"
)
_QDQ_RANK_CASES = [
    "dequantizeLinear::dequantizeLinear int8 4D constant tensor broadcasting scale and zeroPoint",
    "dequantizeLinear::dequantizeLinear uint4 4D constant tensor broadcasting zeroPoint",
    "dequantizeLinear::dequantizeLinear uint4 3D input with block_size = [1, 1, 2]",
    "dequantizeLinear::per-tensor dequantizeLinear for int4 4D constant",
    "quantizeLinear::quantizeLinear float32 2D constant tensor broadcasting zeroPoint and scale",
    "quantizeLinear::quantizeLinear float32 4D constant tensor broadcasting scale and zeroPoint",
    "quantizeLinear::per-tensor quantizeLinear for float32 4D constant",
    "quantizeLinear::quantizeLinear float32 3D input with implicit block_size = [1, 2, 1].",
    "quantizeLinear::quantizeLinear float32 2D tensor with int4 zeroPoint which has even size",
    "quantizeLinear::quantizeLinear int4 zeroPoint with block_size = [3, 2]",
    "quantizeLinear::quantizeLinear float32 tensor with uint4 zeroPoint which has odd size",
    "subgraph::quantized conv2d",
]

# Cases that fail by the spec or by WPT's own data, on every backend.
_CONFORMANCE_EVERYWHERE: dict[str, str] = {
    **{
        f"softmax::softmax {t} 2D {kind} all {sign}": _SOFTMAX_AXIS
        for t in ("float32", "float16")
        for kind, sign in (("constant tensor", "positive"), ("tensor", "positive"), ("tensor", "negative"))
    },
    "pad::pad float32 4D tensor options.mode='symmetric'": (
        "spec: MLPaddingMode is constant, edge or reflection; 'symmetric' was removed from "
        "the spec after this WPT revision, so pad() raises TypeError"
    ),
    **dict.fromkeys(_QDQ_RANK_CASES, _QDQ_RANK),
    **dict.fromkeys(
        [
            "pooling::l2Pool2d float32 4D tensor options.roundingType=ceil",
            "pooling::l2Pool2d float32 4D tensor options.outputSizes ignores options.roundingType=floor",
        ],
        "WPT data bug: 4 of the 18 expected values are the sum of squares without the square root "
        "(e.g. 8222.29296875 = 90.67686^2, where the other 14 are square roots)",
    ),
    "subgraph::batchNormalization options.axis=0 + gelu": (
        "WPT's expected value is inaccurate: element 4 is gelu(-2.1213150) = -0.0359513043 exactly "
        "(float64); webml gives -0.03595131 (1 ULP), WPT expects -0.0359511785, 34 float32 ULP away, "
        "beyond its 24 ULP tolerance (apparently computed with a float32 erf)"
    ),
}

# Validation tests that fail by the spec or by the Python API, on every backend.
_VALIDATION_EVERYWHERE: dict[str, str] = {
    "softmax::[softmax] Test building Softmax with float32 input without axis.": _SOFTMAX_AXIS,
    "softmax::[softmax] Test building Softmax with float16 input without axis.": _SOFTMAX_AXIS,
    "clamp::[clamp] Throw if options.minValue is -Infinity": (
        "spec: minValue is an MLNumber, which may be infinite; WPT marks this test to be removed "
        "once infinite minValue is allowed"
    ),
    **{
        f"{op}::[{op}] Test scale's shape = {shape} and zeroPoint's shape = {shape} which is "
        "unidirectionally broadcastable to input's shape.": _QDQ_RANK
        for op in ("quantizeLinear", "dequantizeLinear")
        for shape in ("[5]", "[]")
    },
    "destroyContext::Destroyed context can not read tensor.": (
        "spec: losing a context destroys its tensors, and readTensor() of a destroyed tensor "
        "rejects with TypeError (WPT expects InvalidStateError, as Chromium gives)"
    ),
    "destroyContext::Destroyed context can not write tensor.": (
        "spec: losing a context destroys its tensors, and writeTensor() of a destroyed tensor "
        "throws TypeError (WPT expects InvalidStateError, as Chromium gives)"
    ),
    "destroyContext::Pending promise of readtensor() will be rejected immediately when context is destroyed.": (
        "the Python API is synchronous: read_tensor() has returned before destroy() runs, so no promise is pending"
    ),
    "input::[input] throw if the output tensor byte length exceeds limit": (
        "WebIDL [EnforceRange] truncates the dimension 536870912.25 to 536870912, whose 2^31 bytes "
        "do not exceed the 2 GiB maxTensorByteLength; the test assumes no truncation"
    ),
}

_BACKENDS = ("reference", "onnxruntime")
CONFORMANCE_FAILURES: dict[str, dict[str, str]] = {b: dict(_CONFORMANCE_EVERYWHERE) for b in _BACKENDS}
VALIDATION_FAILURES: dict[str, dict[str, str]] = {b: dict(_VALIDATION_EVERYWHERE) for b in _BACKENDS}


def pending_reason(operators: set[str] | tuple[str, ...], backend: str = "reference") -> str:
    """Why a case using ``operators`` is expected to fail on ``backend``, or '' if it is not."""
    table = {**PENDING_OPERATORS, **PENDING_BACKEND_OPERATORS.get(backend, {})}
    pending = sorted(set(operators) & table.keys())
    if not pending:
        return ""
    return f"{', '.join(pending)}: {table[pending[0]]}"


def expected_failure(kind: str, backend: str, key: str, operators: set[str] | tuple[str, ...]) -> str:
    """The reason a case/test is expected to fail ('' if it must pass).

    ``kind`` is "conformance" or "validation"; ``key`` is ``file::name``.
    """
    table = CONFORMANCE_FAILURES if kind == "conformance" else VALIDATION_FAILURES
    return table.get(backend, {}).get(key, "") or pending_reason(operators, backend)
