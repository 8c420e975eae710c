"""Frames: ``u32 little-endian header length H``, H bytes of a UTF-8 JSON object, then raw payload bytes."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_HEADER_BYTES", "DEFAULT_MAX_MESSAGE_BYTES", "FrameError", "decode", "encode"]

DEFAULT_MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_MESSAGE_BYTES = 256 << 20

#: WebSocket close codes: a message over a limit, and a message that breaks the protocol.
TOO_BIG = 1009
PROTOCOL_ERROR = 1002

_LENGTH = struct.Struct("<I")


@dataclass
class FrameError(Exception):
    """A message the connection cannot go on after: closed with ``code``."""

    code: int
    reason: str

    def __str__(self) -> str:
        return self.reason


def decode(
    message: bytes | bytearray | memoryview,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> tuple[dict[str, Any], memoryview]:
    """The header object and a view of the payload; checks lengths before reading anything else."""
    view = memoryview(message).cast("B")
    if len(view) > max_message_bytes:
        raise FrameError(TOO_BIG, f"message of {len(view)} bytes is over the limit of {max_message_bytes}")
    if len(view) < _LENGTH.size:
        raise FrameError(PROTOCOL_ERROR, "message shorter than its 4-byte header length")
    (length,) = _LENGTH.unpack_from(view)
    if length > max_header_bytes:
        raise FrameError(TOO_BIG, f"header of {length} bytes is over the limit of {max_header_bytes}")
    if length > len(view) - _LENGTH.size:
        raise FrameError(PROTOCOL_ERROR, f"header length {length} runs past the message's end")
    try:
        header = json.loads(bytes(view[_LENGTH.size : _LENGTH.size + length]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(PROTOCOL_ERROR, f"header is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise FrameError(PROTOCOL_ERROR, "header nests too deeply") from None
    if not isinstance(header, dict):
        raise FrameError(PROTOCOL_ERROR, f"header is a JSON {type(header).__name__}, not an object")
    return header, view[_LENGTH.size + length :]


def encode(header: dict[str, Any], payload: bytes | bytearray | memoryview = b"") -> bytes:
    """One message: the header's length, the header as compact JSON, the payload."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return b"".join((_LENGTH.pack(len(head)), head, payload))
