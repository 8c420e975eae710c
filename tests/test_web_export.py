"""``webml export --web``: the folder runs the model in headless Chromium as webml runs it.

Each folder is served by a plain static HTTP server on loopback (Python's
http.server) and opened in Debian's Chromium through node + playwright-core
(tests/browser/run-web-export.mjs); the browser may fetch nothing from another
origin.  EfficientNet-Lite0 (webml.zoo, saved as ONNX), a classifier trained by
``webml train`` (.npz) and the BERT fixture give webml's outputs within 1e-4;
the demo page's image input gives webml's top-1 on the sample photos.  Missing
node, npm or Chromium fail loudly (never a skip).
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import webml
import webml.onnx
from test_transfer import make_images
from webml.images import model_input_preparer
from webml.zoo import efficientnet_lite as lite
from wgsl_tools import BROWSER, BrowserToolError, ensure_npm, tool

FIXTURE = Path(__file__).parent / "fixtures" / "bert_tiny.onnx"
PHOTOS = ("coffee", "chelsea", "astronaut")
TOLERANCE = 1e-4
SRC = str(Path(webml.__file__).parent.parent)


def webml_cli(*argv: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "webml.cli", *map(str, argv)],
        capture_output=True, text=True, env=environment, check=False, timeout=600,
    )


def export(model: Path, out: Path, *options: object) -> Path:
    done = webml_cli("export", "--web", model, out, *options)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.html", "model.json", "model.onnx", "ort-wasm-simd-threaded.asyncify.wasm",
         "ort.webgpu.bundle.min.mjs", "webml-model.js"]
    )
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def serve() -> Iterator[object]:
    """``serve(folder)``: the URL of folder/index.html on a static loopback server, stopped after the module."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/index.html"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _encode(a: np.ndarray) -> dict[str, object]:
    a = np.ascontiguousarray(a)
    data = base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode()
    return {"type": str(a.dtype), "dims": list(a.shape), "data": data}


