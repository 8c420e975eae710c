"""The ``webml`` command: its outputs and every bad-input case (one message, non-zero exit, no traceback)."""

from __future__ import annotations

import collections
import json
import os
import re
import struct
import subprocess
import sys
import time
import warnings
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import webml
import webml.onnx
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
    assert code == 1  # the model cannot run: info says so in its exit status too
    assert "not supported by webml: 2 node(s)" in out and "Bernoulli (node coin1)" in out


def test_info(capsys, tiny_model):
    path, _ = tiny_model
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    assert "x: float32[1, 4]" in out and "y: float32[1, 3]" in out
    assert "MatMul" in out and "every operator is supported" in out


def test_classify_with_an_onnx_classifier(capsys, tmp_path):
    """The zoo network written out as ONNX and classified through --model gives the same answer."""
    context = webml.ml.create_context(keep_constants=True)  # for webml.onnx.save
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


# -- hostile files: one clear message, exit status 2, nothing half-written, bounded time and memory ---------------

CHILD = r"""
import contextlib, io, json, resource, sys
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from webml.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the forking parent (the test worker).
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"results": results, "max_rss_mib": peak_kib / 1024}))
"""


def run_isolated(*cases, timeout=120, address_space_gib=2):
    """Run each argv list through ``main`` in one child with bounded memory and time: [(code, out, err)], MiB."""
    argv = [[str(a) for a in case] for case in cases]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(argv), str(address_space_gib << 30)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"webml {argv} did not finish in {timeout} s")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    return [tuple(r) for r in report["results"]], report["max_rss_mib"]


