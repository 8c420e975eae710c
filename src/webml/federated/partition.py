"""Splitting one labelled data set among simulated clients: IID, or non-IID by a Dirichlet prior.

A split is named by a string, as on the command line: ``"iid"`` (a random
permutation cut into equal parts) or ``"dirichlet:ALPHA"`` (for each class,
the shares of its samples that go to each client are drawn from
Dirichlet(ALPHA, ..., ALPHA); small ALPHA, e.g. 0.5, gives each client a few
dominant classes, the usual non-IID benchmark of Hsu, Qi & Brown 2019).
Both are seeded, and every client gets at least one sample.

>>> import numpy as np
>>> from webml.federated.partition import parse_split, partition
>>> labels = np.repeat(np.arange(3), 10)
>>> parts = partition(labels, 4, parse_split("dirichlet:0.5"), seed=0)
>>> len(parts), sum(len(p) for p in parts), min(len(p) for p in parts) > 0
(4, 30, True)
>>> sorted(np.concatenate(parts).tolist()) == list(range(30))
True
>>> parse_split("dirichlet:-1")
Traceback (most recent call last):
...
ValueError: split: the Dirichlet concentration must be a positive number, got '-1' (e.g. dirichlet:0.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Split", "parse_split", "partition"]

#: How many times a Dirichlet draw is repeated before giving up on making every client non-empty.
_MAX_DRAWS = 100


@dataclass(frozen=True)
class Split:
    """A way of splitting: ``kind`` is ``"iid"`` or ``"dirichlet"`` (with its ``alpha``)."""

    kind: str
    alpha: float | None = None

    def __str__(self) -> str:
        return "iid" if self.kind == "iid" else f"dirichlet:{self.alpha:g}"


def parse_split(text: Any) -> Split:
    """``"iid"`` or ``"dirichlet:ALPHA"`` (ALPHA > 0) as a :class:`Split`; ``ValueError`` otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"split: must be a string such as 'iid' or 'dirichlet:0.5', got {type(text).__name__}")
    if text == "iid":
        return Split("iid")
    kind, sep, value = text.partition(":")
    if kind != "dirichlet" or not sep:
        raise ValueError(f"split: must be 'iid' or 'dirichlet:ALPHA' (e.g. dirichlet:0.5), got {text!r}")
    try:
        alpha = float(value)
    except ValueError:
        alpha = math.nan
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(
            f"split: the Dirichlet concentration must be a positive number, got {value!r} (e.g. dirichlet:0.5)"
        )
    return Split("dirichlet", alpha)


def partition(labels: Any, clients: int, split: Split | str = "iid", *, seed: int = 0) -> list[np.ndarray]:
    """The sample indices of each of ``clients`` clients (sorted int64 arrays that cover every sample once)."""
    if isinstance(split, str):
        split = parse_split(split)
    if not isinstance(split, Split):
        raise TypeError(f"partition: split must be a Split or a string, got {type(split).__name__}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"partition: labels must be a 1-D array of class indices, got {labels.dtype} {labels.shape}")
    if isinstance(clients, bool) or not isinstance(clients, (int, np.integer)) or clients < 1:
        raise ValueError(f"partition: clients must be a positive integer, got {clients!r}")
    if clients > len(labels):
        raise ValueError(f"partition: {clients} clients but only {len(labels)} samples (each client needs one)")
    rng = np.random.default_rng(seed)
    if split.kind == "iid":
        return [np.sort(p) for p in np.array_split(rng.permutation(len(labels)), clients)]
    for _ in range(_MAX_DRAWS):
        parts = _dirichlet_draw(labels, clients, float(split.alpha), rng)
        if all(len(p) for p in parts):
            return parts
    raise ValueError(
        f"partition: {split} left a client without samples in {_MAX_DRAWS} draws; "
        f"use fewer clients ({clients} for {len(labels)} samples) or a larger alpha"
    )


def _dirichlet_draw(labels: np.ndarray, clients: int, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    chunks: list[list[np.ndarray]] = [[] for _ in range(clients)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        shares = rng.dirichlet(np.full(clients, alpha))
        # Cut points from the cumulative shares: client k gets the k-th slice of this class.
        cuts = np.round(np.cumsum(shares)[:-1] * len(idx)).astype(np.int64)
        for k, part in enumerate(np.split(idx, cuts)):
            chunks[k].append(part)
    return [np.sort(np.concatenate(ch)).astype(np.int64) for ch in chunks]
