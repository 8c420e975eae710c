"""Shape and data-movement ONNX operators: Reshape, Transpose, Flatten, (Un)Squeeze, Concat,
Slice, Split, Gather*, Scatter*, Where, Expand, Tile, Pad, Cast, Trilu, Resize, Upsample,
DepthToSpace, SpaceToDepth, and the static Shape, Size, ConstantOfShape and Range.

Shape arguments (Reshape's shape, Slice's starts, Pad's pads, Resize's
scales ...) must be static; the importer folds the shape arithmetic that
computes them.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from ..common import WEBML_TYPES, prod, type_name
from . import axis_index, axis_indices, onnx_op

# -- static shape values --------------------------------------------------------------------


@onnx_op("Shape")
def shape(imp, node, attrs):
    dims = np.asarray(imp.input_shape(node, 0), dtype=np.int64)
    rank = len(dims)
    start = attrs.get("start", 0)  # from opset 15
    end = attrs.get("end", rank)  # no schema default: absent is the end
    start = max(0, min(rank, start + rank if start < 0 else start))
    end = max(0, min(rank, end + rank if end < 0 else end))
    return [dims[start:end]]


@onnx_op("Size")
def size(imp, node, attrs):
    return [np.array(prod(imp.input_shape(node, 0)), dtype=np.int64)]


def _fold_only(imp, node, attrs):
    return imp.fold(node, [imp.static(node, i) for i in range(len(node.input))])


onnx_op("ConstantOfShape", static=(0,))(_fold_only)
onnx_op("Range", static=(0, 1, 2))(_fold_only)


# -- reshaping --------------------------------------------------------------------------------


def _reshape_to(imp, x, shape):
    shape = [int(d) for d in shape]
    if list(x.shape) == shape:
        return imp.builder.identity(x)
    return imp.builder.reshape(x, shape)


@onnx_op("Reshape", static=(1,))
def reshape(imp, node, attrs):
    x = imp.operand(node, 0)
    target = [int(d) for d in imp.static(node, 1).reshape(-1)]
    allow_zero = attrs.get("allowzero", 0)  # from opset 14
    shape = []
    for i, d in enumerate(target):
        shape.append(x.shape[i] if d == 0 and not allow_zero else d)
    if -1 in shape:
        known = prod(d for d in shape if d != -1)
        shape[shape.index(-1)] = prod(x.shape) // known if known else 0
    return _reshape_to(imp, x, shape)


@onnx_op("Flatten")
def flatten(imp, node, attrs):
    x = imp.operand(node, 0)
    rank = len(x.shape)
    axis = axis_index(imp, attrs["axis"], rank, end_ok=True)
    return _reshape_to(imp, x, [prod(x.shape[:axis]), prod(x.shape[axis:])])


def _axes_argument(imp, node, attrs, since: int):
    """The axes of Squeeze/Unsqueeze/Reduce*: an attribute before opset ``since``, an input from it."""
    if imp.opset < since:
        return attrs.get("axes")
    value = imp.static(node, 1)
    return None if value is None else [int(a) for a in value.reshape(-1)]


@onnx_op("Squeeze", static=(1,))
def squeeze(imp, node, attrs):
    x = imp.operand(node, 0)
    axes = _axes_argument(imp, node, attrs, 13)
    rank = len(x.shape)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if axes is None else axis_indices(imp, axes, rank)
    return _reshape_to(imp, x, [d for i, d in enumerate(x.shape) if i not in axes])


@onnx_op("Unsqueeze", static=(1,))
def unsqueeze(imp, node, attrs):
    x = imp.operand(node, 0)
    axes = _axes_argument(imp, node, attrs, 13)
    if axes is None:
        raise imp.error("Unsqueeze needs axes")
    rank = len(x.shape) + len(axes)
    axes = set(axis_indices(imp, axes, rank))
    dims = iter(x.shape)
    return _reshape_to(imp, x, [1 if i in axes else next(dims) for i in range(rank)])


@onnx_op("Transpose")
def transpose(imp, node, attrs):
    x = imp.operand(node, 0)
    perm = attrs.get("perm")
    return imp.builder.transpose(x, permutation=None if perm is None else [int(p) for p in perm])


@onnx_op("Concat")
def concat(imp, node, attrs):
    operands = [imp.operand(node, i) for i in range(len(node.input)) if imp.has(node, i)]
    rank = len(operands[0].shape)
    if rank == 0:
        raise imp.error("Concat of scalars is not supported")
    return imp.builder.concat(operands, axis_index(imp, attrs["axis"], rank))


@onnx_op("Expand", static=(1,))
def expand(imp, node, attrs):
    x = imp.operand(node, 0)
    target = [int(d) for d in imp.static(node, 1).reshape(-1)]
    shape = list(np.broadcast_shapes(tuple(x.shape), tuple(target)))
    return imp.builder.expand(x, shape)


@onnx_op("Tile", static=(1,))
def tile(imp, node, attrs):
    x = imp.operand(node, 0)
    return imp.builder.tile(x, [int(r) for r in imp.static(node, 1).reshape(-1)])


# -- slicing -----------------------------------------------------------------------------------


def _slice(imp, x, starts, ends, axes, steps):
    """ONNX Slice on an operand: negative steps reverse the axis first."""
    rank = len(x.shape)
    axes = list(range(len(starts))) if axes is None else axis_indices(imp, axes, rank)
    steps = [1] * len(starts) if steps is None else [int(s) for s in steps]
    begin, sizes, strides = [0] * rank, list(x.shape), [1] * rank
    reverse = []
    for start, end, axis, step in zip(starts, ends, axes, steps):
        dim = x.shape[axis]
        start, end = int(start), int(end)
        if step == 0:
            raise imp.error("a Slice step of 0 is invalid")
        selected = range(*slice(start, end, step).indices(dim))
        if len(selected) == 0:
            raise imp.error(f"the slice along axis {axis} is empty; webml has no empty tensors")
        if step < 0:
            reverse.append(axis)
            first = dim - 1 - selected[0]
        else:
            first = selected[0]
        begin[axis], sizes[axis], strides[axis] = first, (len(selected) - 1) * abs(step) + 1, abs(step)
    if reverse:
        x = imp.builder.reverse(x, axes=reverse)
    if begin == [0] * rank and sizes == list(x.shape) and strides == [1] * rank:
        return x if reverse else imp.builder.identity(x)
    return imp.builder.slice(x, begin, sizes, strides=strides)


@onnx_op("Slice", static=(1, 2, 3, 4))
def slice_(imp, node, attrs):
    x = imp.operand(node, 0)
    if imp.opset < 10:
        return _slice(imp, x, attrs["starts"], attrs["ends"], attrs.get("axes"), None)

    def arg(i):
        value = imp.static(node, i)
        return None if value is None else [int(v) for v in value.reshape(-1)]

    return _slice(imp, x, arg(1), arg(2), arg(3), arg(4))


@onnx_op("Split", static=(1,))
def split(imp, node, attrs):
    x = imp.operand(node, 0)
    rank = len(x.shape)
    axis = axis_index(imp, attrs["axis"], rank)
    dim = x.shape[axis]
    count = len(node.output)
    if imp.opset < 13:
        sizes = attrs.get("split")
    else:
        value = imp.static(node, 1)
        sizes = None if value is None else [int(v) for v in value.reshape(-1)]
    if sizes is None and "num_outputs" in attrs:
        if attrs["num_outputs"] != count or not 1 <= count <= dim:
            raise imp.error(f"num_outputs={attrs['num_outputs']} for {count} output(s) along a dimension of {dim}")
        chunk = -(-dim // attrs["num_outputs"])
        sizes = [chunk] * (attrs["num_outputs"] - 1) + [dim - chunk * (attrs["num_outputs"] - 1)]
    if sizes is None:
        if dim % count:
            raise imp.error(f"dimension {dim} does not split evenly into {count} outputs")
        sizes = [dim // count] * count
    if len(sizes) != count or sum(sizes) != dim or any(s < 0 for s in sizes):
        raise imp.error(f"split sizes {list(sizes)} do not divide dimension {dim} into {count} output(s)")
    if 0 in sizes:
        raise imp.error(f"split sizes {list(sizes)} contain 0; webml has no empty tensors")
    if len(sizes) == 1:
        return [imp.builder.identity(x)]
    return imp.builder.split(x, [int(s) for s in sizes], axis=axis)


# -- indexing ------------------------------------------------------------------------------------


def _indices(imp, node, index, dims):
    """Indices with negative values resolved against ``dims`` (broadcast along the last axis)."""
    value = imp.value(node.input[index])
    if isinstance(value, np.ndarray):
        array = value.astype(np.int64)
        return imp.as_operand(np.where(array < 0, array + np.asarray(dims, np.int64), array))
    b = imp.builder
    zero = imp.scalar(0, value)
    limits = imp.constant(np.asarray(dims), value.data_type)
    return b.where(b.lesser(value, zero), b.add(value, limits), value)


@onnx_op("Gather")
def gather(imp, node, attrs):
    x = imp.operand(node, 0)
    axis = axis_index(imp, attrs["axis"], len(x.shape))
    return imp.builder.gather(x, _indices(imp, node, 1, x.shape[axis]), axis=axis)


@onnx_op("GatherElements")
def gather_elements(imp, node, attrs):
    x = imp.operand(node, 0)
    axis = axis_index(imp, attrs["axis"], len(x.shape))
    return imp.builder.gather_elements(x, _indices(imp, node, 1, x.shape[axis]), axis=axis)


def _check_batch_dims(node, attrs, analysis):
    return "batch_dims != 0 is not supported" if attrs.get("batch_dims", 0) else None  # from opset 12


@onnx_op("GatherND", check=_check_batch_dims)
def gather_nd(imp, node, attrs):
    x = imp.operand(node, 0)
    k = imp.input_shape(node, 1)[-1]
    return imp.builder.gather_nd(x, _indices(imp, node, 1, x.shape[:k]))


def _check_reduction(node, attrs, analysis):
    reduction = attrs.get("reduction", "none")  # from opset 16 (Scatter has none)
    return None if reduction == "none" else f"reduction={reduction!r} is not supported (only 'none')"


@onnx_op("ScatterND", check=_check_reduction)
def scatter_nd(imp, node, attrs):
    x = imp.operand(node, 0)
    indices_shape = imp.input_shape(node, 1)
    if not indices_shape or indices_shape[-1] > len(x.shape):
        raise imp.error(f"indices of shape {list(indices_shape)} do not index the rank-{len(x.shape)} data")
    k = indices_shape[-1]
    return imp.builder.scatter_nd(x, _indices(imp, node, 1, x.shape[:k]), imp.operand(node, 2))


@onnx_op("ScatterElements", "Scatter", check=_check_reduction)
def scatter_elements(imp, node, attrs):
    x = imp.operand(node, 0)
    axis = axis_index(imp, attrs["axis"], len(x.shape))
    indices = _indices(imp, node, 1, x.shape[axis])
    return imp.builder.scatter_elements(x, indices, imp.operand(node, 2), axis=axis)


@onnx_op("Where")
def where(imp, node, attrs):
    return imp.builder.where(imp.operand(node, 0), imp.operand(node, 1), imp.operand(node, 2))


@onnx_op("Trilu", static=(1,))
def trilu(imp, node, attrs):
    k = imp.static(node, 1)
    diagonal = 0 if k is None else int(np.asarray(k).item())
    return imp.builder.triangular(imp.operand(node, 0), upper=bool(attrs["upper"]), diagonal=diagonal)


# -- padding ---------------------------------------------------------------------------------------

PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflection"}


def _check_pad(node, attrs, analysis):
    mode = attrs["mode"]
    return None if mode in PAD_MODES else f"mode={mode!r} is not supported ({sorted(PAD_MODES)})"


@onnx_op("Pad", static=(1, 2, 3), check=_check_pad)
def pad(imp, node, attrs):
    x = imp.operand(node, 0)
    rank = len(x.shape)
    if imp.opset < 11:
        pads = list(attrs["pads"])
        value = attrs["value"]
        axes = list(range(rank))
    else:
        pads = [int(p) for p in imp.static(node, 1).reshape(-1)]
        constant = imp.static(node, 2)
        value = 0 if constant is None or constant.size == 0 else np.asarray(constant).reshape(-1)[0].item()
        axes_value = imp.static(node, 3)
        axes = list(range(rank)) if axes_value is None else axis_indices(imp, axes_value, rank)
    n = len(axes)
    begin, end = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begin[axis], end[axis] = int(pads[i]), int(pads[i + n])
    mode = PAD_MODES[attrs["mode"]]
    if any(p < 0 for p in begin + end):
        starts = [-min(p, 0) for p in begin]
        ends = [d + min(p, 0) for d, p in zip(x.shape, end)]
        x = _slice(imp, x, starts, ends, None, None)
        begin, end = [max(p, 0) for p in begin], [max(p, 0) for p in end]
    if not any(begin + end):
        return imp.builder.identity(x)
    return imp.builder.pad(x, begin, end, mode=mode, value=value)


# -- casts --------------------------------------------------------------------------------------------


def _cast(imp, x, to: int):
    if to == TensorProto.BOOL:
        return imp.builder.not_equal(x, imp.scalar(0, x))
    target = WEBML_TYPES[to]
    if x.data_type == target:
        return imp.builder.identity(x)
    if target in ("int4", "uint4") and x.data_type.startswith("float"):
        # ONNX wraps out-of-range values into the 4-bit range (after truncation toward zero).
        b = imp.builder
        lo = -8 if target == "int4" else 0
        whole = b.cast(b.cast(x, "int32"), "float32")
        wraps = b.floor(b.div(b.sub(whole, imp.scalar(lo, whole)), imp.scalar(16, whole)))
        x = b.sub(whole, b.mul(wraps, imp.scalar(16, whole)))
    return imp.builder.cast(x, target)


def _check_cast(node, attrs, analysis):
    to = attrs.get("to")
    if to is not None and to not in WEBML_TYPES:
        return f"to={type_name(to)} is not a webml data type"
    return None


@onnx_op("Cast", check=_check_cast)
def cast(imp, node, attrs):
    return _cast(imp, imp.operand(node, 0), attrs["to"])


def _check_cast_like(node, attrs, analysis):
    to = analysis.elem_type(node.input[1]) if len(node.input) > 1 else None
    if to is not None and to not in WEBML_TYPES:
        return f"the target type {type_name(to)} is not a webml data type"
    return None


@onnx_op("CastLike", check=_check_cast_like)
def cast_like(imp, node, attrs):
    to = imp.analysis.elem_type(node.input[1])
    if to is None:
        like = imp.value(node.input[1])
        to = (
            TensorProto.BOOL
            if like.dtype == np.bool_
            else next(t for t, name in WEBML_TYPES.items() if name == str(imp.as_operand(like).data_type))
        )
    return _cast(imp, imp.operand(node, 0), to)


# -- depth and space --------------------------------------------------------------------------------------


def _check_depth_to_space(node, attrs, analysis):
    mode = _block_mode(attrs)
    blocksize = attrs.get("blocksize")
    if not isinstance(blocksize, int) or blocksize < 1:
        return f"blocksize={blocksize!r} must be a positive integer"
    return None if mode in ("DCR", "CRD") else f"mode={mode!r} is not supported"


def _block_mode(attrs) -> str:
    # An attribute from opset 11 (SpaceToDepth: 28); before, the order is DCR.
    return attrs.get("mode", "DCR")


def _block_arguments(imp, node, attrs):
    """(input, its dimensions n, c, h, w, block size, whether the order is DCR) of DepthToSpace/SpaceToDepth."""
    x = imp.operand(node, 0)
    if len(x.shape) != 4:
        raise imp.error(f"the input has rank {len(x.shape)}, not 4")
    return x, tuple(x.shape), attrs["blocksize"], _block_mode(attrs) == "DCR"


@onnx_op("DepthToSpace", check=_check_depth_to_space)
def depth_to_space(imp, node, attrs):
    b = imp.builder
    x, (n, c, h, w), s, dcr = _block_arguments(imp, node, attrs)
    if dcr:
        y = b.transpose(b.reshape(x, [n, s, s, c // (s * s), h, w]), permutation=[0, 3, 4, 1, 5, 2])
    else:
        y = b.transpose(b.reshape(x, [n, c // (s * s), s, s, h, w]), permutation=[0, 1, 4, 2, 5, 3])
    return b.reshape(y, [n, c // (s * s), h * s, w * s])


@onnx_op("SpaceToDepth", check=_check_depth_to_space)
def space_to_depth(imp, node, attrs):
    b = imp.builder
    x, (n, c, h, w), s, dcr = _block_arguments(imp, node, attrs)
    permutation = [0, 3, 5, 1, 2, 4] if dcr else [0, 1, 3, 5, 2, 4]
    y = b.transpose(b.reshape(x, [n, c, h // s, s, w // s, s]), permutation=permutation)
    return b.reshape(y, [n, c * s * s, h // s, w // s])


# -- resize ----------------------------------------------------------------------------------------------

COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _check_resize(node, attrs, analysis):
    mode = attrs["mode"]
    if mode not in ("nearest", "linear", "bilinear"):
        return f"mode={mode!r} is not supported (nearest and linear are)"
    # The modes are attributes from opset 11; Resize-10 is asymmetric and floor, which are supported.
    coordinate = attrs.get("coordinate_transformation_mode", "half_pixel")
    if coordinate not in COORDINATE_MODES:
        return f"coordinate_transformation_mode={coordinate!r} is not supported ({list(COORDINATE_MODES)})"
    nearest = attrs.get("nearest_mode", "round_prefer_floor")
    if nearest not in NEAREST_MODES:
        return f"nearest_mode={nearest!r} is not supported"
    if attrs.get("antialias", 0) and mode != "nearest":  # from opset 18
        return "antialias=1 is not supported"
    return None


def _source_coordinates(mode, out_size, in_size, scale):
    o = np.arange(out_size, dtype=np.float64)
    if mode == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out_size > 1 else np.zeros(out_size)
    if mode == "align_corners":
        # ONNX's length_resized is input size * scale, which may not be an integer.
        resized = in_size * scale
        return o * (in_size - 1) / (resized - 1) if resized > 1 else np.zeros(out_size)
    if mode == "tf_half_pixel_for_nn":
        return (o + 0.5) / scale
    return o / scale  # asymmetric


def _nearest_index(x, mode):
    if mode == "round_prefer_floor":
        return np.ceil(x - 0.5)
    if mode == "round_prefer_ceil":
        return np.floor(x + 0.5)
    if mode == "floor":
        return np.floor(x)
    return np.ceil(x)


def _resize(imp, x, out_shape, scales, mode, coordinate, nearest_mode):
    """Resize by gathering along each resized axis with indices (and weights) computed here."""
    b = imp.builder
    for axis, (in_size, out_size) in enumerate(zip(x.shape, out_shape)):
        scale = scales[axis]
        if in_size == out_size and scale == 1:
            continue
        coords = _source_coordinates(coordinate, out_size, in_size, scale)
        if mode == "nearest":
            index = np.clip(_nearest_index(coords, nearest_mode), 0, in_size - 1).astype(np.int32)
            x = b.gather(x, imp.constant(index, "int32"), axis=axis)
            continue
        coords = np.clip(coords, 0, in_size - 1)
        low = np.floor(coords).astype(np.int32)
        high = np.minimum(low + 1, in_size - 1).astype(np.int32)
        weight = (coords - low).reshape([-1 if d == axis else 1 for d in range(len(out_shape))])
        if not x.data_type.startswith("float"):
            raise imp.error(f"linear Resize of {x.data_type} is not supported")
        v0 = b.gather(x, imp.constant(low, "int32"), axis=axis)
        v1 = b.gather(x, imp.constant(high, "int32"), axis=axis)
        w1 = imp.constant(weight, x.data_type)
        x = b.add(v0, b.mul(b.sub(v1, v0), w1))
    return x


def _resize_arguments(imp, node, attrs, x):
    """(output shape, scales per axis) of Resize (any opset) or Upsample."""
    rank = len(x.shape)
    if node.op_type == "Upsample":
        scales = attrs["scales"] if imp.opset < 9 else imp.static(node, 1).reshape(-1).tolist()
        sizes = None
    elif imp.opset < 11:
        scales, sizes = imp.static(node, 1).reshape(-1).tolist(), None
    else:
        scale_value, size_value = imp.static(node, 2), imp.static(node, 3)
        scales = None if scale_value is None or scale_value.size == 0 else scale_value.reshape(-1).tolist()
        sizes = None if size_value is None or size_value.size == 0 else [int(s) for s in size_value.reshape(-1)]
    axes = axis_indices(imp, attrs["axes"], rank) if "axes" in attrs else list(range(rank))
    full_scales, out_shape = [1.0] * rank, list(x.shape)
    if sizes is not None:
        policy = attrs.get("keep_aspect_ratio_policy", "stretch")  # from opset 18
        if policy != "stretch":
            ratios = [sizes[i] / x.shape[a] for i, a in enumerate(axes)]
            ratio = min(ratios) if policy == "not_larger" else max(ratios)
            sizes = [math.floor(ratio * x.shape[a] + 0.5) for a in axes]
            for a in axes:
                full_scales[a] = ratio
        for i, a in enumerate(axes):
            out_shape[a] = sizes[i]
            if policy == "stretch":
                full_scales[a] = sizes[i] / x.shape[a]
    else:
        for i, a in enumerate(axes):
            scale = float(np.float32(scales[i]))
            full_scales[a] = scale
            out_shape[a] = math.floor(x.shape[a] * scale)
    return out_shape, full_scales


def _resample2d_fits(x, out_shape, scales, mode, coordinate, nearest_mode):
    """Whether WebNN's resample2d computes exactly this resize (half-pixel, at most 2 axes)."""
    if len(x.shape) != 4:
        return None
    changed = [a for a in range(4) if x.shape[a] != out_shape[a] or scales[a] != 1]
    if len(changed) > 2 or any(scales[a] * x.shape[a] != out_shape[a] for a in changed):
        return None
    if mode == "nearest" and not (coordinate == "half_pixel" and nearest_mode == "round_prefer_floor"):
        return None
    if mode == "linear" and not (
        coordinate == "half_pixel" or (coordinate == "pytorch_half_pixel" and min(out_shape[a] for a in changed) > 1)
    ):
        return None
    axes = changed + [a for a in (2, 3, 1, 0) if a not in changed][: 2 - len(changed)]
    return sorted(axes)


