"""``webml.ml``, the ``navigator.ml`` of Python."""

from __future__ import annotations

from typing import Any

from ..backends import create_backend
from .context import MLContext

POWER_PREFERENCES = ("default", "high-performance", "low-power")
DEVICE_TYPES = ("cpu", "gpu", "npu")


class ML:
    """The ML interface: ``webml.ml.create_context(...)``."""

    def create_context(
        self,
        *,
        power_preference: str = "default",
        accelerated: bool = True,
        backend: str | None = None,
        device_type: str | None = None,
        **backend_options: Any,
    ) -> MLContext:
        """Create an MLContext.

        ``power_preference`` and ``accelerated`` are the spec's MLContextOptions.
        ``backend`` (non-spec) picks the backend by name (see
        :data:`webml.backends.BACKENDS`); further keyword arguments are that
        backend's options.  ``device_type`` ("cpu", "gpu", "npu") is accepted
        for code written against earlier drafts of the spec.
        """
        if power_preference not in POWER_PREFERENCES:
            raise TypeError(
                f"createContext: power_preference must be one of {', '.join(POWER_PREFERENCES)}, "
                f"got {power_preference!r}"
            )
        if device_type is not None and device_type not in DEVICE_TYPES:
            raise TypeError(f"createContext: device_type must be one of {', '.join(DEVICE_TYPES)}, got {device_type!r}")
        if device_type == "cpu":
            accelerated = False
        return MLContext(
            create_backend(backend, **backend_options),
            power_preference=power_preference,
            accelerated=bool(accelerated),
        )


ml = ML()
