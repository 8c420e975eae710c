"""Shape and data-movement operators: validation and reference results."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

import webml


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, method, arrays, *args, **kwargs):
    """Feed ``arrays`` as inputs x0, x1, ... of ``builder.<method>(*inputs, *args, **kwargs)``."""
    builder = webml.MLGraphBuilder(context)
    names = [f"x{i}" for i in range(len(arrays))]
    ops = [operand(builder, n, webml.dtypes.data_type_of(a.dtype), a.shape) for n, a in zip(names, arrays)]
    if method == "concat":
        ops = [ops]
    out = getattr(builder, method)(*ops, *args, **kwargs)
    outs = out if isinstance(out, list) else [out]
    graph = builder.build({f"y{i}": o for i, o in enumerate(outs)})
    results = context.compute(graph, dict(zip(names, arrays)))
    values = [results[f"y{i}"] for i in range(len(outs))]
    return values if isinstance(out, list) else values[0]


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5


# -- cast --------------------------------------------------------------------


def test_cast_float_to_int_truncates_and_saturates(context):
    x = np.array([-43.5, 2.7, -0.9, np.nan, 1e10, -1e10, np.inf, -np.inf], np.float32)
    out = compute(context, "cast", [x], "int32")
    assert out.dtype == np.int32
    assert out.tolist() == [-43, 2, 0, 0, 2**31 - 1, -(2**31), 2**31 - 1, -(2**31)]
    assert compute(context, "cast", [x[:3]], "uint8").tolist() == [0, 2, 0]


@pytest.mark.parametrize(
    ("src", "dst", "values", "expected"),
    [
        # Integer to integer keeps the lowest bits (two's complement), per the spec's table.
        ("int8", "uint8", [-1, 127, -128], [255, 127, 128]),
        ("int32", "int8", [300, -129, 127], [44, 127, 127]),
        ("int64", "uint64", [-1, 2**40], [2**64 - 1, 2**40]),
        ("uint64", "int64", [2**64 - 1, 2**63], [-1, -(2**63)]),
        ("uint32", "int32", [2**32 - 1, 2**31], [-1, -(2**31)]),
        ("int32", "int4", [-9, 8, 7, 16], [7, -8, 7, 0]),
        ("int32", "uint4", [-1, 16, 15], [15, 0, 15]),
        ("uint4", "int8", [0, 15], [0, 15]),
    ],
)
def test_cast_integers_wrap(context, src, dst, values, expected):
    x = np.array(values).astype(webml.dtypes.numpy_dtype(src))
    out = compute(context, "cast", [x], dst)
    assert out.dtype == webml.dtypes.numpy_dtype(dst)
    assert out.astype(object).tolist() == expected


def test_cast_to_float_rounds_to_nearest(context):
    x = np.array([2**60 + 1, 65519, 65520, -(2**24) - 1], np.int64)
    out = compute(context, "cast", [x], "float16")
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, np.array([np.inf, 65504, np.inf, -np.inf], np.float16))
    assert compute(context, "cast", [x], "float32").tolist() == [2.0**60, 65519, 65520, -(2.0**24)]
    f = np.array([1 + 2**-11, 1 + 3 * 2**-11, 1e5, -1e-8], np.float32)  # ties to even, overflow
    with np.errstate(over="ignore"):
        expected = f.astype(np.float16)
    np.testing.assert_array_equal(compute(context, "cast", [f], "float16"), expected)
    i4 = np.array([-8, 7], ml_dtypes.int4)
    assert compute(context, "cast", [i4], "float32").tolist() == [-8.0, 7.0]


def test_cast_rejects_unknown_data_type(builder):
    x = operand(builder, "x", "float32", [2])
    with pytest.raises(TypeError, match=r"\[c\].*data_type must be one of"):
        builder.cast(x, "float64", label="c")
    assert builder.cast(x, "uint4").data_type == "uint4"


# -- concat ------------------------------------------------------------------


def test_concat(context):
    a, b, c = X[:, :1], X[:, 1:], X[:, :2]
    out = compute(context, "concat", [a, b, c], 1)
    np.testing.assert_array_equal(out, np.concatenate([a, b, c], axis=1))


@pytest.mark.parametrize(
    ("shapes", "types", "axis", "message"),
    [
        ([], [], 0, r"number of inputs \(0\)"),
        ([[2, 2], [2, 2]], ["float32", "int32"], 0, r"inputs\[1\] data type int32"),
        ([[2, 2], [2, 2, 1]], ["float32", "float32"], 0, r"inputs\[1\] rank 3"),
        ([[2, 2], [2, 2]], ["float32", "float32"], 2, r"axis 2 must be less than"),
        ([[2, 2], [2, 3]], ["float32", "float32"], 0, r"inputs\[1\] shape \[2, 3\]"),
        ([[], []], ["float32", "float32"], 0, r"inputs rank 0 is not supported"),
        ([[2**30], [2**30]], ["uint8", "uint8"], 0, r"output shape \[2147483648\] is not valid"),
    ],
)
def test_concat_validation(builder, shapes, types, axis, message):
    inputs = [operand(builder, f"x{i}", t, s) for i, (s, t) in enumerate(zip(shapes, types))]
    with pytest.raises(TypeError, match=r"\[lbl\].*" + message):
        builder.concat(inputs, axis, label="lbl")


# -- expand, reshape, tile -----------------------------------------------------


def test_expand_reshape_tile(context):
    x = X[:1, :, :1]  # [1, 3, 1]
    np.testing.assert_array_equal(compute(context, "expand", [x], [2, 2, 3, 4]), np.broadcast_to(x, (2, 2, 3, 4)))
    np.testing.assert_array_equal(compute(context, "reshape", [X], [4, 6]), X.reshape(4, 6))
    np.testing.assert_array_equal(compute(context, "reshape", [X[:1, :1, :1]], []), X[0, 0, 0])
    np.testing.assert_array_equal(compute(context, "tile", [X], [1, 2, 3]), np.tile(X, (1, 2, 3)))
    i4 = np.array([[-8, 7]], ml_dtypes.int4)
    assert compute(context, "reshape", [i4], [2]).tolist() == [-8, 7]


@pytest.mark.parametrize(
    ("method", "shape", "arg", "message"),
    [
        ("expand", [2, 3], [4, 3, 5], r"input shape \[2, 3\] is not unidirectionally broadcastable"),
        ("expand", [1, 2, 1, 1], [1, 2, 2**31, 1], r"output shape .* is not valid"),
        ("expand", [1], [0], r"output shape \[0\] is not valid"),
        ("expand", [1], [1] * 9, r"output rank 9 exceeds"),
        ("expand", [1], [-1], r"new_shape\[0\] must be an unsigned long"),
        ("reshape", [2, 4], [2, 4, 0], r"new_shape\[2\] = 0 is not a valid dimension"),
        ("reshape", [2, 4], [3, 3], r"new_shape \[3, 3\] has 9 elements, input shape \[2, 4\] has 8"),
        ("reshape", [1], [1] * 9, r"length of new_shape \(9\) exceeds"),
        ("tile", [2, 2], [1, 2, 3], r"length of repetitions \(3\) must equal the input rank 2"),
        ("tile", [2, 2], [0, 1], r"repetitions \[0, 1\] must not contain 0"),
        ("tile", [2, 2], [1, 2**31], r"output shape .* is not valid"),
    ],
)
def test_expand_reshape_tile_validation(builder, method, shape, arg, message):
    x = operand(builder, "x", "float32", shape)
    with pytest.raises(TypeError, match=r"\[lbl\].*" + message):
        getattr(builder, method)(x, arg, label="lbl")


# -- pad -----------------------------------------------------------------------

PAD_INPUT = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
# The spec's examples for beginningPadding = endingPadding = [1, 2].
PAD_EXPECTED = {
    "constant": [[0] * 7, [0, 0, 1, 2, 3, 0, 0], [0, 0, 4, 5, 6, 0, 0], [0] * 7],
    "edge": [[1, 1, 1, 2, 3, 3, 3], [1, 1, 1, 2, 3, 3, 3], [4, 4, 4, 5, 6, 6, 6], [4, 4, 4, 5, 6, 6, 6]],
    "reflection": [[6, 5, 4, 5, 6, 5, 4], [3, 2, 1, 2, 3, 2, 1], [6, 5, 4, 5, 6, 5, 4], [3, 2, 1, 2, 3, 2, 1]],
}


@pytest.mark.parametrize("mode", PAD_EXPECTED)
def test_pad_spec_examples(context, mode):
    out = compute(context, "pad", [PAD_INPUT], [1, 2], [1, 2], mode=mode)
    assert out.tolist() == PAD_EXPECTED[mode]


def test_pad_value_is_cast_to_the_input_type(context):
    out = compute(context, "pad", [np.array([1, 2], np.int8)], [1], [2], value=-300.5)
    assert out.tolist() == [-128, 1, 2, -128, -128]
    out = compute(context, "pad", [np.array([1.0], np.float32)], [1], [0], value=float("-inf"))
    assert out.tolist() == [-np.inf, 1.0]


@pytest.mark.parametrize("backend", ["reference", "onnxruntime"])
@pytest.mark.parametrize(("data_type", "mode"), [("float32", "constant"), ("int64", "edge"), ("uint8", "reflection")])
def test_pad_of_a_0d_input_with_empty_paddings_is_the_input(backend, data_type, mode):
    # The spec allows any rank; with nothing to pad the output is the input.
    context = webml.ml.create_context(backend=backend)
    x = np.array(-7 if data_type == "int64" else 7, webml.dtypes.numpy_dtype(data_type))
    out = compute(context, "pad", [x], [], [], mode=mode, value=3)
    assert out.shape == () and out.dtype == x.dtype and out.item() == x.item()


@pytest.mark.parametrize(
    ("shape", "begin", "end", "options", "message"),
    [
        ([], [0], [0], {}, r"ending_padding \(1\) must both equal the input rank 0"),
        ([2, 3], [1], [1, 2], {"mode": "edge"}, r"lengths of beginning_padding \(1\) and ending_padding \(2\)"),
        ([2, 3], [1, 3], [1, 0], {"mode": "reflection"}, r"beginning_padding\[1\] = 3 must be less than"),
        ([2, 3], [0, 0], [2, 0], {"mode": "reflection"}, r"ending_padding\[0\] = 2 must be less than"),
        ([2, 3], [0, 0], [0, 0], {"mode": "symmetric"}, r"mode must be one of"),
        ([2, 3], [0, 0], [0, 0], {"value": "1"}, r"value must be a number"),
        ([2, 3], [0, 2**32 - 1], [0, 0], {}, r"output shape .* is not valid"),
    ],
)
def test_pad_validation(builder, shape, begin, end, options, message):
    x = operand(builder, "x", "float32", shape)
    with pytest.raises(TypeError, match=r"\[lbl\].*" + message):
        builder.pad(x, begin, end, label="lbl", **options)


# -- reverse, transpose ----------------------------------------------------------


def test_reverse_and_transpose(context):
    np.testing.assert_array_equal(compute(context, "reverse", [X]), X[::-1, ::-1, ::-1])
    np.testing.assert_array_equal(compute(context, "reverse", [X], axes=[]), X)
    np.testing.assert_array_equal(compute(context, "reverse", [X], axes=[2, 0]), X[::-1, :, ::-1])
    np.testing.assert_array_equal(compute(context, "transpose", [X]), X.transpose())
    np.testing.assert_array_equal(compute(context, "transpose", [X], permutation=[1, 2, 0]), X.transpose(1, 2, 0))


def test_transpose_output_shape(builder):
    x = operand(builder, "x", "int64", [1, 2, 3, 4])
    assert builder.transpose(x).shape == [4, 3, 2, 1]
    assert builder.transpose(x, permutation=[0, 2, 3, 1]).shape == [1, 3, 4, 2]


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("reverse", {"axes": [3]}, r"axes value 3 must be in the range \[0, 3\)"),
        ("reverse", {"axes": [2, 2]}, r"axes \[2, 2\] must not contain duplicates"),
        ("transpose", {"permutation": [0, 1]}, r"length of permutation \(2\) must equal the input rank 3"),
        ("transpose", {"permutation": [0, 1, 3]}, r"permutation value 3 must be in the range"),
        ("transpose", {"permutation": [0, 1, 1]}, r"permutation \[0, 1, 1\] must not contain duplicates"),
        ("transpose", {"permutation": [0, -1, 2]}, r"permutation\[1\] must be an unsigned long"),
    ],
)
def test_reverse_transpose_validation(builder, method, options, message):
    x = operand(builder, "x", "float32", [2, 3, 4])
    with pytest.raises(TypeError, match=r"\[lbl\].*" + message):
        getattr(builder, method)(x, label="lbl", **options)


# -- slice, split ------------------------------------------------------------------


def test_slice(context):
    out = compute(context, "slice", [X], [1, 0, 1], [1, 3, 3], strides=[1, 2, 2])
    np.testing.assert_array_equal(out, X[1:2, 0:3:2, 1:4:2])
    assert out.shape == (1, 2, 2)


def test_split(context):
    parts = compute(context, "split", [X], 2, axis=2)
    assert [p.shape for p in parts] == [(2, 3, 2), (2, 3, 2)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=2), X)
    parts = compute(context, "split", [X], [1, 2], axis=1)
    np.testing.assert_array_equal(parts[0], X[:, :1])
    np.testing.assert_array_equal(parts[1], X[:, 1:])


@pytest.mark.parametrize(
    ("starts", "sizes", "options", "message"),
    [
        ([0, 0, 0], [1, 0, 1], {}, r"sizes \[1, 0, 1\] must not contain 0"),
        ([0, 0], [1, 1, 1], {}, r"lengths of starts \(2\) and sizes \(3\)"),
        ([0, 0, 0], [1, 1, 1], {"strides": [1, 1]}, r"length of strides \(2\) must equal the input rank 3"),
        ([0, 0, 0], [1, 1, 1], {"strides": [1, 0, 1]}, r"strides\[1\] = 0 must be at least 1"),
        ([0, 4, 0], [1, 1, 1], {}, r"starts\[1\] = 4 exceeds the input size 3"),
        ([0, 1, 2], [1, 2, 3], {}, r"starts\[2\] \+ sizes\[2\] = 5 exceeds the input size 4"),
    ],
)
def test_slice_validation(builder, starts, sizes, options, message):
    x = operand(builder, "x", "float32", [2, 3, 4])
    with pytest.raises(TypeError, match=r"\[lbl\].*" + message):
        builder.slice(x, starts, sizes, label="lbl", **options)


@pytest.mark.parametrize(
    ("shape", "splits", "axis", "message"),
    [
        ([], 1, 0, r"input rank 0 is not supported"),
        ([2, 6], [2], 2, r"axis 2 must be less than the input rank 2"),
        ([2, 6], 0, 0, r"splits \(0\) must be in \[1, 8192\]"),
        ([2, 6], [], 0, r"length of splits \(0\)"),
        ([2, 6], [2, 0], 0, r"splits \[2, 0\] must not contain 0"),
        ([2, 6], 4, 1, r"splits \(4\) must evenly divide the input size 6 along axis 1"),
        ([2, 6], [2, 2, 3], 1, r"sum of splits \[2, 2, 3\] \(7\) must equal the input size 6"),
    ],
)
def test_split_validation(builder, shape, splits, axis, message):
    x = operand(builder, "x", "float32", shape)
    with pytest.raises(TypeError, match=r"\[lbl\].*" + message):
        builder.split(x, splits, axis=axis, label="lbl")


# -- triangular, where ------------------------------------------------------------

TRI = np.array([[7, 1, 2], [9, 4, 8], [2, 6, 3]], np.float32)


@pytest.mark.parametrize(
    ("upper", "diagonal", "expected"),
    [
        (True, 0, [[7, 1, 2], [0, 4, 8], [0, 0, 3]]),
        (True, 1, [[0, 1, 2], [0, 0, 8], [0, 0, 0]]),
        (True, -1, [[7, 1, 2], [9, 4, 8], [0, 6, 3]]),
        (False, 0, [[7, 0, 0], [9, 4, 0], [2, 6, 3]]),
        (False, 1, [[7, 1, 0], [9, 4, 8], [2, 6, 3]]),
        (False, -1, [[0, 0, 0], [9, 0, 0], [2, 6, 0]]),
    ],
)
def test_triangular_spec_examples(context, upper, diagonal, expected):
    batch = np.stack([TRI, TRI])
    out = compute(context, "triangular", [batch], upper=upper, diagonal=diagonal)
    assert out.tolist() == [expected, expected]


def test_triangular_validation(builder):
    with pytest.raises(TypeError, match=r"\[lbl\].*input rank 1 is not supported"):
        builder.triangular(operand(builder, "v", "float32", [2]), label="lbl")
    x = operand(builder, "x", "float32", [2, 2])
    with pytest.raises(TypeError, match=r"\[lbl\].*upper must be a boolean"):
        builder.triangular(x, upper="false", label="lbl")
    with pytest.raises(TypeError, match=r"\[lbl\].*diagonal must be a long"):
        builder.triangular(x, diagonal=2**31, label="lbl")


def test_where_broadcasts(context):
    condition = np.array([[0], [3], [255]], np.uint8)  # [3, 1]
    t = np.array([1, 2], np.int32)
    f = np.array([[[-1, -2]]] * 2, np.int32)  # [2, 1, 2]
    out = compute(context, "where", [condition, t, f])
    assert out.shape == (2, 3, 2)
    np.testing.assert_array_equal(out, np.where(condition != 0, t, f))


@pytest.mark.parametrize(
    ("types", "shapes", "message"),
    [
        (["float32", "float32", "float32"], [[2], [2], [2]], r"condition data type float32 is not supported"),
        (["uint8", "float32", "float16"], [[2], [2], [2]], r"false_value data type float16 must match"),
        (["uint8", "float32", "float32"], [[2], [2, 3], [2]], r"true_value \[2, 3\] and false_value \[2\]"),
        (["uint8", "float32", "float32"], [[3], [2, 1], [1, 2]], r"condition shape \[3\] is not broadcastable"),
        (["uint8", "float32", "float32"], [[1, 4], [2**29, 1], [1, 4]], r"output shape .* is not valid"),
    ],
)
def test_where_validation(builder, types, shapes, message):
    ops = [operand(builder, n, t, s) for n, t, s in zip(("c", "t", "f"), types, shapes)]
    with pytest.raises(TypeError, match=r"\[lbl\].*" + message):
        builder.where(*ops, label="lbl")


def test_failed_calls_add_nothing(builder):
    x = operand(builder, "x", "float32", [2, 3])
    with pytest.raises(TypeError):
        builder.reshape(x, [7])
    y = builder.reshape(x, [3, 2])
    assert y.shape == [3, 2] and y.data_type == "float32"
