"""The one explicit list of expected WPT failures.

``PENDING_OPERATORS`` names operators not implemented yet: every case or
test that uses one is expected to fail.  The list must shrink as operators
land: ``tests/test_coverage.py`` fails when a listed operator is registered,
and the conformance tests fail when an expected failure passes.

``CONFORMANCE_FAILURES`` / ``VALIDATION_FAILURES`` list single cases per
backend that are known to fail, each with its reason (shown in
``docs/conformance.md``).  The entries of every backend are places where
this WPT revision disagrees with the current spec, or where its data is
wrong, or what a synchronous Python API cannot do; openvino adds the cases
where OpenVINO itself computes otherwise.
"""

from __future__ import annotations

PENDING_OPERATORS: dict[str, str] = {}

#: Operators a backend does not run yet (the builder refuses them there), each with why.
PENDING_BACKEND_OPERATORS: dict[str, dict[str, str]] = {"onnxruntime": {}, "webgpu": {}}

_SOFTMAX_AXIS = (
    "spec: softmax(input, axis) takes a required axis; this WPT revision still calls the "
    "earlier softmax(input) without one"
)

_QDQ_RANK = (
    "spec: scale and zeroPoint must have input's rank (blockwise broadcastable); this WPT revision "
    "still passes lower-rank scale/zeroPoint aligned to input's trailing dimensions"
)

# Cases that fail by the spec or by WPT's own data, on every backend.  The
# refreshed files (softmax, pad, quantizeLinear, dequantizeLinear, l2Pool2d)
# follow the current spec; subgraph.json is still the 2025-03-31 version.
_CONFORMANCE_EVERYWHERE: dict[str, str] = {
    "subgraph::quantized conv2d": _QDQ_RANK,
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
    "pad::[pad] Throw if building pad for scalar input.": (
        "spec: pad() allows any input rank (its table says N, required 0 to 5) and a 0-D input with "
        "empty paddings is a no-op, as the refreshed conformance file's 0D case expects; this WPT "
        "revision (and Chromium) still refuse it"
    ),
    "input::[input] throw if the output tensor byte length exceeds limit": (
        "WebIDL [EnforceRange] truncates the dimension 536870912.25 to 536870912, whose 2^31 bytes "
        "do not exceed the 2 GiB maxTensorByteLength; the test assumes no truncation"
    ),
}

_OV_WIDE_INTEGERS = (
    "OpenVINO's CPU plugin computes int64/uint64 in 32 bits and clamps 32-bit integers through "
    "float32: values beyond those ranges are not kept"
)
_OV_FLOAT16 = (
    "OpenVINO's CPU plugin runs float16 operations in float32 (its inference precision): "
    "a cast to float16 inside a graph does not round, so the float16 round trip is not bit-exact"
)
_OV_CAST_ROUNDING = [
    "cast float32 -> float16 -> float32 normal values and ties to even input with only the widened output",
    "cast float32 -> float16 -> float32 normal values and ties to even input with both cast outputs",
    "cast float32 -> float16 -> float32 subnormal values and signed underflow input with only the widened output",
    "cast float32 -> float16 -> float32 subnormal values and signed underflow input with both cast outputs",
    "cast float32 -> float16 -> float32 overflow and exceptional values input with only the widened output",
    "cast float32 -> float16 -> float32 overflow and exceptional values input with both cast outputs",
    "cast float32 -> float16 -> float32 scalar tie to even input",
    "successive float16 cast boundaries preserve each logical output",
]
# Cases the openvino backend fails for OpenVINO's own limits (OpenVINO 2026.4, CPU plugin).
_CONFORMANCE_OPENVINO: dict[str, str] = {
    **{f"clamp::clamp {t} 1D tensor": _OV_WIDE_INTEGERS for t in ("int32", "uint32", "int64", "uint64")},
    "pad::pad int64 2D tensor with options.value as bigint": _OV_WIDE_INTEGERS,
    **{f"cast_rounding::{name}": _OV_FLOAT16 for name in _OV_CAST_ROUNDING},
    "gru::gru float32 tensors steps=2 with options.bias, options.recurrentBias, options.direction='both' and "
    "options.returnSequence=true": (
        "OpenVINO's fused GRU cell is 7 ULP off on one element, beyond WPT's 6 ULP (its sigmoid/tanh)"
    ),
}

