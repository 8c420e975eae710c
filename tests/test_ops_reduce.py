"""Reductions, argMin/argMax and cumulativeSum: shape rules, validation and reference results."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import webml

REDUCTIONS = (
    "reduce_l1",
    "reduce_l2",
    "reduce_log_sum",
    "reduce_log_sum_exp",
    "reduce_max",
    "reduce_mean",
    "reduce_min",
    "reduce_product",
    "reduce_sum",
    "reduce_sum_square",
)


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, method, x, *args, **options):
    """Build ``method`` over one input ``x`` and run it on the reference backend."""
    builder = webml.MLGraphBuilder(context)
    out = getattr(builder, method)(operand(builder, "x", webml.dtypes.data_type_of(x.dtype), x.shape), *args, **options)
    graph = builder.build({"out": out})
    return context.compute(graph, {"x": x})["out"]


def raises(match, fn, *args, **kwargs):
    with pytest.raises(TypeError, match=match) as info:
        fn(*args, label="lbl", **kwargs)
    assert "[lbl]" in str(info.value)


# -- reduction results against independent float64 NumPy ------------------------------------


def _numpy_reduction(name, x, axes, keep):
    x = x.astype(np.float64)
    s = lambda a: np.sum(a, axis=axes, keepdims=keep)  # noqa: E731
    return {
        "reduce_l1": lambda: s(np.abs(x)),
        "reduce_l2": lambda: np.sqrt(s(x * x)),
        "reduce_log_sum": lambda: np.log(s(x)),
        "reduce_log_sum_exp": lambda: np.log(s(np.exp(x))),
        "reduce_max": lambda: np.max(x, axis=axes, keepdims=keep),
        "reduce_mean": lambda: np.mean(x, axis=axes, keepdims=keep),
        "reduce_min": lambda: np.min(x, axis=axes, keepdims=keep),
        "reduce_product": lambda: np.prod(x, axis=axes, keepdims=keep),
        "reduce_sum": lambda: s(x),
        "reduce_sum_square": lambda: s(x * x),
    }[name]()


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axes, keep", [(None, False), ((0, 2), True), ((1,), False), ((), False)])
def test_reduction_matches_numpy(context, name, axes, keep):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 2.0, size=(2, 3, 4)).astype(np.float32)  # positive: log_sum is defined
    options = {"keep_dimensions": keep} if axes is None else {"axes": list(axes), "keep_dimensions": keep}
    out = compute(context, name, x, **options)
    expected = _numpy_reduction(name, x, axes, keep)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-6)


def test_reduction_of_scalar_is_the_function_of_the_value(context):
    x = np.array(-3.0, np.float32)
    assert compute(context, "reduce_l1", x).shape == ()
    assert compute(context, "reduce_l1", x) == 3.0
    assert compute(context, "reduce_sum_square", x, axes=[]) == 9.0


def test_reduce_log_sum_exp_does_not_overflow(context):
    x = np.array([[1000.0, 1000.0], [-np.inf, -np.inf]], np.float32)
    out = compute(context, "reduce_log_sum_exp", x, axes=[1])
    np.testing.assert_allclose(out, [1000.0 + np.log(2.0), -np.inf])


def test_integer_sums_are_exact(context):
    # float64 would round 2^53 + 1; the reference keeps integers exact.
    x = np.array([2**53, 1, 0], np.int64)
    assert compute(context, "reduce_sum", x) == 2**53 + 1
    # A uint64 sum above 2^63 (past int64) is still exact.
    u = np.array([2**63, 2**62, 1], np.uint64)
    assert compute(context, "reduce_sum", u) == 2**63 + 2**62 + 1
    # Partial sums overflow 64 bits but the result fits.
    big = np.array([2**62, 2**62, 2**62, -(2**62), -(2**62)], np.int64)
    assert compute(context, "reduce_sum", big) == 2**62
    assert compute(context, "reduce_l1", np.array([-(2**63), 0], np.int64)) == 2**63 - 1  # saturates


def test_integer_overflow_saturates(context):
    x = np.array([2**20, 2**20, -3], np.int32)
    assert compute(context, "reduce_product", x) == -(2**31)
    assert compute(context, "reduce_sum_square", np.array([2**40, 2**40], np.int64)) == 2**63 - 1
    assert compute(context, "reduce_product", np.array([7, 11, 13], np.uint32)) == 1001
    # Products far past 64 bits saturate with their sign (without computing them exactly).
    x = np.full((3, 1000), 7, np.int64)
    x[1, 0], x[2, 5] = -7, 0
    np.testing.assert_array_equal(compute(context, "reduce_product", x, axes=[1]), [2**63 - 1, -(2**63), 0])
    assert compute(context, "reduce_max", np.array([[2**63 + 5, 3]], np.uint64), axes=[1]) == [2**63 + 5]


# -- reduction validation -------------------------------------------------------------------


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_rejects_invalid_axes(builder, name):
    x = operand(builder, "x", "float32", [1, 2, 5, 5])
    fn = getattr(builder, name)
    raises(r"axes value 4 must be in the range \[0, 4\)", fn, x, axes=[4])
    raises("axes .* must not contain duplicates", fn, x, axes=[0, 1, 1])
    raises(r"axes\[0\] must be an unsigned long", fn, x, axes=[-1])
    raises(r"axes\[1\] must be an unsigned long", fn, x, axes=[0, float("nan")])
    raises("axes must be a sequence", fn, x, axes=3)


@pytest.mark.parametrize(
    "name, rejected",
    [
        ("reduce_l1", "int8"),
        ("reduce_sum", "uint8"),
        ("reduce_sum_square", "int8"),
        ("reduce_product", "int8"),
        ("reduce_l2", "int32"),
        ("reduce_log_sum", "int64"),
        ("reduce_log_sum_exp", "uint32"),
        ("reduce_mean", "int32"),
    ],
)
def test_reduction_allowed_data_types(builder, name, rejected):
    raises(f"input data type {rejected} is not supported", getattr(builder, name), operand(builder, "x", rejected, [2]))


def test_reduce_max_min_take_any_data_type(builder):
    for i, t in enumerate(webml.ops.checks.SPEC_TYPES):
        x = operand(builder, f"x{i}", t, [2, 3])
        assert builder.reduce_max(x, axes=[1]).data_type == t
        assert builder.reduce_min(x, keep_dimensions=True).shape == [1, 1]


# -- shape rule property tests against the spec's formula -----------------------------------


@st.composite
def reduction_args(draw):
    shape = draw(st.lists(st.integers(1, 4), min_size=0, max_size=5))
    axes = draw(
        st.none()
        | st.permutations(range(len(shape))).flatmap(lambda p: st.sampled_from([p[:k] for k in range(len(p) + 1)]))
    )
    return shape, axes, draw(st.booleans())


def spec_reduction_shape(shape, axes, keep):
    """calculate reduction output sizes (spec), written independently of the implementation."""
    axes = range(len(shape)) if axes is None else axes
    if keep:
        return [1 if i in axes else d for i, d in enumerate(shape)]
    return [d for i, d in enumerate(shape) if i not in axes]


@settings(max_examples=50, deadline=None)
@given(reduction_args(), st.sampled_from(REDUCTIONS))
def test_reduction_shape_property(context, args, name):
    shape, axes, keep = args
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", "float32", shape)
    options = {"keep_dimensions": keep} if axes is None else {"axes": list(axes), "keep_dimensions": keep}
    out = getattr(builder, name)(x, **options)
    assert out.shape == spec_reduction_shape(shape, axes, keep)
    assert out.data_type == "float32"
    # NumPy agrees.
    assert tuple(out.shape) == np.sum(np.zeros(shape), axis=None if axes is None else tuple(axes), keepdims=keep).shape


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=0, max_size=5),
    st.lists(st.integers(0, 7), min_size=1, max_size=6),
    st.sampled_from(REDUCTIONS),
)
def test_reduction_invalid_axes_property(context, shape, axes, name):
    rank = len(shape)
    if all(a < rank for a in axes) and len(set(axes)) == len(axes):
        axes = [*axes, axes[0]] if rank else axes  # make it invalid: a duplicate (or out of range for scalars)
    builder = webml.MLGraphBuilder(context)
    raises("axes", getattr(builder, name), operand(builder, "x", "float32", shape), axes=axes)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=5), st.data(), st.booleans(), st.sampled_from(["int32", "int64"])
)
def test_arg_min_max_shape_property(context, shape, data, keep, out_type):
    axis = data.draw(st.integers(0, len(shape) - 1))
    builder = webml.MLGraphBuilder(context)
    x = operand(builder, "x", "float16", shape)
    for method in ("arg_min", "arg_max"):
        out = getattr(builder, method)(x, axis, keep_dimensions=keep, output_data_type=out_type)
        assert out.shape == spec_reduction_shape(shape, [axis], keep)
        assert out.data_type == out_type
    bad = data.draw(st.integers(len(shape), 10))
    raises("axis", builder.arg_min, x, bad)


# -- argMin / argMax ----------------------------------------------------------------------------


def test_arg_min_max_results(context):
    x = np.array([[1, 5, 5, 0], [3, 3, -2, 3], [7, 7, 7, 7]], np.int32)
    np.testing.assert_array_equal(compute(context, "arg_max", x, 1), [1, 0, 0])  # ties: the first index
    np.testing.assert_array_equal(compute(context, "arg_min", x, 1), [3, 2, 0])
    out = compute(context, "arg_min", x, 0, keep_dimensions=True, output_data_type="int64")
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[0, 1, 1, 0]])


def test_arg_min_max_validation(builder):
    x = operand(builder, "x", "float32", [1, 2, 3, 4])
    raises(r"axis 4 must be in the range \[0, 4\)", builder.arg_min, x, 4)
    raises("axis must be an unsigned long", builder.arg_max, x, -1)
    raises("output_data_type must be one of 'int32', 'int64'", builder.arg_max, x, 0, output_data_type="float32")
    raises("output_data_type", builder.arg_min, x, 0, output_data_type="uint32")
    raises("input rank 0 is not supported", builder.arg_min, operand(builder, "s", "float32", []), 0)


# -- cumulativeSum -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exclusive, reversed, expected",
    [  # The spec's examples for [1, 2, 3, 4].
        (False, False, [1, 3, 6, 10]),
        (True, False, [0, 1, 3, 6]),
        (False, True, [10, 9, 7, 4]),
        (True, True, [9, 7, 4, 0]),
    ],
)
def test_cumulative_sum_examples(context, exclusive, reversed, expected):
    x = np.array([1, 2, 3, 4], np.float32)
    out = compute(context, "cumulative_sum", x, 0, exclusive=exclusive, reversed=reversed)
    np.testing.assert_array_equal(out, expected)


def test_cumulative_sum_matches_numpy_along_axis(context):
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32)
    out = compute(context, "cumulative_sum", x, 1, reversed=True)
    expected = np.flip(np.cumsum(np.flip(x.astype(np.float64), 1), 1), 1)
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-6)


def test_cumulative_sum_integers_exact(context):
    x = np.array([2**62, 2**62, -(2**62), 2**63 - 1], np.int64)
    np.testing.assert_array_equal(compute(context, "cumulative_sum", x, 0), [2**62, 2**63 - 1, 2**62, 2**63 - 1])


def test_cumulative_sum_validation(builder):
    x = operand(builder, "x", "float32", [1, 2, 3])
    raises(r"axis 3 must be in the range \[0, 3\)", builder.cumulative_sum, x, 3)
    raises("input rank 0 is not supported", builder.cumulative_sum, operand(builder, "s", "float32", []), 0)
    raises("input data type int8 is not supported", builder.cumulative_sum, operand(builder, "i", "int8", [2]), 0)
    out = builder.cumulative_sum(x, 2, exclusive=True)
    assert (out.shape, out.data_type) == ([1, 2, 3], "float32")
