"""``webml export --web``: any model as a static folder that runs it in the browser with onnxruntime-web.

:func:`export_web` writes into a new (or empty) folder:

* ``model.onnx``: the model (a trained ``.npz`` classifier becomes one ONNX
  model of base and head, as ``webml train --output x.onnx`` writes);
* ``model.json``: its inputs and outputs and, for an image model, how a photo
  becomes its input (size, layout, normalization, crop) and its class names;
* ``webml-model.js``: an ES module, ``load()`` and ``run(inputs)`` (see its
  header), that a page imports;
* ``index.html``: a small accessible demo (an image input and the top-5 for
  image models, inputs as JSON otherwise) that says whether WebGPU or Wasm ran;
* onnxruntime-web's runtime (``ort.webgpu.bundle.min.mjs`` and its Wasm
  binary), copied from the npm package pinned in ``runtime/package-lock.json``.

The runtime is installed once with ``npm ci`` (from the lock, no install
scripts) into ``$WEBML_CACHE_DIR/web-runtime/<hash of the lock>`` (default
``~/.cache/webml/web-runtime/...``); :func:`ensure_runtime` does it, and the
project's set-up runs it.  Nothing in the folder fetches anything from
elsewhere: serve it from any static file server.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["RUNTIME_FILES", "WebExportError", "ensure_runtime", "export_web", "model_description"]

HERE = Path(__file__).resolve().parent
RUNTIME = HERE / "runtime"
#: What the folder needs of onnxruntime-web's dist/: the bundle (WebGPU and Wasm execution) and its Wasm binary.
RUNTIME_FILES = ("ort.webgpu.bundle.min.mjs", "ort-wasm-simd-threaded.asyncify.wasm")
STATIC_FILES = ("index.html", "webml-model.js")
NPM_TIMEOUT_S = 600

_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
          11: "float64", 12: "uint32", 13: "uint64"}


class WebExportError(ValueError):
    """The model or the output folder cannot be used; the message says why."""


def _lock_hash() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((RUNTIME / name).read_bytes())
    return digest.hexdigest()


def runtime_dir() -> Path:
    """Where ``npm ci`` installs the pinned onnxruntime-web: the cache folder of this lock."""
    if os.environ.get("WEBML_CACHE_DIR"):
        base = Path(os.environ["WEBML_CACHE_DIR"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "webml"
    return base / "web-runtime" / _lock_hash()[:16]


def ensure_runtime() -> Path:
    """onnxruntime-web's ``dist`` folder, installed by ``npm ci`` from the lock when not in the cache yet."""
    folder = runtime_dir()
    dist = folder / "node_modules" / "onnxruntime-web" / "dist"
    stamp = folder / ".webml-installed"
    if stamp.is_file() and all((dist / f).is_file() for f in RUNTIME_FILES):
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise WebExportError(
            "npm is not on PATH: webml export --web installs onnxruntime-web with `npm ci` once "
            "(Debian: apt-get install nodejs npm; the project's setup does it)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and all((dist / f).is_file() for f in RUNTIME_FILES):
            return dist
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(RUNTIME / name, folder / name)
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        try:
            done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise WebExportError(f"`npm ci` of onnxruntime-web in {folder} ran past {NPM_TIMEOUT_S} s") from None
        if done.returncode != 0:
            raise WebExportError(
                f"`npm ci` of onnxruntime-web in {folder} failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
            )
        missing = [f for f in RUNTIME_FILES if not (dist / f).is_file()]
        if missing:
            raise WebExportError(f"onnxruntime-web in {dist} lacks {', '.join(missing)}")
        stamp.write_text("ok\n")
    return dist


def _value_info(v: Any) -> dict[str, Any]:
    t = v.type.tensor_type
    dims: list[int | str] = [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in t.shape.dim]
    return {"name": v.name, "type": _TYPES.get(t.elem_type, str(t.elem_type)), "shape": dims}


def model_description(model: Any, *, normalize: str | None = None, labels: list[str] | None = None) -> dict:
    """What ``model.json`` says of ``model`` (a ModelProto): inputs, outputs and, for an image model, its input."""
    from ..images import NORMALIZATIONS
    from ..train.export import classifier_metadata

    initializers = {i.name for i in model.graph.initializer}
    inputs = [_value_info(v) for v in model.graph.input if v.name not in initializers]
    outputs = [_value_info(v) for v in model.graph.output]
    description: dict[str, Any] = {"format": "webml.web.model", "version": 1, "inputs": inputs, "outputs": outputs}
    exported = classifier_metadata(model)
    if exported is not None:
        inp = exported["input"]
        description["image"] = {
            "input": inp["name"], "layout": "NCHW", "height": inp["shape"][2], "width": inp["shape"][3],
            "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "crop": float(inp.get("crop", 1.0)),
            "softmax": False,
        }
        description["labels"] = list(exported["labels"])
        return description
    if len(inputs) == 1 and len(inputs[0]["shape"]) == 4 and inputs[0]["type"] == "float32":
        shape = inputs[0]["shape"]
        nchw = shape[1] == 3
        if nchw or shape[3] == 3:
            height, width = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
            if isinstance(height, int) and isinstance(width, int):
                mean, std = NORMALIZATIONS[normalize or "imagenet"]
                description["image"] = {
                    "input": inputs[0]["name"], "layout": "NCHW" if nchw else "NHWC", "height": height,
                    "width": width, "mean": list(mean), "std": list(std), "crop": 1.0, "softmax": True,
                }
    if labels is not None:
        description["labels"] = labels
    return description


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise WebExportError(f"OUT {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise WebExportError(f"OUT {str(out)!r} exists and is not empty; name a new or empty folder")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise WebExportError(f"OUT {str(out)!r}: the folder {str(parent)!r} does not exist")


def _read_model(path: Path, scratch: Path) -> Any:
    """The ModelProto of ``path``: an ONNX file, or a webml train classifier (.npz) exported as one."""
    import webml.onnx
    from webml.files import RefusedFileError, open_regular_file
    from webml.train.transfer import is_classifier_file, load_classifier

    if not path.exists():
        raise WebExportError(f"no such model file: {str(path)!r}")
    try:
        open_regular_file(path).close()
    except RefusedFileError as exc:
        raise WebExportError(f"MODEL {exc}") from None
    if path.suffix.lower() != ".onnx" and is_classifier_file(path):
        from webml.train.export import export_onnx

        try:
            classifier = load_classifier(path)
            onnx_path = scratch / "model.onnx"
            export_onnx(classifier, onnx_path)
        except (ValueError, FileNotFoundError) as exc:
            raise WebExportError(f"{str(path)!r}: {exc}") from None
        path = onnx_path
    try:
        return webml.onnx.read_model(path)
    except webml.onnx.OnnxImportError as exc:
        raise WebExportError(f"{str(path)!r} is not a usable ONNX model or webml classifier: {exc}") from None


def export_web(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    normalize: str | None = None,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """Write the web folder of ``model_path`` into ``out`` (new or empty); returns ``model.json``'s content."""
    import onnx

    out = Path(out)
    _check_out(out)
    model_path = Path(model_path)
    with tempfile.TemporaryDirectory(prefix="webml-web-") as tmp:
        model = _read_model(model_path, Path(tmp))
        description = model_description(model, normalize=normalize, labels=labels)
        classes = None
        if labels is not None and description["outputs"]:
            shape = description["outputs"][0]["shape"]
            classes = shape[-1] if shape and isinstance(shape[-1], int) else None
        if classes is not None and labels is not None and len(labels) != classes:
            raise WebExportError(f"{len(labels)} labels given, the model's first output has {classes} classes")
        dist = ensure_runtime()
        staging = Path(tempfile.mkdtemp(prefix=".webml-web-", dir=out.resolve().parent))
        try:
            onnx.save_model(model, os.fspath(staging / "model.onnx"))
            (staging / "model.json").write_text(json.dumps(description, indent=1) + "\n", encoding="utf-8")
            static = resources.files(__package__).joinpath("static")
            for name in STATIC_FILES:
                (staging / name).write_bytes(static.joinpath(name).read_bytes())
            for name in RUNTIME_FILES:
                shutil.copyfile(dist / name, staging / name)
            if out.is_dir():
                out.rmdir()  # empty, checked above
            os.replace(staging, out)
            os.chmod(out, 0o755)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return description
