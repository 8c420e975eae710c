"""The report of a shrink: file sizes, agreement with the float32 model, latency, what stayed wide.

Agreement is measured per output on calibration inputs, by the output's
*kind*: ``"classifier"`` (top-1 agreement and mean absolute logit error),
``"embedding"`` (mean cosine) or ``"other"`` (max relative error).  The
rule, unless ``kind=`` names one for every output: an output of rank 2
(``[batch, classes]``) is a classifier's, one of rank 3 or more
(``[batch, tokens, features]``...) an embedding, anything else "other".
Every kind also reports its max relative error.

Calibration inputs: a list of feeds (dicts of arrays), a ``.npy`` file (the
one input's arrays, split along the first axis into the input's batch), a
``.npz`` file (an array per input name, split alike), or a folder of
``.npy`` / ``.npz`` files or of images (resized to the input, ImageNet
normalization, as ``webml classify`` does for an ONNX model).  With none,
random inputs of the right shapes (normal floats, integers 0 or 1: valid ids
and masks for any model), and the report says so.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..api.graph import MLGraph
from ..images import model_input_preparer
from . import metrics
from .core import ShrinkError, ShrinkResult

__all__ = ["KINDS", "Report", "load_calibration", "random_inputs", "report"]

KINDS = ("classifier", "embedding", "other")
Feed = dict[str, np.ndarray]


@dataclass
class Report:
    """A shrink's numbers; ``str()`` is the printed report, :meth:`to_json` the JSON one."""

    to: str
    backend: str
    size_before: int
    size_after: int
    latency_ms_before: float
    latency_ms_after: float
    calibration: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    kept_wide: list[tuple[str, str]] = field(default_factory=list)
    precisions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size_ratio"] = round(self.size_ratio, 4)
        data["kept_wide"] = [{"layer": layer, "reason": reason} for layer, reason in self.kept_wide]
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def __str__(self) -> str:
        lines = [
            f"float32 -> {self.to}",
            f"size: {_mb(self.size_before)} -> {_mb(self.size_after)} ({100 * self.size_ratio:.1f}%)",
            f"latency on {self.backend}: {self.latency_ms_before:.2f} ms -> {self.latency_ms_after:.2f} ms (median)",
            f"calibration: {self.calibration}",
        ]
        for name, measures in self.outputs.items():
            shown = ", ".join(f"{k} {_number(v)}" for k, v in measures.items() if k != "kind")
            lines.append(f"output {name} ({measures['kind']}): {shown}")
        lines.append(f"kept wider than {self.to}: {len(self.kept_wide)}")
        # Layers kept for one reason at one precision are one line (the JSON lists each).
        groups: dict[tuple[str, str], list[str]] = {}
        for layer, reason in self.kept_wide:
            groups.setdefault((self.precisions.get(layer, "float32"), reason), []).append(layer)
        for (precision, reason), layers in groups.items():
            shown = ", ".join(layers[:4]) + (f" and {len(layers) - 4} more" if len(layers) > 4 else "")
            lines.append(f"  {shown} ({precision}): {reason}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 10**5 else f"{size} bytes"


def _number(value: float) -> str:
    return f"{value:.4g}"


def report(
    result: ShrinkResult,
    calibration: str | os.PathLike[str] | Sequence[Mapping[str, Any]] | None = None,
    *,
    kind: str | None = None,
    runs: int = 5,
    samples: int = 4,
    seed: int = 0,
) -> Report:
    """Measure ``result`` against its float32 graph (see the module docstring for what and how).

    ``samples`` random inputs are drawn when ``calibration`` is None; latency
    is the median of ``runs`` timed runs after one warm-up, on the result's context.
    """
    if kind is not None and kind not in KINDS:
        raise ShrinkError(f"report: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    original, shrunk = result.original, result.graph
    if calibration is None:
        feeds = random_inputs(original, samples, seed)
        described = f"{len(feeds)} random inputs (no calibration data given)"
    else:
        feeds, described = calibration_feeds(calibration, original)
    context = original.context
    before, after = _sizes(result)
    return Report(
        to=result.to,
        backend=context.backend,
        size_before=before,
        size_after=after,
        latency_ms_before=_latency(original, feeds[0], runs),
        latency_ms_after=_latency(shrunk, feeds[0], runs),
        calibration=described,
        outputs=_agreement(original, shrunk, feeds, kind),
        kept_wide=list(result.kept_wide),
        precisions=dict(result.precisions),
        notes=list(result.notes),
    )


def calibration_feeds(
    calibration: str | os.PathLike[str] | Sequence[Mapping[str, Any]], graph: MLGraph
) -> tuple[list[Feed], str]:
    """The feeds of ``calibration`` (a path, or a list of feeds) for ``graph``, and how to describe them."""
    if isinstance(calibration, (str, os.PathLike)):
        feeds = load_calibration(calibration, graph)
        described = f"{len(feeds)} inputs from {os.fspath(calibration)}"
    else:
        feeds = [dict(f) for f in calibration]
        described = f"{len(feeds)} given inputs"
    if not feeds:
        raise ShrinkError("calibration: the calibration set is empty")
    return feeds, described


def _sizes(result: ShrinkResult) -> tuple[int, int]:
    """Bytes on disk of the float32 and shrunk ONNX files (with any external data beside them)."""
    from ..onnx import save

    with tempfile.TemporaryDirectory(prefix="webml-shrink-") as folder:
        sizes = []
        for name, graph in (("float32", result.original), ("shrunk", result.graph)):
            save(graph, Path(folder) / f"{name}.onnx")
            sizes.append(sum(f.stat().st_size for f in Path(folder).glob(f"{name}.onnx*")))
    return sizes[0], sizes[1]


def _run(graph: MLGraph, feed: Feed) -> dict[str, np.ndarray]:
    """``graph``'s outputs (as float32) for ``feed`` (cast to its input types: keep_io='float16' takes float16)."""
    inputs = {n: np.asarray(feed[n]).astype(d.data_type, copy=False) for n, d in graph.input_descriptors.items()}
    return {n: np.asarray(v, np.float32) for n, v in graph.context.compute(graph, inputs).items()}


def _latency(graph: MLGraph, feed: Feed, runs: int) -> float:
    _run(graph, feed)  # warm-up: first-run allocations are not the model's speed
    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        _run(graph, feed)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def output_kind(shape: Sequence[int]) -> str:
    """The kind of an output by the module docstring's rule."""
    return "classifier" if len(shape) == 2 else "embedding" if len(shape) >= 3 else "other"


def _agreement(original: MLGraph, shrunk: MLGraph, feeds: list[Feed], kind: str | None) -> dict[str, dict[str, Any]]:
    pairs = [(_run(original, f), _run(shrunk, f)) for f in feeds]
    out: dict[str, dict[str, Any]] = {}
    for name, desc in original.output_descriptors.items():
        reference, got = (_collect([pair[side][name] for pair in pairs]) for side in (0, 1))
        measures: dict[str, Any] = {"kind": kind or output_kind(desc.shape)}
        if measures["kind"] == "classifier":
            measures["top1_agreement"] = metrics.top1_agreement(reference, got)
            measures["mean_abs_error"] = metrics.mean_abs_error(reference, got)
        elif measures["kind"] == "embedding":
            measures["mean_cosine"] = metrics.mean_cosine(reference, got)
        measures["max_relative_error"] = metrics.max_relative_error(reference, got)
        out[name] = measures
    return out


def _collect(arrays: list[np.ndarray]) -> np.ndarray:
    """One output's arrays over the feeds: joined along the batch axis (stacked for scalars)."""
    return np.concatenate(arrays) if arrays[0].ndim else np.stack(arrays)


def random_inputs(graph: MLGraph, count: int, seed: int = 0) -> list[Feed]:
    """``count`` feeds of ``graph``: normal floats, integers 0 or 1."""
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        feed = {}
        for name, desc in graph.input_descriptors.items():
            if desc.data_type.startswith("float"):
                feed[name] = rng.standard_normal(desc.shape).astype(np.float32)
            else:
                feed[name] = rng.integers(0, 2, desc.shape).astype(desc.data_type)
        feeds.append(feed)
    return feeds


def load_calibration(path: str | os.PathLike[str], graph: MLGraph) -> list[Feed]:
    """The feeds of ``graph`` in ``path`` (a .npy or .npz file, or a folder of them or of images)."""
    path = Path(path)
    if path.is_dir():
        return _folder(path, graph)
    if not path.is_file():
        raise ShrinkError(f"calibration: no such file or folder: {str(path)!r}")
    if path.suffix.lower() not in (".npy", ".npz"):
        raise ShrinkError(f"calibration: {str(path)!r} is not a .npy or .npz file, nor a folder")
    return _arrays_file(path, graph)


def _folder(path: Path, graph: MLGraph) -> list[Feed]:
    from ..images import IMAGE_EXTENSIONS

    files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    arrays = [f for f in files if f.suffix.lower() in (".npy", ".npz")]
    images = [f for f in files if f.suffix.lower() in IMAGE_EXTENSIONS]
    if arrays:
        return [feed for f in arrays for feed in _arrays_file(f, graph)]
    if images:
        return [_image_feed(f, graph) for f in images]
    raise ShrinkError(
        f"calibration: the folder {str(path)!r} has no .npy, .npz or image files "
        f"(images end in {', '.join(IMAGE_EXTENSIONS)})"
    )


def _arrays_file(path: Path, graph: MLGraph) -> list[Feed]:
    descs = graph.input_descriptors
    if path.suffix.lower() == ".npy" and len(descs) != 1:
        raise ShrinkError(
            f"calibration: {str(path)!r} holds one array; the model has inputs {sorted(descs)} (use a .npz)"
        )
    try:
        if path.suffix.lower() == ".npy":
            named = {next(iter(descs)): np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as loaded:
                named = {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError) as exc:
        raise ShrinkError(f"calibration: cannot read {str(path)!r} ({exc})") from None
    missing = sorted(descs.keys() - named.keys())
    if missing:
        raise ShrinkError(f"calibration: {str(path)!r} lacks inputs {missing} (it has {sorted(named)})")
    split = {name: _batches(named[name], desc.shape, name, path) for name, desc in descs.items()}
    counts = {len(v) for v in split.values()}
    if len(counts) != 1:
        raise ShrinkError(f"calibration: the inputs of {str(path)!r} hold different numbers of samples")
    return [{name: split[name][i] for name in descs} for i in range(counts.pop())]


def _batches(array: np.ndarray, shape: tuple[int, ...], name: str, path: Path) -> list[np.ndarray]:
    """``array`` as inputs of ``shape``: itself, or split along the first axis into the input's batch."""
    if array.shape == shape:
        return [array]
    batch = shape[0] if shape else 0
    if shape and batch and array.shape[1:] == shape[1:] and len(array) % batch == 0 and len(array):
        return [array[i : i + batch] for i in range(0, len(array), batch)]
    raise ShrinkError(
        f"calibration: {name!r} in {str(path)!r} has shape {list(array.shape)}; the input is {list(shape)} "
        "(or give N of them along the first axis)"
    )


def _image_feed(path: Path, graph: MLGraph) -> Feed:
    descs = graph.input_descriptors
    ((name, desc),) = descs.items() if len(descs) == 1 else ((None, None),)
    shape = list(desc.shape) if desc is not None else []
    if name is None or len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise ShrinkError(f"calibration: images need a model with one image input (NCHW or NHWC), not {descs}")
    return {name: np.broadcast_to(model_input_preparer(shape, "imagenet")(str(path)), shape).astype(np.float32)}
