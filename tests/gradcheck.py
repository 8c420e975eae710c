"""Gradient checking against central finite differences in float64 (reference backend, exact mode)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import webml
from webml.train import grad


def check_gradients(
    build: Callable[..., webml.MLOperand],
    inputs: dict[str, np.ndarray],
    wrt: list[str] | None = None,
    *,
    data_type: str = "float32",
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    seed: int = 0,
) -> None:
    """Check d(sum(w * build(...)))/d(inputs[wrt]) from autodiff against central differences.

    ``build(builder, *operands)`` returns the output operand; ``inputs`` maps
    names to float64 arrays (the operands' shapes); ``w`` is a fixed random
    weighting so that every output element matters.
    """
    wrt = list(inputs) if wrt is None else wrt
    ctx = webml.ml.create_context(backend="reference", float64=True)
    b = webml.MLGraphBuilder(ctx)
    ops = {n: b.input(n, {"dataType": data_type, "shape": list(a.shape)}) for n, a in inputs.items()}
    out = build(b, *ops.values())
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal(out.shape) if out.shape else np.array(rng.standard_normal())
    w = b.constant(
        {"dataType": data_type, "shape": list(out.shape)}, weights.astype(webml.dtypes.numpy_dtype(data_type))
    )
    loss = b.reduce_sum(b.mul(out, w))
    grads = grad(b, loss, [ops[n] for n in wrt])
    graph = b.build({"loss": loss, **{f"d_{n}": gr for n, gr in zip(wrt, grads)}})
    # The weights were rounded to data_type by constant(); use the same values in the loss.
    feeds = {n: np.asarray(a, np.float64) for n, a in inputs.items()}
    result = ctx.compute(graph, feeds)

    def loss_at(feed: dict[str, np.ndarray]) -> float:
        return float(ctx.compute(graph, feed)["loss"])

    for n in wrt:
        numeric = np.zeros_like(feeds[n])
        flat = numeric.reshape(-1)
        for i in range(flat.size):
            plus = {k: v.copy() for k, v in feeds.items()}
            minus = {k: v.copy() for k, v in feeds.items()}
            plus[n].reshape(-1)[i] += eps
            minus[n].reshape(-1)[i] -= eps
            flat[i] = (loss_at(plus) - loss_at(minus)) / (2 * eps)
        np.testing.assert_allclose(result[f"d_{n}"], numeric, rtol=rtol, atol=atol, err_msg=f"d loss / d {n}")
