"""The ``webml`` command: its outputs and every bad-input case (one message, non-zero exit, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import webml
from webml.cli import main
from webml.zoo import efficientnet_lite


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *fragments):
    assert code != 0
    assert err.startswith("webml: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """y = relu(x @ W) with x [1, 4] float32."""
    w = np.arange(12, dtype=np.float32).reshape(4, 3) - 5
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [onnx.numpy_helper.from_array(w, "W")],
    )
    path = tmp_path_factory.mktemp("models") / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path, w


def test_classify_default_photo(capsys):
    code, out, err = run(capsys, "classify")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("coffee.png:")
    assert "espresso" in lines[1]  # the correct top-1
    assert len([line for line in lines if "%" in line]) == 5


def test_classify_json(capsys):
    code, out, _ = run(capsys, "classify", "--json", "--top-k", "3", efficientnet_lite.sample_image_path("chelsea"))
    assert code == 0
    (record,) = [json.loads(line) for line in out.splitlines()]
    assert record["image"].endswith("chelsea.png")
    assert len(record["top"]) == 3 and all(isinstance(p, float) for _, p in record["top"])
    assert record["top"][0][0] in {"Egyptian cat", "tiger cat", "tabby"}


def test_classify_bad_images(capsys, tmp_path):
    code, _, err = run(capsys, "classify", str(tmp_path / "missing.jpg"))
    assert_clean_error(code, err, "no such image file")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    code, _, err = run(capsys, "classify", str(text))
    assert_clean_error(code, err, "is not a readable image")
    code, _, err = run(capsys, "classify", "--top-k", "0")
    assert_clean_error(code, err, "--top-k")


def test_run_prints_and_saves_outputs(capsys, tmp_path, tiny_model):
    path, w = tiny_model
    x = np.array([[1, -2, 3, 0.5]], np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = run(
        capsys, "run", str(path), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "out")
    )
    assert code == 0, err
    assert out.startswith("y: float32 [1, 3]")
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), np.maximum(x @ w, 0), rtol=1e-6)


def test_run_bad_inputs(capsys, tmp_path, tiny_model):
    path, _ = tiny_model
    good = tmp_path / "x.npy"
    np.save(good, np.zeros((1, 4), np.float32))
    np.save(tmp_path / "wrong_shape.npy", np.zeros((2, 4), np.float32))
    np.save(tmp_path / "wrong_type.npy", np.zeros((1, 4), np.float64))
    (tmp_path / "junk.npy").write_bytes(b"\x00\x01junk")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07\x12\x04junk" * 3)
    cases = [
        (["run", str(tmp_path / "none.onnx"), "-i", f"x={good}"], ["no such model file"]),
        (["run", str(tmp_path / "junk.onnx"), "-i", f"x={good}"], ["junk.onnx"]),
        (["run", str(path), "-i", f"z={good}"], ["unknown input(s) ['z']", "missing input(s) ['x']"]),
        (["run", str(path)], ["missing input(s) ['x']"]),
        (["run", str(path), "-i", f"x={tmp_path / 'wrong_shape.npy'}"], ["has shape [2, 4]", "expects [1, 4]"]),
        (["run", str(path), "-i", f"x={tmp_path / 'wrong_type.npy'}"], ["has dtype float64", "float32"]),
        (["run", str(path), "-i", f"x={tmp_path / 'junk.npy'}"], ["not a readable .npy"]),
        (["run", str(path), "-i", f"x={tmp_path / 'absent.npy'}"], ["no such file"]),
        (["run", str(path), "-i", "x"], ["NAME=VALUE"]),
    ]
    for argv, fragments in cases:
        code, _, err = run(capsys, *argv)
        assert_clean_error(code, err, *fragments)


def test_unsupported_operator_is_reported(capsys, tmp_path):
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["a"]),
            helper.make_node("Bernoulli", ["a"], ["b"], name="coin1"),
            helper.make_node("Det", ["b"], ["y"], name="det1"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    path = tmp_path / "unsupported.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    np.save(tmp_path / "x.npy", np.zeros((2, 2), np.float32))
    code, _, err = run(capsys, "run", str(path), "-i", f"x={tmp_path / 'x.npy'}")
    assert_clean_error(code, err, "Bernoulli", "coin1", "Det", "det1")
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    assert "not supported by webml: 2 node(s)" in out and "Bernoulli (node coin1)" in out


def test_info(capsys, tiny_model):
    path, _ = tiny_model
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    assert "x: float32[1, 4]" in out and "y: float32[1, 3]" in out
    assert "MatMul" in out and "every operator is supported" in out


def test_classify_with_an_onnx_classifier(capsys, tmp_path):
    """The zoo network written out as ONNX and classified through --model gives the same answer."""
    context = webml.ml.create_context()
    graph = efficientnet_lite.build(context, efficientnet_lite.pretrained_parameters())
    model = webml.onnx.save(graph, tmp_path / "effnet.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(efficientnet_lite.class_names()))
    photo = efficientnet_lite.sample_image_path("coffee")
    code, out, err = run(
        capsys, "classify", "--model", str(model), "--labels", str(labels), "--normalize", "lite", photo
    )
    assert code == 0, err
    assert "espresso" in out.splitlines()[1]
    code, _, err = run(capsys, "classify", "--labels", str(labels))
    assert_clean_error(code, err, "--labels goes with --model")


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "webml.cli", "demo"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "max |webml - numpy float64|" in result.stdout


def test_classify_with_a_dynamic_batch_classifier(capsys, tmp_path):
    """An ONNX classifier exported with a dynamic batch dimension is run one image at a time."""
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["scores"]),
        ],
        "mean_colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])],
    )
    path = tmp_path / "colour.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    from PIL import Image

    picture = tmp_path / "blue.png"
    Image.new("RGB", (40, 30), (10, 20, 250)).save(picture)
    code, out, err = run(capsys, "classify", "--model", str(path), "--labels", str(labels), "--json", str(picture))
    assert code == 0, err
    assert json.loads(out)["top"][0][0] == "blue"
