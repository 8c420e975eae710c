"""MLGraph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backends.base import CompiledGraph
from ..ir import Graph, OperandDesc

if TYPE_CHECKING:
    from .context import MLContext


class MLGraph:
    """A compiled graph; returned by :meth:`MLGraphBuilder.build`."""

    def __init__(self, context: MLContext, ir: Graph, compiled: CompiledGraph) -> None:
        self._context = context
        self._ir = ir
        self._compiled: CompiledGraph | None = compiled
        self._destroyed = False
        self.input_descriptors: dict[str, OperandDesc] = ir.input_descs()
        self.output_descriptors: dict[str, OperandDesc] = ir.output_descs()

    @property
    def ir(self) -> Graph:
        """The graph IR that was compiled (read-only)."""
        return self._ir

    def destroy(self) -> None:
        """Release the compiled graph; later dispatches raise InvalidStateError.  From any thread."""
        with self._context._timeline:  # waits for a dispatch or compute of it in another thread
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