def in_chromium(url: str, runs: list[dict[str, np.ndarray]] = (), images: list[str] = (), webgpu: bool = False,
                timeout_s: float = 300, screenshot: Path | None = None) -> dict:
    """Runs the task of run-web-export.mjs; outputs decoded to float32 arrays."""
    ensure_npm()
    node = tool("node")
    task = {"url": url, "webgpu": webgpu, "images": list(images), "screenshot": screenshot and str(screenshot),
            "runs": [{n: _encode(a) for n, a in feeds.items()} for feeds in runs]}
    with tempfile.TemporaryDirectory(prefix="webml-web-") as tmp:
        path = Path(tmp) / "task.json"
        path.write_text(json.dumps(task))
        env = {**os.environ, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR") or tmp}
        done = subprocess.run([node, str(BROWSER / "run-web-export.mjs"), str(path), "--timeout", str(timeout_s)],
                              cwd=BROWSER, env=env, capture_output=True, text=True, timeout=timeout_s + 30)
    if done.returncode != 0:
        raise BrowserToolError(f"run-web-export.mjs failed ({done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout)
    assert result["errors"] == [] and result["blocked"] == [], result
    result["runs"] = [
        {n: np.frombuffer(base64.b64decode(o["data"]), np.float32).reshape(o["dims"]) for n, o in run.items()}
        for run in result["runs"]
    ]
    return result


@pytest.fixture(scope="module")
def lite_folder(tmp_path_factory) -> tuple[Path, webml.MLGraph, webml.MLContext]:
    root = tmp_path_factory.mktemp("lite")
    keeping = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
    params = lite.pretrained_parameters()
    webml.onnx.save(lite.build(keeping, params), root / "lite0.onnx")
    labels = root / "labels.txt"
    labels.write_text("\n".join(lite.class_names()) + "\n")
    folder = export(root / "lite0.onnx", root / "site", "--normalize", "lite", "--labels", labels)
    context = webml.ml.create_context()
    print(f"EfficientNet-Lite0's web folder: {folder}")
    return folder, lite.build(context, params), context


def test_efficientnet_lite0_matches_webml(lite_folder, serve) -> None:
    folder, graph, context = lite_folder
    photos = [lite.sample_image_path(p) for p in PHOTOS]
    prepare = model_input_preparer([1, 3, 224, 224], "lite")
    batches = [prepare(p)[None] for p in photos]
    shot = folder.parent / "demo.png"  # the page after the last photo, to look at
    got = in_chromium(serve(folder), runs=[{"image": b} for b in batches], images=photos, screenshot=shot)
    assert got["backend"] == "wasm" and "Wasm" in got["status"], got["status"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names = [n.split(",")[0] for n in lite.class_names()]
    for photo, batch, run, top in zip(photos, batches, got["runs"], got["images"]):
        want = context.compute(graph, {"image": batch})["logits"]
        np.testing.assert_allclose(run["logits"], want, atol=TOLERANCE, rtol=0, err_msg=photo)
        assert int(run["logits"].argmax()) == int(want.argmax()), photo
        # The page's own image path (the browser decodes and resizes the photo): webml's top-1.
        assert len(top) == 5 and top[0]["index"] == int(want.argmax()), (photo, top)
        assert top[0]["text"].startswith(names[int(want.argmax())] + ":"), top


@pytest.mark.parametrize("webgpu", [False, True], ids=["wasm", "webgpu"])
def test_bert_fixture_matches_webml(tmp_path, serve, webgpu: bool) -> None:
    """Without WebGPU the page runs Wasm; with Chromium's WebGPU (SwiftShader) it runs WebGPU."""
    folder = export(FIXTURE, tmp_path / "bert")
    context = webml.ml.create_context()
    rng = np.random.default_rng(0)
    runs, wants = [], []
    for sequence, padding in ((16, 5), (9, 2)):
        ids = rng.integers(0, 100, size=(1, sequence), dtype=np.int64)
        mask = np.ones((1, sequence), np.int64)
        mask[:, sequence - padding :] = 0
        feeds = {"input_ids": ids, "attention_mask": mask}
        graph = webml.onnx.load(FIXTURE, context, free_dimensions={"sequence": sequence})
        runs.append(feeds)
        wants.append(context.compute(graph, feeds))
    got = in_chromium(serve(folder), runs=runs, webgpu=webgpu)
    assert got["backend"] == ("webgpu" if webgpu else "wasm"), got["status"]
    assert ("WebGPU" if webgpu else "Wasm") in got["status"], got["status"]
    for run, want in zip(got["runs"], wants):
        assert set(run) == set(want)
        for name in want:
            np.testing.assert_allclose(run[name], want[name], atol=TOLERANCE, rtol=0, err_msg=name)


def test_shrunk_model_matches_webml(tmp_path, serve) -> None:
    """A model written by webml shrink (int8 weights) runs in the page as webml runs it."""
    shape = ["--input-shape", "input_ids=1,16", "--input-shape", "attention_mask=1,16"]
    done = webml_cli("shrink", FIXTURE, "--to", "int8", "-o", tmp_path / "bert8.onnx", *shape, "--quiet")
    assert done.returncode == 0, done.stderr
    folder = export(tmp_path / "bert8.onnx", tmp_path / "site")
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 100, size=(1, 16), dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.ones((1, 16), np.int64)}
    context = webml.ml.create_context()
    want = context.compute(webml.onnx.load(tmp_path / "bert8.onnx", context), feeds)  # shapes fixed by shrink
    (run,) = in_chromium(serve(folder), runs=[feeds])["runs"]
    for name in want:
        np.testing.assert_allclose(run[name], want[name], atol=TOLERANCE, rtol=0, err_msg=name)


def test_trained_classifier_matches_webml(tmp_path, serve) -> None:
    from webml.train import export as train_export
    from webml.train.transfer import load_classifier

    make_images(tmp_path / "data", 4, seed=3, size=96)
    done = webml_cli("train", tmp_path / "data", "--epochs", 5, "--validation-split", 0, "-o", tmp_path / "pets.npz",
                     "--quiet", env={"WEBML_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    folder = export(tmp_path / "pets.npz", tmp_path / "site")
    description = json.loads((folder / "model.json").read_text())
    classifier = load_classifier(tmp_path / "pets.npz")
    assert description["labels"] == list(classifier.class_names) and description["image"]["crop"] < 1
    context = webml.ml.create_context()
    graph = train_export.classifier_graph(context, classifier)
    photos = sorted(str(p) for p in (tmp_path / "data").glob("*/*"))[::4][:3]
    meta = train_export.classifier_metadata(webml.onnx.read_model(folder / "model.onnx"))
    batches = [train_export.pixels(meta, [p]).astype(np.float32) for p in photos]
    got = in_chromium(serve(folder), runs=[{"image": b} for b in batches], images=photos)
    for photo, batch, run, top in zip(photos, batches, got["runs"], got["images"]):
        want = context.compute(graph, {"image": batch})["probabilities"]
        np.testing.assert_allclose(run["probabilities"], want, atol=TOLERANCE, rtol=0, err_msg=photo)
        assert top[0]["index"] == int(want.argmax()), (photo, top, want)


def _clean_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.startswith("webml: error: ") and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def test_errors_are_clear(tmp_path) -> None:
    _clean_error(webml_cli("export", "--web", tmp_path / "nope.onnx", tmp_path / "a"), "no such model file")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    _clean_error(webml_cli("export", "--web", bad, tmp_path / "b"), "bad.onnx")
    assert not (tmp_path / "b").exists()
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a classifier")
    _clean_error(webml_cli("export", "--web", junk, tmp_path / "c"), "junk.npz", "not a usable ONNX model")
    _clean_error(webml_cli("export", "--web", tmp_path, tmp_path / "d"), "not a regular file")
    labels = tmp_path / "labels.txt"
    labels.write_text("one\ntwo\n")
    _clean_error(webml_cli("export", "--web", FIXTURE, tmp_path / "e", "--labels", labels), "2 labels given")
    assert not any((tmp_path / n).exists() for n in "bcde")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    _clean_error(webml_cli("export", "--web", FIXTURE, full), "exists and is not empty")
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    _clean_error(webml_cli("export", "--web", FIXTURE, afile), "is not a folder")
    _clean_error(webml_cli("export", "--web", FIXTURE, tmp_path / "no" / "such" / "out"), "does not exist")
