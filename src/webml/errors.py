"""The spec's exceptions.

WebIDL's ``TypeError`` is Python's :class:`TypeError`.  Each DOMException the
spec throws is a class here named as in the spec, with the DOMException name
in ``.name`` so that code ported from JavaScript can test ``err.name``.
"""

from __future__ import annotations

__all__ = [
    "AbortError",
    "DOMException",
    "DataError",
    "InvalidStateError",
    "NotAllowedError",
    "NotSupportedError",
    "OperationError",
    "SecurityError",
    "UnknownError",
    "op_message",
]


class DOMException(Exception):
    """Base of the spec's DOMException types; ``name`` is the DOMException name."""

    name = "DOMException"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class AbortError(DOMException):
    name = "AbortError"


class DataError(DOMException):
    name = "DataError"


class InvalidStateError(DOMException):
    name = "InvalidStateError"


class NotAllowedError(DOMException):
    name = "NotAllowedError"


class NotSupportedError(DOMException):
    name = "NotSupportedError"


class OperationError(DOMException):
    name = "OperationError"


class SecurityError(DOMException):
    name = "SecurityError"


class UnknownError(DOMException):
    name = "UnknownError"


_BIDI_CONTROLS = {c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def sanitize_label(label: str) -> str:
    """Escape control and bidi-override characters (the spec's advisement on labels)."""
    out = label.translate(_BIDI_CONTROLS)
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in out)


def op_message(op: str, label: str, message: str) -> str:
    """Format an operator error as browsers do: ``[label] op: message``."""
    prefix = f"[{sanitize_label(label)}] " if label else ""
    return f"{prefix}{op}: {message}"
