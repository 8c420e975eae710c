"""The Teach page's service side: samples in, a classifier trained by :func:`webml.train.train_classifier`, out.

The page (``static/teach/``) sends camera frames as the planes ``VideoFrame.copyTo`` gives (WebCodecs:
I420 or NV12, the central square of the frame, no canvas and no RGB conversion in the page), as one
message of the service's frame format (:mod:`webml.serve.frames`: a u32 header length, a JSON header
``{"format", "width", "height", "layout": [{"offset", "stride"}, ...], "colorSpace": {"matrix",
"fullRange"}}``, the planes' bytes) with the type :data:`PLANES_TYPE`; the service converts them with
the in-graph pieces of :mod:`webml.media` (colour conversion and resize run in a graph, the planes shared
with the engine).  Uploaded images, and camera frames of other formats, go as before: the raw RGBA bytes
of a canvas at the model's input size (``application/octet-stream``, no base64).  This module keeps the samples
as PNG files in a private temporary folder, trains the same way ``webml train`` does (EfficientNet-Lite0
features, a trainable softmax head, Adam) in a thread, reports the progress per epoch, classifies
preview frames with the trained classifier and exports it as ONNX, as webml's ``.npz`` or as a web folder.

Routes (under ``/teach/api``; the writes need the header ``X-Webml-Teach: 1`` and, when an ``Origin``
is sent, the page's own origin, so a page of another origin cannot use them — the header forces a
CORS preflight the service never answers):

* ``GET info`` — ``{"image_size": 224}``: the frame size the page sends;
* ``POST samples`` — one frame (planes, or RGBA); ``{"id": N}``;
* ``POST train`` — ``{"classes": [{"name": ..., "samples": [ids]}], "epochs": E}``; training starts;
* ``GET status`` — the state (``idle``, ``embedding``, ``training``, ``done``, ``error``), epochs and history;
* ``POST predict`` — one frame; ``{"classes": [...], "probabilities": [...]}``;
* ``GET export?format=onnx|webml|web`` — the trained classifier as a download (``web``: a zip of the folder
  ``webml export --web`` writes, onnxruntime-web included).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import threading
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["MAX_EPOCHS", "MAX_PLANES_SIDE", "MAX_SAMPLES", "PLANES_TYPE", "Teach", "routes"]

#: Samples the service keeps at most (one session's worth: 224x224 PNGs).
MAX_SAMPLES = 2000
MAX_EPOCHS = 200
MAX_CLASSES = 32
MAX_TRAIN_REQUEST_BYTES = 1 << 20
#: The media type of a frame sent as planes (I420 / NV12, VideoFrame.copyTo's layout).
PLANES_TYPE = "application/x-webml-planes"
#: The largest side of a frame sent as planes (a camera's square crop; 2048 is more than any webcam's height).
MAX_PLANES_SIDE = 2048
_MAX_PLANES_BYTES = MAX_PLANES_SIDE * MAX_PLANES_SIDE * 3 // 2 + (64 << 10)  # 4:2:0, with room for padding
_EPOCH_LINE = re.compile(r"epoch\s+(\d+)/(\d+).*?loss ([0-9.naif+-]+)(?: val_accuracy ([0-9.]+))?")


class TeachError(ValueError):
    """A request the Teach service refuses (HTTP 400/409)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Progress:
    """The ``progress`` stream given to training: its per-epoch lines become the live history."""

    def __init__(self, teach: Teach) -> None:
        self.teach = teach

    def isatty(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def write(self, text: str) -> int:
        for line in text.splitlines():
            m = _EPOCH_LINE.search(line)
            if not m:
                continue
            with self.teach.lock:
                self.teach.state = "training"
                self.teach.epoch, self.teach.epochs = int(m[1]), int(m[2])
                self.teach.history["loss"].append(float(m[3]))
                if m[4] is not None:
                    self.teach.history["val_accuracy"].append(float(m[4]))
        return len(text)


@dataclass
class Teach:
    """The Teach page's state: its samples, the training run, the trained classifier."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="webml-teach-")))
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: One computation at a time on the Teach context (training, a preview frame, an export).
    compute: threading.Lock = field(default_factory=threading.Lock)
    #: One frame conversion at a time (the FrameRunner's graphs and tensors are one caller's).
    convert: threading.Lock = field(default_factory=threading.Lock)
    samples: dict[int, Path] = field(default_factory=dict)
    state: str = "idle"
    message: str = ""
    epoch: int = 0
    epochs: int = 0
    history: dict[str, list[float]] = field(default_factory=lambda: {"loss": [], "val_accuracy": []})
    classifier: Any = None
    validation_accuracy: float | None = None
    _next: int = 1
    _context: Any = None
    _base: Any = None
    _runner: Any = None
    _feature_runner: Any = None

    def __post_init__(self) -> None:
        weakref.finalize(self, shutil.rmtree, str(self.folder), True)  # the samples go with the service

    @property
    def image_size(self) -> int:
        from ..zoo import efficientnet_lite as lite

        return int(lite.IMAGE_SIZE)

    def context(self) -> Any:
        import webml

        if self._context is None:
            self._context = webml.ml.create_context()
        return self._context

    def base(self) -> Any:
        """EfficientNet-Lite0's features; the page sends whole, already square frames: no crop."""
        from ..train import EfficientNetLite0Features

        if self._base is None:
            self._base = EfficientNetLite0Features(self.context(), batch_size=8, center_crop=False)
        return self._base

    # -- frames ---------------------------------------------------------------------------------

    def frame(self, data: bytes | bytearray, kind: str = "rgba") -> Any:
        """A PIL image from one frame: ``image_size``² RGBA bytes (a canvas's ImageData), or with
        ``kind="planes"`` a message of planes (see the module's notes)."""
        from PIL import Image

        if kind == "planes":
            return self._from_planes(data)
        size = self.image_size
        if len(data) != size * size * 4:
            raise TeachError(f"a frame is {size}x{size} RGBA: {size * size * 4} bytes, not {len(data)}")
        rgba = np.frombuffer(data, np.uint8).reshape(size, size, 4)
        return Image.fromarray(np.ascontiguousarray(rgba[:, :, :3]), "RGB")

    def _from_planes(self, data: bytes | bytearray) -> Any:
        """Planes -> RGB at the model's input size, by a graph of :mod:`webml.media` (no crop: the page
        sends the square it wants)."""
        from PIL import Image

        from ..media.colour import Preprocess
        from ..media.pipeline import FrameRunner

        layout, arrays, colour = _planes(*_planes_message(data))
        size = self.image_size
        with self.convert:
            if self._runner is None:
                self._runner = FrameRunner(self.context(), lambda b, x: {"rgb": x}, Preprocess(size=(size, size)))
            rgb = self._runner.run_planes(layout, arrays, colour)["rgb"][0]
        pixels = np.clip(np.rint(rgb), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        return Image.fromarray(np.ascontiguousarray(pixels), "RGB")

    def add_sample(self, data: bytes | bytearray, kind: str = "rgba") -> int:
        image = self.frame(data, kind)
        with self.lock:
            if len(self.samples) >= MAX_SAMPLES:
                raise TeachError(f"the Teach page keeps at most {MAX_SAMPLES} samples", 409)
            sid, self._next = self._next, self._next + 1
            path = self.folder / f"{sid}.png"
            self.samples[sid] = path
        image.save(path, format="PNG")
        return sid

    # -- training -------------------------------------------------------------------------------

    def start_training(self, request: Any) -> None:
        from ..train import ImageFolder

        if not isinstance(request, dict) or not isinstance(request.get("classes"), list):
            raise TeachError("train: give {\"classes\": [{\"name\": ..., \"samples\": [ids]}], \"epochs\": N}")
        classes = request["classes"]
        epochs = request.get("epochs", 20)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
            raise TeachError(f"train: epochs must be an integer in 1..{MAX_EPOCHS}")
        if not 2 <= len(classes) <= MAX_CLASSES:
            raise TeachError(f"train: give 2 to {MAX_CLASSES} classes")
        names: list[str] = []
        paths: list[str] = []
        labels: list[int] = []
        with self.lock:
            if self.state in ("embedding", "training"):
                raise TeachError("training is running already", 409)
            for i, c in enumerate(classes):
                name = c.get("name") if isinstance(c, dict) else None
                ids = c.get("samples") if isinstance(c, dict) else None
                if not isinstance(name, str) or not name.strip() or len(name) > 100:
                    raise TeachError(f"train: class {i + 1} needs a name (1 to 100 characters)")
                if name.strip() in names:
                    raise TeachError(f"train: two classes are named {name.strip()!r}")
                if not isinstance(ids, list) or len(ids) < 2:
                    raise TeachError(f"train: class {name.strip()!r} needs at least 2 samples")
                unknown = [s for s in ids if not isinstance(s, int) or s not in self.samples]
                if unknown:
                    raise TeachError(f"train: unknown sample(s) {unknown[:5]}")
                names.append(name.strip())
                paths += [str(self.samples[s]) for s in ids]
                labels += [i] * len(ids)
            self.state, self.message, self.epoch, self.epochs = "embedding", "", 0, epochs
            self.history = {"loss": [], "val_accuracy": []}
            self.classifier, self.validation_accuracy = None, None
        folder = ImageFolder(str(self.folder), names, paths, np.asarray(labels, np.int32))
        threading.Thread(target=self._train, args=(folder, epochs), name="webml-teach-train", daemon=True).start()

    def _train(self, folder: Any, epochs: int) -> None:
        from ..train import EmbeddingCache, train_classifier

        try:
            with self.compute:
                result = train_classifier(self.context(), folder, self.base(), epochs=epochs, batch_size=16,
                                          validation_split=0.2, cache=EmbeddingCache(None),
                                          progress=_Progress(self))
        except Exception as exc:  # reported to the page
            with self.lock:
                self.state, self.message = "error", f"{type(exc).__name__}: {exc}"
            return
        with self.lock:
            self.classifier, self.validation_accuracy = result.classifier, result.validation_accuracy
            self.state = "done"

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "state": self.state, "message": self.message, "epoch": self.epoch, "epochs": self.epochs,
                "history": {k: list(v) for k, v in self.history.items()},
                "validation_accuracy": self.validation_accuracy,
                "classes": list(self.classifier.class_names) if self.classifier is not None else [],
                "samples": len(self.samples),
            }

    # -- using the classifier ---------------------------------------------------------------------

    def _trained(self) -> Any:
        with self.lock:
            if self.classifier is None:
                raise TeachError("no trained classifier yet: train first", 409)
            return self.classifier

    def _features_of_planes(self, data: bytes | bytearray) -> np.ndarray:
        """The network's features of a planes frame, in one graph: the frame pieces of :mod:`webml.media`
        (colour conversion, resize, ``(x - 127) / 128``) in front of EfficientNet-Lite0's features."""
        from ..media.colour import Preprocess
        from ..media.pipeline import FrameRunner
        from ..zoo import efficientnet_lite as lite

        layout, arrays, colour = _planes(*_planes_message(data))
        size = self.image_size
        with self.convert:
            if self._feature_runner is None:
                params = self.base().parameters()
                pre = Preprocess(size=(size, size), mean=(lite.MEAN,) * 3, std=(lite.STD,) * 3)
                build = lambda b, x: {"features": lite.add_features(b, params, x)}  # noqa: E731
                self._feature_runner = FrameRunner(self.context(), build, pre)
            return self._feature_runner.run_planes(layout, arrays, colour)["features"]

    def features(self, data: bytes | bytearray, kind: str = "rgba") -> np.ndarray:
        """The network's features ``[1, 1280]`` of one frame: planes go straight into one graph (no RGB
        image on the host), RGBA through the sample's path (a PIL image, the base's preprocessing)."""
        if kind == "planes":
            return self._features_of_planes(data)
        return self.base()([self.frame(data, kind)])

    def predict(self, data: bytes | bytearray, kind: str = "rgba") -> dict[str, Any]:
        classifier = self._trained()
        with self.compute:
            p = classifier.probabilities(self.context(), self.features(data, kind))[0]
        return {"classes": list(classifier.class_names), "probabilities": [float(v) for v in p]}

    def export(self, kind: str) -> tuple[bytes, str, str]:
        """The classifier's file: its bytes, media type and file name."""
        from ..train.export import export_onnx

        classifier = self._trained()
        with self.compute, tempfile.TemporaryDirectory(prefix="webml-teach-export-") as tmp:
            if kind == "onnx":
                path = Path(tmp) / "classifier.onnx"
                export_onnx(classifier, path, self.context())
                return path.read_bytes(), "application/octet-stream", path.name
            if kind == "webml":
                path = Path(tmp) / "classifier.npz"
                classifier.save(path)
                return path.read_bytes(), "application/octet-stream", path.name
            if kind == "web":
                return self._web_folder(classifier, Path(tmp)), "application/zip", "classifier-web.zip"
        raise TeachError("export: format is onnx, webml or web")

    @staticmethod
    def _web_folder(classifier: Any, tmp: Path) -> bytes:
        """``webml export --web`` of the classifier, as a zip of the folder."""
        from ..web import WebExportError, export_web

        classifier.save(tmp / "classifier.npz")
        try:
            export_web(tmp / "classifier.npz", tmp / "classifier-web")
        except WebExportError as exc:
            raise TeachError(f"export: {exc}", 409) from exc
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted((tmp / "classifier-web").rglob("*")):
                if path.is_file():
                    z.write(path, path.relative_to(tmp).as_posix())
        return buffer.getvalue()


# -- HTTP ---------------------------------------------------------------------------------------


def _same_origin(request: Request) -> None:
    if request.headers.get("x-webml-teach") != "1":
        raise TeachError("the Teach API needs the header X-Webml-Teach: 1", 403)
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
        raise TeachError(f"the Teach API is for its own page, not {origin[:100]!r}", 403)


def _kind(request: Request) -> str:
    """"planes" for a frame of planes (PLANES_TYPE), else "rgba"."""
    return "planes" if request.headers.get("content-type", "").split(";")[0].strip() == PLANES_TYPE else "rgba"


async def _body(request: Request, teach: Teach) -> bytearray:
    limit = _MAX_PLANES_BYTES if _kind(request) == "planes" else teach.image_size * teach.image_size * 4
    data = bytearray()  # writable: the planes' views of it are shared with the engine, not copied
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise TeachError(f"a frame is at most {limit} bytes", 413)
    return data


def routes(teach: Teach | None = None) -> list[Route]:
    """The Teach API's routes (one :class:`Teach` for the service)."""
    teach = Teach() if teach is None else teach

    def handler(fn: Any, write: bool) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                if write:
                    _same_origin(request)
                return await fn(request)
            except TeachError as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)

        return endpoint

    async def info(request: Request) -> Response:
        return JSONResponse({"image_size": teach.image_size})

    async def samples(request: Request) -> Response:
        data = await _body(request, teach)
        return JSONResponse({"id": await anyio.to_thread.run_sync(teach.add_sample, data, _kind(request))})

    async def train(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_TRAIN_REQUEST_BYTES:
                raise TeachError(f"train: the request is at most {MAX_TRAIN_REQUEST_BYTES} bytes", 413)
        try:
            spec = json.loads(body)
        except ValueError as exc:
            raise TeachError("train: the body is JSON") from exc
        teach.start_training(spec)
        return JSONResponse(teach.status())

    async def status(request: Request) -> Response:
        return JSONResponse(teach.status())

    async def predict(request: Request) -> Response:
        data = await _body(request, teach)
        return JSONResponse(await anyio.to_thread.run_sync(teach.predict, data, _kind(request)))

    async def export(request: Request) -> Response:
        kind = request.query_params.get("format", "onnx")
        content, media, name = await anyio.to_thread.run_sync(teach.export, kind)
        return Response(content, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})

    return [
        Route("/teach/api/info", handler(info, False)),
        Route("/teach/api/samples", handler(samples, True), methods=["POST"]),
        Route("/teach/api/train", handler(train, True), methods=["POST"]),
        Route("/teach/api/status", handler(status, False)),
        Route("/teach/api/predict", handler(predict, True), methods=["POST"]),
        Route("/teach/api/export", handler(export, False)),
    ]



