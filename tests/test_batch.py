"""``webml.batch`` and ``webml batch`` on real Ray: a head started by this module (``ray start --head``
on loopback, joined by address), and one run that starts its own local Ray.

Outputs are checked item by item against ``webml run`` / ``webml classify`` run in-process on
the same files and against ONNX Runtime itself (Parquet), on a few hundred inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

import webml.batch
from webml.cli import main as webml_main

RNG = np.random.default_rng(19)
CLASSES = ["red", "green", "blue", "grey", "other"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """The address of a one-node Ray cluster on loopback (3 CPUs), stopped at the end by its own process.

    Its own --temp-dir (short: Ray's socket paths must fit 107 bytes): `ray start` writes the address
    it serves into TEMP_DIR/ray_current_cluster, where any `ray.init()` on this machine would
    otherwise find it, and join it, or hang on it once stopped.
    """
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    temp_dir = Path(tempfile.mkdtemp(prefix="webml-ray-", dir="/tmp"))
    port = _free_port()
    ports = [f"--{o}={_free_port()}" for o in (
        "ray-client-server-port", "dashboard-agent-listen-port", "metrics-export-port", "runtime-env-agent-port"
    )]
    log = temp_dir / "head.log"
    # --block: this process owns the cluster's processes and ends them on SIGTERM (a `ray stop` would
    # end every Ray on the machine, other users' too).
    with open(log, "w") as out:
        head = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={port}", "--num-cpus=3", "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={temp_dir}", *ports],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # up when a driver can join it
            assert head.poll() is None, log.read_text()
            probe = subprocess.run(
                [sys.executable, "-c", f"import ray; ray.init(address={address!r}); ray.shutdown()"],
                capture_output=True, timeout=90,
            )
            if probe.returncode == 0:
                break
            assert time.monotonic() < deadline, probe.stderr.decode()[-2000:]
            time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(10)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _classifier_model(path: Path) -> Path:
    """A small real image classifier: conv 3x3 -> relu -> global average pool -> gemm -> softmax, [N,3,8,8] -> [N,5]."""
    w = RNG.standard_normal((6, 3, 3, 3)).astype(np.float32) * 0.5
    b = RNG.standard_normal(6).astype(np.float32) * 0.1
    fc = RNG.standard_normal((6, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 5])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fc, "fc"))],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _two_input_model(path: Path) -> Path:
    """y = tanh(a @ W) * b: two inputs, a [2, 3] and b [4] (fixed shapes), for Parquet."""
    w = RNG.standard_normal((3, 4)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["h"]), helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Mul", ["t", "b"], ["y"])]
    graph = helper.make_graph(
        nodes, "two", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3]),
                       helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], [numpy_helper.from_array(w, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return _classifier_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


def _npy_folder(root: Path, n: int) -> list[Path]:
    files = []
    for i in range(n):
        sub = root / ("even" if i % 2 == 0 else "odd")
        sub.mkdir(parents=True, exist_ok=True)
        files.append(sub / f"{i:03d}.npy")
        np.save(files[-1], RNG.standard_normal((1, 3, 8, 8)).astype(np.float32))
    return files


def _photos(root: Path, n: int) -> list[Path]:
    """``n`` photo files (JPEG and PNG) cut from scikit-image's sample photos, in two sub-folders."""
    from webml.zoo.efficientnet_lite import sample_image_path

    names = ("chelsea", "coffee", "astronaut", "motorcycle_left")
    sources = [Image.open(sample_image_path(s)).convert("RGB") for s in names]
    files = []
    for i in range(n):
        image = sources[i % len(sources)]
        w, h = image.size
        f = 0.6 + 0.4 * ((i // len(sources)) % 5) / 4
        left, top = int((w - w * f) * ((i * 7) % 10) / 10), int((h - h * f) * ((i * 3) % 10) / 10)
        crop = image.crop((left, top, left + int(w * f), top + int(h * f)))
        if i % 3 == 0:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        files.append(sub / f"photo{i:02d}.{'jpg' if i % 2 else 'png'}")
        crop.save(files[-1])
    return files


def _rows(out: Path) -> dict[str, dict]:
    table = pq.read_table(out)
    return {row["id"]: row for row in table.to_pylist()}


def test_npy_outputs_equal_webml_run_item_by_item_and_bad_files_are_reported(cluster, model, tmp_path):
    data = tmp_path / "arrays"
    files = _npy_folder(data, 200)
    np.save(data / "wrong-shape.npy", np.zeros((1, 3, 4, 4), np.float32))
    np.save(data / "objects.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)  # a pickle inside
    (data / "truncated.npy").write_bytes((data / "even" / "000.npy").read_bytes()[:200])
    outside = tmp_path / "secret.npy"
    np.save(outside, np.ones((1, 3, 8, 8), np.float32))
    (data / "link.npy").symlink_to(outside)  # leads outside INPUT: skipped, never read
    os.mkfifo(data / "pipe.npy")  # would block a plain open(): skipped
    seen = []
    summary = webml.batch.run(model, data, tmp_path / "out", address=cluster, workers=2, batch_size=16,
                              progress=lambda done, total: seen.append((done, total)))
    assert summary.items == 203 and summary.succeeded == 200
    errors = {f.id: f.error for f in summary.failures}
    assert set(errors) == {"wrong-shape.npy", "objects.npy", "truncated.npy"}
    assert "has shape [1, 3, 4, 4], the model expects [1, 3, 8, 8]" in errors["wrong-shape.npy"]
    assert errors["objects.npy"] == "input 'x' holds Python objects (a pickle), which webml never loads"
    assert "is not a readable .npy file" in errors["truncated.npy"]
    assert summary.skipped == ["link.npy (a link that leads outside the input folder)", "pipe.npy (not a regular file)"]
    assert seen[-1] == (203, 203)
    # Each worker built its graph once, in __init__, and ran several batches on it.
    assert set(summary.graph_builds.values()) == {1}
    assert max(summary.workers.values()) > 16 and sum(summary.workers.values()) == 203
    rows = _rows(tmp_path / "out")
    field = pq.read_schema(next((tmp_path / "out").glob("*.parquet"))).field("probs")
    assert json.loads(field.metadata[b"webml.shape"]) == [1, 5]
    assert all(rows[i]["probs"] is None and rows[i]["error"] for i in errors)
    # webml run, in-process, on every file: the same values, bit for bit (the same graph, one item each).
    for path in files:
        saved = tmp_path / "run" / path.stem
        assert webml_main(["-q", "run", str(model), "-i", f"x={path}", "-o", str(saved)]) == 0
        expected = np.load(saved / "probs.npy")
        row = rows[path.relative_to(data).as_posix()]
        assert row["error"] is None
        np.testing.assert_array_equal(np.asarray(row["probs"], np.float32).reshape(1, 5), expected)


def test_images_equal_webml_classify_with_efficientnet_lite0_and_a_corrupt_one_is_reported(cluster, tmp_path, capsys):
    photos = _photos(tmp_path / "photos", 40)
    (tmp_path / "photos" / "a" / "broken.jpg").write_bytes(photos[1].read_bytes()[:300])  # a cut-off JPEG
    summary = webml.batch.run("-", tmp_path / "photos", tmp_path / "out", address=cluster, workers=2, batch_size=8)
    assert summary.items == 41 and [f.id for f in summary.failures] == ["a/broken.jpg"]
    assert "is not a readable image" in summary.failures[0].error
    assert set(summary.graph_builds.values()) == {1}
    rows = _rows(tmp_path / "out")
    capsys.readouterr()
    assert webml_main(["-q", "classify", "--json", *map(str, photos)]) == 0
    expected = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(expected) == 40
    for want in expected:
        row = rows[Path(want["image"]).relative_to(tmp_path / "photos").as_posix()]
        got = dict(zip(row["labels"], row["probabilities"]))
        # classify runs 16 images per graph, batch 8 here: the same network, float32 sums in another order,
        # so a class may swap places with one of equal probability (to 1e-4), never more.
        assert abs(row["probabilities"][0] - want["top"][0][1]) < 1e-4, row["id"]
        for label, p in want["top"]:
            if label in got:
                assert abs(got[label] - p) < 1e-4, (row["id"], label)
            else:  # a near-tie at the cut: it was as probable as the last one kept here
                assert p - row["probabilities"][-1] < 1e-4, (row["id"], label, p)


def _png_bomb(path: Path, width: int, height: int) -> None:
    """A PNG whose header declares ``width`` x ``height`` pixels and which holds almost nothing."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def test_an_onnx_image_classifier_with_labels_equals_webml_classify_model(cluster, model, tmp_path, capsys):
    photos = _photos(tmp_path / "photos", 12)
    _png_bomb(tmp_path / "photos" / "bomb.png", 10_000, 10_000)  # refused from its header, never decoded
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(CLASSES) + "\n")
    capsys.readouterr()
    status = webml_main(["-q", "batch", str(model), str(tmp_path / "photos"), str(tmp_path / "out"),
                         "--address", cluster, "--labels", str(labels), "--top-k", "3", "--batch-size", "5",
                         "--normalize", "unit"])
    out = capsys.readouterr().out
    assert status == 0 and "12 of 13 item(s) done, 1 failed" in out and "backend)" in out, out
    assert "FAILED bomb.png: declares 10000 x 10000 pixels" in out and "decompression bomb" in out, out
    rows = _rows(tmp_path / "out")
    assert webml_main(["-q", "classify", "--json", "--model", str(model), "--labels", str(labels), "--top-k", "3",
                       "--normalize", "unit", *map(str, photos)]) == 0
    for line in capsys.readouterr().out.splitlines():
        want = json.loads(line)
        row = rows[Path(want["image"]).relative_to(tmp_path / "photos").as_posix()]
        assert row["labels"] == [label for label, _ in want["top"]]
        np.testing.assert_allclose(row["probabilities"], [p for _, p in want["top"]], atol=1e-6)


def test_a_webml_train_classifier_runs_as_one_graph_and_equals_webml_classify_model(cluster, tmp_path, capsys):
    from webml.train.transfer import TransferClassifier

    head = {"w": (RNG.standard_normal((1280, 3)) * 0.05).astype(np.float32), "b": np.zeros(3, np.float32)}
    path = tmp_path / "pets.npz"
    TransferClassifier(["cat", "cup", "other"], head, "efficientnet-lite0",
                       {"kind": "efficientnet-lite0", "center_crop": True}).save(path)
    photos = _photos(tmp_path / "photos", 10)
    summary = webml.batch.run(path, tmp_path / "photos", tmp_path / "out", address=cluster, top_k=3, batch_size=4)
    assert summary.items == 10 and not summary.failures and set(summary.graph_builds.values()) == {1}
    rows = _rows(tmp_path / "out")
    capsys.readouterr()
    assert webml_main(["-q", "classify", "--json", "--model", str(path), "--top-k", "3", *map(str, photos)]) == 0
    for line in capsys.readouterr().out.splitlines():
        want = json.loads(line)
        row = rows[Path(want["image"]).relative_to(tmp_path / "photos").as_posix()]
        # classify runs base and head as two graphs, batch runs them as one: the same sums, float32 rounding apart.
        assert row["labels"] == [label for label, _ in want["top"]]
        np.testing.assert_allclose(row["probabilities"], [p for _, p in want["top"]], atol=1e-5)


def test_parquet_rows_equal_onnx_runtime_and_a_bad_row_is_reported(cluster, tmp_path):
    model = _two_input_model(tmp_path / "two.onnx")
    n = 60
    a = RNG.standard_normal((n, 2, 3)).astype(np.float32)
    b = RNG.standard_normal((n, 4)).astype(np.float32)
    keys = [f"row-{i}" for i in range(n)] + ["short", None]
    table = pa.table({
        "key": keys,
        "a": [x.reshape(-1).tolist() for x in a] + [[1.0, 2.0], [0.0] * 6],  # flat values, shape from the model
        "b": [x.tolist() for x in b] + [[0.0] * 4] * 2,
        "unused": list(range(n + 2)),
    })
    (tmp_path / "data").mkdir()
    pq.write_table(table.slice(0, 30), tmp_path / "data" / "part-0.parquet")
    pq.write_table(table.slice(30), tmp_path / "data" / "part-1.parquet")
    summary = webml.batch.run(model, tmp_path / "data", tmp_path / "out", address=cluster, workers=1,
                              batch_size=7, id_column="key")
    assert summary.items == n + 2
    errors = {f.id: f.error for f in summary.failures}
    assert errors.keys() == {"short", "<null>"}
    assert "holds 2 values" in errors["short"] and "[2, 3]" in errors["short"]
    assert errors["<null>"] == "the id column 'key' is null in this row"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rows = _rows(tmp_path / "out")
    for i in range(n):
        (want,) = session.run(None, {"a": a[i], "b": b[i]})
        np.testing.assert_allclose(np.asarray(rows[f"row-{i}"]["y"]).reshape(2, 4), want, rtol=1e-6, atol=1e-7)


def test_without_an_address_a_local_ray_is_started_and_stopped(model, tmp_path):
    assert not ray.is_initialized()
    files = _npy_folder(tmp_path / "arrays", 10)
    summary = webml.batch.run(model, tmp_path / "arrays", tmp_path / "out", workers=1, batch_size=4)
    assert summary.items == 10 and not summary.failures
    assert not ray.is_initialized()
    rows = _rows(tmp_path / "out")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for path in files:
        (want,) = session.run(None, {"x": np.load(path)})
        np.testing.assert_allclose(np.asarray(rows[path.relative_to(tmp_path / "arrays").as_posix()]["probs"]),
                                   want.reshape(-1), rtol=1e-5, atol=1e-6)


def test_the_backend_reaches_the_workers_reference_against_onnx_runtime(cluster, model, tmp_path, capsys):
    files = _npy_folder(tmp_path / "arrays", 12)
    status = webml_main(["-q", "batch", str(model), str(tmp_path / "arrays"), str(tmp_path / "out"),
                         "--address", cluster, "--backend", "reference", "--batch-size", "5", "--json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == report["succeeded"] == 12 and report["failures"] == []
    assert report["backend"] == "reference" and set(report["graph_builds"].values()) == {1}
    rows = _rows(tmp_path / "out")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for path in files:
        (want,) = session.run(None, {"x": np.load(path)})
        got = np.asarray(rows[path.relative_to(tmp_path / "arrays").as_posix()]["probs"]).reshape(want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_when_every_item_fails_the_command_exits_1_and_lists_them(cluster, model, tmp_path, capsys, monkeypatch):
    (tmp_path / "arrays").mkdir()
    for name in ("x", "forged\nFAILED y"):
        np.save(tmp_path / "arrays" / f"{name}.npy", np.zeros(3, np.float32))
    # $RAY_ADDRESS is the command's default --address, as `ray job submit` sets it: a closed port is refused...
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_free_port()}")
    assert webml_main(["batch", str(model), str(tmp_path / "arrays"), str(tmp_path / "out")]) == 2
    assert "--address '127.0.0.1:" in capsys.readouterr().err
    monkeypatch.setenv("RAY_ADDRESS", cluster)  # ...and the test's cluster is joined
    status = webml_main(["batch", str(model), str(tmp_path / "arrays"), str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert status == 1
    assert "FAILED x.npy: input 'x' has shape [3]" in captured.out
    assert "FAILED 'forged\\nFAILED y.npy': input 'x' has shape [3]" in captured.out  # one line, quoted
    assert "0 of 2 item(s) done, 2 failed" in captured.out
    assert "items: 2/2" in captured.err  # progress on stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["MODEL", "DATA", "OUT", "--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["-", "DATA", "OUT"], "MODEL: EfficientNet-Lite0 classifies images; the input holds npy files"),
        (["nothere.onnx", "DATA", "OUT"], "MODEL 'nothere.onnx': no such file"),
        (["MODEL", "EMPTY", "OUT"], "holds no images"),
        (["MODEL", "MIXED", "OUT"], "mixes kinds of files (1 images, 1 npy)"),
        (["MODEL", "DATA", "FULL"], "is a folder that is not empty"),
        (["MODEL", "DATA", "OUT", "--labels", "LABELS"], "labels and normalize go with images"),
        (["-", "PHOTOS", "OUT", "--normalize", "unit"], "normalize and --free-dim go with an ONNX model"),
        (["MODEL", "DATA", "OUT", "--free-dim", "M=2"], "--free-dim names 'M', which the model's inputs do not have"),
        (["MODEL", "nowhere", "OUT"], "INPUT 'nowhere' does not exist"),
        (["MODEL", "DATA", "OUT", "--address", "127.0.0.1:CLOSED"], "no Ray cluster answers there"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2_before_ray_starts(model, tmp_path, capsys, argv, message):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    (tmp_path / "empty").mkdir()
    (tmp_path / "mixed").mkdir()
    shutil.copy(tmp_path / "data" / "x.npy", tmp_path / "mixed")
    Image.new("RGB", (8, 8)).save(tmp_path / "mixed" / "x.png")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "labels.txt").write_text("\n".join(CLASSES))
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "x.png")
    names = {"MODEL": str(model), "DATA": str(tmp_path / "data"), "OUT": str(tmp_path / "out"),
             "EMPTY": str(tmp_path / "empty"), "MIXED": str(tmp_path / "mixed"), "FULL": str(tmp_path / "full"),
             "LABELS": str(tmp_path / "labels.txt"), "PHOTOS": str(tmp_path / "photos"),
             "127.0.0.1:CLOSED": f"127.0.0.1:{_free_port()}"}
    try:
        status = webml_main(["batch", *(names.get(a, a) for a in argv)])
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not ray.is_initialized()
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "out").exists()  # nothing made before every check passed


def test_api_arguments_are_checked_by_name(model, tmp_path):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.zeros((1, 3, 8, 8), np.float32))
    for kwargs, error, text in [
        ({"workers": 0}, ValueError, "workers must be a positive integer"),
        ({"batch_size": True}, ValueError, "batch_size must be a positive integer"),
        ({"progress": "yes"}, TypeError, "progress must be a callable"),
        ({"address": ""}, ValueError, "address must be a Ray address"),
        ({"backend": "tpu"}, ValueError, "backend must be one of"),
        ({"cpus_per_worker": 0}, ValueError, "cpus_per_worker must be a positive integer"),
        ({"runtime_env": {"pip": ["webml"]}}, ValueError, "runtime_env must be a dict, given with an address"),
        ({"labels": "cat,dog"}, TypeError, "labels must be a list of class names"),
    ]:
        with pytest.raises(error, match=text):
            webml.batch.run(model, tmp_path / "data", tmp_path / "out", **kwargs)
    with pytest.raises(TypeError, match="model must be a path"):
        webml.batch.run(3, tmp_path / "data", tmp_path / "out")
    assert not ray.is_initialized()


def test_help_has_examples_and_imports_neither_ray_nor_the_api():
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "webml.cli", "batch", "--help"],
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "webml batch - photos/ out/" in result.stdout.split("examples:\n", 1)[1]
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "webml.cli.batch" in imported
    assert not {"ray", "pyarrow", "onnxruntime", "webml.api", "webml.batch"} & imported


def test_the_build_count_is_taken_at_the_context_so_a_rebuild_would_show(model, tmp_path):
    """BatchWorker in-process (no Ray): graph_builds counts every graph compiled on the worker's context."""
    from webml.batch import models
    from webml.batch.worker import BatchWorker

    (path,) = _npy_folder(tmp_path / "arrays", 1)
    inputs, outputs = models.describe_onnx(str(model), webml.ml.create_context(), {"N": 1})
    spec = models.ModelSpec("onnx", str(model), free_dimensions={"N": 1}, inputs=inputs, outputs=outputs)
    worker = BatchWorker(spec, 4, backend_options={"intra_op_threads": 1})
    batch = pa.table({"id": ["a", "b"], "path": [str(path), str(path)]})
    assert worker(batch).column("graph_builds").to_pylist() == [1, 1]
    assert worker(batch).column("graph_builds").to_pylist() == [1, 1]  # a second batch: no new graph
    b = webml.MLGraphBuilder(worker.context)  # any graph built on the context counts, whoever builds it
    b.build({"y": b.relu(b.input("x", {"dataType": "float32", "shape": [1]}))})
    assert worker(batch).column("graph_builds").to_pylist() == [2, 2]
