"""Element-wise ONNX operators: arithmetic, unary math, activations, comparisons and logic.

ONNX's multidirectional broadcasting is WebNN's bidirectional one, so the
binary operators map one to one.  Boolean tensors are uint8 (0/1), which
WebNN's comparisons produce and its logical operators take.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import onnx_op

BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
UNARY = {
    "Abs": "abs",
    "Neg": "neg",
    "Sign": "sign",
    "Floor": "floor",
    "Ceil": "ceil",
    "Sqrt": "sqrt",
    "Reciprocal": "reciprocal",
    "Exp": "exp",
    "Log": "log",
    "Sin": "sin",
    "Cos": "cos",
    "Tan": "tan",
    "Erf": "erf",
    "Round": "round_even",
    "Identity": "identity",
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "HardSwish": "hard_swish",
    "Not": "logical_not",
    "IsNaN": "is_nan",
}
COMPARISONS = {
    "Equal": "equal",
    "Less": "lesser",
    "LessOrEqual": "lesser_or_equal",
    "Greater": "greater",
    "GreaterOrEqual": "greater_or_equal",
    "And": "logical_and",
    "Or": "logical_or",
    "Xor": "logical_xor",
}


def _binary(method: str):
    def build(imp, node, attrs):
        return getattr(imp.builder, method)(imp.operand(node, 0), imp.operand(node, 1))

    return build


for _onnx, _method in {**BINARY, **COMPARISONS}.items():
    onnx_op(_onnx)(_binary(_method))


def _unary(method: str):
    def build(imp, node, attrs):
        return getattr(imp.builder, method)(imp.operand(node, 0))

    return build


for _onnx, _method in UNARY.items():
    onnx_op(_onnx)(_unary(_method))


@onnx_op("Pow")
def pow_(imp, node, attrs):
    """Pow (opset 12+ lets the exponent's type differ: it is cast to the base's)."""
    base, exponent = imp.operand(node, 0), imp.operand(node, 1)
    if exponent.data_type != base.data_type:
        exponent = imp.builder.cast(exponent, base.data_type)
    return imp.builder.pow(base, exponent)


def _variadic(method: str):
    def build(imp, node, attrs):
        operands = [imp.operand(node, i) for i in range(len(node.input)) if imp.has(node, i)]
        result = operands[0]
        for other in operands[1:]:
            result = getattr(imp.builder, method)(result, other)
        if len(operands) == 1:
            result = imp.builder.identity(result)
        return result

    return build


onnx_op("Max")(_variadic("max"))
onnx_op("Min")(_variadic("min"))
onnx_op("Sum")(_variadic("add"))


@onnx_op("Mean")
def mean(imp, node, attrs):
    total = _variadic("add")(imp, node, attrs)
    return imp.builder.div(total, imp.scalar(len(node.input), total))


# -- activations with attributes -------------------------------------------------------


@onnx_op("LeakyRelu")
def leaky_relu(imp, node, attrs):
    return imp.builder.leaky_relu(imp.operand(node, 0), alpha=attrs["alpha"])


@onnx_op("Elu")
def elu(imp, node, attrs):
    return imp.builder.elu(imp.operand(node, 0), alpha=attrs["alpha"])


@onnx_op("Selu")
def selu(imp, node, attrs):
    x = imp.operand(node, 0)
    alpha = attrs["alpha"]
    gamma = attrs["gamma"]
    return imp.builder.mul(imp.builder.elu(x, alpha=alpha), imp.scalar(gamma, x))


@onnx_op("Celu")
def celu(imp, node, attrs):
    x = imp.operand(node, 0)
    alpha = attrs["alpha"]
    scaled = imp.builder.div(x, imp.scalar(alpha, x))
    return imp.builder.mul(imp.builder.elu(scaled, alpha=1.0), imp.scalar(alpha, x))


@onnx_op("ThresholdedRelu")
def thresholded_relu(imp, node, attrs):
    x = imp.operand(node, 0)
    above = imp.builder.greater(x, imp.scalar(attrs["alpha"], x))
    return imp.builder.where(above, x, imp.scalar(0, x))


@onnx_op("HardSigmoid")
def hard_sigmoid(imp, node, attrs):
    return imp.builder.hard_sigmoid(imp.operand(node, 0), alpha=attrs["alpha"], beta=attrs["beta"])


@onnx_op("Mish")
def mish(imp, node, attrs):
    x = imp.operand(node, 0)
    return imp.builder.mul(x, imp.builder.tanh(imp.builder.softplus(x)))


@onnx_op("Swish")
def swish(imp, node, attrs):
    x = imp.operand(node, 0)
    alpha = attrs["alpha"]
    scaled = x if alpha == 1.0 else imp.builder.mul(x, imp.scalar(alpha, x))
    return imp.builder.mul(x, imp.builder.sigmoid(scaled))


def _check_gelu(node, attrs, analysis):
    approximate = attrs["approximate"]
    return None if approximate in ("none", "tanh") else f"approximate={approximate!r} is not 'none' or 'tanh'"


@onnx_op("Gelu", check=_check_gelu)
def gelu(imp, node, attrs):
    x = imp.operand(node, 0)
    if attrs["approximate"] == "none":
        return imp.builder.gelu(x)
    b = imp.builder
    # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
    cube = b.mul(b.mul(x, x), x)
    inner = b.mul(b.add(x, b.mul(cube, imp.scalar(0.044715, x))), imp.scalar(math.sqrt(2 / math.pi), x))
    return b.mul(b.mul(x, imp.scalar(0.5, x)), b.add(b.tanh(inner), imp.scalar(1.0, x)))


@onnx_op("PRelu")
def prelu(imp, node, attrs):
    return imp.builder.prelu(imp.operand(node, 0), imp.operand(node, 1))


def _clip_bound(imp, node, attrs, index: int, name: str, unbounded: float) -> Any:
    """A bound of Clip: an attribute before opset 11 (its schema default is the largest float, so an infinite
    input becomes finite, as in ONNX Runtime), an optional input from it (absent: ``unbounded``)."""
    if imp.opset < 11:
        return attrs[name]
    value = imp.static(node, index)
    return unbounded if value is None else np.asarray(value).item()


@onnx_op("Clip", static=(1, 2))
def clip(imp, node, attrs):
    x = imp.operand(node, 0)
    lo = _clip_bound(imp, node, attrs, 1, "min", -math.inf)
    hi = _clip_bound(imp, node, attrs, 2, "max", math.inf)
    if lo > hi:
        # ONNX: every element becomes max when min > max.
        return imp.builder.identity(imp.scalar(hi, x, x.shape)) if x.shape else imp.builder.identity(imp.scalar(hi, x))
    return imp.builder.clamp(x, min_value=lo, max_value=hi)


@onnx_op("IsInf")
def is_inf(imp, node, attrs):
    x = imp.operand(node, 0)
    b = imp.builder
    positive, negative = attrs["detect_positive"], attrs["detect_negative"]
    infinite = b.is_infinite(x)
    if positive and negative:
        return infinite
    if positive:
        return b.logical_and(infinite, b.greater(x, imp.scalar(0, x)))
    if negative:
        return b.logical_and(infinite, b.lesser(x, imp.scalar(0, x)))
    return b.logical_and(infinite, b.logical_not(infinite))
