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
    """Base of the spec's DOMException types; ``name`` is the DOMException name.

    Each direct subclass is one of WebIDL's error names, and its class name is
    its ``name``; a subclass of one of those keeps that name.
    """

    name = "DOMException"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if DOMException in cls.__bases__:
            cls.name = cls.__name__

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


# The meanings are WebIDL's (its table of DOMException error names).


class AbortError(DOMException):
    """The operation was aborted."""


class DataError(DOMException):
    """Provided data is inadequate."""


class InvalidStateError(DOMException):
    """The object is in an invalid state."""


class NotAllowedError(DOMException):
    """The request is not allowed by the user agent or the platform in the current context."""


class NotSupportedError(DOMException):
    """The operation is not supported."""


class OperationError(DOMException):
    """The operation failed for an operation-specific reason."""


class SecurityError(DOMException):
    """The operation is insecure."""


class UnknownError(DOMException):
    """The operation failed for an unknown transient reason (e.g. out of memory)."""


_BIDI_CONTROLS = {c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def sanitize_label(label: str) -> str:
    """Escape control and bidi-override characters (the spec's advisement on labels)."""
    out = label.translate(_BIDI_CONTROLS)
    if out.isprintable():
        return out
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in out)


def op_message(op: str, label: str, message: str) -> str:
    """Format an operator error as browsers do: ``[label] op: message``."""
    prefix = f"[{sanitize_label(label)}] " if label else ""
    return f"{prefix}{op}: {message}"
