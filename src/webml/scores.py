"""A classifier's scores as classes: softmax, and the top classes of one row.

One rule for ``webml classify --model``, ``webml video`` and ``webml batch``:
scores that are already probabilities (none negative, summing to 1 within
1e-3, as a model that ends in softmax gives) are kept; others are logits and
go through softmax (in float64).

>>> import numpy as np
>>> [(c, round(p, 4)) for c, p in top_classes(np.array([0.0, 2.0, 1.0], np.float32), 2, ["cat", "dog", "fox"])]
[('dog', 0.6652), ('fox', 0.2447)]
>>> top_classes(np.array([0.25, 0.75], np.float32), 1)
[('1', 0.75)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["probabilities", "softmax", "top_classes"]


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def probabilities(scores: np.ndarray) -> np.ndarray:
    """One row of scores as probabilities: kept when they already are, else their softmax."""
    scores = np.asarray(scores).reshape(-1)
    if scores.min() >= 0 and np.isclose(scores.sum(), 1.0, atol=1e-3):
        return scores.astype(np.float64)
    return softmax(scores)


def top_classes(scores: np.ndarray, k: int, labels: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of one row of scores, as (label, probability), most probable first;
    a class without ``labels`` is named by its index.  Ties keep the lower index first."""
    probs = probabilities(scores)
    order = np.argsort(-probs, kind="stable")[:k]
    return [(labels[i] if labels else str(int(i)), float(probs[i])) for i in order]
