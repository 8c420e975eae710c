"""Coming from Teachable Machine: ``webml train`` exports one ONNX model, writes its history and plot;
``webml classify`` takes folders, checks --top-k and --normalize, and runs a single image as a batch of one.

Every command runs the real ``webml`` entry point (``python -m webml.cli``) on
generated image folders (augmented crops of scikit-image's sample photos).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

import webml
from test_transfer import CLASSES, make_images
from webml.train import embeddings, export, transfer
from webml.zoo import efficientnet_lite


def webml_cli(*argv, env):
    result = subprocess.run(
        [sys.executable, "-m", "webml.cli", *map(str, argv)], capture_output=True, text=True, env=env, check=False
    )
    return result.returncode, result.stdout, result.stderr


def assert_clean_error(result, *fragments):
    code, out, err = result
    assert code == 2, err
    assert err.startswith("webml: error: "), err
    assert "Traceback" not in err and out == ""
    for f in fragments:
        assert f in err, err


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of every command: this checkout's sources, a private embedding cache."""
    cache = tmp_path_factory.mktemp("cache")
    src = str(Path(webml.__file__).parent.parent)
    return {**os.environ, "WEBML_CACHE_DIR": str(cache), "PYTHONPATH": src}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, env):
    """One folder, trained twice with the same seed: as ONNX (with a plot) and as .npz."""
    root = tmp_path_factory.mktemp("pets")
    make_images(root / "data", 6, seed=3, size=96)
    common = ["train", root / "data", "--epochs", 15, "--validation-split", 0.34, "--seed", 1]
    onnx_run = webml_cli(*common, "-o", root / "pets.onnx", "--plot", root / "plot.png", env=env)
    npz_run = webml_cli(*common, "-o", root / "pets.npz", env=env)
    return root, onnx_run, npz_run


def classify_json(env, model, *images):
    code, out, err = webml_cli("classify", "--model", model, "--json", "--top-k", 3, *images, env=env)
    assert code == 0, err
    return {json.loads(line)["image"]: json.loads(line)["top"] for line in out.splitlines()}


def test_exported_onnx_gives_the_same_top1_in_webml_and_onnxruntime(trained, env):
    root, (code, out, err), (npz_code, _, npz_err) = trained
    assert code == 0, err
    assert npz_code == 0, npz_err
    assert f"saved {root / 'pets.onnx'}: 3 classes" in out

    model = onnx.load(root / "pets.onnx")
    onnx.checker.check_model(model, full_check=True)
    description = export.classifier_metadata(model)
    assert description["labels"] == list(CLASSES)
    assert description["input"] == {
        "name": "image",
        "shape": [1, 3, 224, 224],
        "layout": "NCHW",
        "channels": "RGB",
        "range": [0, 255],
        "crop": efficientnet_lite.CROP_FRACTION,
        "resize": "bilinear",
    }
    assert "RGB values 0..255" in model.doc_string and "astronaut, chelsea, coffee" in model.doc_string

    images = sorted(str(p) for p in (root / "data").glob("*/*.png"))
    with_npz = classify_json(env, root / "pets.npz", *images)
    with_onnx = classify_json(env, root / "pets.onnx", *images)
    session = onnxruntime.InferenceSession(str(root / "pets.onnx"), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, outp.name) == ("image", [1, 3, 224, 224], "probabilities")
    correct = 0
    for image in images:
        probs = session.run(None, {"image": export.pixels(description, [image])})[0][0]
        ort_top = [CLASSES[i] for i in np.argsort(-probs, kind="stable")]
        assert with_npz[image][0][0] == with_onnx[image][0][0] == ort_top[0], image
        for (name, p), (name_onnx, p_onnx) in zip(with_npz[image], with_onnx[image]):
            assert name == name_onnx and p == pytest.approx(p_onnx, abs=1e-4)
            assert probs[CLASSES.index(name)] == pytest.approx(p, abs=1e-4)
        correct += with_onnx[image][0][0] == Path(image).parent.name
    assert correct >= 0.8 * len(images)


