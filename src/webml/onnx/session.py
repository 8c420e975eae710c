"""ONNX models run the way ONNX Runtime sessions are: dynamic dimensions settled by the arrays given.

Two conveniences over :func:`webml.onnx.load` and ``context.compute``:

* :class:`DynamicGraph`, what ``load`` returns for a model whose inputs keep
  dynamic dimensions: call it with arrays; it builds one MLGraph per
  distinct set of input shapes and keeps the most recent few.
* :class:`InferenceSession`, for code written for
  ``onnxruntime.InferenceSession``: ``get_inputs()``, ``get_outputs()`` and
  ``run(output_names, {name: array})`` as there, on a webml backend.

The spec's way stays underneath: ``load`` gives an MLGraph for given
shapes (``input_shapes=``), which ``context.dispatch`` runs with MLTensors.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from ..api.context import MLContext
from ..api.graph import MLGraph
from ..storage import return_freed_memory
from .common import WEBML_TYPES
from .errors import OnnxImportError
from .importer import (
    CheckedModel,
    input_shape_sizes,
    load_read_model,
    problems_of,
    read_model,
    without_decoded_data,
)

__all__ = ["CACHE_SIZE", "DynamicGraph", "InferenceSession", "NodeArg", "model_inputs", "model_outputs"]

#: The most graphs (distinct input shapes) a DynamicGraph keeps built; the least recently used goes first.
CACHE_SIZE = 8


@dataclass(frozen=True)
class NodeArg:
    """An input or output as ONNX Runtime's ``NodeArg`` describes it, plus webml's data type.

    ``type`` is ONNX Runtime's spelling (``"tensor(float)"``); ``shape`` has
    a size, the name of a dynamic dimension, or None where the model says
    nothing; ``data_type`` is the webml data type (``"float32"``; ``"uint8"``
    for bool), or None for a type webml lacks.
    """

    name: str
    type: str
    shape: list[int | str | None]
    data_type: str | None


def _node_arg(value: onnx.ValueInfoProto) -> NodeArg:
    t = value.type.tensor_type
    try:
        numpy_name = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
    except (KeyError, ValueError, TypeError):
        numpy_name = "unknown"
    ort_name = {"float32": "float", "float64": "double", "bool": "bool"}.get(numpy_name, numpy_name)
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
    return NodeArg(value.name, f"tensor({ort_name})", shape, WEBML_TYPES.get(t.elem_type))


def model_inputs(model: onnx.ModelProto) -> list[NodeArg]:
    """The graph inputs of ``model`` that are not initializers, in order."""
    initializers = {t.name for t in model.graph.initializer}
    return [_node_arg(v) for v in model.graph.input if v.name not in initializers]


def model_outputs(model: onnx.ModelProto) -> list[NodeArg]:
    """The graph outputs of ``model``, in order."""
    return [_node_arg(v) for v in model.graph.output]


def _array_shape(name: str, value: object) -> tuple[int, ...]:
    try:
        return np.shape(value)
    except ValueError as exc:  # a ragged nested list
        raise TypeError(f"webml.onnx: input {name!r} is not an array: {exc}") from None


class DynamicGraph:
    """An ONNX model whose input shapes are settled by the arrays of each call.

    ``compute(inputs)`` (or calling it: ``model(x=x)``) imports the model
    for the shapes of ``inputs`` and runs it; the built MLGraph is cached per distinct set of
    input shapes, as ONNX Runtime sessions keep their per-shape plans.  The
    cache is bounded: it keeps the :data:`CACHE_SIZE` (``cache_size``) most
    recently used graphs and drops the oldest (dropped graphs are freed once
    nothing else holds them).  Safe to call from several threads.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes | onnx.ModelProto,
        context: MLContext,
        free_dimensions: Mapping[str, int] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        if not isinstance(context, MLContext):
            raise TypeError(f"webml.onnx.DynamicGraph: context must be an MLContext, got {type(context).__name__}")
        if not isinstance(cache_size, int) or cache_size < 1:
            raise TypeError(f"webml.onnx.DynamicGraph: cache_size must be a positive int, got {cache_size!r}")
        if isinstance(model, CheckedModel):
            checked = model
        else:
            decoded: dict[str, np.ndarray] = {}
            proto = read_model(model, base_dir, decoded=None if isinstance(model, onnx.ModelProto) else decoded)
            checked = CheckedModel(proto, decoded)
        self._model = checked.proto
        problems = problems_of(self._model, free_dimensions)
        if problems:  # reported now, as load does, not at the first call
            raise OnnxImportError(f"webml.onnx.load: the model has {len(problems)} unsupported part(s)", problems)
        self.context = context
        self._free = dict(free_dimensions or {})
        self._cache_size = cache_size
        self._graphs: OrderedDict[tuple, MLGraph] = OrderedDict()
        self._lock = threading.Lock()
        self.inputs: list[NodeArg] = model_inputs(self._model)
        self.outputs: list[NodeArg] = model_outputs(self._model)
        # The decoded arrays stand for the large initializers' raw data: the weights are held once.
        self._decoded = checked.decoded
        self._model = without_decoded_data(self._model, self._decoded)

    def graph(self, shapes: Mapping[str, Sequence[int]]) -> MLGraph:
        """The MLGraph for inputs of these shapes (input name -> shape), built on first use."""
        key = tuple(sorted(input_shape_sizes(shapes, "webml.onnx.DynamicGraph.graph", "shapes").items()))
        with self._lock:
            graph = self._graphs.get(key)
            if graph is not None:
                self._graphs.move_to_end(key)
                return graph
        graph = load_read_model(self._model, self.context, self._free, dict(key), decoded=self._decoded)
        return_freed_memory()  # the import's and the engine's temporaries, now that the graph is built
        with self._lock:
            self._graphs[key] = graph
            self._graphs.move_to_end(key)
            while len(self._graphs) > self._cache_size:
                self._graphs.popitem(last=False)
        return graph

    def compute(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run the model on ``inputs`` (name -> array); returns every output by name."""
        if not isinstance(inputs, Mapping):
            raise TypeError(f"webml.onnx: inputs must be a dict of arrays, got {type(inputs).__name__}")
        names = {a.name for a in self.inputs}
        unknown = sorted(set(inputs) - names)
        if unknown:
            raise OnnxImportError(
                f"webml.onnx: unknown input(s) {unknown} (the model's inputs: {', '.join(sorted(names))})"
            )
        # Every graph input is required, as in ONNX Runtime, even one whose shape the others settle.
        missing = [a.name for a in self.inputs if a.name not in inputs]
        if missing:
            raise OnnxImportError(
                f"webml.onnx: missing input(s) {missing} (the model's inputs: {', '.join(sorted(names))})"
            )
        graph = self.graph({n: _array_shape(n, v) for n, v in inputs.items()})
        # The builder leaves out inputs the outputs do not depend on (read only by Shape, say).
        return self.context.compute(graph, {n: inputs[n] for n in graph.input_descriptors})

    def __call__(self, inputs: Mapping[str, Any] | None = None, /, **named: Any) -> dict[str, np.ndarray]:
        """``model({"x": x})`` or ``model(x=x)``: :meth:`compute`."""
        return self.compute({**(inputs or {}), **named})

    @property
    def cached_shapes(self) -> list[dict[str, tuple[int, ...]]]:
        """The input shapes whose graphs are cached, least recently used first."""
        with self._lock:
            return [dict(key) for key in self._graphs]

    def __repr__(self) -> str:
        ins = ", ".join(f"{a.name}: {a.data_type}{a.shape}" for a in self.inputs)
        return f"DynamicGraph(inputs={{{ins}}}, outputs={[a.name for a in self.outputs]})"


class InferenceSession:
    """``onnxruntime.InferenceSession``'s way of running a model, on a webml backend.

    Porting ONNX Runtime code::

        sess = webml.onnx.InferenceSession("model.onnx", backend="onnxruntime")
        name = sess.get_inputs()[0].name
        (probs,) = sess.run(None, {name: x})

    ``get_inputs()`` and ``get_outputs()`` list :class:`NodeArg` (name,
    type, shape, as ONNX Runtime gives them); ``run(output_names,
    input_feed)`` returns a list of arrays in the order of ``output_names``
    (every output for None).  Dynamic dimensions are settled by the arrays
    given; one graph is built and cached per distinct input shape (see
    :class:`DynamicGraph`).  ``backend=`` names the webml backend (instead
    of ``providers=``), or ``context=`` gives an MLContext.

    The spec's way is ``graph = webml.onnx.load(path, context)`` then
    ``context.compute(graph, feeds)`` or ``context.dispatch``; this class
    is built on ``load`` and ``compute`` and adds nothing they lack.
    """

    def __init__(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes | onnx.ModelProto,
        backend: str | None = None,
        *,
        context: MLContext | None = None,
        free_dimensions: Mapping[str, int] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        providers: Any = None,
        sess_options: Any = None,
    ) -> None:
        if providers is not None or sess_options is not None:
            raise TypeError(
                "webml.onnx.InferenceSession: webml has no providers or session options; choose the backend "
                "with backend='onnxruntime' (or 'reference', ...) or pass context="
            )
        if context is None:
            from ..api import ml

            context = ml.create_context(**({} if backend is None else {"backend": backend}))
        elif backend is not None:
            raise TypeError("webml.onnx.InferenceSession: give backend= or context=, not both")
        self._graph = DynamicGraph(path_or_bytes, context, free_dimensions, base_dir)

    @property
    def context(self) -> MLContext:
        return self._graph.context

    def get_inputs(self) -> list[NodeArg]:
        return list(self._graph.inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._graph.outputs)

    def run(
        self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any], run_options: Any = None
    ) -> list[np.ndarray]:
        """The outputs named by ``output_names`` (all, in the model's order, for None or []) for ``input_feed``."""
        known = [a.name for a in self._graph.outputs]
        wanted = list(output_names) if output_names else known
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise OnnxImportError(
                f"webml.onnx.InferenceSession.run: unknown output name(s) {unknown} (the model's outputs: {known})"
            )
        results = self._graph.compute(input_feed)
        return [results[n] for n in wanted]
