"""bench/shrink.py's data and anchors: the photos decode, the token ids fit the vocabulary, both are the same on
every run, and each anchor's model gives outputs comparable with the float32 model's (no timing is asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import shrink as bench  # noqa: E402

FIXTURE = ROOT / "tests/fixtures/bert_tiny.onnx"


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    return bench.photos()


def test_photos_decode_into_the_networks_input(photos: np.ndarray) -> None:
    views = len(bench.variants(np.zeros((10, 10, 3), np.uint8)))
    assert photos.shape == (views * len(bench.SKIMAGE_PHOTOS + bench.SKLEARN_PHOTOS), 3, 224, 224)
    assert photos.dtype == np.float32 and np.isfinite(photos).all()
    # (x - 127) / 128 of 0..255 pixels; every view is a different picture
    assert photos.min() >= -1 and photos.max() <= 1
    assert len({view.tobytes() for view in photos}) == len(photos)


def test_photos_are_the_same_each_run(photos: np.ndarray) -> None:
    np.testing.assert_array_equal(bench.photos(), photos)


def test_token_ids_lie_in_minilms_vocabulary() -> None:
    data = json.loads((bench.DATA / "tokens.json").read_text(encoding="utf-8"))
    lines = [s for s in (bench.DATA / "sentences.txt").read_text(encoding="utf-8").splitlines() if s.strip()]
    assert data["sentences"] == lines and len(data["input_ids"]) == len(lines) == 32
    model = onnx.load(bench.minilm_path(), load_external_data=False)
    embeddings = next(t for t in model.graph.initializer if t.name.endswith("word_embeddings.weight"))
    assert data["vocab_size"] == embeddings.dims[0]
    for row in data["input_ids"]:
        assert row[0] == 101 and row[-1] == 102  # [CLS] ... [SEP]
        assert 0 < min(row) and max(row) < data["vocab_size"] and len(row) <= bench.SEQUENCE


@pytest.mark.parametrize("vocab_size", [30522, 100])
def test_sentences_are_padded_inputs_the_same_each_run(vocab_size: int) -> None:
    inputs = bench.sentences(vocab_size)
    assert len(inputs) == 32
    for x, again in zip(inputs, bench.sentences(vocab_size)):
        assert x.keys() == {"input_ids", "attention_mask"}
        ids, mask = x["input_ids"], x["attention_mask"]
        assert ids.shape == mask.shape == (1, bench.SEQUENCE) and ids.dtype == mask.dtype == np.int64
        assert ids.min() >= 0 and ids.max() < vocab_size
        assert (ids[mask == 0] == 0).all() and mask[0, 0] == 1
        np.testing.assert_array_equal(ids, again["input_ids"])


@pytest.mark.parametrize("precision", bench.PRECISIONS)
def test_anchor_outputs_compare_with_float32(tmp_path: Path, precision: str) -> None:
    inputs = bench.sentences(100)[:4]
    reference = bench.outputs(FIXTURE, inputs)
    target = tmp_path / f"{precision}.onnx"
    tool = bench.ANCHORS[precision](FIXTURE, target)
    got = bench.outputs(target, inputs)
    assert tool and got.shape == reference.shape == (4, 64) and got.dtype == np.float32
    assert bench.size_on_disk(target) < bench.size_on_disk(FIXTURE)
    # shrunk, not broken: the pooled outputs point the same way
    cosine = (got * reference).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() > 0.99


def test_calibration_photos_are_other_pictures_than_the_judged_ones(photos: np.ndarray) -> None:
    calibration = bench.calibration_photos()
    assert calibration.shape == (bench.VIEWS * len(bench.CALIBRATION_PHOTOS), 3, 224, 224)
    assert np.isfinite(calibration).all()
    judged = {view.tobytes() for view in photos}
    assert not any(view.tobytes() in judged for view in calibration)
