"""``webml.ml``, the ``navigator.ml`` of Python."""

from __future__ import annotations

import importlib
import inspect
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from .. import backends
from ..backends import BACKENDS, DEFAULT_BACKEND, create_backend
from .context import MLContext
from .spelling import PythonSpelling, add_javascript_names, merge_options, options_members, unexpected_keyword

POWER_PREFERENCES = ("default", "high-performance", "low-power")
DEVICE_TYPES = ("cpu", "gpu", "npu")
#: The members of MLContextOptions that ``create_context``'s dict form reads (Python names).
CONTEXT_OPTIONS = ("power_preference", "accelerated", "device_type")


class ML(PythonSpelling):
    """The ML interface: ``webml.ml.create_context(...)``."""

    def create_context(
        self,
        options: Mapping[str, Any] | None = None,
        /,
        *,
        power_preference: str | None = None,
        accelerated: bool | None = None,
        backend: str | None = None,
        device_type: str | None = None,
        **backend_options: Any,
    ) -> MLContext:
        """Create an MLContext.

        ``power_preference`` ("default", "high-performance", "low-power";
        default "default") and ``accelerated`` (default True) are the spec's
        MLContextOptions; they may also be given the JavaScript way, as an
        MLContextOptions dict: ``create_context({"powerPreference": "low-power"})``
        (the dict's other members are ignored, as WebIDL does).
        ``create_context(gpu_device)`` with a ``wgpu.GPUDevice`` is the spec's
        ``createContext(GPUDevice)``: the webgpu backend on that device.
        ``backend`` (non-spec) picks the backend by name (see
        :data:`webml.backends.BACKENDS`); further keyword arguments are that
        backend's options.  ``device_type`` ("cpu", "gpu", "npu") is accepted
        for code written against earlier drafts of the spec.
        """
        given = {"power_preference": power_preference, "accelerated": accelerated, "device_type": device_type}
        if _is_gpu_device(options):  # the spec's createContext(GPUDevice): the webgpu backend on that device
            if backend not in (None, "webgpu"):
                raise TypeError(f"createContext: a GPU device runs on the webgpu backend, not {backend!r}")
            backend, backend_options["gpu_device"], options = "webgpu", options, None
        if options is not None:
            if not isinstance(options, Mapping):
                hint = f" (pass the backend as backend={options!r})" if isinstance(options, str) else ""
                raise TypeError(
                    "createContext: options must be an MLContextOptions dict such as "
                    f"{{'powerPreference': 'low-power'}}, got {type(options).__name__}{hint}"
                )
            given = merge_options("createContext", options_members(options, CONTEXT_OPTIONS, "createContext"), given)
        power_preference = "default" if given["power_preference"] is None else given["power_preference"]
        accelerated = True if given["accelerated"] is None else given["accelerated"]
        device_type = given["device_type"]
        if power_preference not in POWER_PREFERENCES:
            raise TypeError(
                f"createContext: power_preference must be one of {', '.join(POWER_PREFERENCES)}, "
                f"got {power_preference!r}"
            )
        if device_type is not None and device_type not in DEVICE_TYPES:
            raise TypeError(f"createContext: device_type must be one of {', '.join(DEVICE_TYPES)}, got {device_type!r}")
        if device_type == "cpu":
            accelerated = False
        _check_backend_options(backend, backend_options)
        return MLContext(
            create_backend(backend, **backend_options),
            power_preference=power_preference,
            accelerated=bool(accelerated),
        )


add_javascript_names(ML)


def _is_gpu_device(value: Any) -> bool:
    """Whether ``value`` is a ``wgpu.GPUDevice`` (without importing wgpu for other callers)."""
    return any(c.__name__ == "GPUDevice" and c.__module__.startswith("wgpu") for c in type(value).__mro__)


def _check_backend_options(backend: Any, options: Mapping[str, Any]) -> None:
    """An option the backend does not take is a TypeError naming it and the valid ones (not the
    backend's constructor signature).  An unknown backend is left to :func:`create_backend`."""
    name = backend or DEFAULT_BACKEND
    if not options or not isinstance(name, str) or name not in BACKENDS:
        return
    own = backend_option_names(name)
    if own is None:
        return  # options the backend reads itself: it reports its own
    unknown = sorted(options.keys() - set(own))
    if unknown:
        valid = ["power_preference", "accelerated", "backend", "device_type", *own]
        raise unexpected_keyword(f"createContext (the {name} backend)", unknown[0], valid)


@cache
def backend_option_names(name: str) -> tuple[str, ...] | None:
    """The keyword options of backend ``name``'s ``create`` (non-spec); None when they cannot be known.

    A ``create(**options)`` that hands its options to the backend class it
    returns (its return annotation) is read through to that class's constructor.
    """
    module = importlib.import_module(f"{backends.__name__}.{name}")
    factory = module.create
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        returned = typing.get_type_hints(factory).get("return")
        if not isinstance(returned, type):
            return None
        params = inspect.signature(returned).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
    return tuple(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


ml = ML()
