"""Neural-network ONNX operators: Conv, ConvTranspose, pooling, normalization, Gemm, MatMul,
Softmax, LogSoftmax and Dropout (inference).

WebNN's convolutions and pools are 2-D; ONNX's 1-D ones are run as 2-D with
a width of 1, 3-D ones are refused.  ONNX's ``auto_pad``, ``ceil_mode`` and
``count_include_pad`` are turned into explicit paddings and output sizes.
"""

from __future__ import annotations

import numpy as np

from ...ops.conv import conv_transpose_output_size
from ...ops.pool import conv_output_sizes
from ..common import prod
from . import axis_index, onnx_op

AUTO_PADS = ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER")
SAME_PADS = ("SAME_UPPER", "SAME_LOWER")


def _check_spatial(node, attrs, analysis):
    auto_pad = attrs["auto_pad"]
    if auto_pad not in AUTO_PADS:
        return f"auto_pad={auto_pad!r} is not one of {list(AUTO_PADS)}"
    rank = analysis.rank(node.input[0]) if node.input else None
    kernel = attrs.get("kernel_shape")
    spatial = len(kernel) if kernel else (rank - 2 if rank else None)
    if spatial is not None and spatial not in (1, 2):
        return (
            f"{spatial}-D {node.op_type} is not supported (WebNN's convolutions and pools are 2-D; 1-D is run as 2-D)"
        )
    return None


def _same_pads(size: int, stride: int, window: int, upper: bool) -> tuple[int, tuple[int, int]]:
    """(output size, (begin, end)) of auto_pad SAME_UPPER / SAME_LOWER."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + window - size)
    small, large = total // 2, total - total // 2
    return out, (small, large) if upper else (large, small)


def _check_lengths(imp, n: int, **lists) -> None:
    """Each attribute list has one value per spatial dimension (``pads`` two); kernel sizes, strides and
    dilations are positive."""
    for name, values in lists.items():
        want = 2 * n if name == "pads" else n
        if len(values) != want:
            raise imp.error(f"{name} has {len(values)} values, the input's {n} spatial dimensions need {want}")
        if name in ("kernel_shape", "strides", "dilations") and any(v < 1 for v in values):
            raise imp.error(f"{name}={list(values)} must be positive")


def _window(kernel: int, dilation: int) -> int:
    """The extent of a dilated kernel (the spec's effective filter size)."""
    return (kernel - 1) * dilation + 1


def _spatial_lists(attrs, n: int):
    """strides, dilations and pads of ``n`` spatial dimensions.  Their schemas have no default: an absent
    list means 1 (pads: 0) for every dimension, which only the input's rank can say."""
    strides = list(attrs.get("strides", [1] * n))
    dilations = list(attrs.get("dilations", [1] * n))
    pads = list(attrs.get("pads", [0] * (2 * n)))
    return strides, dilations, pads


def _geometry(imp, node, attrs, spatial_shape, kernel):
    """Per spatial dimension: strides, dilations, (begin, end) pads, from the ONNX attributes."""
    n = len(spatial_shape)
    strides, dilations, pads = _spatial_lists(attrs, n)
    auto_pad = attrs["auto_pad"]
    _check_lengths(imp, n, kernel_shape=kernel, strides=strides, dilations=dilations, pads=pads)
    pairs = []
    for i in range(n):
        window = _window(kernel[i], dilations[i])
        if auto_pad in SAME_PADS:
            _, pair = _same_pads(spatial_shape[i], strides[i], window, auto_pad == "SAME_UPPER")
        elif auto_pad == "VALID":
            pair = (0, 0)
        else:
            pair = (pads[i], pads[i + n])
        pairs.append(pair)
    if any(p < 0 for pair in pairs for p in pair):
        raise imp.error(f"negative pads {pads} are not supported")
    return strides, dilations, pairs


def _to_2d(imp, x, extra_dims: int):
    """Reshape a 3-D (N, C, L) operand to (N, C, L, 1)."""
    return imp.builder.reshape(x, [*x.shape, *([1] * extra_dims)])


def _webml_padding(pairs):
    return [pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1]]


@onnx_op("Conv", check=_check_spatial)
def conv(imp, node, attrs):
    x, w, bias = imp.operand(node, 0), imp.operand(node, 1), imp.operand(node, 2)
    one_d = len(x.shape) == 3
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    strides, dilations, pairs = _geometry(imp, node, attrs, x.shape[2:], kernel)
    if one_d:
        x, w = _to_2d(imp, x, 1), _to_2d(imp, w, 1)
        strides, dilations, pairs = [*strides, 1], [*dilations, 1], [*pairs, (0, 0)]
    y = imp.builder.conv2d(
        x,
        w,
        padding=_webml_padding(pairs),
        strides=strides,
        dilations=dilations,
        groups=attrs["group"],
        bias=bias,
    )
    return imp.builder.reshape(y, y.shape[:3]) if one_d else y


