"""What a batch worker runs: the model, described in the driver and built once in each worker.

:class:`ModelSpec` is a small picklable description (the driver checks it
before any Ray work starts); :func:`make_runner` turns it into a runner in
a worker, which builds its WebNN graph there, once (the worker counts the
graphs compiled on its context, so a run shows none is rebuilt per batch).

Runners take a list of items and give, per item, either a dict of result
columns or an error message naming what was wrong with that item; an error
in one item never stops the others.

* :class:`LiteRunner`: the pretrained EfficientNet-Lite0 on image files,
  ``batch_size`` images per compute (the last batch padded), preprocessed as
  :func:`webml.zoo.efficientnet_lite.classify` does;
* :class:`OnnxClassifierRunner`: an ONNX image classifier, one image per
  compute, prepared and scored as ``webml classify --model`` does;
* :class:`HeadRunner`: a classifier trained by ``webml train`` (``.npz``) on
  EfficientNet-Lite0, base and head in one graph (as ``webml train`` exports
  it to ONNX), one image per compute;
* :class:`OnnxRunner`: any ONNX model of one or more inputs on ``.npy``
  files (one input) or Parquet rows (a column per input), one item per
  compute, as ``webml run`` does, so outputs are the same bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..scores import softmax, top_classes

__all__ = ["IMAGE_COLUMNS", "LITE", "ModelSpec", "make_runner"]

#: The name of the built-in model (``model=None`` or ``"-"`` too).
LITE = "efficientnet-lite0"

#: Result columns of an image classifier: the top-k class names and their probabilities, best first.
IMAGE_COLUMNS = ("labels", "probabilities")

Result = dict[str, Any] | str  # result columns, or the item's error message


@dataclass(frozen=True)
class ModelSpec:
    """The model a batch run uses, as the driver checked it (picklable: it travels to the workers)."""

    kind: str  # "lite", "onnx-classifier", "head" or "onnx"
    path: str | None = None
    backend: str | None = None
    top_k: int = 5
    labels: tuple[str, ...] | None = None
    normalize: str | None = None
    free_dimensions: dict[str, int] = field(default_factory=dict)
    #: Per model input (kind "onnx"): name -> (data type, shape), as the driver's check found them.
    inputs: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    #: Per model output (kind "onnx"): name -> (data type, shape).
    outputs: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)


def make_runner(spec: ModelSpec, context: Any, batch_size: int) -> Any:
    """The runner of ``spec`` on ``context``; its graph is built here, once."""
    if spec.kind == "lite":
        return LiteRunner(context, spec, batch_size)
    if spec.kind == "onnx-classifier":
        return OnnxClassifierRunner(context, spec)
    if spec.kind == "head":
        return HeadRunner(context, spec)
    if spec.kind == "onnx":
        return OnnxRunner(context, spec)
    raise ValueError(f"unknown model kind {spec.kind!r}")


def _top(scores: np.ndarray, k: int, names: Sequence[str] | None) -> dict[str, Any]:
    """A row of scores as a result row: the top ``k`` labels and their probabilities (webml.scores' rule)."""
    top = top_classes(scores, k, names)
    return {"labels": [name for name, _ in top], "probabilities": [p for _, p in top]}


def _image_error(exc: BaseException) -> str | None:
    """The message of an image that cannot be read, or None for an error that is not the image's."""
    from ..images import UnreadableImageError

    if isinstance(exc, UnreadableImageError):
        return exc.reason
    if isinstance(exc, FileNotFoundError):
        return "does not exist (removed while the run was going)"
    if isinstance(exc, (OSError, ValueError)):
        return f"is not a readable image ({exc})"
    return None


def _per_image(path: str, prepare: Callable[[str], np.ndarray], infer: Callable[[np.ndarray], Result]) -> Result:
    """``infer(prepare(path))``, or the image's error message where reading the image failed."""
    try:
        x = prepare(path)
    except Exception as exc:  # the image's own fault is its error; anything else is a bug
        message = _image_error(exc)
        if message is None:
            raise
        return message
    return infer(x)


#: The most images EfficientNet-Lite0 computes at once (a larger batch_size is run in steps of this):
#: its activations take about 50 MB per image.
MAX_LITE_BATCH = 32


class LiteRunner:
    """EfficientNet-Lite0 on image paths, ``batch_size`` per compute (at most :data:`MAX_LITE_BATCH`),
    with one graph of that batch size."""

    def __init__(self, context: Any, spec: ModelSpec, batch_size: int) -> None:
        from ..zoo import efficientnet_lite as lite

        batch_size = min(batch_size, MAX_LITE_BATCH)
        self.context, self.spec, self.batch_size = context, spec, batch_size
        self.names = [n.split(",")[0] for n in lite.class_names()]  # as efficientnet_lite.classify names them
        self.graph = lite.build(context, lite.pretrained_parameters(), batch=batch_size)

    def run(self, paths: Sequence[str]) -> list[Result]:
        from ..zoo import efficientnet_lite as lite

        results: list[Result] = []
        for first in range(0, len(paths), self.batch_size):
            chunk = paths[first : first + self.batch_size]
            inputs = np.zeros((self.batch_size, 3, lite.IMAGE_SIZE, lite.IMAGE_SIZE), np.float32)
            errors: dict[int, str] = {}
            for i, path in enumerate(chunk):
                try:
                    inputs[i] = lite.preprocess([path])[0]
                except Exception as exc:  # the image's own fault is its error; anything else is a bug
                    message = _image_error(exc)
                    if message is None:
                        raise
                    errors[i] = message
            probs = softmax(self.context.compute(self.graph, {"image": inputs})["logits"])
            results += [errors[i] if i in errors else _top(probs[i], self.spec.top_k, self.names)
                        for i in range(len(chunk))]
        return results


class OnnxClassifierRunner:
    """An ONNX image classifier, one image per compute (its dynamic batch dimension set to 1)."""

    def __init__(self, context: Any, spec: ModelSpec) -> None:
        import webml.onnx

        from ..images import model_input_preparer
        from ..train.export import classifier_metadata, pixels

        model = webml.onnx.read_model(spec.path)
        self.graph = webml.onnx.load(model, context, free_dimensions=spec.free_dimensions, input_shapes={})
        self.context, self.spec = context, spec
        ((self.input_name, desc),) = self.graph.input_descriptors.items()
        self.shape, self.data_type = list(desc.shape), desc.data_type
        self.output_name = next(iter(self.graph.output_descriptors))
        exported = classifier_metadata(model)
        if exported is not None:
            self.prepare = lambda image: pixels(exported, [image])[0]
        else:
            self.prepare = model_input_preparer(self.shape, spec.normalize or "imagenet")
        self.labels = spec.labels if spec.labels is not None else (exported or {}).get("labels")

    def run(self, paths: Sequence[str]) -> list[Result]:
        def prepare(path: str) -> np.ndarray:
            return np.broadcast_to(self.prepare(path), self.shape).astype(self.data_type)

        def infer(batch: np.ndarray) -> Result:
            out = self.context.compute(self.graph, {self.input_name: batch})[self.output_name]
            return _top(out.reshape(self.shape[0], -1)[0], self.spec.top_k, self.labels)

        return [_per_image(path, prepare, infer) for path in paths]


class HeadRunner:
    """A ``webml train`` classifier on EfficientNet-Lite0: base and head built as one graph, one image each."""

    def __init__(self, context: Any, spec: ModelSpec) -> None:
        from ..train.embeddings import EfficientNetLite0Features
        from ..train.export import INPUT_NAME, OUTPUT_NAME, classifier_graph
        from ..train.transfer import load_classifier

        classifier = load_classifier(spec.path)
        self.graph = classifier_graph(context, classifier)
        self.context, self.spec, self.names = context, spec, list(classifier.class_names)
        self.input_name, self.output_name = INPUT_NAME, OUTPUT_NAME
        crop = bool(classifier.base_spec.get("center_crop", True))
        self.pixels = EfficientNetLite0Features(context, center_crop=crop).pixels  # the base's preprocessing

    def run(self, paths: Sequence[str]) -> list[Result]:
        def infer(x: np.ndarray) -> Result:
            probs = self.context.compute(self.graph, {self.input_name: x})[self.output_name][0]
            return _top(probs, self.spec.top_k, self.names)

        return [_per_image(path, lambda p: self.pixels([p]), infer) for path in paths]


class OnnxRunner:
    """Any ONNX model, one item per compute, on a graph built once with every dimension fixed."""

    def __init__(self, context: Any, spec: ModelSpec) -> None:
        import webml.onnx

        self.graph = webml.onnx.load(spec.path, context, free_dimensions=spec.free_dimensions, input_shapes={})
        self.context, self.spec = context, spec

    def run(self, items: Sequence[Any]) -> list[Result]:
        """``items``: ``.npy`` paths (a model of one input) or dicts of Parquet cells by input name."""
        results: list[Result] = []
        for item in items:
            try:
                feeds = self._npy(item) if isinstance(item, str) else self._cells(item)
            except ValueError as exc:
                results.append(str(exc))
                continue
            outputs = self.context.compute(self.graph, feeds)
            results.append({name: outputs[name] for name in self.spec.outputs})
        return results

    def _npy(self, path: str) -> dict[str, np.ndarray]:
        ((name, (data_type, shape)),) = self.spec.inputs.items()
        return {name: read_npy(path, name, data_type, shape)}

    def _cells(self, row: dict[str, Any]) -> dict[str, np.ndarray]:
        from ..dtypes import numpy_dtype

        feeds = {}
        for name, (data_type, shape) in self.spec.inputs.items():
            value = row.get(name)
            if value is None:
                raise ValueError(f"input {name!r}: the cell is empty (null)")
            dtype = np.dtype(numpy_dtype(data_type))
            try:
                array = np.asarray(value, dtype=dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"input {name!r}: the cell is not an array of {data_type} ({exc})") from None
            if array.size != int(np.prod(shape, dtype=np.int64)):
                raise ValueError(
                    f"input {name!r}: the cell holds {array.size} values of shape {list(array.shape)}, "
                    f"the model takes shape {list(shape)} ({int(np.prod(shape, dtype=np.int64))} values)"
                )
            feeds[name] = array.reshape(shape)
        return feeds


#: The largest ``.npy`` file read, in bytes.
MAX_NPY_BYTES = 2**31


def read_npy(path: str, name: str, data_type: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array in the ``.npy`` file ``path`` for input ``name``, of exactly ``data_type`` and ``shape``.

    Files come from strangers: only a regular file of at most :data:`MAX_NPY_BYTES`,
    no pickles (``allow_pickle=False``), and the header is checked against what the
    model takes before any data is copied (the file is memory-mapped, so a header
    that declares more than the file holds allocates nothing).  Anything wrong is a
    ``ValueError`` naming the input.
    """
    from ..dtypes import numpy_dtype
    from ..files import RefusedFileError, open_regular_file

    where = f"input {name!r}"  # the file is named by the item's id
    try:
        open_regular_file(path, MAX_NPY_BYTES).close()
    except (FileNotFoundError, RefusedFileError) as exc:
        raise ValueError(f"{where} {getattr(exc, 'reason', 'does not exist')}") from None
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:  # numpy parses the header with ast
        if "Python objects" in str(exc) or "allow_pickle" in str(exc):
            raise ValueError(f"{where} holds Python objects (a pickle), which webml never loads") from None
        raise ValueError(f"{where} is not a readable .npy file of numbers ({exc})") from None
    if not isinstance(mapped, np.ndarray) or mapped.dtype.hasobject or mapped.dtype.fields is not None:
        raise ValueError(f"{where} does not hold an array of numbers")
    expected = np.dtype(numpy_dtype(data_type))
    if mapped.dtype.newbyteorder("=") != expected:
        raise ValueError(f"{where} has dtype {mapped.dtype}, the model expects {expected}")
    if tuple(mapped.shape) != tuple(shape):
        raise ValueError(f"{where} has shape {list(mapped.shape)}, the model expects {list(shape)}")
    return np.array(mapped, dtype=expected)  # the copy: the file's bytes, now known to be what the model takes


def describe_onnx(path: str, context: Any, free_dimensions: dict[str, int]) -> tuple[dict, dict]:
    """The inputs and outputs ``{name: (data type, shape)}`` of the ONNX model at ``path``, fully fixed.

    Imports the model once in the driver so that a model webml cannot run,
    or one whose shapes are left dynamic, is refused before Ray starts.
    """
    import webml.onnx

    try:
        graph = webml.onnx.load(os.fspath(path), context, free_dimensions=free_dimensions, input_shapes={})
    except webml.onnx.OnnxImportError as exc:
        raise ValueError(f"model {Path(path).name!r}: {str(exc).removeprefix('webml.onnx.load: ')}") from None
    inputs = {n: (d.data_type, tuple(d.shape)) for n, d in graph.input_descriptors.items()}
    outputs = {n: (d.data_type, tuple(d.shape)) for n, d in graph.output_descriptors.items()}
    graph.destroy()
    return inputs, outputs
