"""The Teach page of ``webml serve`` (issue 16) in headless Chromium with a fake camera.

The camera is a Y4M video made here of three clearly different synthetic images (a red field with
white stripes, a green checkerboard, a blue field with a yellow disc), each shown for two seconds, looped
by Chromium.  tests/teach/run-teach.mjs (playwright-core, axe-core: npm packages pinned by
tests/teach/package-lock.json, installed by ``npm ci``) names the classes, records each while the
camera shows it (held mouse button, held Space key), trains in the service (webml.train's transfer
learning: EfficientNet-Lite0 features, a head, few epochs), checks that the live prediction names the
class shown, runs axe-core in each state (empty, recording, training, predicting) and exports the
classifier as ONNX.  A screenshot lands in the artifacts folder (``WEBML_TEST_ARTIFACTS``, by default
tests/artifacts/).  Node, npm and Chromium are prerequisites: missing, the test fails saying so.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from test_web_export import in_chromium
from webml.serve.teach import Teach
from webml.serve.testing import make_service, running
from wgsl_tools import ensure_npm, tool

ROOT = Path(__file__).resolve().parents[1]
TEACH_JS = ROOT / "tests" / "teach"
ARTIFACTS = Path(os.environ.get("WEBML_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))
W, H, FPS, SECONDS = 320, 240, 10, 2
NAMES = ["Stripes", "Checks", "Disc"]


class _Static(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                                                ".mjs": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, format: str, *args: object) -> None:
        pass


def class_images() -> list[np.ndarray]:
    """Three RGB frames, ``H`` x ``W``, of clearly different classes (their mean colours are ``CLASSES``)."""
    yy, xx = np.mgrid[0:H, 0:W]
    stripes = np.where(((xx // 20) % 2 == 0)[..., None], [255, 255, 255], [200, 20, 20])
    checks = np.where((((xx // 40) + (yy // 40)) % 2 == 0)[..., None], [20, 120, 20], [110, 200, 110])
    disc = np.where((((xx - W / 2) ** 2 + (yy - H / 2) ** 2) < 50 ** 2)[..., None], [240, 220, 40], [30, 30, 170])
    return [a.astype(np.uint8) for a in (stripes, checks, disc)]


def write_y4m(path: Path, images: list[np.ndarray]) -> None:
    """A 4:2:0 Y4M video (BT.601 full range, as C420jpeg says): each image for ``SECONDS`` at ``FPS``."""
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in images:
            r, g, b = (rgb[..., k].astype(np.float32) for k in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

            def half(p: np.ndarray) -> np.ndarray:
                return p.reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3))

            frame = b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, half(u), half(v)))
            for _ in range(FPS * SECONDS):
                f.write(b"FRAME\n" + frame)


def classes() -> list[dict[str, Any]]:
    """The classes as the driver sees them: names and the mean colour of their images."""
    means = [image.reshape(-1, 3).mean(axis=0) for image in class_images()]
    return [{"name": n, "rgb": [round(float(c)) for c in m]} for n, m in zip(NAMES, means, strict=True)]


CLASSES = classes()


def test_class_images_have_mean_colours_the_driver_tells_apart() -> None:
    means = np.array([c["rgb"] for c in CLASSES], np.float64)
    for i in range(len(means)):
        for j in range(i):
            assert np.linalg.norm(means[i] - means[j]) > 100, (NAMES[i], NAMES[j])


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    svc = make_service(tmp_path_factory.mktemp("serve"))
    with running(svc) as server:
        yield f"http://127.0.0.1:{server.port}"


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_teach_api_refuses_other_origins_and_bad_frames(service: str) -> None:
    frame = bytes(224 * 224 * 4)
    assert _post(f"{service}/teach/api/samples", frame, {})[0] == 403
    status, answer = _post(f"{service}/teach/api/samples", frame,
                           {"X-Webml-Teach": "1", "Origin": "http://evil.example"})
    assert status == 403 and "own page" in answer["error"]
    status, answer = _post(f"{service}/teach/api/samples", frame[:100], {"X-Webml-Teach": "1"})
    assert status == 400 and "RGBA" in answer["error"]
    status, answer = _post(f"{service}/teach/api/samples", frame, {"X-Webml-Teach": "1"})
    assert status == 200 and isinstance(answer["id"], int)
    one = json.dumps({"classes": [{"name": "a", "samples": [1]}]}).encode()
    status, answer = _post(f"{service}/teach/api/train", one, {"X-Webml-Teach": "1"})
    assert status == 400
    with urllib.request.urlopen(f"{service}/teach/", timeout=10) as r:
        page = r.read().decode()
        assert "webnn=(self)" in r.headers["permissions-policy"]
    assert 'aria-label="Predictions"' in page and "<script" in page and "http" not in page.split("<body>")[1]


def _planes_message(header: dict[str, Any], data: bytes) -> bytes:
    from webml.serve.frames import encode

    return encode(header, data)


def test_teach_converts_i420_planes_in_a_graph(service: str, tmp_path: Path) -> None:
    """A frame sent as VideoFrame.copyTo's I420 planes (padded rows, as copyTo may lay them out) is
    converted by webml.media's graph: the stored sample is the standard's conversion, resized."""
    import cv2

    rng = np.random.default_rng(16)
    side = 240
    rgb = cv2.resize(class_images()[2][:, 40:280], (side, side))
    rgb = cv2.GaussianBlur(rgb, (0, 0), 2)  # a photo's smoothness: the check is of colour, not of aliasing
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # BT.601 limited range, 4:2:0
    y, u, v = yuv[:side], yuv[side : side + side // 4].reshape(side // 2, side // 2), yuv[side + side // 4 :].reshape(
        side // 2, side // 2
    )
    strides = [side + 16, side // 2 + 8, side // 2 + 8]
    planes, layout, offset = [], [], 0
    for plane, stride in zip((y, u, v), strides):
        padded = rng.integers(0, 256, (plane.shape[0], stride), dtype=np.uint8)
        padded[:, : plane.shape[1]] = plane
        planes.append(padded.tobytes())
        layout.append({"offset": offset, "stride": stride})
        offset += padded.nbytes
    header = {"format": "I420", "width": side, "height": side, "layout": layout,
              "colorSpace": {"matrix": "smpte170m", "fullRange": False}}
    body = _planes_message(header, b"".join(planes))
    headers = {"X-Webml-Teach": "1", "Content-Type": "application/x-webml-planes"}
    status, answer = _post(f"{service}/teach/api/samples", body, headers)
    assert status == 200, answer
    teach = Teach()
    image = np.asarray(teach.frame(bytearray(body), "planes"), np.float64)
    # The truth: each plane resized bilinearly (OpenCV's INTER_LINEAR), then BT.601's float64 equations.
    from test_media_colour import ycbcr_to_rgb_float64

    def resized(plane: np.ndarray) -> np.ndarray:
        return cv2.resize(plane.astype(np.float32), (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float64)

    expected = ycbcr_to_rgb_float64(resized(y), resized(u), resized(v), "bt601", False).transpose(1, 2, 0)
    diff = np.abs(image - np.round(expected))
    assert image.shape == (224, 224, 3) and diff.max() <= 1, (diff.mean(), diff.max())
    # And close to OpenCV's own pipeline (nearest chroma, then a resize of the RGB) away from colour edges.
    opencv = cv2.resize(cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420), (224, 224), interpolation=cv2.INTER_LINEAR)
    assert np.abs(image - opencv).mean() < 0.5
    for bad, message in [
        ({**header, "width": 239}, "even width and height"),
        ({**header, "format": "YUY2"}, "format must be I420 or NV12"),
        ({**header, "layout": layout[:2]}, "layout must list 3 planes"),
        ({**header, "layout": [*layout[:2], {"offset": offset, "stride": strides[2]}]}, "plane 'v' ends at byte"),
        ({**header, "height": 4096}, "height must be an integer from 2 to 2048"),
    ]:
        status, answer = _post(f"{service}/teach/api/samples", _planes_message(bad, b"".join(planes)), headers)
        assert status == 400 and message in answer["error"], (bad, answer)
    status, answer = _post(f"{service}/teach/api/samples", b"\x00\x01", headers)
    assert status == 400 and "a planes frame" in answer["error"]
    # A prediction's features come from one graph (planes -> network), as the sample's path computes them.
    fused = teach.features(bytearray(body), "planes")
    via_image = teach.features(np.asarray(teach.frame(bytearray(body), "planes").convert("RGBA")).tobytes())
    cosine = float((fused @ via_image.T)[0, 0] / np.linalg.norm(fused) / np.linalg.norm(via_image))
    assert fused.shape == (1, 1280) and cosine > 0.999, cosine


def test_teach_rejects_a_second_training_and_an_unknown_sample() -> None:
    teach = Teach()
    with pytest.raises(ValueError, match="unknown sample"):
        teach.start_training({"classes": [{"name": "a", "samples": [1, 2]}, {"name": "b", "samples": [3, 4]}]})
    with pytest.raises(ValueError, match="train first"):
        teach.predict(bytes(224 * 224 * 4))


def test_the_teach_page_in_chromium_with_a_fake_camera(service: str, tmp_path: Path) -> None:
    chromium = os.environ.get("WEBML_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        raise RuntimeError(f"no Chromium at {chromium}: the Teach page test needs it (Debian: apt install chromium)")
    ensure_npm(TEACH_JS)
    video = tmp_path / "camera.y4m"
    write_y4m(video, class_images())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    uploads = []
    for k in range(2):
        side = (W - H) // 2 + 10 * k
        Image.fromarray(class_images()[0][:, side:side + H - 20]).save(tmp_path / f"upload{k}.png")
        uploads.append(str(tmp_path / f"upload{k}.png"))
    env = {**os.environ, "TEACH_CLASSES": json.dumps(CLASSES), "TEACH_UPLOADS": json.dumps(uploads),
           "XDG_RUNTIME_DIR": str(tmp_path)}
    done = subprocess.run([tool("node"), str(TEACH_JS / "run-teach.mjs"), f"{service}/teach/", str(video),
                           str(ARTIFACTS), "--timeout", "150"], cwd=TEACH_JS, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode in (0, 1), f"run-teach.mjs could not run ({done.returncode}):\n{done.stderr[-4000:]}"
    result = json.loads(done.stdout)
    (ARTIFACTS / "teach.json").write_text(json.dumps(result, indent=1))
    assert "error" not in result, json.dumps(result, indent=1)
    assert not result.get("pageErrors"), result["pageErrors"]
    assert result["cameraStatus"] == "Camera on."
    assert result["classFields"] == len(CLASSES)
    assert result["tabsToAddClass"] < 40 and result["addClassOutline"] == "solid", result
    assert result["focusAfterAdd"] == {"label": "Class name", "outline": "solid"}, result
    assert result["focusedThirdTab"] == "Delete class", result
    assert result["uploaded"] == 2
    # Camera frames went as VideoFrame.copyTo planes (no canvas RGB); only the two uploads as RGBA.
    assert result["sent"]["rgba"] == 2 and result["sent"]["planes"] >= sum(result["counts"]) - 2, result["sent"]
    assert all(n >= 3 for n in result["counts"]), result["counts"]
    assert result["countTexts"] == [f"{n} samples" for n in result["counts"]]
    assert result["trainStatus"].startswith(f"Trained on {len(CLASSES)} classes."), result["trainStatus"]
    assert result["chartText"].startswith("Epoch 15 of 15: loss "), result["chartText"]
    for cls in CLASSES:
        assert result["predictions"][cls["name"]], f"the live prediction never named {cls['name']}: {result}"
    assert result["predictionsLive"] == "polite"
    assert sorted(t.split(":")[0] for t in result["barTexts"]) == sorted(c["name"] for c in CLASSES)
    assert set(result["axe"]) == {"empty", "recording", "training", "predicting"}
    for state, violations in result["axe"].items():
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe-core in state {state}: {bad}"
    assert (ARTIFACTS / "teach.png").stat().st_size > 10_000
    import onnx
    import onnxruntime

    from webml.train import load_classifier
    from webml.train.export import classifier_metadata

    # The exported ONNX model (from the page's Export button) classifies the class images as the page did.
    model = onnx.load(result["exported"])
    assert classifier_metadata(model)["labels"] == NAMES
    session = onnxruntime.InferenceSession(result["exported"], providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for image, cls in zip(class_images(), NAMES, strict=True):
        side = (W - H) // 2
        square = Image.fromarray(image[:, side:side + H]).resize((224, 224), Image.BILINEAR)
        x = np.asarray(square, np.float32).transpose(2, 0, 1)[None]
        assert NAMES[int(np.argmax(session.run(None, {name: x})[0]))] == cls
    # webml's own format, from the same service.
    with urllib.request.urlopen(f"{service}/teach/api/export?format=webml", timeout=60) as r:
        (tmp_path / "classifier.npz").write_bytes(r.read())
    assert load_classifier(tmp_path / "classifier.npz").class_names == NAMES
    # The web folder (webml export --web), from a plain static server, offline: it predicts as the page did.
    with urllib.request.urlopen(f"{service}/teach/api/export?format=web", timeout=120) as r:
        zipfile.ZipFile(io.BytesIO(r.read())).extractall(tmp_path)
    site = tmp_path / "classifier-web"
    assert {"index.html", "model.onnx", "model.json", "webml-model.js"} <= {p.name for p in site.iterdir()}
    photos = []
    for image, cls in zip(class_images(), NAMES, strict=True):
        side = (W - H) // 2
        Image.fromarray(image[:, side:side + H]).save(tmp_path / f"{cls}.png")
        photos.append(str(tmp_path / f"{cls}.png"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Static, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = in_chromium(f"http://127.0.0.1:{server.server_address[1]}/index.html", images=photos, timeout_s=120)
    finally:
        server.shutdown()
        server.server_close()
    assert [NAMES[top[0]["index"]] for top in got["images"]] == NAMES, got["images"]
