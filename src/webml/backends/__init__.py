"""Backends, found by module name: ``webml.backends.<name>`` exposes ``create(**options)``.

A backend compiles an :class:`webml.ir.Graph` once at build time and runs it;
it keeps tensor data where it likes.  It trusts the graph it gets: validation
happened in the builder.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError

if TYPE_CHECKING:
    from .base import Backend

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "create_backend", "own_engine_options"]

#: Backends that ship with webml.
BACKENDS = ("onnxruntime", "openvino", "reference", "webgpu")


def _default_backend() -> str:
    """$WEBML_BACKEND when set; else the fastest exact backend on this kind of machine.

    bench/compare.py (docs/performance.md) chose it: on x86-64, OpenVINO is
    as fast as the fastest exact engine on every model measured, and ONNX
    Runtime up to 1.3x slower on transformers; elsewhere OpenVINO's CPU
    plugin is unmeasured, so ONNX Runtime stays.
    """
    chosen = os.environ.get("WEBML_BACKEND", "")
    if chosen:
        return chosen  # create_backend() names the valid ones if it is not one
    if platform.machine().lower() in ("x86_64", "amd64") and importlib.util.find_spec("openvino") is not None:
        return "openvino"
    return "onnxruntime"


#: The backend ``create_context()`` uses when none is named (``$WEBML_BACKEND`` overrides it).
DEFAULT_BACKEND = _default_backend()


def create_backend(name: str | None = None, **options: Any) -> Backend:
    """Instantiate backend ``name`` (default: :data:`DEFAULT_BACKEND`)."""
    name = name or DEFAULT_BACKEND
    if not isinstance(name, str) or name not in BACKENDS:
        raise NotSupportedError(f"createContext: unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.create(**options)


def own_engine_options(name: str | None = None) -> dict[str, Any]:
    """Context options under which backend ``name`` (default: :data:`DEFAULT_BACKEND`) runs every call on
    its own engine: the openvino backend's without its startup fallback, which runs a graph's first
    call on ONNX Runtime while OpenVINO compiles it.  For results that must be the same bits from the
    first call on: conformance runs, ``webml run``, ``webml batch`` and federated clients."""
    return {"startup_fallback": False} if (name or DEFAULT_BACKEND) == "openvino" else {}


def __getattr__(name: str) -> Any:
    # Backend (and with it the IR, NumPy's ml_dtypes) loads on first use: the CLI reads BACKENDS to parse its options.
    if name == "Backend":
        from .base import Backend

        return Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
