"""The model that federated training shares: webml's transfer-learning head, as a list of arrays.

Flower moves parameters as a list of NumPy arrays; webml's head is a dict
(``w``, ``b``, and ``w1``, ``b1`` with a hidden layer, see
:func:`webml.train.transfer.initial_head`).  The list holds the arrays in
the sorted order of their names, and :func:`from_arrays` checks a list from
the network against the shapes a client expects before anything uses it.

>>> from webml.federated.model import from_arrays, initial_model, to_arrays
>>> arrays = to_arrays(initial_model(dim=4, classes=3))
>>> [a.shape for a in arrays]
[(3,), (4, 3)]
>>> sorted(from_arrays(arrays, dim=4, classes=3))
['b', 'w']
>>> from_arrays(arrays, dim=5, classes=3)
Traceback (most recent call last):
...
ValueError: parameters: 'w' has shape [4, 3], a head of 5 features and 3 classes needs [5, 3]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..train.transfer import initial_head

__all__ = ["from_arrays", "initial_model", "to_arrays"]


def initial_model(dim: int, classes: int, hidden: int = 0, seed: int = 0) -> dict[str, np.ndarray]:
    """The initial head (Glorot-uniform weights, zero biases) of ``dim`` features and ``classes`` classes."""
    for name, value, low in (("dim", dim, 1), ("classes", classes, 2), ("hidden", hidden, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"initial_model: {name} must be an integer >= {low}, got {value!r}")
    return initial_head(int(dim), int(classes), int(hidden), seed)


def to_arrays(params: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The head's arrays in the sorted order of their names (what goes over the wire)."""
    return [np.asarray(params[n], np.float32) for n in sorted(params)]


def from_arrays(arrays: Sequence[Any], *, dim: int, classes: int) -> dict[str, np.ndarray]:
    """The head of a list from :func:`to_arrays`, checked for a head of ``dim`` features and ``classes`` classes."""
    if not isinstance(arrays, (list, tuple)) or len(arrays) not in (2, 4):
        count = len(arrays) if isinstance(arrays, (list, tuple)) else type(arrays).__name__
        raise ValueError(f"parameters: expected 2 arrays (b, w) or 4 (b, b1, w, w1), got {count}")
    names = ["b", "w"] if len(arrays) == 2 else ["b", "b1", "w", "w1"]
    params = {}
    for name, a in zip(names, arrays):
        a = np.asarray(a)
        if a.dtype.kind != "f":
            raise ValueError(f"parameters: {name!r} must be floating point, got {a.dtype}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"parameters: {name!r} has non-finite values")
        params[name] = a.astype(np.float32)
    hidden = params["w1"].shape[-1] if "w1" in params else 0
    width = hidden or dim
    expected = {"w": [width, classes], "b": [classes]}
    if hidden:
        expected.update(w1=[dim, hidden], b1=[hidden])
    for name, shape in expected.items():
        if list(params[name].shape) != shape:
            raise ValueError(
                f"parameters: {name!r} has shape {list(params[name].shape)}, a head of {dim} features "
                f"and {classes} classes needs {shape}"
            )
    return params
