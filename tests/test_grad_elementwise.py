"""Gradients of the element-wise binary operators against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradients

rng = np.random.default_rng(1)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "max", "min"])
@pytest.mark.parametrize("shapes", [([2, 3], [2, 3]), ([2, 3], [3]), ([4, 1, 3], [2, 1]), ([], [2])])
def test_binary(op, shapes):
    a = rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1]) + (3.0 if op == "div" else 0.0)
    check_gradients(lambda bl, x, y: getattr(bl, op)(x, y), {"a": a, "b": b})


def test_pow():
    a = rng.uniform(0.5, 2.0, [2, 3])
    b = rng.uniform(-1.5, 2.5, [3])
    check_gradients(lambda bl, x, y: bl.pow(x, y), {"a": a, "b": b})
