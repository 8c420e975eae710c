"""MLTensor, and what its context and builder need of one (:func:`checked_tensor`, :func:`backend_handle`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ..errors import InvalidStateError
from ..ir import OperandDesc
from .descriptors import Described
from .spelling import add_javascript_names

if TYPE_CHECKING:
    from .context import MLContext


class MLTensor(Described):
    """A tensor owned by a context's backend, used as a graph input or output.

    Create one with :meth:`MLContext.create_tensor`; it is never constructed directly.
    """

    def __init__(
        self,
        context: MLContext,
        desc: OperandDesc,
        handle: Any,
        *,
        timeline: threading.RLock,
        release: Callable[[Any], None],
        readable: bool = False,
        writable: bool = False,
        exportable_to_gpu: bool = False,
        constant: bool = False,
        source: Any = None,
        shares_memory: bool = False,
        read_only_memory: bool = False,
    ) -> None:
        self._context = context
        self._desc = desc
        self._handle = handle
        # The context's timeline lock and its backend's release: destroy() needs them, nothing else does.
        self._timeline = timeline
        self._release = release
        self._readable = readable
        self._writable = writable
        self._exportable_to_gpu = exportable_to_gpu
        self._constant = constant
        self._destroyed = False
        self._exported = False  # rented to WebGPU (MLContext.export_to_gpu) until the buffer is destroyed
        # Imports (MLContext.import_tensor): the object whose memory the tensor is, kept alive with it;
        # memory nobody may write is never a dispatch output.
        self._source = source
        self._shares_memory = shares_memory
        self._read_only_memory = read_only_memory
        # The memory __array_interface__ handed out (a bare address): kept alive as long as the tensor,
        # which is the base of every array made from it, so the address outlives destroy().
        self._host_exports: dict[int, Any] = {}

    # The spec's read-only attributes (bool).
    readable = property(attrgetter("_readable"), doc="Whether read_tensor() may read the tensor.")
    writable = property(attrgetter("_writable"), doc="Whether write_tensor() may write the tensor.")
    exportable_to_gpu = property(attrgetter("_exportable_to_gpu"), doc="Whether export_to_gpu() may rent it.")
    constant = property(attrgetter("_constant"), doc="Whether the tensor is a constant tensor (for constant()).")

    shares_memory = property(
        attrgetter("_shares_memory"),
        doc="Whether the tensor is the memory of the object import_tensor() took, no copy (non-spec).",
    )

    @property
    def read_only_memory(self) -> bool:
        """Whether the tensor's memory is an imported source's that may not be written (non-spec)."""
        return self._read_only_memory

    # -- export of host memory (non-spec): NumPy, DLPack consumers ------------------------

    @property
    def __array_interface__(self) -> dict[str, Any]:
        view = self._context.host_memory_view(self, "__array_interface__")
        owner = view.base if view.base is not None else view
        self._host_exports.setdefault(id(owner), owner)  # one entry per memory, however often it is exported
        return view.__array_interface__

    def __dlpack__(self, **kwargs: Any) -> Any:
        """A DLPack capsule over the tensor's memory (CPU backends; it keeps the memory alive)."""
        return self._context.host_memory_view(self, "__dlpack__").__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU: host_memory_view refuses tensors that are not in host memory

    def exported_to_gpu(self) -> None:
        """Mark the tensor rented to WebGPU (its context's export_to_gpu; non-spec)."""
        self._exported = True

    def returned_from_gpu(self) -> None:
        """End the rental: WebGPU destroyed the exported buffer (non-spec; the backend calls it)."""
        self._exported = False

    @property
    def descriptor(self) -> OperandDesc:
        return self._desc

    def destroy(self) -> None:
        """Release the tensor's data; later use raises TypeError.  Idempotent, from any thread."""
        with self._timeline:  # waits for a call using it in another thread
            if self._destroyed:
                return
            self._destroyed = True
            self._release(self._handle)
            self._handle = None

    def __repr__(self) -> str:
        state = ", destroyed" if self._destroyed else ""
        return f"MLTensor({self._desc}{state})"


add_javascript_names(MLTensor, {"exportableToGPU": "exportable_to_gpu"})


def checked_tensor(value: Any, context: MLContext, where: str, what: str = "the tensor") -> MLTensor:
    """``value`` as a live MLTensor of ``context``; otherwise the spec's TypeError, naming the tensor ``what``."""
    if not isinstance(value, MLTensor):
        raise TypeError(f"{where}: expected an MLTensor, got {type(value).__name__}")
    if value._context is not context:
        raise TypeError(f"{where}: {what} belongs to another context")
    if value._destroyed:
        raise TypeError(f"{where}: {what} is destroyed")
    if value._exported:
        raise InvalidStateError(
            f"{where}: {what} is exported to WebGPU; destroy() the GPUBuffer export_to_gpu() gave to return it"
        )
    return value


def backend_handle(tensor: MLTensor) -> Any:
    """The backend's handle of a live tensor (non-spec): for its MLContext, which passes it to the backend
    under its timeline lock after :func:`checked_tensor`; never for user code."""
    return tensor._handle
