"""The webgpu kernel registry, and the :class:`Emitter` a kernel writes its dispatches with.

A kernel is registered per operator with :func:`kernel` in the family module of the same
name as in :mod:`webml.ops`, stating the data types it handles per argument (spec names,
outputs included, as the onnxruntime lowerings do); the backend reports exactly those in
``op_support_limits()`` and the builder refuses the rest.  It receives the
:class:`Emitter` (``k.op`` is the operator's name), the node's operands as keyword
arguments of their Python names (each a :class:`~.program.Slot`; a list for a sequence
operand; an absent optional operand is not passed), its output(s) as ``out`` and the
node's attributes as keyword arguments.  It emits one or more dispatches: usually one
:class:`~.program.MapProgram` per output, and for composite operators (recurrent ones)
the dispatches of other kernels on scratch buffers (:meth:`Emitter.call`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...ir import OperandDesc
from ...ops import OPS
from ...ops.registry import register
from .device import Gpu
from .program import MapProgram, Slot, Step

__all__ = ["KERNELS", "Emitter", "Kernel", "kernel"]


@dataclass(frozen=True)
class Kernel:
    name: str
    fn: Callable[..., None]
    argument_types: Mapping[str, tuple[str, ...]]  # spec argument name -> the data types handled


KERNELS: dict[str, Kernel] = {}


def kernel(*names: str, **argument_types: Iterable[str]):
    """Register the webgpu kernel of operators ``names`` (see the module docstring)."""
    supported = {k: tuple(v) for k, v in argument_types.items()}

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        for name in names:
            unknown = set(supported) - OPS[name].limits.keys()
            if unknown:
                raise RuntimeError(f"webgpu kernel for {name}: no argument {', '.join(sorted(unknown))}")
            register(KERNELS, name, Kernel(name, fn, supported), "webgpu kernel for")
        return fn

    return decorate


def handles(op: str, argument: str, data_type: str) -> bool:
    """Whether the kernel of ``op`` takes ``argument`` of ``data_type``."""
    if op in ("input", "constant", "output"):
        return True
    found = KERNELS.get(op)
    return found is not None and data_type in found.argument_types.get(argument, (data_type,))


class Emitter:
    """What a kernel writes its dispatches with (one per compiled graph)."""

    def __init__(self, gpu: Gpu, first_scratch: int) -> None:
        self.gpu = gpu
        self.steps: list[Step] = []
        self.scratch_slots: dict[int, Slot] = {}
        self._next = first_scratch
        self.op = ""

    def map(self, out: Slot, name: str | None = None) -> MapProgram:
        """A program computing every element of ``out``; :meth:`emit` it once its body is written."""
        return MapProgram(name or self.op, out)

    def emit(self, program: MapProgram) -> None:
        self.steps.append(program.step())

    def scratch(self, data_type: str, shape: tuple[int, ...]) -> Slot:
        """A buffer for intermediate results, alive as long as the compiled graph."""
        slot = Slot(self._next, OperandDesc(data_type, tuple(shape)))
        self._next += 1
        self.scratch_slots[slot.id] = slot
        return slot

    def call(self, op: str, out: Slot | list[Slot], /, **arguments: Any) -> None:
        """Emit operator ``op``'s kernel (composition): operands and attributes as keywords."""
        outer, self.op = self.op, op
        try:
            KERNELS[op].fn(self, out=out, **arguments)
        finally:
            self.op = outer
