"""The webgpu backend's own kernels run in headless Chromium's WebGPU (SwiftShader) with the same
results as on wgpu: the WGSL the backend generates, in its browser form, with the same parameters
and input bytes, one dispatch each."""

from __future__ import annotations

import numpy as np
import pytest

import webml
from webml import dtypes
from webml.backends.webgpu.device import default_gpu
from webml.backends.webgpu.kernels import KERNELS, Emitter
from webml.backends.webgpu.program import Slot
from webml.backends.webgpu.runtime import buffer_bytes
from webml.backends.webgpu.shaders import browser_source
from wgsl_tools import run_in_chromium

F32 = "float32"


def _case_add(b):
    return b.add(b.input("a", {"dataType": F32, "shape": [3, 1, 5]}), b.input("b", {"dataType": F32, "shape": [4, 1]}))


def _case_matmul(b):  # large enough for the tiled program (workgroup memory, vec4 loads)
    a = b.input("a", {"dataType": F32, "shape": [37, 64]})
    return b.matmul(a, b.input("b", {"dataType": F32, "shape": [64, 40]}))


def _case_conv2d(b):
    x = b.input("x", {"dataType": F32, "shape": [1, 3, 9, 9]})
    w = b.input("w", {"dataType": F32, "shape": [8, 3, 3, 3]})
    return b.conv2d(x, w, padding=[1, 1, 1, 1], strides=[2, 2])


def _case_sigmoid(b):
    return b.sigmoid(b.input("x", {"dataType": F32, "shape": [257]}))


def _case_cast_f16(b):
    return b.cast(b.input("x", {"dataType": F32, "shape": [33]}), "float16")


def _case_gather_int64(b):
    x = b.input("x", {"dataType": "int64", "shape": [5, 3]})
    return b.gather(x, b.input("i", {"dataType": "int32", "shape": [4]}), axis=0)


def _case_reduce_mean(b):
    return b.reduce_mean(b.input("x", {"dataType": F32, "shape": [6, 50]}), axes=[1])


def _case_max_pool_int8(b):
    return b.max_pool2d(b.input("x", {"dataType": "int8", "shape": [1, 2, 7, 7]}), window_dimensions=[3, 3])


CASES = {
    "add": _case_add,
    "matmul": _case_matmul,
    "conv2d": _case_conv2d,
    "sigmoid": _case_sigmoid,
    "cast_f16": _case_cast_f16,
    "gather_int64": _case_gather_int64,
    "reduce_mean": _case_reduce_mean,
    "max_pool_int8": _case_max_pool_int8,
}


def _values(desc, rng):
    if desc.data_type == "int32":  # gather's indices
        return rng.integers(-5, 5, size=desc.shape).astype(np.int32)
    if dtypes.is_float(desc.data_type):
        return (rng.standard_normal(desc.shape) * 3).astype(dtypes.numpy_dtype(desc.data_type))
    lo, hi = dtypes.int_bounds(desc.data_type)
    return rng.integers(max(lo, -(2**40)), min(hi, 2**40), size=desc.shape).astype(dtypes.numpy_dtype(desc.data_type))


def _padded(desc, array):
    raw = dtypes.to_bytes(desc.data_type, array)
    return raw + b"\0" * (buffer_bytes(desc) - len(raw))


@pytest.fixture(scope="module")
def runs():
    """Each case's graph on the webgpu backend, and its one dispatch as a Chromium job."""
    context = webml.ml.create_context(backend="webgpu")
    rng = np.random.default_rng(7)
    results, jobs = {}, []
    for name, make in CASES.items():
        builder = webml.MLGraphBuilder(context)
        graph = builder.build({"out": make(builder)})
        ir = graph.ir
        (node,) = ir.nodes
        slots = {oid: Slot(oid, desc) for oid, desc in ir.operands.items()}
        k = Emitter(default_gpu(), max(slots) + 1)
        k.op = node.op
        args = {p: slots[i] for p, i in node.inputs.items()}
        KERNELS[node.op].fn(k, **args, out=slots[node.outputs[0]], **node.attrs)
        assert len(k.steps) == 1, f"{name}: {len(k.steps)} dispatches; pick a one-dispatch case"
        (step,) = k.steps
        inputs = {n: _values(ir.operands[oid], rng) for n, oid in ir.inputs.items()}
        results[name] = (context.compute(graph, inputs)["out"], ir.operands[node.outputs[0]])
        by_slot = {ir.inputs[n]: a for n, a in inputs.items()}
        params = np.asarray(step.params, "<u4").tobytes()
        bindings = [{"binding": 0, "type": "uniform", "data": params, "size": len(params)}]
        for binding, oid in step.bindings.items():
            desc = slots[oid].desc
            if binding == 1:
                bindings.append({"binding": 1, "type": "storage", "size": buffer_bytes(desc)})
            else:
                data = _padded(desc, by_slot[oid])
                bindings.append({"binding": binding, "type": "read-only-storage", "data": data, "size": len(data)})
        gx, gy = step.groups
        jobs.append({"name": name, "source": browser_source(step.source), "bindings": bindings,
                     "workgroups": [gx, gy, 1], "read": [1]})  # fmt: skip
    return results, run_in_chromium(jobs)


@pytest.mark.parametrize("name", CASES)
def test_chromium_computes_what_wgpu_computes(runs, name):
    results, chromium = runs
    expected, desc = results[name]
    got = dtypes.from_bytes(desc.data_type, chromium[name][1][: dtypes.byte_length(desc.data_type, desc.element_count)],
                            desc.shape)  # fmt: skip
    if dtypes.is_float(desc.data_type) and name not in ("add", "cast_f16"):
        # The same WGSL; the two compilers may contract a*b+c into one fma or not: a few ULP.
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, expected)  # data movement, integers, one rounding: bit for bit
