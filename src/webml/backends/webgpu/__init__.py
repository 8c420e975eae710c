"""The webgpu backend: every WebNN operator as WGSL compute kernels run through WebGPU (``wgpu``).

MLTensors are GPU buffers; ``write_tensor`` and ``read_tensor`` are the only host transfers
and a dispatch stays on the GPU; ``context.export_to_gpu(tensor)`` rents a tensor's buffer to
the caller's WebGPU work without a copy (the MLTensor explainer's ``exportToGPU``).  Kernels
are written one module per operator family, as the reference backend's (:mod:`.kernels` says
how); each describes one output element, in WGSL that browsers' WebGPU accepts too (the tests
check it with Tint).  The storage of each
data type is :mod:`.codecs`'; what runs is reported per argument by ``op_support_limits()``.

Options (non-spec, passed to ``webml.ml.create_context``):

* ``gpu_device``: a ``wgpu.GPUDevice`` to run on (the spec's ``createContext(gpuDevice)``:
  ``webml.ml.create_context(device)`` gives the same); default: a device of the best adapter,
  chosen by the context's power preference;
* ``keep_constants``: keep the graph's constant arrays on the host after build (default False:
  the GPU buffers hold them), for ``webml.onnx.save`` of the graph.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ...ir import Graph, OperandDesc
from ...ops import FAMILIES
from ..base import Backend, check_flag
from .device import Gpu, default_gpu, wrap_device
from .kernels import KERNELS, handles
from .runtime import GpuTensor, WebGpuGraph, exported_buffer, new_buffer, read_buffer, revoke_export, write_buffer

# One kernel module per operator family, named as in webml.ops (those written so far).
for _family in FAMILIES:
    try:
        importlib.import_module(f"{__name__}.{_family}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"{__name__}.{_family}":
            raise

__all__ = ["KERNELS", "WebGpuBackend", "create"]


class WebGpuBackend(Backend):
    name = "webgpu"

    def __init__(self, *, gpu_device: Any = None, keep_constants: bool = False) -> None:
        self.keep_constants = check_flag(keep_constants, "keep_constants")
        self._given = None if gpu_device is None else wrap_device(gpu_device)
        self._gpu: Gpu | None = self._given
        self.power_preference = "default"

    def prefer(self, power_preference: str) -> None:
        self.power_preference = power_preference

    @property
    def gpu(self) -> Gpu:
        if self._gpu is None:
            low = self.power_preference == "low-power"
            self._gpu = default_gpu("low-power" if low else "high-performance")
        return self._gpu

    @property
    def max_tensor_byte_length(self) -> int:  # type: ignore[override]
        limits = self.gpu.limits
        return min(self.gpu.max_binding_bytes, int(limits.get("max-buffer-size", 2**28)))

    def compile(self, graph: Graph) -> WebGpuGraph:
        compiled = WebGpuGraph(self.gpu, graph)
        compiled.releases_constants = not self.keep_constants
        return compiled

    def create_tensor(self, desc: OperandDesc) -> GpuTensor:
        return GpuTensor(new_buffer(self.gpu, desc, "MLTensor"), desc)

    def write_tensor(self, handle: GpuTensor, array: np.ndarray) -> None:
        write_buffer(self.gpu, handle.buffer, handle.desc, array)

    def read_tensor(self, handle: GpuTensor) -> np.ndarray:
        return read_buffer(self.gpu, handle.buffer, handle.desc)

    def export_to_gpu(self, handle: GpuTensor, on_return: Callable[[], None]) -> Any:
        def returned() -> None:
            handle.exported = None
            on_return()

        # Work dispatched on the tensor is already submitted: the device's queue runs it before
        # anything the caller submits with the buffer.
        return exported_buffer(handle, returned)

    def release_tensor(self, handle: GpuTensor) -> None:
        revoke_export(handle)
        if handle.buffer is not None:
            handle.buffer.destroy()
            handle.buffer = None

    def supports(self, op: str, argument: str, data_type: str, rank: int) -> bool:
        return handles(op, argument, data_type)


def create(**options: Any) -> WebGpuBackend:
    return WebGpuBackend(**options)
