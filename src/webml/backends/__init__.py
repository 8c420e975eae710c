"""Backends, found by module name: ``webml.backends.<name>`` exposes ``create(**options)``.

A backend compiles an :class:`webml.ir.Graph` once at build time and runs it;
it keeps tensor data where it likes.  It trusts the graph it gets: validation
happened in the builder.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError

if TYPE_CHECKING:
    from .base import Backend

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "create_backend"]

#: Backends that ship with webml, in order of preference.
BACKENDS = ("onnxruntime", "openvino", "reference")
DEFAULT_BACKEND = "onnxruntime"


def create_backend(name: str | None = None, **options: Any) -> Backend:
    """Instantiate backend ``name`` (default: :data:`DEFAULT_BACKEND`)."""
    name = name or DEFAULT_BACKEND
    if not isinstance(name, str) or name not in BACKENDS:
        raise NotSupportedError(f"createContext: unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.create(**options)


def __getattr__(name: str) -> Any:
    # Backend (and with it the IR, NumPy's ml_dtypes) loads on first use: the CLI reads BACKENDS to parse its options.
    if name == "Backend":
        from .base import Backend

        return Backend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
