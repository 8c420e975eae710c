"""The webgpu shape and indexing kernels against the float64 reference, on what WPT does not cover:
every cast pair at its edges (64-bit values beyond 32 bits, ties, saturation, NaN), 64-bit values
moved exactly, sub-word packing at odd sizes and offsets, more than 65,535 x 64 elements, concat
over more inputs than a dispatch may bind, and out-of-range and duplicate indices."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import wgpu

import webml
from webml import dtypes

TYPES = ["float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8", "int4", "uint4"]
MOVABLE = ["float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8"]


def _run(build, inputs, backends=("reference", "webgpu"), context=None):
    """``build(builder, operands) -> {name: operand}`` on each backend; the outputs per backend."""
    results = {}
    for backend in backends:
        ctx = context if context is not None and backend == "webgpu" else webml.ml.create_context(backend=backend)
        b = webml.MLGraphBuilder(ctx)
        operands = {
            name: b.input(name, {"dataType": _type_of(a), "shape": list(a.shape)}) for name, a in inputs.items()
        }
        graph = b.build(build(b, operands))
        results[backend] = ctx.compute(graph, inputs)
    return results


def _type_of(array: np.ndarray) -> str:
    return {np.dtype(ml_dtypes.int4): "int4", np.dtype(ml_dtypes.uint4): "uint4"}.get(array.dtype, str(array.dtype))


def _same(results):
    ref, gpu = results["reference"], results["webgpu"]
    assert ref.keys() == gpu.keys()
    for name in ref:
        assert gpu[name].dtype == ref[name].dtype, name
        np.testing.assert_array_equal(gpu[name], ref[name], err_msg=name)


def _edges(data_type: str) -> np.ndarray:
    """Values of ``data_type`` at the edges of every cast: ties, ranges, 64-bit magnitudes, NaN."""
    if data_type in ("float32", "float16"):
        values = [
            0.0,
            -0.0,
            0.5,
            -0.7,
            1.5,
            2.5,
            -2.5,
            7.9,
            -8.5,
            15.5,
            127.9,
            128.5,
            -129.0,
            255.5,
            256.0,
            2049.0,
            2051.0,
            65504.0,
            65519.0,
            -65520.0,
            np.inf,
            -np.inf,
            np.nan,
            6.1e-5,
            3e-8,
        ]
        if data_type == "float32":
            values += [
                16777217.0,
                3e9,
                -3e9,
                2.0**31,
                -(2.0**31),
                2.0**32,
                2.0**40 + 2.0**20,
                -(2.0**62),
                2.0**63,
                -(2.0**63),
                1.8e19,
                2.0**64,
                3.4e38,
                1e-40,
                1.0000001,
                65519.996,
                65520.0,
            ]
        with np.errstate(over="ignore"):  # float16 takes the largest as infinities
            return np.array(values, dtype=np.float32).astype(data_type)
    if data_type in ("int8", "uint8", "int4", "uint4"):
        lo, hi = dtypes.int_bounds(data_type)
        return np.arange(lo, hi + 1).astype(dtypes.numpy_dtype(data_type))
    lo, hi = dtypes.int_bounds(data_type)
    values = [
        0,
        1,
        7,
        8,
        15,
        16,
        127,
        128,
        255,
        256,
        300,
        65504,
        65519,
        65520,
        16777217,
        16777219,
        2**31 - 1,
        2**31,
        2**32 - 1,
        2**32,
        2**32 + 1,
        2**40 + 2**16 + 1,
        2**53 + 1,
        2**62 + 12345,
        2**63 - 1,
        2**63,
        2**63 + 2**39 + 1,
        2**64 - 1,
    ]
    values += [-v for v in values]
    return np.array(sorted({v for v in values if lo <= v <= hi}), dtype=data_type)


@pytest.mark.parametrize("source", TYPES)
def test_cast_every_pair_at_the_edges(source):
    """cast to every type is exactly the reference's (dtypes.cast_array: floats truncate toward zero and
    saturate with NaN -> 0, integers keep their lowest bits, int64/uint64 -> float rounds once, ties to even)."""
    x = _edges(source)
    results = _run(lambda b, o: {t: b.cast(o["x"], t) for t in TYPES}, {"x": x})
    _same(results)


@pytest.mark.parametrize("data_type", MOVABLE)
def test_data_movement_keeps_every_bit(data_type):
    """transpose, slice, concat, expand, pad, reverse, tile, split, where, gather and scatterND move 64-bit
    values beyond 32 bits and float16 bits exactly, at odd sizes and offsets (sub-word packing)."""
    rng = np.random.default_rng(3)
    if dtypes.is_float(data_type):
        x = rng.standard_normal((3, 5, 7)).astype(data_type)
        x[0, 0, :3] = [np.nan, np.inf, -0.0]
    else:
        lo, hi = dtypes.int_bounds(data_type)
        x = rng.integers(lo, hi, size=(3, 5, 7), endpoint=True, dtype=dtypes.numpy_dtype(data_type))
    y = x[::-1, 1:4].copy()
    cond = (rng.integers(0, 3, size=(5, 1)) > 0).astype(np.uint8)
    idx = np.array([[2, -1], [0, 6], [-7, 100]], dtype=np.int64)

    def build(b, o):
        x, y = o["x"], o["y"]
        s = b.split(x, [1, 3, 3], axis=2)
        return {
            "transpose": b.transpose(x, permutation=[2, 0, 1]),
            "slice": b.slice(x, [1, 1, 2], [2, 4, 5], strides=[1, 3, 2]),
            "concat": b.concat([x, y, x], 1),
            "expand": b.expand(b.slice(x, [0, 0, 0], [1, 5, 1]), [2, 3, 5, 3]),
            "pad": b.pad(x, [1, 0, 2], [0, 3, 1], mode="constant", value=5),
            "pad_edge": b.pad(x, [2, 1, 0], [1, 2, 3], mode="edge"),
            "pad_reflection": b.pad(x, [2, 4, 6], [2, 4, 5], mode="reflection"),
            "reverse": b.reverse(x, axes=[0, 2]),
            "tile": b.tile(y, [2, 1, 3]),
            "split0": s[0],
            "split2": s[2],
            "where": b.where(o["cond"], x, b.reverse(x)),
            "gather": b.gather(x, o["idx"], axis=2),
            "triangular": b.triangular(x, upper=False, diagonal=-1),
            "reshape": b.reshape(x, [7, 15]),
        }

    _same(_run(build, {"x": x, "y": y, "cond": cond, "idx": idx}))


def test_split_into_one_output():
    """A single output comes to the kernel bare, not in a list (checked against NumPy: the reference
    backend's split returns a list for it)."""
    y = np.arange(2**33, 2**33 + 3 * 5 * 2, dtype=np.int64).reshape(3, 5, 2)
    results = _run(lambda b, o: {"s": b.split(o["y"], 1, axis=1)[0]}, {"y": y}, backends=("webgpu",))
    np.testing.assert_array_equal(results["webgpu"]["s"], y)


def test_int64_values_beyond_32_bits_survive_indexing():
    x = (np.arange(12, dtype=np.int64).reshape(4, 3) - 6) * (2**52 + 3)
    updates = np.array([[2**62, -(2**62), 1], [7, 2**40, -(2**63)]], dtype=np.int64)
    nd_indices = np.array([[0, 1], [-1, -1], [0, 1], [9, 0]], dtype=np.int32)  # a duplicate; 9 clamps to 3

    def build(b, o):
        x = o["x"]
        e_values = np.array([[3, 0, 4000000000], [1, 1, 2]], np.uint32)  # 4e9 clamps to the last row
        e_idx = b.constant({"dataType": "uint32", "shape": [2, 3]}, e_values)
        nd = b.constant({"dataType": "int32", "shape": [4, 2]}, nd_indices)
        nd_updates = b.constant({"dataType": "int64", "shape": [4]}, np.array([5, -(2**60), 2**61, 9], np.int64))
        return {
            "gatherElements": b.gather_elements(x, e_idx, axis=0),
            "gatherND": b.gather_nd(x, nd),
            "scatterElements": b.scatter_elements(x, e_idx, o["u"], axis=0),
            "scatterND": b.scatter_nd(x, nd, nd_updates),
        }

    results = _run(build, {"x": x, "u": updates})
    _same(results)
    assert results["webgpu"]["scatterND"][0, 1] == 2**61  # the last of the duplicate updates wins


def test_gather_clamps_64_bit_and_unsigned_indices():
    x = np.arange(35, dtype=np.float16).reshape(5, 7)
    inputs = {
        "x": x,
        "i64": np.array([[-(2**40), 2**40], [-1, -5]], dtype=np.int64),
        "u32": np.array([0, 4, 2**32 - 1, 2**31], dtype=np.uint32),
    }
    build = lambda b, o: {  # noqa: E731
        "i64": b.gather(o["x"], o["i64"], axis=0),
        "u32": b.gather(o["x"], o["u32"], axis=1),
        "scalar": b.gather(o["x"], b.constant("int32", -2), axis=1),
    }
    results = _run(build, inputs)
    _same(results)
    np.testing.assert_array_equal(results["webgpu"]["i64"][0, 1], x[4])


def test_more_elements_than_one_grid_row():
    """Over 65,535 x 64 invocations: the dispatch needs the second grid dimension."""
    x = np.random.default_rng(5).standard_normal((2049, 2053)).astype(np.float32)
    results = _run(lambda b, o: {"t": b.transpose(o["x"])}, {"x": x}, backends=("webgpu",))
    np.testing.assert_array_equal(results["webgpu"]["t"], x.T)


@pytest.mark.parametrize("bindings", [4, 8])
def test_concat_over_more_inputs_than_a_dispatch_binds(bindings):
    """WebGPU's default of 8 storage buffers per stage (browsers'), or fewer: 20 inputs go through a tree
    of dispatches (a device enforcing the limit refuses a pipeline binding more)."""
    limit = "max-storage-buffers-per-shader-stage"
    device = wgpu.gpu.request_adapter_sync().request_device_sync(required_limits={limit: bindings})
    assert device.limits[limit] == bindings
    context = webml.ml.create_context(device)
    rng = np.random.default_rng(7)
    inputs = {f"x{j}": rng.integers(-128, 127, size=(3, j % 4 + 1, 5), dtype=np.int8) for j in range(20)}
    results = _run(lambda b, o: {"c": b.concat(list(o.values()), 1)}, inputs, context=context)
    _same(results)


def test_triangular_and_where_broadcast_in_batches():
    rng = np.random.default_rng(9)
    x = rng.integers(-(2**62), 2**62, size=(2, 3, 4, 5), dtype=np.int64)
    cond = (rng.integers(0, 2, size=(4, 1)) > 0).astype(np.uint8)
    f = np.array([-3], dtype=np.int64)

    def build(b, o):
        return {
            "upper": b.triangular(o["x"], diagonal=2),
            "lower_far": b.triangular(o["x"], upper=False, diagonal=-(2**31)),
            "upper_far": b.triangular(o["x"], diagonal=2**31 - 1),
            "where": b.where(o["cond"], o["x"], o["f"]),
        }

    _same(_run(build, {"x": x, "cond": cond, "f": f}))
