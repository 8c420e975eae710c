"""``webml demo``: build a small network with MLGraphBuilder, run it, check it against NumPy."""

from __future__ import annotations

import time

import numpy as np

import webml


def demo(backend: str) -> int:
    """Build a small perceptron, run it through tensors and check it against NumPy."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((8, 16), np.float32)
    b1 = rng.standard_normal(16, np.float32)
    w2 = rng.standard_normal((16, 3), np.float32)
    batch = rng.standard_normal((4, 8), np.float32)

    context = webml.ml.create_context(backend=backend)
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", {"dataType": "float32", "shape": [4, 8]})
    hidden = builder.relu(
        builder.add(
            builder.matmul(x, builder.constant({"dataType": "float32", "shape": [8, 16]}, w1), label="fc1"),
            builder.constant({"dataType": "float32", "shape": [16]}, b1),
        ),
        label="relu1",
    )
    logits = builder.matmul(hidden, builder.constant({"dataType": "float32", "shape": [16, 3]}, w2), label="fc2")
    probs = builder.softmax(logits, 1, label="softmax")
    start = time.perf_counter()
    graph = builder.build({"probs": probs})
    built = time.perf_counter()

    # Run it the spec's way: write a tensor, dispatch, read the output tensor back.
    inp = context.create_tensor({"dataType": "float32", "shape": [4, 8], "writable": True})
    out = context.create_tensor({"dataType": "float32", "shape": [4, 3], "readable": True})
    context.write_tensor(inp, batch)
    context.dispatch(graph, {"x": inp}, {"probs": out})
    result = context.read_tensor(out)
    done = time.perf_counter()

    # The same network in float64 NumPy, as a check.
    h = np.maximum(batch.astype(np.float64) @ w1 + b1, 0) @ w2
    expected = np.exp(h - h.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)

    np.set_printoptions(precision=4, suppress=True)
    print(f"webml {webml.__version__} demo on the {context.backend} backend")
    print("graph: x[4,8] -> matmul -> add -> relu -> matmul -> softmax -> probs[4,3]")
    print(f"build {1e3 * (built - start):.2f} ms, write+dispatch+read {1e3 * (done - built):.2f} ms")
    print("probs =")
    print(result)
    error = float(np.abs(result - expected).max())
    print(f"max |webml - numpy float64| = {error:.2e}")
    return 0 if error < 1e-5 else 1
