"""Reduction ONNX operators: ReduceX, ArgMax, ArgMin and CumSum.

The axes of ReduceX are an attribute before opset 18 (ReduceSum: 13) and an
input after; ``noop_with_empty_axes`` makes empty axes an identity instead
of a reduction over every axis.
"""

from __future__ import annotations

from . import axis_index, axis_indices, onnx_op

REDUCTIONS = {
    "ReduceMean": "reduce_mean",
    "ReduceSum": "reduce_sum",
    "ReduceMax": "reduce_max",
    "ReduceMin": "reduce_min",
    "ReduceProd": "reduce_product",
    "ReduceL1": "reduce_l1",
    "ReduceL2": "reduce_l2",
    "ReduceLogSum": "reduce_log_sum",
    "ReduceLogSumExp": "reduce_log_sum_exp",
    "ReduceSumSquare": "reduce_sum_square",
}


def _reduction(op_type: str, method: str):
    since = 13 if op_type == "ReduceSum" else 18

    def build(imp, node, attrs):
        x = imp.operand(node, 0)
        rank = len(x.shape)
        if imp.opset < since:
            axes = attrs.get("axes")
        else:
            value = imp.static(node, 1)
            axes = None if value is None else value.reshape(-1).tolist()
        if not axes:
            if imp.opset >= since and attrs["noop_with_empty_axes"]:
                return imp.builder.identity(x)
            axes = list(range(rank))
        keep = bool(attrs["keepdims"])
        return getattr(imp.builder, method)(x, axes=axis_indices(imp, axes, rank), keep_dimensions=keep)

    return build


for _op_type, _method in REDUCTIONS.items():
    onnx_op(_op_type, static=(1,))(_reduction(_op_type, _method))


def _arg(method: str):
    def build(imp, node, attrs):
        b = imp.builder
        x = imp.operand(node, 0)
        axis = axis_index(imp, attrs["axis"], len(x.shape))
        keep = bool(attrs["keepdims"])
        if not attrs.get("select_last_index", 0):  # from opset 12
            return getattr(b, method)(x, axis, keep_dimensions=keep, output_data_type="int64")
        # The last index of the extreme: the first one of the reversed axis, mirrored back.
        index = getattr(b, method)(b.reverse(x, axes=[axis]), axis, keep_dimensions=keep, output_data_type="int64")
        return b.sub(imp.scalar(x.shape[axis] - 1, index), index)

    return build


onnx_op("ArgMax")(_arg("arg_max"))
onnx_op("ArgMin")(_arg("arg_min"))


@onnx_op("CumSum", static=(1,))
def cum_sum(imp, node, attrs):
    x = imp.operand(node, 0)
    value = imp.static(node, 1).reshape(-1)
    if value.size != 1:
        raise imp.error(f"the axis input must hold one value, not {value.size}")
    axis = axis_index(imp, value[0], len(x.shape))
    return imp.builder.cumulative_sum(
        x, axis, exclusive=bool(attrs["exclusive"]), reversed=bool(attrs["reverse"])
    )
