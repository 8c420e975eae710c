"""Frozen feature extractors ("bases") for transfer learning, and a cache of their embeddings.

A base is anything that follows the :class:`FeatureExtractor` protocol: a
``name`` (which identifies it in caches and model files), a ``dim`` (the
width of its embeddings) and ``__call__(images) -> [N, dim]`` float32.
Two are provided:

* :class:`EfficientNetLite0Features`: the pooled 1280-wide features of the
  zoo's pretrained EfficientNet-Lite0 (the default base);
* :class:`OnnxFeatures`: a chosen output of any ONNX image model imported
  with :func:`webml.onnx.load` (its output is flattened per image).

Each builds one WebNN graph per batch size it runs (a single image runs as
a batch of one), except for a model whose batch is fixed: then the last
batch is padded.

:func:`compute_embeddings` runs a base over image files in batches, with
progress, through an :class:`EmbeddingCache`: in memory (for the process)
and on disk, one ``.npy`` per image keyed by the file's absolute path, size
and modification time and by the base's name, so a second training run on
the same folder reads the embeddings instead of recomputing them.  The disk
cache lives in ``$WEBML_CACHE_DIR/embeddings`` (default
``~/.cache/webml/embeddings``, or under ``$XDG_CACHE_HOME``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np

from ..api.context import MLContext
from ..images import NORMALIZATIONS, UnreadableImageError, read_rgb_image
from .image_folder import UnreadableImagesError

__all__ = [
    "NORMALIZATIONS",
    "EfficientNetLite0Features",
    "EmbeddingCache",
    "Embeddings",
    "FeatureExtractor",
    "OnnxFeatures",
    "base_from_spec",
    "clear_memory_cache",
    "compute_embeddings",
    "default_cache_dir",
    "read_image",
]

@runtime_checkable
class FeatureExtractor(Protocol):
    """A frozen base: ``images`` (PIL images or file paths) -> float32 ``[N, dim]`` embeddings.

    ``name`` must change whenever the embeddings would (other weights, other
    preprocessing): it keys the embedding cache.  A base may also have a
    ``spec`` dict from which :func:`base_from_spec` rebuilds it, so that a
    saved classifier can be used without naming its base again.
    """

    name: str
    dim: int

    def __call__(self, images: Sequence[Any]) -> np.ndarray: ...


def read_image(image: Any) -> Any:
    """A decoded RGB PIL image from a PIL image or a path; ``ValueError``/``OSError`` if unreadable.

    Files are read by :func:`webml.images.read_rgb_image` (regular files, bounded sizes).
    """
    return read_rgb_image(image)


def _normalize(pixels: np.ndarray, normalize: str) -> np.ndarray:
    mean, std = NORMALIZATIONS[normalize]
    return (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


class _BatchedGraph:
    """Runs a graph with one image-batch input over any number of images, ``batch`` at a time.

    ``build(n)`` makes the graph for batches of ``n``.  Each distinct batch
    size used gets its own graph (built once), so a single image runs as a
    batch of one; with ``fixed`` (a model whose batch is not dynamic) there is
    only the graph for ``batch`` and the last batch is padded with zeros.
    """

    def __init__(
        self,
        context: MLContext,
        build: Callable[[int], Any],
        input_name: str,
        output_name: str,
        batch: int,
        *,
        fixed: bool = False,
    ) -> None:
        self.context, self.build, self.input_name, self.output_name = context, build, input_name, output_name
        self.batch, self.fixed = batch, fixed
        self.graphs: dict[int, Any] = {}

    def graph(self, n: int) -> Any:
        """The graph for batches of ``n`` (built on first use)."""
        if n not in self.graphs:
            self.graphs[n] = self.build(n)
        return self.graphs[n]

    def run(self, inputs: np.ndarray) -> np.ndarray:
        outs = []
        for start in range(0, len(inputs), self.batch):
            chunk = inputs[start : start + self.batch]
            n = len(chunk)
            size = self.batch if self.fixed else n
            if n < size:
                chunk = np.concatenate([chunk, np.zeros((size - n, *chunk.shape[1:]), chunk.dtype)])
            out = self.context.compute(self.graph(size), {self.input_name: chunk})[self.output_name]
            outs.append(np.asarray(out, np.float32).reshape(size, -1)[:n])
        return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


class EfficientNetLite0Features:
    """The pretrained EfficientNet-Lite0's pooled features (1280 per image), as the zoo computes them.

    Preprocessing is the checkpoint's (:func:`webml.zoo.efficientnet_lite.preprocess`):
    the central 224/256 of the shorter side, resized to 224x224; with
    ``center_crop=False`` the whole image is resized instead (for images
    whose object fills the frame, such as Fashion-MNIST).  Images run
    ``batch_size`` at a time, each batch size used with its own graph.
    """

    dim = 1280

    def __init__(self, context: MLContext, *, batch_size: int = 16, center_crop: bool = True) -> None:
        if not isinstance(context, MLContext):
            raise TypeError(f"EfficientNetLite0Features: context must be an MLContext, got {type(context).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"EfficientNetLite0Features: batch_size must be a positive integer, got {batch_size!r}")
        self.context = context
        self.batch_size = batch_size
        self.center_crop = bool(center_crop)
        self.name = "efficientnet-lite0" + ("" if self.center_crop else "-nocrop")
        self.spec = {"kind": "efficientnet-lite0", "center_crop": self.center_crop}
        self._runner = _BatchedGraph(context, self._build, "image", "features", batch_size)
        self._params: dict[str, np.ndarray] | None = None

    @property
    def crop(self) -> float:
        """The central fraction of each image's shorter side that is kept (1: the whole image is resized)."""
        from ..zoo import efficientnet_lite as lite

        return lite.CROP_FRACTION if self.center_crop else 1.0

    def parameters(self) -> dict[str, np.ndarray]:
        """The pretrained network's parameters (read once)."""
        from ..zoo import efficientnet_lite as lite

        if self._params is None:
            self._params = lite.pretrained_parameters()
        return self._params

    def _build(self, batch: int) -> Any:
        from ..zoo import efficientnet_lite as lite

        return lite.build(self.context, self.parameters(), batch=batch, features=True)

    def pixels(self, images: Sequence[Any]) -> np.ndarray:
        """The images as the network sees them before normalization: RGB 0..255, float32 [N, 3, 224, 224]."""
        from ..zoo import efficientnet_lite as lite

        size = lite.IMAGE_SIZE
        batch = np.empty((len(images), 3, size, size), np.float32)
        for i, im in enumerate(images):
            batch[i] = lite.pixels(read_image(im), size, self.crop).transpose(2, 0, 1)
        return batch

    def preprocess(self, images: Sequence[Any]) -> np.ndarray:
        """The network's input: :meth:`pixels` normalized as ``(x - 127) / 128``."""
        mean, std = NORMALIZATIONS["lite"]
        return (self.pixels(images) - np.float32(mean[0])) / np.float32(std[0])

    def __call__(self, images: Sequence[Any]) -> np.ndarray:
        return self._runner.run(self.preprocess(images))


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxFeatures:
    """Output ``output`` (default: the first) of the ONNX image model at ``path``, flattened per image.

    The model's one input must be an NCHW or NHWC batch of 3-channel images;
    images are resized to its height and width and normalized with
    ``normalize`` (a key of :data:`NORMALIZATIONS`).  A dynamic batch
    dimension is set per run (at most ``batch_size`` images at a time);
    a fixed one is padded.  The name holds the model file's
    SHA-256, so a changed model never reuses old embeddings.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        context: MLContext,
        *,
        output: str | None = None,
        normalize: str = "imagenet",
        batch_size: int = 16,
    ) -> None:

        import webml.onnx

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such ONNX model file: {path!r}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
        model = webml.onnx.importer.read_model(path)
        initializers = {t.name for t in model.graph.initializer}
        inputs = [i for i in model.graph.input if i.name not in initializers]
        if len(inputs) != 1:
            raise ValueError(f"{path!r}: a feature extractor has one image input; the model has {len(inputs)}")
        first = inputs[0].type.tensor_type.shape.dim[:1]
        batch_dim = first[0].dim_param if first and first[0].dim_param else None

        def build(batch: int) -> Any:
            # input_shapes={}: every dimension settled here (an MLGraph) or a clear error naming it.
            free = {batch_dim: batch} if batch_dim else None
            return webml.onnx.load(model, context, free_dimensions=free, input_shapes={})

        self.graph = build(batch_size)
        ((input_name, desc),) = self.graph.input_descriptors.items()
        shape = list(desc.shape)
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise ValueError(f"{path!r}: input {input_name!r} {shape} is not an image batch (NCHW or NHWC, 3 channels)")
        outputs = list(self.graph.output_descriptors)
        output = outputs[0] if output is None else output
        if output not in self.graph.output_descriptors:
            raise ValueError(f"{path!r} has no output {output!r}; its outputs are {', '.join(map(repr, outputs))}")
        out_shape = list(self.graph.output_descriptors[output].shape)
        if not out_shape or out_shape[0] != shape[0]:
            raise ValueError(f"{path!r}: output {output!r} {out_shape} does not have the batch {shape[0]} first")
        self.context = context
        self.path = os.path.abspath(path)
        self.output = output
        self.normalize = normalize
        self.data_type = desc.data_type
        self.nchw = shape[1] == 3
        self.height, self.width = (shape[2], shape[3]) if self.nchw else (shape[1], shape[2])
        self.dim = int(np.prod(out_shape[1:], dtype=np.int64))
        self.sha256 = _file_digest(path)
        self.name = f"onnx:{Path(path).stem}:{self.sha256[:16]}:{output}:{normalize}"
        self.spec = {
            "kind": "onnx",
            "path": self.path,
            "sha256": self.sha256,
            "output": output,
            "normalize": normalize,
            "batch_size": batch_size,
        }
        self._runner = _BatchedGraph(context, build, input_name, output, shape[0], fixed=batch_dim is None)
        self._runner.graphs[shape[0]] = self.graph

    def __call__(self, images: Sequence[Any]) -> np.ndarray:
        from PIL import Image

        batch = []
        for im in images:
            pixels = np.asarray(read_image(im).resize((self.width, self.height), Image.Resampling.BILINEAR), np.float32)
            x = _normalize(pixels, self.normalize)
            batch.append(x.transpose(2, 0, 1) if self.nchw else x)
        inputs = np.stack(batch).astype(self.data_type) if batch else np.zeros((0,), np.float32)
        return self._runner.run(inputs)


def base_from_spec(spec: dict[str, Any], context: MLContext) -> FeatureExtractor:
    """Rebuild the base a classifier was trained on from its ``spec`` (as saved in the model file)."""
    kind = spec.get("kind")
    if kind == "efficientnet-lite0":
        return EfficientNetLite0Features(context, center_crop=bool(spec.get("center_crop", True)))
    if kind == "onnx":
        path = spec.get("path", "")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"the classifier's base model {path!r} does not exist (it was trained on it)")
        base = OnnxFeatures(
            path,
            context,
            output=spec.get("output"),
            normalize=spec.get("normalize", "imagenet"),
            batch_size=int(spec.get("batch_size", 16)),
        )
        if base.sha256 != spec.get("sha256"):
            raise ValueError(f"the base model {path!r} changed since the classifier was trained on it")
        return base
    raise ValueError(f"unknown base {json.dumps(spec)}: this webml knows efficientnet-lite0 and onnx bases")


# -- the cache ---------------------------------------------------------------------------------------------------

#: The process-wide in-memory cache: key -> embedding (shared by every EmbeddingCache), oldest evicted first.
_MEMORY: OrderedDict[str, np.ndarray] = OrderedDict()
_MEMORY_LIMIT = 50_000


def clear_memory_cache() -> None:
    """Forget the embeddings kept in memory (the disk cache is untouched)."""
    _MEMORY.clear()


def default_cache_dir() -> Path:
    """``$WEBML_CACHE_DIR/embeddings``, else ``$XDG_CACHE_HOME/webml/embeddings`` or ``~/.cache/webml/embeddings``."""
    if os.environ.get("WEBML_CACHE_DIR"):
        return Path(os.environ["WEBML_CACHE_DIR"]) / "embeddings"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "webml" / "embeddings"


class EmbeddingCache:
    """Embeddings by (base name, file path, size, mtime): in memory and, unless ``directory`` is None, on disk.

    ``hits`` and ``misses`` count lookups since creation (``memory_hits``
    and ``disk_hits`` split the hits).
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, memory: bool = True) -> None:
        self.directory = None if directory is None else Path(directory)
        self.memory = memory
        self.memory_hits = self.disk_hits = self.misses = 0

    @classmethod
    def default(cls) -> EmbeddingCache:
        """A cache in :func:`default_cache_dir`."""
        return cls(default_cache_dir())

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits

    @staticmethod
    def key(base_name: str, path: str | os.PathLike[str]) -> str:
        """The cache key of ``path``'s embedding by ``base_name`` (changes when the file does)."""
        st = os.stat(path)
        ident = f"{base_name}\0{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
        return hashlib.sha256(ident.encode()).hexdigest()

    def _file(self, base_name: str, key: str) -> Path:
        assert self.directory is not None
        folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in base_name)
        return self.directory / folder / f"{key}.npy"

    def get(self, base_name: str, path: str | os.PathLike[str], dim: int) -> np.ndarray | None:
        key = self.key(base_name, path)
        if self.memory and key in _MEMORY:
            self.memory_hits += 1
            return _MEMORY[key]
        if self.directory is not None:
            file = self._file(base_name, key)
            try:
                value = np.load(file, allow_pickle=False)
            except (OSError, ValueError):
                value = None
            if value is not None and value.shape == (dim,) and value.dtype == np.float32:
                self.disk_hits += 1
                self._remember(key, value)
                return value
        self.misses += 1
        return None

    def put(self, base_name: str, path: str | os.PathLike[str], value: np.ndarray) -> None:
        key = self.key(base_name, path)
        value = np.ascontiguousarray(value, np.float32)
        self._remember(key, value)
        if self.directory is None:
            return
        file = self._file(base_name, key)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, value)
            os.replace(tmp, file)  # atomic: a reader never sees half a file
        except OSError as exc:  # a read-only or full cache must not stop training
            print(f"webml: warning: cannot write the embedding cache {self.directory} ({exc})", file=sys.stderr)
            self.directory = None

    def _remember(self, key: str, value: np.ndarray) -> None:
        if not self.memory:
            return
        _MEMORY[key] = value
        _MEMORY.move_to_end(key)
        while len(_MEMORY) > _MEMORY_LIMIT:
            _MEMORY.popitem(last=False)


