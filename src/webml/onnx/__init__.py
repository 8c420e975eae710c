"""ONNX import and export.

``webml.onnx.load(path, context)`` imports an ONNX model operator by operator
into MLGraphBuilder calls (see :mod:`webml.onnx.importer`), so it runs on
every backend.  A model with dynamic dimensions gives a
:class:`DynamicGraph`, called with arrays whose shapes settle them; for
code ported from ONNX Runtime, :class:`InferenceSession` has its
``get_inputs()`` / ``run(None, feeds)`` (see :mod:`webml.onnx.session`).
``webml.onnx.save(graph, path)`` writes the ONNX model that
the onnxruntime backend runs for ``graph``: the same lowering, with every
weight serialized, so that any ONNX tool can inspect exactly what webml runs.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import onnx

from ..api.graph import MLGraph, protected_message, released_constants_message
from ..errors import InvalidStateError
from ..storage import return_freed_memory
from . import importer
from .importer import OnnxImportError, UnsupportedModelError, add_to_builder, read_model, unsupported_operators
from .importers import SUPPORTED_OPERATORS
from .session import DynamicGraph, InferenceSession, NodeArg, model_inputs, model_outputs

__all__ = [
    "SUPPORTED_OPERATORS",
    "DynamicGraph",
    "InferenceSession",
    "NodeArg",
    "OnnxImportError",
    "UnsupportedModelError",
    "add_to_builder",
    "input_dimensions",
    "load",
    "model_inputs",
    "model_outputs",
    "read_model",
    "save",
    "to_model",
    "unsupported_operators",
]

#: Above this size the weights go to an external-data file beside the model
#: (a protobuf cannot exceed 2 GiB).
_EXTERNAL_DATA_THRESHOLD = 2**31 - 2**26


@functools.wraps(importer.load)
def load(*args: Any, **kwargs: Any) -> MLGraph | DynamicGraph:
    result = None
    try:
        result = importer.load(*args, **kwargs)
        return result
    finally:
        # The model's bytes and decoded arrays, freed now that the backend holds the weights.  A
        # DynamicGraph has built nothing yet: it gives the memory back after each build instead, since
        # trimming now would only make its first build fault in fresh pages (a fifth of an int8 model's load).
        if not isinstance(result, DynamicGraph):
            return_freed_memory()


def input_dimensions(model: onnx.ModelProto) -> dict[str, list[int | str | None]]:
    """The dimensions of each graph input of ``model`` (initializers left out), by input name.

    A dimension is its size, the name of a dynamic one (its ``dim_param``,
    for :func:`load`'s ``free_dimensions``), or None where the model says
    nothing; an input of unknown rank has an empty list.
    """
    initializers = {t.name for t in model.graph.initializer}
    return {
        value.name: [_dimension(d) for d in value.type.tensor_type.shape.dim]
        for value in model.graph.input
        if value.name not in initializers
    }


def _dimension(dim: onnx.TensorShapeProto.Dimension) -> int | str | None:
    if dim.HasField("dim_value"):
        return dim.dim_value
    return dim.dim_param or None


def to_model(graph: MLGraph) -> onnx.ModelProto:
    """The ONNX model of ``graph``, weights included.

    The graph must have kept its constants (:attr:`MLGraph.keeps_constants`):
    on the onnxruntime backend, build it in a context created with
    ``keep_constants=True``; otherwise this raises InvalidStateError saying so.
    A protected graph (:attr:`MLGraph.protected`) is always refused.
    """
    from ..backends.onnxruntime.lowering import lower

    if not isinstance(graph, MLGraph):
        raise TypeError(f"webml.onnx: expected an MLGraph, got {type(graph).__name__}")
    if graph.protected:
        raise InvalidStateError(protected_message("webml.onnx.save (or to_model)"))
    if not graph.keeps_constants:
        raise InvalidStateError(released_constants_message("webml.onnx.save (or to_model)"))
    return lower(graph.ir, embed_all=True).model


def save(graph: MLGraph, path: str | os.PathLike[str]) -> Path:
    """Write ``graph`` as an ONNX model to ``path``; returns the path.

    Large models keep their weights in ``<path>.data`` beside the model.
    """
    path = Path(path)
    model = to_model(graph)
    if model.ByteSize() > _EXTERNAL_DATA_THRESHOLD:
        onnx.save_model(model, path, save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save_model(model, path)
    return path
