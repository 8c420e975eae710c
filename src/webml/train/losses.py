"""Loss functions built from WebNN operations, so that :func:`webml.train.grad` differentiates them.

Each loss takes the builder and operands and returns a scalar (shape ``[]``)
operand: the mean over the batch.

>>> import numpy as np, webml
>>> from webml.train.losses import softmax_cross_entropy
>>> ctx = webml.ml.create_context(backend="reference")
>>> b = webml.MLGraphBuilder(ctx)
>>> logits = b.input("logits", {"dataType": "float32", "shape": [2, 3]})
>>> labels = b.input("labels", {"dataType": "int32", "shape": [2]})
>>> g = b.build({"loss": softmax_cross_entropy(b, logits, labels)})
>>> out = ctx.compute(g, {"logits": np.zeros((2, 3), np.float32), "labels": np.array([0, 2], np.int32)})
>>> round(float(out["loss"]), 6)   # log(3)
1.098612
"""

from __future__ import annotations

import numpy as np

from ..api.builder import MLGraphBuilder
from ..api.operand import MLOperand
from ..ops.checks import FLOATS

__all__ = ["mean_squared_error", "one_hot", "softmax_cross_entropy"]


def _check_operand(value: object, where: str, what: str) -> MLOperand:
    if not isinstance(value, MLOperand):
        raise TypeError(f"{where}: {what} must be an MLOperand, got {type(value).__name__}")
    return value


def one_hot(builder: MLGraphBuilder, labels: MLOperand, num_classes: int, data_type: str = "float32") -> MLOperand:
    """``[N]`` integer class indices -> ``[N, num_classes]`` one-hot rows of ``data_type``.

    Built with ``equal`` against a constant ``arange`` and a ``cast``; an index
    outside ``[0, num_classes)`` gives a row of zeros.
    """
    where = "one_hot"
    _check_operand(labels, where, "labels")
    if labels.data_type not in ("int32", "int64", "uint32"):
        raise TypeError(f"{where}: labels must be int32 (class indices), got {labels.data_type}")
    if len(labels.shape) != 1:
        raise TypeError(f"{where}: labels must have shape [N], got {labels.shape}")
    if num_classes < 1:
        raise TypeError(f"{where}: num_classes must be at least 1, got {num_classes}")
    (n,) = labels.shape
    classes = builder.constant(
        {"dataType": labels.data_type, "shape": [1, num_classes]},
        np.arange(num_classes).astype(labels.data_type).reshape(1, num_classes),
    )
    column = builder.reshape(labels, [n, 1])
    return builder.cast(builder.equal(column, classes), data_type)


def _stop_gradient(builder: MLGraphBuilder, x: MLOperand) -> MLOperand:
    # cast stops gradients (its rule returns None), so x is a constant for grad().
    return builder.cast(x, x.data_type)


def softmax_cross_entropy(builder: MLGraphBuilder, logits: MLOperand, labels: MLOperand) -> MLOperand:
    """The mean over the batch of ``-log softmax(logits)[i, labels[i]]``.

    ``logits`` is ``[N, C]`` float32 or float16; ``labels`` is ``[N]`` int32
    class indices in ``[0, C)`` (an index outside the range contributes
    ``log-sum-exp`` of its row: check labels before feeding them, as
    :class:`webml.train.Trainer` does).  Numerically stable: the row maximum
    (treated as a constant by ``grad``) is subtracted before ``exp``.
    """
    where = "softmax_cross_entropy"
    _check_operand(logits, where, "logits")
    _check_operand(labels, where, "labels")
    if logits.data_type not in FLOATS:
        raise TypeError(f"{where}: logits must be float32 or float16, got {logits.data_type}")
    if len(logits.shape) != 2:
        raise TypeError(f"{where}: logits must have shape [N, C], got {logits.shape}")
    n, c = logits.shape
    if labels.data_type != "int32":
        raise TypeError(f"{where}: labels must be int32 class indices, got {labels.data_type}")
    if list(labels.shape) != [n]:
        raise TypeError(f"{where}: labels must have shape [{n}] to match logits {logits.shape}, got {labels.shape}")
    b = builder
    dt = logits.data_type
    row_max = _stop_gradient(b, b.reduce_max(logits, axes=[1], keep_dimensions=True))
    shifted = b.sub(logits, row_max)  # [N, C], <= 0
    log_sum_exp = b.log(b.reduce_sum(b.exp(shifted), axes=[1]))  # [N]
    picked = b.reduce_sum(b.mul(shifted, one_hot(b, labels, c, dt)), axes=[1])  # [N]
    total = b.reduce_sum(b.sub(log_sum_exp, picked))
    return b.mul(total, b.constant(dt, 1.0 / n))


def mean_squared_error(builder: MLGraphBuilder, prediction: MLOperand, target: MLOperand) -> MLOperand:
    """The mean over every element of ``(prediction - target) ** 2`` (same shapes, float)."""
    where = "mean_squared_error"
    _check_operand(prediction, where, "prediction")
    _check_operand(target, where, "target")
    if prediction.data_type not in FLOATS:
        raise TypeError(f"{where}: prediction must be float32 or float16, got {prediction.data_type}")
    if target.data_type != prediction.data_type:
        raise TypeError(
            f"{where}: target must have prediction's data type {prediction.data_type}, got {target.data_type}"
        )
    if list(target.shape) != list(prediction.shape):
        raise TypeError(f"{where}: target shape {target.shape} differs from prediction shape {prediction.shape}")
    b = builder
    diff = b.sub(prediction, target)
    count = int(np.prod(prediction.shape, dtype=np.int64)) if prediction.shape else 1
    return b.mul(b.reduce_sum(b.mul(diff, diff)), b.constant(prediction.data_type, 1.0 / count))