@onnx_op("Resize", static=(1, 2, 3), check=_check_resize)
def resize(imp, node, attrs):
    x = imp.operand(node, 0)
    mode = "linear" if attrs["mode"] == "bilinear" else attrs["mode"]
    if imp.opset < 11:
        coordinate, nearest_mode = "asymmetric", "floor"
    else:
        coordinate, nearest_mode = attrs["coordinate_transformation_mode"], attrs["nearest_mode"]
    out_shape, scales = _resize_arguments(imp, node, attrs, x)
    imp.check_size(out_shape, 4)  # before the index tables of that size are computed
    if 0 in out_shape:
        raise imp.error(f"the output shape {out_shape} is empty; webml has no empty tensors")
    axes = _resample2d_fits(x, out_shape, scales, mode, coordinate, nearest_mode)
    if axes is not None and x.shape != out_shape:
        webml_mode = "nearest-neighbor" if mode == "nearest" else "linear"
        return imp.builder.resample2d(x, mode=webml_mode, sizes=[out_shape[a] for a in axes], axes=axes)
    if list(x.shape) == out_shape and all(s == 1 for s in scales):
        return imp.builder.identity(x)
    return _resize(imp, x, out_shape, scales, mode, coordinate, nearest_mode)


def _check_upsample(node, attrs, analysis):
    mode = attrs["mode"]
    return None if mode in ("nearest", "linear", "bilinear") else f"mode={mode!r} is not supported"


@onnx_op("Upsample", static=(1,), check=_check_upsample)
def upsample(imp, node, attrs):
    x = imp.operand(node, 0)
    mode = "linear" if attrs["mode"] == "bilinear" else attrs["mode"]
    out_shape, scales = _resize_arguments(imp, node, attrs, x)
    imp.check_size(out_shape, 4)
    return _resize(imp, x, out_shape, scales, mode, "asymmetric", "floor")
