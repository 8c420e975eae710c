"""MLTensor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..ir import OperandDesc

if TYPE_CHECKING:
    from .context import MLContext


class MLTensor:
    """A tensor owned by a context's backend, used as a graph input or output.

    Create one with :meth:`MLContext.create_tensor`; it is never constructed directly.
    """

    def __init__(
        self,
        context: MLContext,
        desc: OperandDesc,
        handle: Any,
        *,
        readable: bool = False,
        writable: bool = False,
        constant: bool = False,
    ) -> None:
        self._context = context
        self._desc = desc
        self._handle = handle
        self._readable = readable
        self._writable = writable
        self._constant = constant
        self._destroyed = False

    @property
    def data_type(self) -> str:
        return self._desc.data_type

    @property
    def shape(self) -> list[int]:
        return list(self._desc.shape)

    @property
    def readable(self) -> bool:
        return self._readable

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def constant(self) -> bool:
        return self._constant

    def destroy(self) -> None:
        """Release the tensor's data; later use raises TypeError.  Idempotent, from any thread."""
        with self._context._timeline:  # waits for a call using it in another thread
            if self._destroyed:
                return
            self._destroyed = True
            self._context._backend.release_tensor(self._handle)
            self._handle = None

    def __repr__(self) -> str:
        state = ", destroyed" if self._destroyed else ""
        return f"MLTensor({self._desc}{state})"
