"""What every backend provides (the contract between the API layer and backends)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..ir import Graph, OperandDesc


class CompiledGraph(ABC):
    """A graph compiled by a backend: run it on host arrays or backend tensors."""

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Compute every output from host arrays of the inputs' dtypes and shapes."""

    def dispatch(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        """Run on backend tensor handles, writing the outputs' handles in place."""
        raise NotImplementedError

    #: True when the compiled graph holds its own copy of the weights and does not
    #: need the IR's constant arrays: the MLGraph then drops them after build, so
    #: that nothing but the backend holds the weights' memory (see webml.api.graph).
    releases_constants: bool = False

    def release(self) -> None:
        """Free what the compiled graph holds (MLGraph.destroy)."""

    def running_on(self) -> str | None:
        """The engine that runs the graph's next call when it is not the backend's own (the openvino
        backend's startup fallback: ONNX Runtime, for the first call); None: the backend's own."""
        return None

    def wait_for_engine(self, timeout: float | None) -> bool:
        """Wait, at most ``timeout`` seconds (None: no limit), until the backend's own engine can run
        every call of the graph; whether it can."""
        return True


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_threads(value: object, option: str = "intra_op_threads") -> int | None:
    """A backend's thread-count option: None (the engine's choice) or a non-negative int."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise TypeError(f"createContext: {option} must be a non-negative int, got {value!r}")
    return value


def check_flag(value: object, option: str) -> bool:
    """A backend's bool option."""
    if not isinstance(value, bool):
        raise TypeError(f"createContext: {option} must be a bool, got {value!r}")
    return value


def preferred_threads(explicit: int | None, power_preference: str) -> int | None:
    """The thread count of one inference: an explicit option wins; else the spec's
    MLPowerPreference sets it ("low-power": half the cores this process may run on, at
    least 1; "high-performance": all of them; "default": None, the engine's choice)."""
    if explicit is not None:
        return explicit
    if power_preference == "low-power":
        return max(1, _cores() // 2)
    if power_preference == "high-performance":
        return _cores()
    return None


class Backend(ABC):
    """A backend: compiles graphs, owns tensors, states its support limits."""

    name: str = ""

    @abstractmethod
    def compile(self, graph: Graph) -> CompiledGraph: ...

    @abstractmethod
    def create_tensor(self, desc: OperandDesc) -> Any:
        """A new zero-filled tensor handle."""

    @abstractmethod
    def write_tensor(self, handle: Any, array: np.ndarray) -> None:
        """Copy a host array (of the tensor's dtype and shape) into the tensor."""

    @abstractmethod
    def read_tensor(self, handle: Any) -> np.ndarray:
        """A host copy of the tensor's data."""

    def constant_data(self, handle: Any) -> np.ndarray:
        """The data of a constant tensor, for use as a graph constant (no copy needed)."""
        return self.read_tensor(handle)

    #: True when the backend's tensors can live in host memory that someone else owns, so that
    #: ``MLContext.import_tensor`` shares a NumPy array, PyAV plane or DLPack tensor instead of copying it.
    host_memory: bool = False

    def import_host_array(self, desc: OperandDesc, array: np.ndarray) -> Any | None:
        """A tensor handle over ``array``'s memory, no copy (``array``: C-contiguous, of ``desc``'s dtype and
        shape, kept alive by the caller), or None where this backend cannot use that memory as it is
        (``import_tensor`` then makes a tensor of its own and copies, counted).  Only called when
        :attr:`host_memory` is True."""
        return None

    def host_view(self, handle: Any) -> np.ndarray | None:
        """The host memory a tensor lives in, as an array over it (no copy), or None when the tensor is not
        in host memory (a GPU buffer): what ``MLTensor.__dlpack__`` / ``__array_interface__`` export."""
        return None

    def data_pointer(self, handle: Any) -> int | None:
        """The address of the tensor's data as the engine holds it (None: not a host address), to check
        that an import shares memory."""
        return None

    def prefer(self, power_preference: str) -> None:
        """Take the context's MLPowerPreference ("default", "high-performance" or "low-power") as a
        hint for the defaults of the backend's own options (threads...); the default ignores it."""

    def release_tensor(self, handle: Any) -> None:
        """Free a tensor (MLTensor.destroy)."""

    def export_to_gpu(self, handle: Any, on_return: Callable[[], None]) -> Any:
        """The tensor's memory as a GPU buffer of the backend's device, rented until the caller destroys
        it (then ``on_return`` runs): WebGPU interop, for backends whose tensors live on a GPU."""
        from ..errors import NotSupportedError

        raise NotSupportedError(
            f"exportToGPU: the {self.name} backend's tensors are not on a GPU (use backend='webgpu', or "
            "create_context(gpu_device))"
        )

    def host_dtype(self, data_type: str) -> np.dtype:
        """The NumPy dtype of host arrays that ``compute()`` exchanges for ``data_type``."""
        from .. import dtypes

        return dtypes.numpy_dtype(data_type)

    def supports(self, op: str, argument: str, data_type: str, rank: int) -> bool:
        """Whether this backend runs ``op`` with that argument type and rank.

        The default supports everything the spec allows; backends narrow it.
        """
        return True

    #: True when the backend keeps every large constant mapped after it has packed copies of
    #: its own (OpenVINO): their files then go to a disk file system, not shared memory
    #: (webml.storage), so that the pages it no longer reads can leave its resident memory.
    constants_on_disk: bool = False

    #: True when the engine computes the operations whose inputs are all constants once, when it
    #: compiles a graph (constant folding): an importer may then leave the computing of weights
    #: (an int8 weight's Cast and scaling, a transposed weight) to it, in the engine's code rather
    #: than Python's, and hand over the smaller weights as they are in the model file.
    folds_constants: bool = False

    #: maxTensorByteLength of MLOpSupportLimits.
    max_tensor_byte_length: int = 2**53 - 1
    #: preferredInputLayout of MLOpSupportLimits.
    preferred_input_layout: str = "nchw"
