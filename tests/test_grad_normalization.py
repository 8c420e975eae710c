"""Gradients of batchNormalization, instanceNormalization and layerNormalization against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradients

rng = np.random.default_rng(4)


@pytest.mark.parametrize(("shape", "axis"), [([2, 3, 2, 2], 1), ([3, 4], 1), ([2, 2, 3], 2), ([4], 0)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_normalization(shape, axis, affine):
    f = shape[axis]
    inputs = {
        "x": rng.standard_normal(shape),
        "mean": rng.standard_normal(f),
        "variance": rng.uniform(0.5, 2.0, f),
    }
    if affine:
        inputs |= {"scale": rng.standard_normal(f), "bias": rng.standard_normal(f)}

        def build(b, x, mean, variance, scale, bias):
            return b.batch_normalization(x, mean, variance, scale=scale, bias=bias, axis=axis, epsilon=1e-3)
    else:

        def build(b, x, mean, variance):
            return b.batch_normalization(x, mean, variance, axis=axis)

    check_gradients(build, inputs)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("affine", [True, False])
def test_instance_normalization(layout, affine):
    shape = [2, 3, 2, 3] if layout == "nchw" else [2, 2, 3, 3]
    inputs = {"x": rng.standard_normal(shape)}
    if affine:
        inputs |= {"scale": rng.standard_normal(3), "bias": rng.standard_normal(3)}

        def build(b, x, scale, bias):
            return b.instance_normalization(x, scale=scale, bias=bias, layout=layout, epsilon=1e-3)
    else:

        def build(b, x):
            return b.instance_normalization(x, layout=layout)

    check_gradients(build, inputs)


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ([2, 3, 4], None),
        ([3, 4], [1]),
        ([2, 3, 4], [2, 0]),
        ([2, 3, 2], [0, 2]),
        ([3, 2, 2], [2, 1, 0]),
        ([3], []),
        ([], None),
    ],
)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_normalization(shape, axes, affine):
    norm_axes = list(range(1, len(shape))) if axes is None else axes
    sizes = [shape[a] for a in norm_axes]
    inputs = {"x": rng.standard_normal(shape)}
    options = {"epsilon": 1e-3} if axes is None else {"axes": axes, "epsilon": 1e-3}
    if affine:
        inputs |= {"scale": rng.standard_normal(sizes), "bias": rng.standard_normal(sizes)}

        def build(b, x, scale, bias):
            return b.layer_normalization(x, scale=scale, bias=bias, **options)
    else:

        def build(b, x):
            return b.layer_normalization(x, **options)

    check_gradients(build, inputs)
