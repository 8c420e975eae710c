"""Running the WPT conformance cases with WPT's own comparison rules.

A case is built exactly as WPT's ``buildAndExecuteGraph`` does (see the
vendored README §2): inputs marked constant become ``builder.constant``, the
rest ``builder.input``; each operator's arguments are positional in order
with the ``options`` dictionary as keyword arguments.  Results are compared
with the case's tolerance (README §2.4): ULP on float32 bit patterns, on raw
float16 bits, on integers, or ATOL.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import webml

from .. import dtypes
from ..backends import own_engine_options
from ..ops.registry import snake_case
from .data import conformance_files, load

__all__ = ["CaseResult", "operator_names", "run_all", "run_case", "run_file"]

#: WPT checks at most this many elements of a filled (scalar) expectation.
MAX_INDEX_TO_VALIDATE = 1000


@dataclass
class CaseResult:
    file: str  # file stem, e.g. "relu"
    name: str  # the WPT subtest name
    operators: tuple[str, ...]
    data_types: tuple[str, ...]
    passed: bool
    reason: str = ""

    @property
    def key(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class _Case:
    file: str
    case: dict[str, Any]
    operand_names: set[str] = field(default_factory=set)


def _input_array(spec: dict[str, Any]) -> np.ndarray:
    """The NumPy array WPT would feed for an input or constant."""
    desc = spec["descriptor"]
    data_type, shape = desc["dataType"], tuple(desc["shape"])
    count = math.prod(shape)
    if data_type == "float16" and "float16Bits" in spec:
        bits = np.array(spec["float16Bits"], dtype=np.uint16)
        values = bits.view(np.float16)
    else:
        data = spec["data"]
        values = _typed(data if isinstance(data, list) else [data], data_type)
    if values.size == 1 and count != 1:
        values = np.full(count, values.reshape(())[()], dtype=values.dtype)
    return values.reshape(shape)


def _typed(values: list[Any], data_type: str) -> np.ndarray:
    dt = dtypes.numpy_dtype(data_type)
    if data_type in ("int64", "uint64"):
        # BigInt64Array / BigUint64Array wrap modulo 2**64.
        wrapped = [int(v) % 2**64 for v in values]
        return np.array(wrapped, dtype=np.uint64).view(dt)
    if dtypes.is_integer(data_type):
        return np.array([int(v) for v in values], dtype=np.int64).astype(dt)
    with np.errstate(over="ignore"):  # as a JS typed array does, out-of-range values become ±inf
        return np.array(values, dtype=np.float64).astype(dt)


def _resolve(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str) and value in env:
        return env[value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v in env for v in value):
        return [env[v] for v in value]
    return value


def build_case(context: webml.MLContext, case: dict[str, Any]) -> tuple[webml.MLGraph, dict[str, np.ndarray]]:
    """Build the case's graph; returns it with the arrays to feed its inputs."""
    builder = webml.MLGraphBuilder(context)
    graph_spec = case["graph"]
    env: dict[str, Any] = {}
    feeds: dict[str, np.ndarray] = {}
    for name, spec in graph_spec["inputs"].items():
        array = _input_array(spec)
        if spec.get("constant"):
            env[name] = builder.constant(spec["descriptor"], array)
        else:
            env[name] = builder.input(name, spec["descriptor"])
            feeds[name] = array
    for operator in graph_spec["operators"]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for argument in operator["arguments"]:
            if argument is None:  # a JS `undefined` placeholder, e.g. softmax(x, undefined, {axis})
                continue
            for key, value in argument.items():
                if key == "options":
                    kwargs.update({snake_case(k): _resolve(v, env) for k, v in value.items()})
                else:
                    args.append(_resolve(value, env))
        method = getattr(builder, snake_case(operator["name"]))
        result = method(*args, **kwargs)
        outs = operator["outputs"]
        if isinstance(outs, list):
            for name, operand in zip(outs, result):
                env[name] = operand
        else:
            env[outs] = result
    outputs = {name: env[name] for name in graph_spec["expectedOutputs"]}
    return builder.build(outputs), feeds


# -- comparison -----------------------------------------------------------------


def _f32_ulp_key(x: np.ndarray) -> np.ndarray:
    """WPT's bit pattern of float32(|x|), negated when x < 0 (NaN as 0x7FC00000)."""
    f = x.astype(np.float32)
    bits = np.abs(f).view(np.uint32).astype(np.int64)
    bits = np.where(np.isnan(f), 0x7FC00000, bits)
    return np.where(f < 0, -bits, bits)


