"""Element-wise unary operations: validation and reference results."""

from __future__ import annotations

import math

import numpy as np
import pytest

import webml
from webml.backends.reference.unary import erf_float64

ALL_TYPES = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
SIGNED_OPS = ("abs", "neg", "sign")
FLOAT_OPS = (
    "ceil", "cos", "erf", "exp", "floor", "log", "reciprocal", "round_even", "sin", "sqrt", "tan",
)  # fmt: skip
SIGNED_TYPES = ("float32", "float16", "int64", "int32", "int8")

# Independent float64 NumPy models of each operator (erf: math.erf per element).
MODELS = {
    "abs": np.abs,
    "ceil": np.ceil,
    "cos": np.cos,
    "erf": np.frompyfunc(math.erf, 1, 1),
    "exp": np.exp,
    "floor": np.floor,
    "identity": lambda x: x,
    "log": np.log,
    "neg": np.negative,
    "reciprocal": np.reciprocal,
    "round_even": np.rint,
    "sin": np.sin,
    "sign": np.sign,
    "sqrt": np.sqrt,
    "tan": np.tan,
}


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="reference")


@pytest.fixture
def builder(context):
    return webml.MLGraphBuilder(context)


def operand(builder, name, data_type, shape):
    return builder.input(name, {"dataType": data_type, "shape": list(shape)})


def compute(context, builder, method, x):
    out = getattr(builder, method)(operand(builder, "x", str(x.dtype), x.shape))
    graph = builder.build({"out": out})
    return context.compute(graph, {"x": x})["out"]


def expected(method, x):
    with np.errstate(all="ignore"):
        return np.asarray(MODELS[method](x.astype(np.float64)), np.float64).astype(x.dtype)


# -- results ---------------------------------------------------------------

FLOAT_VALUES = np.array(
    [[-np.inf, -100.5, -3.5, -2.5, -1.5, -1.0, -0.5, -1e-3, -0.0],
     [0.0, 1e-3, 0.5, 1.5, 2.5, 3.7, 20.0, np.inf, np.nan]],
)  # fmt: skip


@pytest.mark.parametrize("data_type", ["float32", "float16"])
@pytest.mark.parametrize("method", [*FLOAT_OPS, *SIGNED_OPS, "identity"])
def test_float_results(context, builder, method, data_type):
    x = FLOAT_VALUES.astype(data_type)
    out = compute(context, builder, method, x)
    assert out.dtype == x.dtype and out.shape == x.shape
    want = expected(method, x)
    if method == "sign":
        want[np.isnan(x)] = 0  # the spec: 0 unless > 0 or < 0
    np.testing.assert_array_equal(out, want)


def test_round_even_spec_example(context, builder):
    x = np.array([0.1, 0.9, 1.1, 1.9, -3.5, -2.5, -1.5, 1.5, 2.5, 3.5], np.float32)
    out = compute(context, builder, "round_even", x)
    assert out.tolist() == [0.0, 1.0, 1.0, 2.0, -4.0, -2.0, -2.0, 2.0, 2.0, 4.0]


def test_abs_and_sign_of_negative_zero(context):
    b = webml.MLGraphBuilder(context)
    x = operand(b, "x", "float32", [1])
    graph = b.build({"abs": b.abs(x), "sign": b.sign(x)})
    out = context.compute(graph, {"x": np.array([-0.0], np.float32)})
    assert not np.signbit(out["abs"][0])
    assert out["sign"][0] == 0


@pytest.mark.parametrize("data_type", ["int8", "int32", "int64"])
@pytest.mark.parametrize("method", SIGNED_OPS)
def test_integer_results_saturate(context, builder, method, data_type):
    info = np.iinfo(data_type)
    x = np.array([info.min, -5, 0, 7, info.max], dtype=data_type)
    out = compute(context, builder, method, x)
    assert out.dtype == x.dtype
    exact = {"abs": abs, "neg": lambda v: -v, "sign": lambda v: (v > 0) - (v < 0)}[method]
    want = [min(max(exact(int(v)), int(info.min)), int(info.max)) for v in x]
    assert out.tolist() == want


@pytest.mark.parametrize("data_type", ALL_TYPES)
def test_identity_copies_every_type(context, builder, data_type):
    if data_type.startswith("float"):
        x = np.array([-1.25, np.inf], dtype=data_type)
    else:
        x = np.array([np.iinfo(data_type).min, np.iinfo(data_type).max], dtype=data_type)
    out = compute(context, builder, "identity", x)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, x)


def test_erf_float64_accuracy():
    x = np.concatenate([np.linspace(-7.0, 7.0, 2801), [0.0, -0.0, 1e-300, 2.5, -2.5, 6.0]])
    want = np.array([math.erf(v) for v in x])
    got = erf_float64(x)
    ulps = np.abs(got - want) / np.spacing(np.maximum(np.abs(want), 1e-300))
    assert ulps.max() <= 16
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    special = erf_float64(np.array([np.inf, -np.inf, np.nan]))
    assert special[0] == 1.0 and special[1] == -1.0 and np.isnan(special[2])


def test_output_copies_descriptor(builder):
    x = operand(builder, "x", "float16", [2, 1, 3])
    y = builder.sqrt(x)
    assert y.data_type == "float16" and y.shape == [2, 1, 3]
    s = operand(builder, "s", "int8", [])
    assert builder.neg(s).shape == []


# -- validation --------------------------------------------------------------


@pytest.mark.parametrize("method", FLOAT_OPS)
@pytest.mark.parametrize("data_type", [t for t in ALL_TYPES if not t.startswith("float")])
def test_float_only_operators_reject_integers(builder, method, data_type):
    x = operand(builder, "x", data_type, [2])
    with pytest.raises(TypeError, match=r"\[lbl\].*input data type " + data_type):
        getattr(builder, method)(x, label="lbl")


@pytest.mark.parametrize("method", SIGNED_OPS)
@pytest.mark.parametrize("data_type", ALL_TYPES)
def test_signed_operators_data_types(builder, method, data_type):
    x = operand(builder, "x", data_type, [2])
    if data_type in SIGNED_TYPES:
        assert getattr(builder, method)(x).data_type == data_type
    else:
        with pytest.raises(TypeError, match=r"\[lbl\].*input data type " + data_type):
            getattr(builder, method)(x, label="lbl")


def test_operand_from_another_builder(context, builder):
    other = operand(webml.MLGraphBuilder(context), "x", "float32", [2])
    with pytest.raises(TypeError):
        builder.exp(other)


def test_op_support_limits(context):
    limits = context.op_support_limits()
    assert limits["abs"]["input"]["dataTypes"] == list(SIGNED_TYPES)
    assert limits["roundEven"]["input"]["dataTypes"] == ["float32", "float16"]
    assert limits["identity"]["input"]["dataTypes"] == list(ALL_TYPES)
    assert set(limits["tan"]) == {"input", "output"}
