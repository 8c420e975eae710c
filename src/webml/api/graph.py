"""MLGraph, and what its context needs of one (:func:`compiled_graph`)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import CompiledGraph
from ..errors import InvalidStateError
from ..ir import Graph, OperandDesc
from .spelling import PythonSpelling, add_javascript_names

if TYPE_CHECKING:
    from .context import MLContext


class MLGraph(PythonSpelling):
    """A compiled graph; returned by :meth:`MLGraphBuilder.build`."""

    def __init__(self, context: MLContext, ir: Graph, compiled: CompiledGraph, *, timeline: threading.RLock) -> None:
        self._context = context
        # Once the backend holds the weights, the IR's arrays would be a second copy
        # (and keep the shared-memory pages of constants it packed alive): drop them.
        # A protected graph (webml.protected) never keeps them, whatever the context's options.
        self._keeps_constants = not compiled.releases_constants and not ir.protected
        self._ir = (
            ir
            if self._keeps_constants
            else dataclasses.replace(
                ir, constants=ReleasedConstants(ir.constants, protected=ir.protected), constant_files={}
            )
        )
        self._compiled: CompiledGraph | None = compiled
        self._timeline = timeline  # the context's: destroy() waits for a dispatch or compute of it
        self._destroyed = False
        self.input_descriptors: dict[str, OperandDesc] = ir.input_descs()
        self.output_descriptors: dict[str, OperandDesc] = ir.output_descs()

    @property
    def context(self) -> MLContext:
        """The MLContext that built the graph and runs it (non-spec)."""
        return self._context

    @property
    def ir(self) -> Graph:
        """The graph IR that was compiled (read-only).

        Unless :attr:`keeps_constants`, its ``constants`` name the constants
        but reading one raises InvalidStateError: the backend holds the weights.
        """
        return self._ir

    @property
    def protected(self) -> bool:
        """Whether the graph holds a protected model (non-spec, :mod:`webml.protected`): its
        constants cannot be read back and ``webml.onnx.save`` refuses it."""
        return self._ir.protected

    @property
    def keeps_constants(self) -> bool:
        """Whether the graph kept its constants' arrays after build (non-spec): what needs
        them again (``webml.onnx.save``) needs this.  The onnxruntime backend releases them
        unless its context was created with ``keep_constants=True``."""
        return self._keeps_constants

    @property
    def engine(self) -> str:
        """The engine that runs the graph's next call (non-spec): the context's backend, or "onnxruntime"
        for the first call on the openvino backend, while OpenVINO compiles the graph in the background
        (its ``startup_fallback``).

        >>> import webml
        >>> context = webml.ml.create_context(backend="reference")
        >>> builder = webml.MLGraphBuilder(context)
        >>> x = builder.input("x", {"dataType": "float32", "shape": [2]})
        >>> builder.build({"y": builder.relu(x)}).engine
        'reference'
        """
        return self._live("engine").running_on() or self._context.backend

    def wait_for_engine(self, timeout: float | None = None) -> bool:
        """Wait until the context's backend can run every call of the graph itself (non-spec: the
        openvino backend's ``startup_fallback`` runs the first call on ONNX Runtime while OpenVINO
        compiles the graph), at most ``timeout`` seconds (None: no limit); whether it can."""
        number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if timeout is not None and not (number and timeout >= 0):  # NaN too
            raise TypeError(f"wait_for_engine: timeout must be None or a number of seconds >= 0, got {timeout!r}")
        return self._live("wait_for_engine").wait_for_engine(timeout)

    def _live(self, where: str) -> CompiledGraph:
        compiled = self._compiled
        if self._destroyed or compiled is None:
            raise InvalidStateError(f"{where}: the graph is destroyed")
        return compiled

    def destroy(self) -> None:
        """Release the compiled graph; later dispatches raise InvalidStateError.  From any thread."""
        with self._timeline:  # waits for a dispatch or compute of it in another thread
            if self._destroyed:
                return
            self._destroyed = True
            if self._compiled is not None:
                self._compiled.release()
                self._compiled = None

    def __repr__(self) -> str:
        ins = ", ".join(f"{k}: {v}" for k, v in self.input_descriptors.items())
        outs = ", ".join(f"{k}: {v}" for k, v in self.output_descriptors.items())
        return f"MLGraph(inputs={{{ins}}}, outputs={{{outs}}})"


add_javascript_names(MLGraph)


class ReleasedConstants(Mapping[int, np.ndarray]):
    """The constants of a graph whose backend holds the weights: their ids, and no data."""

    def __init__(self, constants: Mapping[int, np.ndarray], *, protected: bool = False) -> None:
        self._ids = frozenset(constants)
        self._protected = protected

    def __getitem__(self, oid: int) -> np.ndarray:
        if self._protected:
            raise InvalidStateError(protected_message("reading a constant of the graph"))
        raise InvalidStateError(released_constants_message("reading a constant of the graph"))

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, oid: object) -> bool:
        return oid in self._ids


def released_constants_message(what: str) -> str:
    """Why ``what`` cannot be done on a graph that released its constants, and how to keep them."""
    return (
        f"{what} needs the graph's constants, which were released after build (the backend holds the "
        "weights); create the context with keep_constants=True to keep them, e.g. "
        "webml.ml.create_context(keep_constants=True)"
    )


def protected_message(what: str) -> str:
    """Why ``what`` is refused on a protected graph."""
    return (
        f"{what} is refused: the graph holds a protected model (webml.protected), whose weights never leave the backend"
    )


def compiled_graph(value: Any, context: MLContext, where: str) -> CompiledGraph:
    """What runs ``value``, a live MLGraph of ``context`` (non-spec: for the context, under its timeline lock).

    Raises the spec's errors, prefixed with ``where``, for anything else.
    """
    if not isinstance(value, MLGraph):
        raise TypeError(f"{where}: expected an MLGraph, got {type(value).__name__}")
    if value._context is not context:
        raise TypeError(f"{where}: the graph belongs to another context")
    if value._destroyed or value._compiled is None:
        raise InvalidStateError(f"{where}: the graph is destroyed")
    return value._compiled