@dataclass
class Embeddings:
    """What :func:`compute_embeddings` returns.

    ``features[j]`` is the embedding of ``paths[kept[j]]``; ``skipped`` lists
    the unreadable files left out (only with ``skip_unreadable``) with why;
    ``computed`` and ``cached`` count the images run through the base and
    read from the cache.
    """

    features: np.ndarray
    kept: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0


def compute_embeddings(
    base: FeatureExtractor,
    paths: Sequence[str],
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = 32,
    skip_unreadable: bool = False,
    progress: bool | IO[str] = True,
) -> Embeddings:
    """The base's embeddings of the image files ``paths``, computed in batches of ``batch_size`` once.

    Files found in ``cache`` are not decoded again.  The others are decoded
    first; if any cannot be, every such file is reported at once in an
    :class:`UnreadableImagesError` (or, with ``skip_unreadable``, left out
    and listed in ``skipped``).  ``progress`` prints a progress line to
    stderr (or the stream given).
    """
    if not isinstance(base, FeatureExtractor):
        raise TypeError(f"compute_embeddings: base must be a FeatureExtractor (name, dim, __call__), got {base!r}")
    start_time = time.perf_counter()
    stream = sys.stderr if progress is True else (progress or None)
    features = np.empty((len(paths), base.dim), np.float32)
    todo: list[int] = []
    cached = 0
    for i, path in enumerate(paths):
        value = cache.get(base.name, path, base.dim) if cache is not None else None
        if value is None:
            todo.append(i)
        else:
            features[i] = value
            cached += 1
    bad: list[tuple[str, str]] = []
    readable: list[int] = []
    for i in todo:  # decode the new files first, so that bad ones are reported before the long part
        try:
            read_image(paths[i])
        except UnreadableImageError as exc:
            bad.append((paths[i], exc.reason))
        except (OSError, ValueError) as exc:
            bad.append((paths[i], str(exc)))
        else:
            readable.append(i)
    if bad and not skip_unreadable:
        raise UnreadableImagesError(bad)
    live = bool(stream and getattr(stream, "isatty", lambda: False)())
    if stream and readable:
        stream.write(f"embedding {len(readable)} image(s) with {base.name} ({cached} from the cache)\n")
    for s in range(0, len(readable), batch_size):
        chunk = readable[s : s + batch_size]
        out = np.asarray(base([paths[i] for i in chunk]), np.float32)
        if out.shape != (len(chunk), base.dim):
            raise ValueError(f"the base {base.name} returned {list(out.shape)} for {len(chunk)} images")
        for i, row in zip(chunk, out):
            features[i] = row
            if cache is not None:
                cache.put(base.name, paths[i], row)
        if live:
            done = s + len(chunk)
            stream.write(f"\r  {done}/{len(readable)} images, {time.perf_counter() - start_time:.1f} s\033[K")
            stream.flush()
    seconds = time.perf_counter() - start_time
    if stream:
        if live and readable:
            stream.write("\n")
        stream.write(
            f"embeddings: {len(readable)} computed, {cached} from the cache, "
            f"{len(bad)} unreadable skipped ({seconds:.1f} s)\n"
            if bad
            else f"embeddings: {len(readable)} computed, {cached} from the cache ({seconds:.1f} s)\n"
        )
        stream.flush()
    bad_set = {p for p, _ in bad}
    kept = np.asarray([i for i, p in enumerate(paths) if p not in bad_set], np.int64)
    return Embeddings(features[kept], kept, bad, len(readable), cached, seconds)