@onnx_op("ConvTranspose", check=_check_spatial)
def conv_transpose(imp, node, attrs):
    x, w, bias = imp.operand(node, 0), imp.operand(node, 1), imp.operand(node, 2)
    one_d = len(x.shape) == 3
    spatial = list(x.shape[2:])
    n = len(spatial)
    kernel = list(attrs.get("kernel_shape", w.shape[2:]))
    strides, dilations, pads = _spatial_lists(attrs, n)
    output_padding = list(attrs.get("output_padding", [0] * n))  # no schema default either
    auto_pad = attrs["auto_pad"]
    output_shape = attrs.get("output_shape")  # absent: the output size follows from the pads
    if len(w.shape) != len(x.shape):
        raise imp.error(f"the weight has rank {len(w.shape)}, the input rank {len(x.shape)}")
    _check_lengths(
        imp, n, kernel_shape=kernel, strides=strides, dilations=dilations, output_padding=output_padding, pads=pads
    )
    if output_shape is not None and len(output_shape) != n:
        raise imp.error(f"output_shape has {len(output_shape)} values, the input's {n} spatial dimensions need {n}")
    pairs = [(pads[i], pads[i + n]) for i in range(n)]
    if output_shape is not None or auto_pad in SAME_PADS:
        if output_shape is None:
            output_shape = [spatial[i] * strides[i] for i in range(n)]
        output_shape = list(output_shape)[-n:]
        pairs = []
        for i in range(n):
            unpadded = conv_transpose_output_size(spatial[i], kernel[i], 0, 0, strides[i], dilations[i])
            total = unpadded + output_padding[i] - output_shape[i]
            if total < 0:
                # The output is larger than the convolution reaches: ONNX pads the end with output_padding.
                output_padding[i] -= total
                total = 0
            small, large = total // 2, total - total // 2
            pairs.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
    elif auto_pad == "VALID":
        pairs = [(0, 0)] * n
    if one_d:
        x, w = _to_2d(imp, x, 1), _to_2d(imp, w, 1)
        strides, dilations, pairs = [*strides, 1], [*dilations, 1], [*pairs, (0, 0)]
        kernel, output_padding = [*kernel, 1], [*output_padding, 0]
    padding = _webml_padding(pairs)
    sizes = [
        conv_transpose_output_size(x.shape[2 + i], kernel[i], *pairs[i], strides[i], dilations[i]) + output_padding[i]
        for i in range(2)
    ]
    y = imp.builder.conv_transpose2d(
        x,
        w,
        padding=padding,
        strides=strides,
        dilations=dilations,
        output_sizes=sizes,
        groups=attrs["group"],
        bias=bias,
    )
    return imp.builder.reshape(y, y.shape[:3]) if one_d else y


# -- pooling ---------------------------------------------------------------------------------


def _check_pool(node, attrs, analysis):
    reason = _check_spatial(node, attrs, analysis)
    if reason:
        return reason
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        return "the Indices output of MaxPool is not supported"
    if attrs.get("storage_order", 0) not in (0,) and len(node.output) > 1:  # MaxPool's, from opset 8
        return "storage_order=1 is not supported"
    if node.op_type == "LpPool" and attrs["p"] != 2:
        return f"p={attrs['p']} is not supported (only p=2, WebNN's l2Pool2d)"
    return None


def _pool_output_size(size, kernel, begin, end, stride, dilation, ceil_mode):
    floor, ceil = conv_output_sizes(size, kernel, begin, end, stride, dilation)
    if not ceil_mode:
        return floor
    # ONNX: the last window must start inside the input or its beginning padding.
    return ceil - 1 if (ceil - 1) * stride >= size + begin else ceil


