"""The webgpu reductions, normalizations and quantization against the reference backend, on shapes and
values WPT does not cover: odd sizes, many axes, long sums, integer saturation, NaN, packed types."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import webml
from webml import dtypes
from webml.backends.webgpu.shaders import seen
from webml.ops import OPS
from wgsl_tools import tint_errors

RNG = np.random.default_rng(7)
I32, U32 = np.iinfo(np.int32), np.iinfo(np.uint32)


@pytest.fixture(scope="module")
def contexts():
    return webml.ml.create_context(backend="reference"), webml.ml.create_context(backend="webgpu")


def run(context, build, arrays, types):
    b = webml.MLGraphBuilder(context)
    ops = {k: b.input(k, {"dataType": types[k], "shape": list(np.shape(a))}) for k, a in arrays.items()}
    graph = b.build({"out": build(b, **ops)})
    return context.compute(graph, arrays)["out"]


def compare(contexts, build, data_type="float32", rtol=0.0, atol=0.0, types=None, **arrays):
    types = {k: (types or {}).get(k, data_type) for k in arrays}
    arrays = {k: np.asarray(a, dtype=dtypes.numpy_dtype(types[k])) for k, a in arrays.items()}
    expected = run(contexts[0], build, arrays, types)
    actual = run(contexts[1], build, arrays, types)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if rtol or atol:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(actual, expected)
    return actual


FAMILY_OPS = {n for f in ("reduce", "normalization", "quantize") for n, op in OPS.items() if op.family == f}
FLOAT_REDUCTIONS = ["reduce_sum", "reduce_mean", "reduce_l1", "reduce_l2", "reduce_sum_square", "reduce_max"]


@pytest.mark.parametrize("name", [*FLOAT_REDUCTIONS, "reduce_min", "reduce_product", "reduce_log_sum_exp"])
@pytest.mark.parametrize("axes,keep", [((0, 2), False), ((1, 3), True), ((), False), (None, True)])
def test_float_reductions_over_any_axes(contexts, name, axes, keep):
    x = RNG.uniform(0.5, 1.5, (3, 5, 2, 7))
    options = {"keep_dimensions": keep} | ({} if axes is None else {"axes": list(axes)})
    compare(contexts, lambda b, x: getattr(b, name)(x, **options), x=x, rtol=2e-6, atol=1e-30)


def test_a_long_sum_keeps_its_precision(contexts):
    # 300,000 terms of mixed magnitude: a naive f32 sum drifts by far more than 1e-6.
    x = RNG.standard_normal(300_000) + 3.0
    x[::1000] = 1e4
    compare(contexts, lambda b, x: b.reduce_sum(x), x=x, rtol=1e-7)
    compare(contexts, lambda b, x: b.reduce_mean(x), x=x, rtol=1e-7)


def test_more_output_elements_than_one_grid_row(contexts):
    x = RNG.standard_normal((65535 * 64 + 3, 2))
    compare(contexts, lambda b, x: b.reduce_sum(x, axes=[1]), x=x, rtol=1e-6, atol=1e-6)
    compare(contexts, lambda b, x: b.arg_max(x, 1), x=x)


def test_float16_reductions_pack_their_outputs(contexts):
    x = RNG.uniform(-2, 2, (5, 3, 3))
    for name in FLOAT_REDUCTIONS:
        compare(contexts, lambda b, x, n=name: getattr(b, n)(x, axes=[1]), "float16", rtol=1e-3, atol=1e-3, x=x)


def test_nan_and_infinities(contexts):
    nan, inf = np.nan, np.inf
    x = [[1.0, nan, 3.0], [inf, 1.0, 2.0], [-inf, -inf, 0.0], [inf, -inf, 1.0]]
    for name in ("reduce_max", "reduce_min", "reduce_sum", "reduce_log_sum_exp", "reduce_product"):
        compare(contexts, lambda b, x, n=name: getattr(b, n)(x, axes=[1]), x=x)
    compare(contexts, lambda b, x: b.arg_max(x, 1), x=x)
    compare(contexts, lambda b, x: b.arg_min(x, 1), x=x)


@pytest.mark.parametrize("data_type", ["int32", "uint32", "int64", "uint64"])
@pytest.mark.parametrize("name", ["reduce_sum", "reduce_l1", "reduce_sum_square", "reduce_product", "reduce_max"])
def test_integer_reductions_saturate_once_at_the_end(contexts, data_type, name):
    if data_type.endswith("64"):
        # 64-bit types are computed in 32 bits (webgpu's codecs): exact while the results fit in them.
        x = [[40000, 5, 3], [0, 1, 2], [2**10, 2**10, 2], [1000, 1001, 7], [9, 0, 40000]]
        if data_type == "int64":
            x += [[-40000, 5, -3], [-30000, 1, -1], [-7, 3, 1]]
    elif data_type.startswith("u"):
        x = [[U32.max, 5, 3], [0, 1, 2], [2**16, 2**16, 2], [65535, 65537, 1]]
    else:
        x = [[I32.max, 5, -3], [I32.min, -5, 7], [I32.max, 1, -1], [46341, -46341, 3], [-7, 0, I32.max]]
    compare(contexts, lambda b, x: getattr(b, name)(x, axes=[1]), data_type, x=x)


@pytest.mark.parametrize("data_type", ["int8", "uint8", "float16"])
def test_min_max_and_arg_of_packed_types(contexts, data_type):
    lo, hi = (0, 255) if data_type == "uint8" else (-128, 127)
    x = RNG.integers(lo, hi, (7, 9), endpoint=True)
    for name in ("reduce_max", "reduce_min"):
        compare(contexts, lambda b, x, n=name: getattr(b, n)(x, axes=[0]), data_type, x=x)
    for t in ("int32", "int64"):
        compare(contexts, lambda b, x, t=t: b.arg_min(x, 0, output_data_type=t, keep_dimensions=True), data_type, x=x)
        compare(contexts, lambda b, x, t=t: b.arg_max(x, 1, output_data_type=t), data_type, x=x)


def test_arg_min_max_take_the_first_of_ties(contexts):
    x = [[3, 1, 1, 3], [2, 2, 2, 2], [0, 5, 5, 0]]
    for name in ("arg_min", "arg_max"):
        for axis in (0, 1):
            compare(contexts, lambda b, x, n=name, a=axis: getattr(b, n)(x, a), "int32", x=x)


@pytest.mark.parametrize("data_type", ["float32", "int32", "uint32", "int64"])
@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_sum(contexts, data_type, exclusive, reverse):
    x = RNG.integers(0, 9, (3, 7, 4)) if data_type != "int32" else [[I32.max, 3, -5], [I32.min, -1, 1]]
    for axis in range(np.ndim(x)):
        compare(
            contexts,
            lambda b, x, a=axis: b.cumulative_sum(x, a, exclusive=exclusive, reversed=reverse),
            data_type,
            x=x,
        )


# -- normalization --------------------------------------------------------------------------------


@pytest.mark.parametrize("data_type", ["float32", "float16"])
def test_batch_normalization_on_every_axis(contexts, data_type):
    x = RNG.standard_normal((2, 3, 5))
    tol = 2e-3 if data_type == "float16" else 1e-6
    for axis in range(3):
        n = x.shape[axis]
        mean, var = RNG.standard_normal(n), RNG.uniform(0.5, 2, n)
        scale, bias = RNG.standard_normal(n), RNG.standard_normal(n)
        compare(
            contexts,
            lambda b, x, mean, var, scale, bias, a=axis: b.batch_normalization(
                x, mean, var, scale=scale, bias=bias, axis=a, epsilon=1e-3
            ),
            data_type,
            rtol=tol,
            atol=tol,
            x=x,
            mean=mean,
            var=var,
            scale=scale,
            bias=bias,
        )
        compare(
            contexts,
            lambda b, x, mean, var, a=axis: b.batch_normalization(x, mean, var, axis=a),
            data_type,
            rtol=tol,
            atol=tol,
            x=x,
            mean=mean,
            var=var,
        )


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_instance_normalization_odd_shapes(contexts, layout):
    x = RNG.standard_normal((2, 3, 5, 7)) * 10 + 4
    c = 3 if layout == "nchw" else 7
    scale, bias = RNG.standard_normal(c), RNG.standard_normal(c)
    compare(
        contexts,
        lambda b, x, scale, bias: b.instance_normalization(x, scale=scale, bias=bias, layout=layout),
        rtol=1e-5,
        atol=1e-5,
        x=x,
        scale=scale,
        bias=bias,
    )


@pytest.mark.parametrize("axes", [(2, 0), (1,), (), (0, 1, 2)])
def test_layer_normalization_axes_in_any_order(contexts, axes):
    x = RNG.standard_normal((3, 4, 5)) + 100.0  # a large mean: the variance must not cancel
    sizes = [x.shape[a] for a in axes]
    scale, bias = RNG.standard_normal(sizes), RNG.standard_normal(sizes)
    compare(
        contexts,
        lambda b, x, scale, bias: b.layer_normalization(x, scale=scale, bias=bias, axes=list(axes)),
        rtol=1e-4,
        atol=1e-4,
        x=x,
        scale=scale,
        bias=bias,
    )


# -- quantization ---------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["int8", "uint8", "int4", "uint4", "int32", "uint32"])
def test_quantize_and_dequantize_blockwise(contexts, q):
    lo, hi = dtypes.int_bounds(q)
    x = RNG.standard_normal((4, 6, 5)) * 40
    x[0, 0, :] = [0.5, 1.5, 2.5, -0.5, -2.5]  # ties round to even
    scale = RNG.uniform(0.2, 2.0, (2, 3, 1))
    zp = RNG.integers(max(lo, -3), min(hi, 3), (2, 3, 1), endpoint=True)
    if q.endswith("int32"):
        x[1, 0, :] = [3e10, -3e10, np.nan, 1e6, -1e6]  # saturation, NaN -> 0 (quotients past 2^24 are f32's)
    compare(
        contexts,
        lambda b, x, scale, zp: b.quantize_linear(x, scale, zp),
        types={"x": "float32", "scale": "float32", "zp": q},
        x=x,
        scale=scale,
        zp=zp,
    )
    v = RNG.integers(max(lo, -(2**20)), min(hi, 2**20), (4, 6, 5), endpoint=True)
    v[0, :2, 0] = [lo, hi]
    zp[0, 0, 0] = hi if lo == 0 else lo
    compare(
        contexts,
        lambda b, v, scale, zp: b.dequantize_linear(v, scale, zp),
        types={"v": q, "scale": "float32", "zp": q},
        rtol=2.4e-7,  # 2 ULP: an int32 difference past 2^24 is rounded to f32 before the scaling
        v=v,
        scale=scale,
        zp=zp,
    )


def test_packed_int4_outputs_of_odd_length(contexts):
    x = np.linspace(-20, 20, 13).reshape(1, 13)
    out = compare(
        contexts,
        lambda b, x, scale, zp: b.quantize_linear(x, scale, zp),
        types={"x": "float16", "scale": "float16", "zp": "int4"},
        x=x,
        scale=np.full((1, 1), 1.5),
        zp=np.array([[1]], dtype=ml_dtypes.int4),
    )
    assert out.dtype == np.dtype(ml_dtypes.int4) and out.min() == -8 and out.max() == 7


def test_long_loops_past_lavapipes_iteration_limit(contexts):
    # Past SHORT elements the loops are unrolled: lavapipe stops an invocation's loops after 65,535 iterations.
    x = RNG.uniform(0, 1, (2, 70_000))
    compare(contexts, lambda b, x: b.reduce_max(x, axes=[1]), x=x)
    compare(contexts, lambda b, x: b.arg_min(x, 1), x=x)
    compare(contexts, lambda b, x: b.reduce_log_sum_exp(x, axes=[1]), x=x, rtol=1e-6)
    compare(contexts, lambda b, x: b.layer_normalization(x, axes=[1]), x=x, rtol=1e-5, atol=1e-5)
    c = RNG.integers(-5, 5, (5000, 2))
    compare(contexts, lambda b, c: b.cumulative_sum(c, 0, reversed=True), "int32", c=c)
    compare(contexts, lambda b, c: b.reduce_sum(c, axes=[0]), "float16", rtol=1e-3, c=c)


@pytest.mark.parametrize("name", [*FLOAT_REDUCTIONS, "reduce_min", "reduce_product", "reduce_log_sum"])
def test_very_long_reductions_run_in_two_dispatches(contexts, name):
    # 2.1 million elements reduced to one per row (past what one invocation may loop over on lavapipe).
    x = RNG.uniform(0.999, 1.001, (2, 1_050_001))
    x[1, 777_777] = 1.5
    # A product rounds once per element (no compensation; WPT allows one ULP per element).
    compare(contexts, lambda b, x: getattr(b, name)(x, axes=[1]), x=x, rtol=3e-4 if name == "reduce_product" else 2e-6)
    compare(contexts, lambda b, x: getattr(b, name)(x, keep_dimensions=True), "float16", x=x[:, :100_000], rtol=2e-3)


def test_normalization_of_groups_past_one_invocations_loops(contexts):
    # 1024 x 1024 per channel: the moments take two dispatches (partial moments, then combined).
    x = RNG.standard_normal((1, 2, 1024, 1024)) * 3 + 50
    compare(contexts, lambda b, x: b.instance_normalization(x, epsilon=1e-3), x=x, rtol=1e-4, atol=2e-5)
    y = RNG.uniform(-1, 1, (2, 300_001)) + 7
    compare(contexts, lambda b, y: b.layer_normalization(y), "float16", y=y, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("data_type", ["float32", "int32", "uint8"])
def test_arg_min_max_of_long_axes_run_in_two_dispatches(contexts, data_type):
    x = RNG.integers(0, 100, (3, 200_003)) if data_type != "float32" else RNG.standard_normal((3, 200_003))
    x[0, 150_000] = 1000 if data_type == "int32" else 255 if data_type == "uint8" else 1e30
    x[0, 190_000] = x[0, 150_000]  # a tie in a later part: the first index wins
    x[1, [4097, 8200]] = -1 if data_type == "int32" else 0 if data_type == "uint8" else -1e30
    if data_type == "float32":
        x[2, [123_456, 4]] = np.nan, 1e30  # the first NaN wins
    for name in ("arg_max", "arg_min"):
        compare(contexts, lambda b, x, n=name: getattr(b, n)(x, 1, output_data_type="int64"), data_type, x=x)


def test_long_log_sum_exp_runs_in_two_dispatches(contexts):
    x = RNG.standard_normal((4, 300_000)) * 20
    x[1, :] = -np.inf
    x[1, 200_000] = 5.0  # every other part's maximum is -inf
    x[2, 250_000] = np.inf
    x[3, 7] = np.nan
    compare(contexts, lambda b, x: b.reduce_log_sum_exp(x, axes=[1]), x=x, rtol=1e-6)
    compare(contexts, lambda b, x: b.reduce_log_sum_exp(x), "float16", x=x[0, :100_000] / 20, rtol=1e-3)


@pytest.mark.parametrize("data_type", ["float32", "int32", "uint32", "int64"])
@pytest.mark.parametrize("exclusive,reverse", [(False, False), (True, False), (False, True), (True, True)])
def test_cumulative_sum_of_a_long_axis_uses_part_sums(contexts, data_type, exclusive, reverse):
    # 3 x 10,001 x 2 along axis 1: the lines are strided, the last part is short.
    if data_type == "int32":
        x = RNG.integers(-(2**28), 2**28, (3, 10_001, 2))
        x[0, 5000:5010, 0] = I32.max  # saturates part-way, and comes back as exact arithmetic would
        x[0, 5010:5030, 0] = -(2**30)
    else:
        x = RNG.integers(0, 1000, (3, 10_001, 2))
    tol = {"rtol": 1e-6} if data_type == "float32" else {}
    compare(contexts, lambda b, x: b.cumulative_sum(x, 1, exclusive=exclusive, reversed=reverse), data_type, x=x, **tol)


# The spec's tables allow 8-bit types only for reduceMax and reduceMin.
LONG_INTEGER_CASES = [
    *((t, n) for t in ("int32", "uint32") for n in ("reduce_sum", "reduce_l1", "reduce_sum_square", "reduce_max")),
    ("int8", "reduce_max"),
    ("uint8", "reduce_min"),
    ("int32", "reduce_min"),
]


@pytest.mark.parametrize("data_type,name", LONG_INTEGER_CASES)
def test_long_integer_reductions_run_in_two_dispatches(contexts, data_type, name):
    lo, hi = dtypes.int_bounds(data_type)
    x = RNG.integers(max(lo, -(2**20)), min(hi, 2**20), (2, 300_001), endpoint=True)
    x[0, 299_000:] = hi  # the sums saturate, only at the end
    x[1, 77_777] = lo
    compare(contexts, lambda b, x: getattr(b, name)(x, axes=[1], keep_dimensions=True), data_type, x=x)


# -- Tint (last: it checks every source this file compiled) ------------------------------------


def test_tint_accepts_the_long_loop_kernels(contexts):
    """The unrolled and two-dispatch sources (only long reductions make them, no WPT case does) pass Tint too."""
    test_long_loops_past_lavapipes_iteration_limit(contexts)
    x = RNG.uniform(0, 1, (5000, 2))
    compare(contexts, lambda b, x: b.cumulative_sum(x, 0, exclusive=True), x=x, rtol=1e-5)
    compare(contexts, lambda b, x: b.reduce_product(x, axes=[0]), "int32", x=np.ones((5000, 1)))
    compare(
        contexts, lambda b, x: b.instance_normalization(x), x=RNG.standard_normal((1, 2, 70, 70)), rtol=1e-4, atol=1e-5
    )
    y = RNG.standard_normal((2, 70_000))
    compare(contexts, lambda b, y: b.arg_max(y, 1), y=y)
    compare(contexts, lambda b, y: b.reduce_log_sum_exp(y, axes=[1]), y=y, rtol=1e-6)
    for name in ("reduce_l2", "reduce_max"):  # two dispatches each: partial results, then theirs
        compare(contexts, lambda b, x, n=name: getattr(b, n)(x), x=np.ones((300, 300)), rtol=1e-6)
    x = RNG.standard_normal((1, 1, 300, 300))
    compare(contexts, lambda b, x: b.layer_normalization(x, axes=[2, 3]), x=x, rtol=1e-4, atol=1e-5)
    sources = {name: src for name, src in seen().items() if "r_0 + 15u" in src or "-partial-" in name}
    assert len(sources) >= 10
    assert tint_errors(sources) == {}


def test_tint_accepts_the_integer_kernels(contexts):
    """WPT's reductions are of floats only: the 64-bit accumulators, integer products, cumulative sums and
    32-bit quantization (no WPT case makes all of them) pass Tint too."""
    for data_type in ("int32", "uint32", "int64", "uint64"):
        for name in ("reduce_sum", "reduce_l1", "reduce_sum_square", "reduce_product", "reduce_min"):
            compare(contexts, lambda b, x, n=name: getattr(b, n)(x, axes=[1]), data_type, x=np.ones((2, 3)))
        compare(contexts, lambda b, x: b.cumulative_sum(x, 1, reversed=True), data_type, x=np.ones((2, 3)))
        compare(contexts, lambda b, x: b.arg_max(x, 0, output_data_type="int64"), data_type, x=np.ones((2, 3)))
    for q in ("int32", "uint32", "int8", "uint4"):
        test_quantize_and_dequantize_blockwise(contexts, q)
    # Every source of these families compiled in this process (a source compiles once, whichever test made it).
    sources = {name: src for name, src in seen().items() if name.split("-")[0] in FAMILY_OPS}
    assert len(sources) >= 20
    assert tint_errors(sources) == {}
