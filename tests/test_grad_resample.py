"""Gradients of resample2d (and the refusal of recurrent operators)."""

from __future__ import annotations

import numpy as np
import pytest

import webml
from gradcheck import check_gradients
from webml.train import grad

rng = np.random.default_rng(6)


@pytest.mark.parametrize("mode", ["nearest-neighbor", "linear"])
@pytest.mark.parametrize(
    "options",
    [
        {"scales": [2.0, 2.0]},
        {"sizes": [5, 2]},  # up along one axis, down along the other
        {"sizes": [2, 3], "axes": [1, 2]},
        {"scales": [1.0, 1.5], "axes": [3, 0]},
    ],
)
def test_resample2d(mode, options):
    check_gradients(lambda b, x: b.resample2d(x, mode=mode, **options), {"x": rng.standard_normal([2, 3, 3, 4])})


def test_lstm_cell_is_refused():
    ctx = webml.ml.create_context(backend="reference")
    b = webml.MLGraphBuilder(ctx)
    f = {"dataType": "float32"}
    x = b.input("x", f | {"shape": [1, 2]})
    w = b.input("w", f | {"shape": [8, 2]})
    r = b.input("r", f | {"shape": [8, 2]})
    h = b.input("h", f | {"shape": [1, 2]})
    c = b.input("c", f | {"shape": [1, 2]})
    out = b.lstm_cell(x, w, r, h, c, 2)
    with pytest.raises(TypeError, match="lstmCell .*decompose"):
        grad(b, b.reduce_sum(out[0]), [w])