def _pool(imp, node, attrs, method):
    x = imp.operand(node, 0)
    one_d = len(x.shape) == 3
    kernel = list(attrs["kernel_shape"])
    spatial = list(x.shape[2:])
    strides, dilations, pairs = _geometry(imp, node, attrs, spatial, kernel)
    ceil_mode = attrs.get("ceil_mode", 0)  # from opset 10 (LpPool: 18); before, sizes round down
    auto_pad = attrs["auto_pad"]
    sizes = []
    for i in range(len(spatial)):
        if auto_pad in SAME_PADS:
            sizes.append(-(-spatial[i] // strides[i]))
        else:
            sizes.append(_pool_output_size(spatial[i], kernel[i], *pairs[i], strides[i], dilations[i], ceil_mode))
    if one_d:
        x = _to_2d(imp, x, 1)
        kernel, strides, dilations = [*kernel, 1], [*strides, 1], [*dilations, 1]
        pairs, sizes = [*pairs, (0, 0)], [*sizes, 1]
    if method == "average_pool2d" and attrs["count_include_pad"] and any(p for pair in pairs for p in pair):
        # The padding counts: pad with zeros explicitly, then pool without padding.
        x = imp.builder.pad(x, [0, 0, pairs[0][0], pairs[1][0]], [0, 0, pairs[0][1], pairs[1][1]], value=0)
        pairs = [(0, 0), (0, 0)]
    padded = [x.shape[2 + i] + pairs[i][0] + pairs[i][1] for i in range(2)]
    for i in range(2):
        # A window past the padded input's end would add more end padding than WebNN's rounding allows.
        reach = (sizes[i] - 1) * strides[i] + _window(kernel[i], dilations[i])
        if reach > padded[i] + strides[i] - 1:
            raise imp.error("the output size ONNX computes is not one WebNN's rounding gives")
    y = getattr(imp.builder, method)(
        x,
        window_dimensions=kernel,
        padding=_webml_padding(pairs),
        strides=strides,
        dilations=dilations,
        output_sizes=sizes,
    )
    return imp.builder.reshape(y, y.shape[:3]) if one_d else y


@onnx_op("MaxPool", check=_check_pool)
def max_pool(imp, node, attrs):
    return _pool(imp, node, attrs, "max_pool2d")


@onnx_op("AveragePool", check=_check_pool)
def average_pool(imp, node, attrs):
    return _pool(imp, node, attrs, "average_pool2d")


@onnx_op("LpPool", check=_check_pool)
def lp_pool(imp, node, attrs):
    return _pool(imp, node, attrs, "l2_pool2d")


@onnx_op("GlobalAveragePool")
def global_average_pool(imp, node, attrs):
    x = imp.operand(node, 0)
    return imp.builder.reduce_mean(x, axes=list(range(2, len(x.shape))), keep_dimensions=True)


@onnx_op("GlobalMaxPool")
def global_max_pool(imp, node, attrs):
    x = imp.operand(node, 0)
    return imp.builder.reduce_max(x, axes=list(range(2, len(x.shape))), keep_dimensions=True)


# -- normalization -----------------------------------------------------------------------------


def _check_batch_norm(node, attrs, analysis):
    if attrs.get("training_mode", 0):  # from opset 14
        return "training_mode=1 is not supported (inference only)"
    if any(node.output[1:]):
        return "the training outputs (running mean/variance, saved mean/variance) are not supported"
    if attrs.get("spatial", 1) != 1:  # before opset 9 only
        return "spatial=0 is not supported"
    return None


@onnx_op("BatchNormalization", check=_check_batch_norm)
def batch_normalization(imp, node, attrs):
    x, scale, bias, mean, var = (imp.operand(node, i) for i in range(5))
    return imp.builder.batch_normalization(
        x, mean, var, scale=scale, bias=bias, axis=1, epsilon=attrs["epsilon"]
    )


@onnx_op("InstanceNormalization")
def instance_normalization(imp, node, attrs):
    x, scale, bias = (imp.operand(node, i) for i in range(3))
    shape = list(x.shape)
    if len(shape) != 4:
        x = imp.builder.reshape(x, [shape[0], shape[1], prod(shape[2:]), 1])
    y = imp.builder.instance_normalization(x, scale=scale, bias=bias, epsilon=attrs["epsilon"])
    return imp.builder.reshape(y, shape) if len(shape) != 4 else y


def _fit(imp, operand, shape):
    """``operand`` broadcast or reshaped to exactly ``shape`` (LayerNormalization's scale and bias)."""
    if operand is None or list(operand.shape) == list(shape):
        return operand
    if prod(operand.shape) == prod(shape):
        return imp.builder.reshape(operand, list(shape))
    squeezed = [d for d in operand.shape]
    while len(squeezed) > len(shape) and squeezed[0] == 1:
        squeezed.pop(0)
    operand = imp.builder.reshape(operand, squeezed) if squeezed != list(operand.shape) else operand
    return imp.builder.expand(operand, list(shape))


@onnx_op("LayerNormalization")
def layer_normalization(imp, node, attrs):
    b = imp.builder
    x, scale, bias = (imp.operand(node, i) for i in range(3))
    rank = len(x.shape)
    axis = axis_index(imp, attrs["axis"], rank)
    axes = list(range(axis, rank))
    epsilon = attrs["epsilon"]
    normalized = x.shape[axis:]
    y = b.layer_normalization(
        x, scale=_fit(imp, scale, normalized), bias=_fit(imp, bias, normalized), axes=axes, epsilon=epsilon
    )
    outputs = [y]
    if any(node.output[1:]):
        mean = b.reduce_mean(x, axes=axes, keep_dimensions=True)
        centered = b.sub(x, mean)
        var = b.reduce_mean(b.mul(centered, centered), axes=axes, keep_dimensions=True)
        inv_std = b.reciprocal(b.sqrt(b.add(var, imp.scalar(epsilon, x))))
        stash = "float32" if attrs["stash_type"] == 1 else x.data_type
        if stash != x.data_type:
            mean, inv_std = b.cast(mean, stash), b.cast(inv_std, stash)
        outputs += [mean, inv_std]
    return outputs


# -- matrix products ----------------------------------------------------------------------------


@onnx_op("Gemm")
def gemm(imp, node, attrs):
    a, b_, c = imp.operand(node, 0), imp.operand(node, 1), imp.operand(node, 2)
    return imp.builder.gemm(
        a,
        b_,
        c=c,
        alpha=attrs["alpha"],
        beta=attrs["beta"],
        a_transpose=bool(attrs["transA"]),
        b_transpose=bool(attrs["transB"]),
    )


@onnx_op("MatMul")
def matmul(imp, node, attrs):
    b = imp.builder
    x, y = imp.operand(node, 0), imp.operand(node, 1)
    x_vector, y_vector = len(x.shape) == 1, len(y.shape) == 1
    if x_vector:
        x = b.reshape(x, [1, x.shape[0]])
    if y_vector:
        y = b.reshape(y, [y.shape[0], 1])
    z = b.matmul(x, y)
    if x_vector or y_vector:
        shape = list(z.shape)
        if y_vector:
            shape.pop(-1)
        if x_vector:
            shape.pop(-1 if y_vector else -2)
        z = b.reshape(z, shape)
    return z


# -- softmax ------------------------------------------------------------------------------------


def _softmax_frame(imp, node, attrs, x):
    """(operand to normalize, axis, shape to restore or None): opsets < 13 coerce to 2-D."""
    rank = len(x.shape)
    axis = axis_index(imp, attrs["axis"], rank)  # the schema's default: 1 before opset 13, -1 from it
    if imp.opset >= 13:
        return x, axis, None
    if rank == 2 and axis == 1:
        return x, 1, None
    flat = imp.builder.reshape(x, [prod(x.shape[:axis]), prod(x.shape[axis:])])
    return flat, 1, list(x.shape)


@onnx_op("Softmax")
def softmax(imp, node, attrs):
    x = imp.operand(node, 0)
    frame, axis, restore = _softmax_frame(imp, node, attrs, x)
    y = imp.builder.softmax(frame, axis)
    return imp.builder.reshape(y, restore) if restore else y


@onnx_op("LogSoftmax")
def log_softmax(imp, node, attrs):
    """x - max - log(sum(exp(x - max))): the stable form of x - reduceLogSumExp(x)."""
    b = imp.builder
    x = imp.operand(node, 0)
    frame, axis, restore = _softmax_frame(imp, node, attrs, x)
    shifted = b.sub(frame, b.reduce_max(frame, axes=[axis], keep_dimensions=True))
    y = b.sub(shifted, b.log(b.reduce_sum(b.exp(shifted), axes=[axis], keep_dimensions=True)))
    return b.reshape(y, restore) if restore else y


@onnx_op("Hardmax")
def hardmax(imp, node, attrs):
    """1 at the first maximum along the axis, else 0."""
    b = imp.builder
    x = imp.operand(node, 0)
    frame, axis, restore = _softmax_frame(imp, node, attrs, x)
    index = b.arg_max(frame, axis, keep_dimensions=True, output_data_type="int32")
    positions = list(range(frame.shape[axis]))
    shape = [1] * len(frame.shape)
    shape[axis] = len(positions)
    iota = imp.constant(math_arange(positions, shape), "int32")
    y = b.cast(b.equal(index, iota), frame.data_type)
    return b.reshape(y, restore) if restore else y


def math_arange(values, shape):
    return np.asarray(values, dtype=np.int32).reshape(shape)


def _check_dropout(node, attrs, analysis):
    training = analysis.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if training is not None and bool(training):
        return "training_mode=True is not supported (inference only)"
    return None


@onnx_op("Dropout", static=(1, 2), check=_check_dropout)
def dropout(imp, node, attrs):
    training = imp.static(node, 2)
    if training is not None and bool(training):
        raise imp.error("training_mode=True is not supported (inference only)")
    x = imp.operand(node, 0)
    y = imp.builder.identity(x)
    if len(node.output) > 1 and node.output[1]:
        return [y, np.ones(x.shape, dtype=np.bool_)]
    return y