def _planes_message(data: bytes | bytearray) -> tuple[dict[str, Any], memoryview]:
    """The header and payload of a planes frame (the service's frame format), or TeachError."""
    from .frames import FrameError, decode

    try:
        return decode(data, max_header_bytes=4096, max_message_bytes=_MAX_PLANES_BYTES)
    except FrameError as exc:
        raise TeachError(f"a planes frame: {exc}") from None


#: WebCodecs' VideoColorSpace matrices -> webml.media's (BT.601's 525- and 625-line forms are one matrix).
_MATRICES = {"bt709": "bt709", "smpte170m": "bt601", "bt470bg": "bt601"}


def _planes(header: dict[str, Any], payload: memoryview) -> tuple[Any, list[np.ndarray], Any]:
    """The layout, plane arrays (views of ``payload``) and colour space of a planes frame; TeachError if bad."""
    from ..media.frames import ColourSpace, frame_layout

    fmt, width, height, planes = (header.get(k) for k in ("format", "width", "height", "layout"))
    if fmt not in ("I420", "NV12"):
        raise TeachError(f"a planes frame: format must be I420 or NV12, got {str(fmt)[:20]!r}")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MAX_PLANES_SIDE:
            raise TeachError(f"a planes frame: {name} must be an integer from 2 to {MAX_PLANES_SIDE}")
    count = 3 if fmt == "I420" else 2
    if not isinstance(planes, list) or len(planes) != count or not all(isinstance(p, dict) for p in planes):
        raise TeachError(f"a planes frame: layout must list {count} planes as {{offset, stride}}")
    offsets, strides = [p.get("offset") for p in planes], [p.get("stride") for p in planes]
    for value in offsets + strides:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TeachError("a planes frame: offsets and strides must be non-negative integers")
    try:
        layout = frame_layout(fmt, width, height, strides, where="a planes frame")
    except ValueError as exc:  # odd sizes, strides shorter than a row
        raise TeachError(str(exc)) from None
    arrays = []
    for plane, offset in zip(layout.planes, offsets):
        end = offset + plane.rows * plane.row_bytes
        if end > len(payload):
            raise TeachError(f"a planes frame: plane {plane.name!r} ends at byte {end}, the data has {len(payload)}")
        arrays.append(np.frombuffer(payload, np.uint8, plane.rows * plane.row_bytes, offset).reshape(plane.rows, -1))
    space = header.get("colorSpace") or {}
    if not isinstance(space, dict):
        raise TeachError("a planes frame: colorSpace must be an object")
    # Unknown (null) is what Chromium reports for most cameras: BT.601, limited range, as its own drawImage assumes.
    matrix = _MATRICES.get(space.get("matrix"), "bt601")
    return layout, arrays, ColourSpace(matrix, "full" if space.get("fullRange") is True else "limited")
