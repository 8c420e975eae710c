"""Quotas per principal (a browser's origin, or the token): a call over one fails and changes nothing."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, fields

from ..errors import DOMException

__all__ = ["Limits", "QuotaExceededError", "Quotas"]


class QuotaExceededError(DOMException):
    """The call would take a principal over one of its quotas."""


@dataclass(frozen=True)
class Limits:
    """Service options (``webml serve --quota-NAME``); the defaults suit one user's programs."""

    contexts: int = 64  # open contexts
    tensor_bytes: int = 4 << 30  # resident tensor bytes (createTensor, createConstantTensor)
    in_flight_bytes: int = 1 << 30  # message bytes received and not yet answered
    compute_seconds: float = 240.0  # dispatch seconds per minute (a sliding minute)
    model_bytes: int = 4 << 30  # constant bytes of the graphs alive
    model_runs: int = 600  # runModel calls per minute (a sliding minute) of the served protected models

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


_WHAT = {
    "contexts": "open contexts",
    "tensor_bytes": "resident tensor bytes",
    "in_flight_bytes": "bytes in flight",
    "model_bytes": "model (constant) bytes",
}


class Quotas:
    """Usage of every principal; thread-safe."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._used: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_WHAT, 0))
        self._compute: dict[str, deque[tuple[float, float]]] = defaultdict(deque)
        self._runs: dict[str, deque[float]] = defaultdict(deque)

    def reserve(self, principal: str, kind: str, amount: int) -> None:
        """Take ``amount`` of ``kind``, or raise QuotaExceededError and take nothing."""
        limit = getattr(self.limits, kind)
        with self._lock:
            used = self._used[principal]
            if used[kind] + amount > limit:
                raise QuotaExceededError(
                    f"quota of {_WHAT[kind]} exceeded: {used[kind]} in use + {amount} asked > {limit}"
                )
            used[kind] += amount

    def release(self, principal: str, kind: str, amount: int) -> None:
        with self._lock:
            used = self._used[principal]
            used[kind] = max(0, used[kind] - amount)

    def _compute_used(self, principal: str, now: float) -> float:
        window = self._compute[principal]
        while window and window[0][0] < now - 60.0:
            window.popleft()
        return sum(seconds for _, seconds in window)

    def check_compute(self, principal: str) -> None:
        with self._lock:
            used = self._compute_used(principal, time.monotonic())
        if used >= self.limits.compute_seconds:
            raise QuotaExceededError(
                f"quota of compute seconds per minute exceeded: {used:.1f} s used of {self.limits.compute_seconds} s"
            )

    def charge_compute(self, principal: str, seconds: float) -> None:
        with self._lock:
            self._compute[principal].append((time.monotonic(), seconds))

    def take_model_run(self, principal: str) -> None:
        """Count one runModel call, or raise QuotaExceededError (counting nothing) at the per-minute limit.

        Served models are protected: this bounds how fast a client can query one (model stealing by
        queries is slowed, not stopped; docs/protected-models.md)."""
        now = time.monotonic()
        with self._lock:
            window = self._runs[principal]
            while window and window[0] < now - 60.0:
                window.popleft()
            if len(window) >= self.limits.model_runs:
                raise QuotaExceededError(
                    f"quota of model runs per minute exceeded: {len(window)} of {self.limits.model_runs}"
                )
            window.append(now)

    def usage(self) -> dict[str, dict[str, float]]:
        with self._lock:
            now = time.monotonic()
            out: dict[str, dict[str, float]] = {p: dict(u) for p, u in self._used.items()}
            for p in self._compute:
                out.setdefault(p, dict.fromkeys(_WHAT, 0))["compute_seconds"] = self._compute_used(p, now)
            return out
