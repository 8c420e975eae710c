"""The WebGPU device: the user's ``wgpu`` device, or one of the best adapter found.

On machines without a GPU the adapter is Mesa's software Vulkan driver (lavapipe, Debian
``mesa-vulkan-drivers``): correct and slow.  No adapter at all is a NotSupportedError that
says what to install.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

from ...errors import NotSupportedError

__all__ = ["Gpu", "default_gpu", "wrap_device"]

#: Adapter features the kernels use when present.
WANTED_FEATURES = ("shader-f16", "subgroup")
#: Limits asked at the adapter's maximum (WebGPU's defaults are smaller: 8 storage buffers...).
WANTED_LIMITS = (
    "max-storage-buffers-per-shader-stage",
    "max-storage-buffer-binding-size",
    "max-buffer-size",
    "max-compute-workgroups-per-dimension",
    "max-uniform-buffer-binding-size",
)


@dataclass
class Gpu:
    """A device with what the backend reads of it."""

    device: Any  # wgpu.GPUDevice
    adapter_info: dict[str, Any]
    features: frozenset[str]
    limits: dict[str, int]
    lock: threading.Lock

    @property
    def max_binding_bytes(self) -> int:
        return int(self.limits.get("max-storage-buffer-binding-size", 2**27))

    @property
    def max_storage_buffers(self) -> int:
        """Storage buffers one kernel binds: the device's limit, at most WebGPU's default 8, so that
        every kernel also runs on a browser's device made with default limits."""
        return min(8, int(self.limits.get("max-storage-buffers-per-shader-stage", 8)))

    @property
    def uniform_alignment(self) -> int:
        return int(self.limits.get("min-uniform-buffer-offset-alignment", 256))


def _import_wgpu() -> Any:
    try:
        import wgpu
    except ImportError as exc:  # pragma: no cover - wgpu is a dependency
        raise NotSupportedError(f"createContext: the webgpu backend needs the wgpu package ({exc})") from None
    return wgpu


def wrap_device(device: Any) -> Gpu:
    """A :class:`Gpu` of a ``wgpu.GPUDevice`` the caller made (``create_context(gpu_device)``)."""
    wgpu = _import_wgpu()
    if not isinstance(device, wgpu.GPUDevice):
        raise TypeError(f"createContext: gpu_device must be a wgpu.GPUDevice, got {type(device).__name__}")
    info = dict(device.adapter.info) if getattr(device, "adapter", None) is not None else {}
    return Gpu(device, info, frozenset(device.features), dict(device.limits), threading.Lock())


@functools.cache
def default_gpu(power_preference: str = "high-performance") -> Gpu:
    """The process's device on the best adapter (made once per power preference)."""
    wgpu = _import_wgpu()
    try:
        adapter = wgpu.gpu.request_adapter_sync(power_preference=power_preference)
    except Exception as exc:  # wgpu raises its own errors for a missing driver
        adapter, reason = None, f"{type(exc).__name__}: {exc}"
    else:
        reason = "no adapter"
    if adapter is None:
        raise NotSupportedError(
            f"createContext: no WebGPU adapter ({reason}); on Debian, `apt-get install mesa-vulkan-drivers` "
            "gives a software one (lavapipe)"
        )
    features = [f for f in WANTED_FEATURES if f in adapter.features]
    limits = {k: adapter.limits[k] for k in WANTED_LIMITS if k in adapter.limits}
    device = adapter.request_device_sync(required_features=features, required_limits=limits, label="webml")
    return Gpu(device, dict(adapter.info), frozenset(device.features), dict(device.limits), threading.Lock())
