"""How close a shrunk model's outputs are to the float32 model's (plain NumPy).

``reference`` is the float32 model's output, ``got`` the shrunk one's, of
the same shape; the first axis is the batch.

>>> import numpy as np
>>> reference = np.array([[0.1, 0.9], [0.8, 0.2]])
>>> top1_agreement(reference, np.array([[0.2, 0.7], [0.3, 0.6]]))
0.5
>>> round(mean_abs_error(reference, reference + 0.25), 6)
0.25
>>> mean_cosine(reference, 2 * reference)
1.0
>>> round(max_relative_error(np.array([1.0, -2.0]), np.array([1.1, -2.0])), 6)
0.05
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["max_relative_error", "mean_abs_error", "mean_cosine", "top1_agreement"]


def _pair(reference: Any, got: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(reference, np.float64), np.asarray(got, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"{where}: reference shape {list(a.shape)} differs from got shape {list(b.shape)}")
    if a.size == 0:
        raise ValueError(f"{where}: the arrays are empty")
    return a, b


def top1_agreement(reference: Any, got: Any) -> float:
    """The fraction of rows (``[batch, classes]``) whose highest class is the same in both."""
    a, b = _pair(reference, got, "top1_agreement")
    if a.ndim < 2:
        raise ValueError(f"top1_agreement: expected [batch, classes], got shape {list(a.shape)}")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))


def mean_abs_error(reference: Any, got: Any) -> float:
    """The mean of ``|reference - got|`` over every element."""
    a, b = _pair(reference, got, "mean_abs_error")
    return float(np.mean(np.abs(a - b)))


def mean_cosine(reference: Any, got: Any) -> float:
    """The mean over the batch of the cosine similarity of each row (flattened); 1.0 is identical.

    A row of zeros in both counts as identical (1.0), in one only as 0.0.
    """
    a, b = _pair(reference, got, "mean_cosine")
    a, b = a.reshape(len(a) if a.ndim else 1, -1), b.reshape(len(b) if b.ndim else 1, -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    both_zero = (np.linalg.norm(a, axis=1) == 0) & (np.linalg.norm(b, axis=1) == 0)
    cosine = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(both_zero, 1.0, 0.0))
    return round(float(np.mean(cosine)), 12)


def max_relative_error(reference: Any, got: Any) -> float:
    """The largest ``|reference - got|``, relative to the largest ``|reference|`` (so that elements
    near zero do not blow it up); 0.0 when both are all zeros."""
    a, b = _pair(reference, got, "max_relative_error")
    scale = np.max(np.abs(a))
    error = np.max(np.abs(a - b))
    if scale == 0:
        return 0.0 if error == 0 else float("inf")
    return float(error / scale)
