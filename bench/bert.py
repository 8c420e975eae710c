"""A BERT-style encoder written with MLGraphBuilder (random weights), for benchmarks."""

from __future__ import annotations

import numpy as np

import webml


def random_parameters(layers: int = 6, hidden: int = 384, ffn: int = 1536, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p: dict[str, np.ndarray] = {}

    def dense(name: str, n_in: int, n_out: int) -> None:
        p[f"{name}.weight"] = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        p[f"{name}.bias"] = (rng.standard_normal(n_out) * 0.02).astype(np.float32)

    for i in range(layers):
        for name in ("query", "key", "value", "output"):
            dense(f"layer{i}.{name}", hidden, hidden)
        dense(f"layer{i}.ffn_in", hidden, ffn)
        dense(f"layer{i}.ffn_out", ffn, hidden)
        for ln in ("ln1", "ln2"):
            p[f"layer{i}.{ln}.scale"] = np.ones(hidden, np.float32)
            p[f"layer{i}.{ln}.bias"] = np.zeros(hidden, np.float32)
    return p


def build(
    context: webml.MLContext,
    params: dict[str, np.ndarray],
    *,
    layers: int = 6,
    hidden: int = 384,
    heads: int = 12,
    sequence: int = 128,
    batch: int = 1,
) -> webml.MLGraph:
    """Input "hidden_states" [batch, sequence, hidden] -> output "encoded" of the same shape."""
    b = webml.MLGraphBuilder(context)
    head = hidden // heads

    def const(key: str) -> webml.MLOperand:
        a = params[key]
        return b.constant({"dataType": "float32", "shape": list(a.shape)}, a)

    def dense(x: webml.MLOperand, name: str) -> webml.MLOperand:
        return b.add(b.matmul(x, const(f"{name}.weight")), const(f"{name}.bias"), label=name)

    def split_heads(x: webml.MLOperand) -> webml.MLOperand:
        return b.transpose(b.reshape(x, [batch, sequence, heads, head]), permutation=[0, 2, 1, 3])

    def layer_norm(x: webml.MLOperand, name: str) -> webml.MLOperand:
        return b.layer_normalization(
            x, scale=const(f"{name}.scale"), bias=const(f"{name}.bias"), axes=[2], epsilon=1e-12, label=name
        )

    x = b.input("hidden_states", {"dataType": "float32", "shape": [batch, sequence, hidden]})
    scale = b.constant("float32", 1.0 / np.sqrt(head))
    for i in range(layers):
        q = split_heads(dense(x, f"layer{i}.query"))
        k = split_heads(dense(x, f"layer{i}.key"))
        v = split_heads(dense(x, f"layer{i}.value"))
        scores = b.mul(b.matmul(q, b.transpose(k, permutation=[0, 1, 3, 2])), scale)
        context_ = b.matmul(b.softmax(scores, 3), v)
        merged = b.reshape(b.transpose(context_, permutation=[0, 2, 1, 3]), [batch, sequence, hidden])
        x = layer_norm(b.add(x, dense(merged, f"layer{i}.output")), f"layer{i}.ln1")
        ffn = dense(b.gelu(dense(x, f"layer{i}.ffn_in")), f"layer{i}.ffn_out")
        x = layer_norm(b.add(x, ffn), f"layer{i}.ln2")
    return b.build({"encoded": x})


def flops(layers: int = 6, hidden: int = 384, ffn: int = 1536, sequence: int = 128, batch: int = 1) -> float:
    """2 x multiply-adds of the matrix products."""
    per_layer = 4 * sequence * hidden * hidden + 2 * sequence * sequence * hidden + 2 * sequence * hidden * ffn
    return 2.0 * per_layer * layers * batch
