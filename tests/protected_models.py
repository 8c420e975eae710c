"""Models and keys for the protected-package tests (tests/test_protected*.py)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: The small model's hidden width: its first weight is 256 x 2304 float32, 2.25 MiB, so the
#: package has three chunks of the model (1 MiB each but the last).
HIDDEN = 2304


def small_model(seed: int = 0) -> onnx.ModelProto:
    """y = relu(x @ w1 + b1) @ w2: an MLP of about 2.3 MB of weights (three 1 MiB chunks)."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((256, HIDDEN)).astype(np.float32) / 16
    b1 = rng.standard_normal(HIDDEN).astype(np.float32)
    w2 = rng.standard_normal((HIDDEN, 8)).astype(np.float32) / 48
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h0"]),
            helper.make_node("Add", ["h0", "b1"], ["h1"]),
            helper.make_node("Relu", ["h1"], ["h"]),
            helper.make_node("MatMul", ["h", "w2"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def small_input() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).standard_normal((1, 256)).astype(np.float32)}


def weight_signatures(model: onnx.ModelProto, length: int = 32) -> list[bytes]:
    """Byte strings found only in the model's weights: the first ``length`` bytes of each large
    initializer's data, to look for in anything that must not hold them."""
    out = []
    for t in model.graph.initializer:
        data = numpy_helper.to_array(t).tobytes()
        if len(data) >= 1024:
            out.append(data[:length])
    return out


def inputs_of(name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    if name == "efficientnet":  # a real photo, as the pretrained network expects it
        from webml.zoo import efficientnet_lite

        return {"image": efficientnet_lite.preprocess(efficientnet_lite.sample_image_path("coffee"))}
    if name == "bert":
        mask = np.ones((1, 16), np.int64)
        mask[:, 12:] = 0
        return {"input_ids": rng.integers(0, 100, (1, 16), dtype=np.int64), "attention_mask": mask}
    return {"x": rng.standard_normal((1, 256)).astype(np.float32)}
