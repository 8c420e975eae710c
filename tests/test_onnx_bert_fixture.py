"""webml.onnx.load on a BERT-style encoder exported by PyTorch's ONNX exporter, checked against ONNX Runtime.

The fixture ``fixtures/bert_tiny.onnx`` (made by ``fixtures/make_bert_fixture.py``,
see ``fixtures/README.md``) is what a real exporter writes: Gather embeddings,
LayerNormalization, attention with an additive mask built from the int64
attention mask, Erf GELU, Gemm pooler and Shape/Gather/Concat/Reshape shape
arithmetic over a dynamic "sequence" axis.  ONNX Runtime running the file
directly is the independent truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import webml
import webml.onnx as wo

FIXTURE = Path(__file__).parent / "fixtures" / "bert_tiny.onnx"
BACKENDS = ["onnxruntime", "openvino", "reference"]
VOCAB = 100
TOLERANCE = 1e-4


def feeds(sequence: int, padding: int, seed: int) -> dict[str, np.ndarray]:
    """Random token ids of shape [1, sequence] and a mask whose last ``padding`` positions are 0."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(0, VOCAB, size=(1, sequence), dtype=np.int64)
    attention_mask = np.ones((1, sequence), dtype=np.int64)
    attention_mask[:, sequence - padding :] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def ort_run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(FIXTURE), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, inputs)))


def test_fixture_has_no_unsupported_parts() -> None:
    assert wo.unsupported_operators(FIXTURE, free_dimensions={"sequence": 16}) == []


def test_dynamic_sequence_needs_free_dimensions() -> None:
    context = webml.ml.create_context(backend="reference")
    with pytest.raises(wo.OnnxImportError, match="sequence"):
        wo.load(FIXTURE, context, input_shapes={})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("sequence", "padding"), [(16, 5), (9, 2)])
def test_bert_matches_onnxruntime(backend: str, sequence: int, padding: int) -> None:
    context = webml.ml.create_context(backend=backend)
    graph = wo.load(FIXTURE, context, free_dimensions={"sequence": sequence})
    inputs = feeds(sequence, padding, seed=sequence)
    got = context.compute(graph, inputs)
    want = ort_run(inputs)
    assert set(got) == {"last_hidden_state", "pooler_output"} == set(want)
    assert got["last_hidden_state"].shape == (1, sequence, 64)
    assert got["pooler_output"].shape == (1, 64)
    for name, expected in want.items():
        assert got[name].dtype == expected.dtype == np.float32, name
        difference = float(np.max(np.abs(got[name] - expected)))
        assert difference < TOLERANCE, f"{name}: max |webml - onnxruntime| = {difference:.3g}"


def test_attention_mask_is_honoured() -> None:
    """Padding changes the unpadded tokens' states (the additive mask is live), as in ONNX Runtime."""
    context = webml.ml.create_context(backend="reference")
    graph = wo.load(FIXTURE, context, free_dimensions={"sequence": 16})
    padded = feeds(16, 5, seed=3)
    unpadded = {**padded, "attention_mask": np.ones_like(padded["attention_mask"])}
    got_padded = context.compute(graph, padded)["last_hidden_state"][:, :11]
    got_unpadded = context.compute(graph, unpadded)["last_hidden_state"][:, :11]
    assert np.max(np.abs(got_padded - got_unpadded)) > 1e-2
