"""Reference kernels of the indexing operators.

Indices arrive lifted to int64.  Per the spec's notes, an index is clamped to
[-N, N-1] for an axis of size N and a negative one counts from the end
(:func:`webml.ops.indexing.resolve_indices`).
"""

from __future__ import annotations

import numpy as np

from ...ops.indexing import coordinate_sizes, resolve_indices
from .kernels import kernel


def _nd_coordinates(shape: tuple[int, ...], indices: np.ndarray) -> tuple[np.ndarray, ...]:
    """Split [..., k] coordinates into k resolved index arrays for advanced indexing."""
    coords = resolve_indices(indices, np.array(coordinate_sizes(shape, indices.shape), dtype=np.int64))
    return tuple(coords[..., i] for i in range(indices.shape[-1]))


@kernel("gather")
def gather(input, indices, *, out, axis):
    return np.take(input, resolve_indices(indices, input.shape[axis]), axis=axis)


@kernel("gatherElements")
def gather_elements(input, indices, *, out, axis):
    return np.take_along_axis(input, resolve_indices(indices, input.shape[axis]), axis=axis)


@kernel("gatherND")
def gather_nd(input, indices, *, out):
    return input[_nd_coordinates(input.shape, indices)]


@kernel("scatterElements")
def scatter_elements(input, indices, updates, *, out, axis):
    # Duplicate indices: the spec leaves the winner unspecified; NumPy's last write wins.
    result = input.copy()
    np.put_along_axis(result, resolve_indices(indices, input.shape[axis]), updates, axis=axis)
    return result


@kernel("scatterND")
def scatter_nd(input, indices, updates, *, out):
    result = input.copy()
    result[_nd_coordinates(input.shape, indices)] = updates
    return result