def test_history_json_and_plot(trained):
    root, (code, out, err), _ = trained
    assert code == 0, err
    assert f"history: {root / 'pets.history.json'}, plot: {root / 'plot.png'}" in out
    record = json.loads((root / "pets.history.json").read_text())
    assert record["format"] == "webml.train.history" and record["epochs"] == 15
    assert len(record["loss"]) == len(record["val_accuracy"]) == len(record["seconds"]) == 15
    assert record["loss"][-1] < record["loss"][0]
    assert record["class_names"] == list(CLASSES)
    matrix = np.array(record["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == record["validation_images"] == 6  # 2 of each class's 6
    assert matrix.sum(axis=1).tolist() == [2, 2, 2]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(record["validation_accuracy"])
    assert record["val_accuracy"][-1] == pytest.approx(record["validation_accuracy"])
    png = (root / "plot.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    from PIL import Image

    with Image.open(root / "plot.png") as im:
        assert im.size == (1300, 420)
    assert (root / "pets.history.json").exists() and not (root / "plot.png.tmp").exists()


def test_train_output_format_follows_the_extension(tmp_path, env, trained):
    data = trained[0] / "data"
    for output, fragments in [
        (tmp_path / "m.pt", ["must end in .onnx", "or .npz"]),
        (tmp_path / "m.onnx.txt", ["must end in .onnx"]),
    ]:
        assert_clean_error(webml_cli("train", data, "-o", output, env=env), "--output", *fragments)
    base = tmp_path / "base.onnx"
    base.write_bytes(b"")
    assert_clean_error(
        webml_cli("train", data, "-o", tmp_path / "m.onnx", "--base-model", base, env=env),
        "--output .onnx needs the default base",
    )
    assert_clean_error(
        webml_cli("train", data, "-o", tmp_path / "m.npz", "--plot", tmp_path / "p.jpg", env=env),
        "--plot",
        "must end in .png",
    )
    assert_clean_error(
        webml_cli("train", data, "-o", tmp_path / "m.npz", "--history", tmp_path / "no" / "h.json", env=env),
        "--history",
        "does not exist",
    )
    assert sorted(os.listdir(tmp_path)) == ["base.onnx"]


def test_export_refuses_other_bases(tmp_path):
    classifier = transfer.TransferClassifier(["a", "b"], transfer.initial_head(3, 2), "onnx:x", {"kind": "onnx"})
    with pytest.raises(ValueError, match="only classifiers trained on the efficientnet-lite0 base"):
        export.export_onnx(classifier, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_classify_a_folder_and_option_checks(trained, env, tmp_path):
    root = trained[0]
    folder = root / "data" / "chelsea"
    (folder / "notes.txt").write_text("not an image: left out")
    code, out, err = webml_cli("classify", "--model", root / "pets.npz", "--json", f"{folder}/", env=env)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["image"] for r in rows] == sorted(str(p) for p in folder.glob("*.png"))
    assert all(len(r["top"]) == 3 for r in rows)  # the default 5, capped at the model's 3 classes

    (tmp_path / "empty").mkdir()
    assert_clean_error(webml_cli("classify", tmp_path / "empty", env=env), "is a folder with no image files")
    image = sorted(folder.glob("*.png"))[0]
    for argv, fragments in [
        (["--top-k", 1001, image], ["--top-k must be from 1 to 1000", "EfficientNet-Lite0"]),
        (["--top-k", 0, image], ["--top-k must be at least 1"]),
        (["--model", root / "pets.npz", "--top-k", 4, image], ["--top-k must be from 1 to 3"]),
        (["--model", root / "pets.onnx", "--top-k", 4, image], ["--top-k must be from 1 to 3"]),
        (["--normalize", "lite", image], ["--normalize goes with --model"]),
        (["--model", root / "pets.npz", "--normalize", "lite", image], ["--normalize does not go with"]),
        (["--model", root / "pets.onnx", "--normalize", "lite", image], ["--normalize does not go with"]),
    ]:
        assert_clean_error(webml_cli("classify", *argv, env=env), *fragments)


def test_one_image_runs_as_a_batch_of_one(monkeypatch):
    """The base builds a graph per batch size used: one image is never padded to 16."""
    built: list[int] = []
    original = efficientnet_lite.build

    def recording(context, params, *, batch=1, **kwargs):
        built.append(batch)
        return original(context, params, batch=batch, **kwargs)

    monkeypatch.setattr(efficientnet_lite, "build", recording)
    embeddings.clear_memory_cache()
    context = webml.ml.create_context()
    base = embeddings.EfficientNetLite0Features(context, batch_size=4)
    photo = efficientnet_lite.sample_image_path("chelsea")
    one = base([photo])
    assert built == [1]
    six = base([photo] * 6)  # 4 + 2: one graph per size, each built once
    base([photo] * 6)
    assert built == [1, 4, 2]
    np.testing.assert_allclose(six, np.repeat(one, 6, axis=0), rtol=1e-4, atol=1e-4)


def test_a_trained_classifier_is_for_images_not_video_frames(trained, env, tmp_path):
    from media_clips import make_clip

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames_per_photo=1)
    root, _, _ = trained
    result = webml_cli("classify", clip, "--model", root / "pets.npz", env=env)
    assert_clean_error(result, "is a webml train classifier, for images", "ONNX image classifier")
