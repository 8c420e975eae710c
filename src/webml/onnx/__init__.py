"""ONNX import and export.

``webml.onnx.load(path, context)`` imports an ONNX model operator by operator
into MLGraphBuilder calls (see :mod:`webml.onnx.importer`), so it runs on
every backend.  ``webml.onnx.save(graph, path)`` writes the ONNX model that
the onnxruntime backend runs for ``graph``: the same lowering, with every
weight serialized, so that any ONNX tool can inspect exactly what webml runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from ..api.graph import MLGraph
from .importer import OnnxImportError, UnsupportedModelError, load, unsupported_operators
from .importers import SUPPORTED_OPERATORS

__all__ = [
    "SUPPORTED_OPERATORS",
    "OnnxImportError",
    "UnsupportedModelError",
    "load",
    "save",
    "to_model",
    "unsupported_operators",
]

#: Above this size the weights go to an external-data file beside the model
#: (a protobuf cannot exceed 2 GiB).
_EXTERNAL_DATA_THRESHOLD = 2**31 - 2**26


def to_model(graph: MLGraph) -> onnx.ModelProto:
    """The ONNX model of ``graph``, weights included."""
    from ..backends.onnxruntime.lowering import lower

    if not isinstance(graph, MLGraph):
        raise TypeError(f"webml.onnx: expected an MLGraph, got {type(graph).__name__}")
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