# Cases the webgpu backend fails for WebGPU's or the adapter's limits (lavapipe, Mesa 22.3).
_CONFORMANCE_WEBGPU: dict[str, str] = {
    "add::add float32 large inputs": (
        "the adapter binds at most maxStorageBufferBindingSize bytes per buffer (lavapipe: 128 MiB), which "
        "bounds maxTensorByteLength; the 6000x6000 float32 operands (144 MB) are refused at build, as the "
        "spec's limit check says"
    ),
}

_ARITHMETIC = ("add", "sub", "mul", "div", "max", "min", "pow")
_BACKENDS = ("reference", "onnxruntime", "openvino", "webgpu")
CONFORMANCE_FAILURES: dict[str, dict[str, str]] = {b: dict(_CONFORMANCE_EVERYWHERE) for b in _BACKENDS}
CONFORMANCE_FAILURES["openvino"].update(_CONFORMANCE_OPENVINO)
CONFORMANCE_FAILURES["webgpu"].update(_CONFORMANCE_WEBGPU)
VALIDATION_FAILURES: dict[str, dict[str, str]] = {b: dict(_VALIDATION_EVERYWHERE) for b in _BACKENDS}
# The adapter's binding limit is webgpu's maxTensorByteLength: these tests' "small enough" operands exceed it.
_WEBGPU_TENSOR_LIMIT = (
    "maxTensorByteLength is the adapter's maxStorageBufferBindingSize (lavapipe: 128 MiB); the test's "
    "operands that should fit (about 2 GiB, under Chromium's limit) are refused at input()"
)
VALIDATION_FAILURES["webgpu"].update(
    dict.fromkeys(
        [f"elementwise-binary::[{op}] throw if the output tensor byte length exceeds limit" for op in _ARITHMETIC]
        + ["dequantizeLinear::[dequantizeLinear] throw if the output tensor byte length exceeds limit"],
        _WEBGPU_TENSOR_LIMIT,
    )
)
VALIDATION_FAILURES["webgpu"].update(
    dict.fromkeys(
        [
            f"{op}::[{op}] throw if the output tensor byte length exceeds limit"
            for op in ("cast", "concat", "gather", "gatherND", "pad", "tile", "where", "matmul", "gemm", "resample2d")
        ],
        _WEBGPU_TENSOR_LIMIT,
    )
)
# With a 128 MiB limit, the 2 GiB input is refused as the test expects.
del VALIDATION_FAILURES["webgpu"]["input::[input] throw if the output tensor byte length exceeds limit"]


def pending_reason(operators: set[str] | tuple[str, ...], backend: str = "reference") -> str:
    """Why a case using ``operators`` is expected to fail on ``backend``, or '' if it is not."""
    table = {**PENDING_OPERATORS, **PENDING_BACKEND_OPERATORS.get(backend, {})}
    pending = sorted(set(operators) & table.keys())
    if not pending:
        return ""
    return f"{', '.join(pending)}: {table[pending[0]]}"


def expected_failure(
    kind: str, backend: str, key: str, operators: set[str] | tuple[str, ...], passed: bool = False
) -> str:
    """The reason a case/test is expected to fail ('' if it must pass).

    ``kind`` is "conformance" or "validation"; ``key`` is ``file::name``; ``passed``: whether it passed.
    """
    table = CONFORMANCE_FAILURES if kind == "conformance" else VALIDATION_FAILURES
    if passed and kind == "validation" and pending_reason(operators, backend) != pending_reason(operators):
        # A validation test may pass on a backend without the operator's kernel (one checking only what
        # build refuses): a pending operator makes only the tests that need its kernel fail.
        return pending_reason(operators)
    return table.get(backend, {}).get(key, "") or pending_reason(operators, backend)