def _expected_values(expected: dict[str, Any], count: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(values, float16 bits or None, number of elements to check)."""
    data = expected["data"]
    filled = not isinstance(data, list)
    values = data if isinstance(data, list) else [data]
    bits = expected.get("float16Bits")
    n = min(MAX_INDEX_TO_VALIDATE, count) if filled else count
    if filled:
        values = values * n
        bits = bits * n if bits is not None else None
    return np.array(values, dtype=object), None if bits is None else np.array(bits, np.int64), n


def compare(actual: np.ndarray, expected: dict[str, Any], tolerance: dict[str, Any], exact_bits: bool) -> str:
    """'' if ``actual`` matches WPT's expectation under ``tolerance``, else the reason."""
    desc = expected["descriptor"]
    data_type, shape = desc["dataType"], tuple(desc["shape"])
    if actual.dtype != dtypes.numpy_dtype(data_type):
        return f"data type {dtypes.data_type_of(actual.dtype)} != expected {data_type}"
    if actual.shape != shape:
        return f"shape {list(actual.shape)} != expected {list(shape)}"
    values, bits, n = _expected_values(expected, actual.size)
    flat = actual.reshape(-1)[:n]
    if len(values) < n:
        return f"expected data has {len(values)} values for {n} elements"
    metric, limit = tolerance["metricType"], tolerance["value"]
    if exact_bits:
        return _compare_bits(flat, values[:n], data_type)
    if metric == "ATOL":
        a = flat.astype(np.float64)
        e = values[:n].astype(np.float64)
        with np.errstate(invalid="ignore"):
            ok = np.abs(a - e) <= limit
        return _report(ok, a, e, f"ATOL {limit}")
    if data_type == "float32":
        e = values[:n].astype(np.float64)
        a = flat.astype(np.float32)
        same = a.astype(np.float64) == e
        diff = np.abs(_f32_ulp_key(a) - _f32_ulp_key(e))
        return _report(same | (diff <= limit), a, e, f"{limit} ULP")
    if data_type == "float16":
        if bits is None:
            bits = np.array(values[:n].astype(np.float64).astype(np.float16).view(np.uint16), np.int64)
        a_bits = flat.view(np.uint16).astype(np.int64)
        both_zero = ((a_bits & 0x7FFF) == 0) & ((bits[:n] & 0x7FFF) == 0)
        ok = both_zero | (np.abs(a_bits - bits[:n]) <= limit)
        return _report(ok, flat.astype(np.float64), bits[:n].astype(np.uint16).view(np.float16), f"{limit} ULP")
    # integer types: exact big-integer arithmetic
    a_int = (
        [int(v) for v in flat.astype(object)]
        if data_type not in ("int4", "uint4")
        else [int(v) for v in flat.astype(np.int64)]
    )
    e_int = [_wrap(int(v), data_type) for v in values[:n]]
    ok = np.array([abs(x - y) <= limit for x, y in zip(a_int, e_int)], dtype=bool)
    return _report(ok, np.array(a_int, dtype=object), np.array(e_int, dtype=object), f"{limit}")


def _wrap(v: int, data_type: str) -> int:
    if data_type == "int64":
        v %= 2**64
        return v - 2**64 if v >= 2**63 else v
    if data_type == "uint64":
        return v % 2**64
    return v


def _compare_bits(flat: np.ndarray, values: np.ndarray, data_type: str) -> str:
    if dtypes.is_float(data_type):
        expected = values.astype(np.float64).astype(flat.dtype)
        same = (flat.view(_uint_of(flat.dtype)) == expected.view(_uint_of(flat.dtype))) | (
            np.isnan(flat) & np.isnan(expected)
        )
        return _report(same, flat, expected, "bit-exact")
    return compare_ints_exact(flat, values)


def compare_ints_exact(flat: np.ndarray, values: np.ndarray) -> str:
    ok = np.array([int(a) == int(e) for a, e in zip(flat.astype(object), values)], dtype=bool)
    return _report(ok, flat, values, "exact")


def _uint_of(dtype: np.dtype) -> type:
    return {2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]


def _report(ok: np.ndarray, actual: np.ndarray, expected: np.ndarray, what: str) -> str:
    if ok.all():
        return ""
    bad = np.flatnonzero(~ok)
    i = int(bad[0])
    return (
        f"{bad.size} of {ok.size} elements outside {what}; first at [{i}]: got {actual[i]!r}, expected {expected[i]!r}"
    )


# -- running ---------------------------------------------------------------------


def run_case(file: str, case: dict[str, Any], backend: str = "reference") -> CaseResult:
    ops = tuple(case["operatorNames"])
    result = CaseResult(file, case["name"], ops, tuple(case["dataTypes"]), False)
    try:
        context = webml.ml.create_context(backend=backend, **own_engine_options(backend))  # the engine's conformance
        graph, feeds = build_case(context, case)
        outputs = context.compute(graph, feeds)
    except Exception as exc:  # every failure is a reported result, never a crash
        result.reason = f"{type(exc).__name__}: {exc}"
        return result
    exact = case.get("buildFunction") == "buildAndCheckCastRounding"
    reasons = []
    for name, expected in case["graph"]["expectedOutputs"].items():
        why = compare(outputs[name], expected, case["tolerance"], exact)
        if why:
            reasons.append(f"{name}: {why}")
    result.passed = not reasons
    result.reason = "; ".join(reasons)
    return result


def run_file(path: Path, backend: str = "reference", ops: Iterable[str] | None = None) -> list[CaseResult]:
    doc = load(path)
    wanted = set(ops) if ops is not None else None
    results = []
    for case in doc["cases"]:
        if wanted is not None and not wanted.intersection(case["operatorNames"]):
            continue
        results.append(run_case(path.stem, case, backend))
    return results


#: ``progress(done, total, what)``: called after each file of a run.
ProgressCallback = Callable[[int, int, str], None]


def run_all(
    backend: str = "reference", ops: Iterable[str] | None = None, progress: ProgressCallback | None = None
) -> list[CaseResult]:
    ops = list(ops) if ops is not None else None
    results: list[CaseResult] = []
    paths = conformance_files()
    for done, path in enumerate(paths, 1):
        results.extend(run_file(path, backend, ops))
        if progress is not None:
            progress(done, len(paths), "files")
    return results


def operator_names() -> set[str]:
    """The spec names of the operators the conformance cases use (what ``run_all``'s ``ops`` may name)."""
    return {name for path in conformance_files() for case in load(path)["cases"] for name in case["operatorNames"]}