def assert_one_clear_error(code, err, *fragments):
    """Exit status 2 and one line on stderr, naming what is wrong in words (no library's exception class)."""
    assert code == 2, err
    assert_clean_error(code, err, *fragments)
    assert len(err.strip().splitlines()) == 1, err
    assert not re.search(r"\b\w*(Error|Exception|Warning)\b", err), err


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_black_png(path, width, height):
    """A valid 1-bit PNG of ``width`` x ``height`` black pixels: a few tens of KB that decode to width*height."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    return path


def write_npy_header(path, header: str, data: bytes = b""):
    """A .npy file with a hand-written version 1.0 header dict (and ``data`` after it)."""
    text = header + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1") + data)
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """A 13000 x 13000 PNG (over webml's bound, under Pillow's error) and a 20000 x 20000 one (over both)."""
    root = tmp_path_factory.mktemp("bombs")
    return write_black_png(root / "13k.png", 13000, 13000), write_black_png(root / "20k.png", 20000, 20000)


def test_hostile_files_make_small_test_inputs(bombs, tmp_path):
    """The hostile files are what they claim: small on disk, huge when decoded or allocated."""
    from PIL import Image

    for path, side in zip(bombs, (13000, 20000)):
        assert path.stat().st_size < 100_000
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS, saved = None, Image.MAX_IMAGE_PIXELS
            try:
                with Image.open(path) as im:
                    assert im.size == (side, side) and im.mode == "1"
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    huge = write_npy_header(tmp_path / "huge.npy", "{'descr':'<f4','fortran_order':False,'shape':(2000000,2000000)}")
    assert huge.stat().st_size < 100
    with open(huge, "rb") as f:
        np.lib.format.read_magic(f)
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    assert np.prod(shape, dtype=np.float64) * dtype.itemsize / 2**40 > 14.5  # TiB


def test_classify_refuses_decompression_bombs_and_special_files(bombs, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    (tmp_path / "empty.png").write_bytes(b"")
    cases = [
        (bombs[0], ["13k.png", "13000 x 13000", "decompression bomb"]),
        (bombs[1], ["20k.png", "Pillow's limit", "decompression bomb"]),
        (fifo, ["pipe.png", "named pipe (FIFO)"]),
        (tmp_path / "folder.png", ["folder.png", "is a folder"]),
        (tmp_path / "zero.png", ["zero.png", "character device"]),
        (tmp_path / "empty.png", ["empty.png", "is empty"]),
    ]
    start = time.perf_counter()
    results, peak_mib = run_isolated(*[["classify", path] for path, _ in cases], timeout=60)
    for (code, out, err), (_, fragments) in zip(results, cases):
        assert_one_clear_error(code, err, *fragments)
        assert out == ""
    assert peak_mib < 400, peak_mib  # decoding the 13000 x 13000 PNG took 1.4 GB
    assert time.perf_counter() - start < 60


def test_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    """A JPEG over the pixel bound is decoded by libjpeg at 1/2, 1/4 or 1/8 scale, not refused."""
    from PIL import Image

    from webml.images import UnreadableImageError, read_image

    rng = np.random.default_rng(0)
    pixels = np.repeat(np.repeat(rng.integers(0, 256, (100, 125, 3), np.uint8), 8, 0), 8, 1)  # 1000 x 800
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", quality=95)
    assert read_image(tmp_path / "photo.jpg").size == (1000, 800)
    half = read_image(tmp_path / "photo.jpg", max_pixels=250_000)
    assert half.size == (500, 400)
    # The same picture as the full decode shrunk, to within JPEG's DCT-scaling error.
    shrunk = np.asarray(Image.fromarray(pixels).reduce(2), np.float64)
    assert np.abs(np.asarray(half, np.float64) - shrunk).mean() < 4
    assert read_image(tmp_path / "photo.jpg", max_pixels=15_000).size == (125, 100)
    with pytest.raises(UnreadableImageError, match="1000 x 800"):
        read_image(tmp_path / "photo.jpg", max_pixels=10_000)  # more than 1/8 would be needed
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    with pytest.raises(UnreadableImageError, match="photo.png.*1000 x 800"):
        read_image(tmp_path / "photo.png", max_pixels=250_000)  # no scaled decoding for PNG


@pytest.fixture(scope="module")
def mean_colour_model(tmp_path_factory):
    """An image model [1, 3, 8, 8] -> [1, 3] (the mean colour): a fast base for webml train."""
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["colour"]),
        ],
        "mean_colour",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("colour", TensorProto.FLOAT, [1, 3])],
    )
    path = tmp_path_factory.mktemp("base") / "colour.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def colour_folder(root, per_class=4):
    from PIL import Image

    for name, rgb in (("red", (230, 20, 20)), ("blue", (20, 20, 230))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 10), tuple(c + 5 * i for c in rgb)).save(root / name / f"{i}.png")
    return root


def test_train_on_hostile_files(bombs, tmp_path, mean_colour_model):
    data = colour_folder(tmp_path / "data")
    (data / "red" / "bomb.png").write_bytes(bombs[0].read_bytes())
    (data / "red" / "bigger.png").write_bytes(bombs[1].read_bytes())
    os.mkfifo(data / "blue" / "pipe.png")
    (data / "blue" / "zero.jpg").symlink_to("/dev/zero")
    (data / "blue" / "folder.png").mkdir()  # a folder is walked, never read
    model, not_written = tmp_path / "m.npz", tmp_path / "not_written.npz"
    common = ["train", data, "--base-model", mean_colour_model, "--base-normalize", "unit"]
    common += ["--cache-dir", tmp_path / "cache", "--epochs", "2", "--validation-split", "0"]
    (code, _, err), (skip_code, skip_out, skip_err) = run_isolated(
        [*common, "-o", not_written], [*common, "-o", model, "--skip-unreadable"]
    )[0]
    assert code == 2, err
    assert err.startswith("webml: error: 4 image file(s) cannot be read") and "Traceback" not in err
    for name, why in [
        ("bomb.png", "13000 x 13000"),
        ("bigger.png", "Pillow's limit"),
        ("pipe.png", "named pipe (FIFO)"),
        ("zero.jpg", "character device"),
    ]:
        (line,) = [line for line in err.splitlines() if name in line]
        assert why in line
    assert "Warning" not in err and "embedding" not in err
    assert not not_written.exists()

    assert skip_code == 0, skip_err
    assert "webml: warning: skipped 4 unreadable image(s)" in skip_err
    assert len([line for line in skip_err.splitlines() if "bomb.png" in line]) == 1
    assert "Warning" not in skip_err and "trained on 8 images" in skip_out
    from webml.train.transfer import load_classifier

    assert load_classifier(model).class_names == ["blue", "red"]


def test_train_checks_its_output_before_any_work(tmp_path, mean_colour_model):
    data = colour_folder(tmp_path / "data")
    (tmp_path / "is_a_dir.npz").mkdir()
    os.mkfifo(tmp_path / "pipe.npz")
    base = ["--base-model", mean_colour_model, "--cache-dir", tmp_path / "cache"]
    cases = [
        (tmp_path / "is_a_dir.npz", ["is a folder", "name the file to write"]),
        (tmp_path, ["must end in .onnx", "or .npz"]),
        (tmp_path / "model.pkl", ["must end in .onnx", "or .npz"]),
        (tmp_path / "nowhere" / "m.npz", ["does not exist"]),
        (tmp_path / "pipe.npz", ["not a regular file"]),
    ]
    results, _ = run_isolated(*[["train", data, "-o", out, *base] for out, _ in cases], timeout=60)
    for (code, out, err), (_, fragments) in zip(results, cases):
        assert_one_clear_error(code, err, "--output", *fragments)
        assert out == ""
    assert not (tmp_path / "cache").exists()  # nothing was embedded


def test_train_writes_its_output_whole_or_not_at_all(capsys, tmp_path, mean_colour_model, monkeypatch):
    from webml.train.transfer import TransferClassifier

    data = colour_folder(tmp_path / "data")
    model = tmp_path / "m.npz"
    model.write_bytes(b"the previous model")

    def failing_save(self, path):
        with open(path, "wb") as f:
            f.write(b"half a mod")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TransferClassifier, "save", failing_save)
    argv = ["train", str(data), "-o", str(model), "--base-model", str(mean_colour_model), "--no-cache", "--epochs", "1"]
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.splitlines()[-1] == "webml: error: OSError: [Errno 28] No space left on device", err
    assert model.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "m.npz"]  # no temporary file left


@pytest.fixture(scope="module")
def colliding_model(tmp_path_factory):
    """x [1, 2] -> outputs whose names collide or escape as file names."""
    names = ["a_b", "a/b", "../escape", "Y", "y", "", "a_b-2"]
    nodes = [helper.make_node("Mul", ["x", f"k{i}"], [n or "_empty_"]) for i, n in enumerate(names)]
    nodes[5] = helper.make_node("Mul", ["x", "k5"], [""])  # an empty output name is not allowed: give it one below
    names[5] = "\u00e9t\u00e9"  # non-ASCII
    nodes[5] = helper.make_node("Mul", ["x", "k5"], [names[5]])
    graph = helper.make_graph(
        nodes,
        "collide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2]) for n in names],
        [onnx.numpy_helper.from_array(np.float32([i + 1]), f"k{i}") for i in range(len(names))],
    )
    path = tmp_path_factory.mktemp("collide") / "collide.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path, names


def test_run_output_names_never_collide_or_escape(capsys, tmp_path, colliding_model):
    path, names = colliding_model
    x = np.float32([[1, 10]])
    np.save(tmp_path / "x.npy", x)
    out_dir = tmp_path / "out" / "deeper"
    code, out, err = run(capsys, "run", str(path), "-i", f"x={tmp_path / 'x.npy'}", "-o", str(out_dir))
    assert code == 0, err
    saved = {p.name: np.load(p) for p in out_dir.iterdir()}
    assert len(saved) == len(names)  # one file per output
    assert sorted(p.name for p in tmp_path.rglob("*.npy")) == sorted(["x.npy", *saved])  # none outside out_dir
    assert len({name.casefold() for name in saved}) == len(saved)  # distinct on a case-insensitive disk too
    mapping = dict(re.findall(r"^output '(.*)' saved as (\S+)$", out, re.M))
    for i, name in enumerate(names):
        file_name = mapping.get(name, f"{name}.npy")
        np.testing.assert_array_equal(saved[file_name], x * (i + 1))
    assert mapping["a/b"] == "a_b-3.npy"  # a_b and a_b-2 are outputs' own names
    assert mapping["y"] == "y-2.npy" and "Y" not in mapping
    assert mapping["../escape"] == "_._escape.npy"
    assert f"saved {len(names)} output(s)" in out


def test_run_output_dir_checked_first_and_written_whole(capsys, tmp_path, colliding_model, monkeypatch):
    path, _ = colliding_model
    np.save(tmp_path / "x.npy", np.float32([[1, 2]]))
    (tmp_path / "file").write_text("x")
    code, out, err = run(capsys, "run", str(path), "-i", f"x={tmp_path / 'x.npy'}", "-o", str(tmp_path / "file"))
    assert_one_clear_error(code, err, "--output-dir", "is not a folder")
    assert out == ""  # refused before running the model

    calls = []
    original = np.save

    def failing_save(f, array, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        original(f, array, **kwargs)

    monkeypatch.setattr(np, "save", failing_save)
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "run", str(path), "-i", f"x={tmp_path / 'x.npy'}", "-o", str(out_dir))
    assert_clean_error(code, err, "No space left on device")
    assert list(out_dir.iterdir()) == []  # neither the two written nor a temporary file


def test_run_hostile_input_files(tmp_path, tiny_model):
    path, _ = tiny_model
    good = np.float32([[1, 2, 3, 4]])
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    huge = write_npy_header(tmp_path / "huge.npy", "{'descr':'<f4','fortran_order':False,'shape':(2000000,2000000)}")
    short = write_npy_header(
        tmp_path / "short.npy", "{'descr':'<f4','fortran_order':False,'shape':(1,4)}", good.tobytes()[:12]
    )
    longer = write_npy_header(
        tmp_path / "long.npy", "{'descr':'<f4','fortran_order':False,'shape':(1,4)}", good.tobytes() + b"extra"
    )
    pickled = write_npy_header(tmp_path / "obj.npy", "{'descr':'|O','fortran_order':False,'shape':(1,4)}", b"\x80")
    negative = write_npy_header(tmp_path / "neg.npy", "{'descr':'<f4','fortran_order':False,'shape':(0,-4)}")
    np.savez(tmp_path / "two.npz", a=good, b=good)
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    (tmp_path / "folder.npy").mkdir()
    cases = [
        (empty, ["empty.npy", "is empty"]),
        (huge, ["huge.npy", "[2000000, 2000000]", "16,000,000,000,000 bytes", "holds 0"]),
        (short, ["short.npy", "truncated"]),
        (longer, ["long.npy", "corrupt"]),
        (pickled, ["obj.npy", "not one of numbers"]),
        (negative, ["neg.npy", "impossible shape"]),
        (tmp_path / "two.npz", ["two.npz", "'a', 'b'", "x=", ":KEY"]),
        (f"{tmp_path / 'two.npz'}:c", ["no array 'c'"]),
        (tmp_path / "corrupt.npz", ["corrupt.npz", "not a readable .npz"]),
        (fifo, ["pipe.npy", "named pipe (FIFO)"]),
        (tmp_path / "folder.npy", ["folder.npy", "is a folder"]),
    ]
    results, peak_mib = run_isolated(*[["run", path, "-i", f"x={value}"] for value, _ in cases], timeout=60)
    for (code, out, err), (_, fragments) in zip(results, cases):
        assert_one_clear_error(code, err, "input 'x'", *fragments)
        assert out == ""
    assert peak_mib < 400, peak_mib


def test_run_reads_npz_inputs_by_a_clear_rule(capsys, tmp_path, tiny_model):
    """NAME=F.npz: the array called NAME, else the only one; NAME=F.npz:KEY: the array KEY."""
    path, w = tiny_model
    arrays = {k: np.float32([[i, -1, 2, 0.5]]) for i, k in enumerate(["x", "other", "only"])}
    np.savez(tmp_path / "named.npz", x=arrays["x"], other=arrays["other"])
    np.savez_compressed(tmp_path / "single.npz", only=arrays["only"])
    np.save(tmp_path / "big_endian.npy", arrays["x"].astype(">f4"))
    for value, expected in [
        (tmp_path / "named.npz", "x"),
        (f"{tmp_path / 'named.npz'}:other", "other"),
        (tmp_path / "single.npz", "only"),
        (f"{tmp_path / 'single.npz'}:only", "only"),
        (tmp_path / "big_endian.npy", "x"),
    ]:
        code, _, err = run(capsys, "run", str(path), "-i", f"x={value}", "-o", str(tmp_path / "out"))
        assert code == 0, err
        np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), np.maximum(arrays[expected] @ w, 0))
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "NAME=FILE.npz:KEY" in " ".join(capsys.readouterr().out.split())


def test_run_mutated_input_files_fail_cleanly(capsys, tmp_path, tiny_model):
    """Random byte changes to a .npy and an .npz: the run works or fails with one clear message."""
    path, _ = tiny_model
    np.save(tmp_path / "x.npy", np.float32([[1, 2, 3, 4]]))
    np.savez(tmp_path / "x.npz", x=np.float32([[1, 2, 3, 4]]))
    rng = np.random.default_rng(0)
    outcomes = collections.Counter()
    for source in ("x.npy", "x.npz"):
        original = (tmp_path / source).read_bytes()
        for i in range(60):
            data = bytearray(original)
            for pos in rng.integers(0, len(data), rng.integers(1, 4)):
                data[pos] = rng.integers(0, 256)
            if i % 4 == 0:
                data = data[: rng.integers(0, len(data))]
            mutated = tmp_path / f"m{i}{source[1:]}"
            mutated.write_bytes(bytes(data))
            code, _, err = run(capsys, "run", str(path), "-i", f"x={mutated}")
            assert code in (0, 2), err
            if code:
                assert_one_clear_error(code, err, "input 'x'")
            outcomes[code] += 1
    assert outcomes[2] > 20  # most mutations are caught (the rest change only values)
