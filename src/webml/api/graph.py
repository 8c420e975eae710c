"""MLGraph, and what its context needs of one (:func:`compiled_graph`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

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
        self._ir = ir
        self._compiled: CompiledGraph | None = compiled
        self._timeline = timeline  # the context's: destroy() waits for a dispatch or compute of it
        self._destroyed = False
        self.input_descriptors: dict[str, OperandDesc] = ir.input_descs()
        self.output_descriptors: dict[str, OperandDesc] = ir.output_descs()

    @property
    def ir(self) -> Graph:
        """The graph IR that was compiled (read-only)."""
        return self._ir

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
