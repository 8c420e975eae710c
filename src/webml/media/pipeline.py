"""A model fed frame after frame: the frame's planes go in as they are, everything else is the graph.

:class:`FrameRunner` builds, once per frame geometry (format, size, row
padding, colour space), one graph: the frame pieces of
:mod:`webml.media.colour` in front of the model.  Each frame's planes are
handed to the backend with :meth:`webml.MLContext.import_tensor`, which
shares the decoder's memory on onnxruntime and openvino; the host touches
no pixel.  :class:`FrameStats` keeps per-stage seconds (upload, inference;
the decoder's own in :class:`~webml.media.video.VideoSource`) and counts the
host copies of pixel data: ``upload_copies`` are the copies imports made
(0 where the backend shares the planes; one per plane on the reference and
webgpu backends), and nothing else in the runner copies a frame.

>>> import numpy, webml
>>> from webml.media.colour import Preprocess
>>> from webml.media.frames import frame_layout
>>> context = webml.ml.create_context(backend="onnxruntime")
>>> def mean_colour(builder, x):  # any model: here, the mean of each channel
...     return {"mean": builder.reduce_mean(x, axes=[2, 3])}
>>> runner = FrameRunner(context, mean_colour, Preprocess(size=(8, 8)))
>>> layout = frame_layout("RGB", 16, 8)
>>> pixels = numpy.zeros((8, 48), numpy.uint8); pixels[:, 0::3] = 200  # red
>>> runner.run_planes(layout, [pixels])["mean"]
array([[200.,   0.,   0.]], dtype=float32)
>>> runner.stats.frames, runner.stats.upload_copies
(1, 0)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import webml

from .colour import Preprocess, add_frame_inputs, model_input
from .frames import ColourSpace, FrameLayout, colour_space_of, layout_of

__all__ = ["BuildModel", "FrameRunner", "FrameStats"]

#: ``build(builder, x) -> {output name: operand}``: the model, given its input operand ``x``.
BuildModel = Callable[[webml.MLGraphBuilder, webml.MLOperand], Mapping[str, webml.MLOperand]]
#: Graphs kept for distinct geometries (a stream that changes size often builds again).
MAX_GRAPHS = 4


@dataclass
class FrameStats:
    """What the runner did: frames, seconds per stage, host copies of pixel data."""

    frames: int = 0
    builds: int = 0
    build_seconds: float = 0.0
    upload_seconds: float = 0.0
    inference_seconds: float = 0.0
    upload_copies: int = 0
    #: The last frame's seconds per stage ("upload", "inference").
    last: dict[str, float] = field(default_factory=dict)


class _Compiled:
    def __init__(self, graph: webml.MLGraph, names: list[str], outputs: dict[str, webml.MLTensor]) -> None:
        self.graph = graph
        self.names = names
        self.outputs = outputs


class FrameRunner:
    """Runs ``build``'s model on frames; ``preprocess`` is a :class:`Preprocess` or a function of the
    :class:`FrameLayout` giving one (a crop depends on the frame's size).  ``colour``: the YCbCr colour
    space, by default what each frame's tags say (:func:`~webml.media.frames.colour_space_of`)."""

    def __init__(
        self,
        context: webml.MLContext,
        build: BuildModel,
        preprocess: Preprocess | Callable[[FrameLayout], Preprocess] | None = None,
        colour: ColourSpace | None = None,
    ) -> None:
        if not isinstance(context, webml.MLContext):
            raise TypeError(f"FrameRunner: context must be an MLContext, got {type(context).__name__}")
        if not callable(build):
            raise TypeError("FrameRunner: build must be a function (builder, x) -> {name: operand}")
        self.context = context
        self.build = build
        self.preprocess = preprocess or Preprocess()
        self.colour = colour
        self.stats = FrameStats()
        self._graphs: OrderedDict[tuple, _Compiled] = OrderedDict()

    def _compiled(self, layout: FrameLayout, colour: ColourSpace) -> _Compiled:
        key = (layout, colour)
        if key in self._graphs:
            self._graphs.move_to_end(key)
            return self._graphs[key]
        start = time.perf_counter()
        pre = self.preprocess(layout) if callable(self.preprocess) else self.preprocess
        b = webml.MLGraphBuilder(self.context)
        planes = add_frame_inputs(b, layout)
        outputs = dict(self.build(b, model_input(b, planes, layout, colour, pre)))
        graph = b.build(outputs)
        tensors = {
            name: self.context.create_tensor({"dataType": d.data_type, "shape": list(d.shape), "readable": True})
            for name, d in graph.output_descriptors.items()
        }
        compiled = _Compiled(graph, [f"frame_{p.name}" for p in layout.planes], tensors)
        self._graphs[key] = compiled
        while len(self._graphs) > MAX_GRAPHS:
            _destroy(self._graphs.popitem(last=False)[1])
        self.stats.builds += 1
        self.stats.build_seconds += time.perf_counter() - start
        return compiled

    def run(self, frame: Any) -> dict[str, np.ndarray]:
        """The model's outputs for one PyAV ``VideoFrame`` (its planes shared, not copied)."""
        layout = layout_of(frame)
        return self._run(layout, list(frame.planes), self.colour or colour_space_of(frame))

    def run_planes(
        self, layout: FrameLayout, planes: Sequence[Any], colour: ColourSpace | None = None
    ) -> dict[str, np.ndarray]:
        """The model's outputs for a frame given as plane arrays (``[rows, row_bytes]`` uint8, see ``layout``)."""
        if not isinstance(layout, FrameLayout):
            raise TypeError(f"run_planes: layout must be a FrameLayout, got {type(layout).__name__}")
        if isinstance(planes, str | bytes) or len(planes) != len(layout.planes):
            got = "a str or bytes" if isinstance(planes, str | bytes) else str(len(planes))
            raise ValueError(f"run_planes: {layout.format} frames have {len(layout.planes)} planes, got {got}")
        arrays = [_rows(p, plane.rows, plane.row_bytes) for p, plane in zip(planes, layout.planes)]
        layout.check_planes(arrays)
        return self._run(layout, arrays, colour or self.colour or ColourSpace())

    def _run(self, layout: FrameLayout, sources: list[Any], colour: ColourSpace) -> dict[str, np.ndarray]:
        compiled = self._compiled(layout, colour)
        context = self.context
        copies_before = context.import_copies
        start = time.perf_counter()
        inputs = {name: context.import_tensor(source) for name, source in zip(compiled.names, sources)}
        uploaded = time.perf_counter()
        context.dispatch(compiled.graph, inputs, compiled.outputs)
        results = {name: context.read_tensor(t) for name, t in compiled.outputs.items()}
        done = time.perf_counter()
        for tensor in inputs.values():
            tensor.destroy()  # releases the frame's memory to the decoder's pool now, not at collection
        s = self.stats
        s.frames += 1
        s.upload_seconds += uploaded - start
        s.inference_seconds += done - uploaded
        s.upload_copies += context.import_copies - copies_before
        s.last = {"upload": uploaded - start, "inference": done - uploaded}
        return results

    def close(self) -> None:
        """Destroy the graphs and output tensors."""
        for compiled in self._graphs.values():
            _destroy(compiled)
        self._graphs.clear()


def _rows(plane: Any, rows: int, row_bytes: int) -> Any:
    """Raw bytes (a request body, a memoryview of a decoder's buffer) as ``[rows, row_bytes]`` when they are
    that many bytes (else as they are, for the layout's check to name); arrays unchanged."""
    if not isinstance(plane, memoryview | bytearray | bytes):
        return plane
    array = np.frombuffer(plane, np.uint8)
    return array.reshape(rows, row_bytes) if array.size == rows * row_bytes else array


def _destroy(compiled: _Compiled) -> None:
    compiled.graph.destroy()
    for tensor in compiled.outputs.values():
        tensor.destroy()
