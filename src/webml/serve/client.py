"""A small synchronous Python client of the protocol (tests, bench/serve.py, scripts)."""

from __future__ import annotations

import itertools
from typing import Any

from websockets.sync.client import ClientConnection, connect

from . import frames
from .admission import SUBPROTOCOL

__all__ = ["Client", "RemoteError"]


class RemoteError(Exception):
    """An error answer: ``name`` is the spec's error name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class Client:
    """``Client(url, token=...)``; ``call(op, payload, **arguments)`` returns ``(header, payload)``."""

    def __init__(self, url: str, token: str | None = None, origin: str | None = None,
                 headers: dict[str, str] | None = None, open_timeout: float = 10, **options: Any) -> None:
        extra = dict(headers or {})
        if token is not None:
            extra["Authorization"] = f"Bearer {token}"
        self.ws: ClientConnection = connect(
            url, subprotocols=[SUBPROTOCOL], origin=origin, additional_headers=extra, compression=None,
            max_size=None, open_timeout=open_timeout, **options,
        ).__enter__()  # as `with connect(...)` does (websockets 17 warns of the other way); close() ends it
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, op: str, payload: bytes | memoryview = b"", **arguments: Any) -> int:
        call_id = next(self._ids)
        self.ws.send(frames.encode({"id": call_id, "op": op, **arguments}, payload))
        return call_id

    def receive(self, timeout: float | None = 60) -> tuple[dict[str, Any], memoryview]:
        """The next answer (events are kept in ``events``)."""
        while True:
            message = self.ws.recv(timeout=timeout)
            header, payload = frames.decode(message, max_message_bytes=1 << 62)
            if "event" in header:
                self.events.append(header)
                continue
            return header, payload

    def call(self, op: str, payload: bytes | memoryview = b"", **arguments: Any) -> tuple[dict[str, Any], memoryview]:
        call_id = self.send(op, payload, **arguments)
        header, out = self.receive()
        if header.get("id") != call_id:
            raise RuntimeError(f"answer {header.get('id')} to call {call_id}")
        if not header.get("ok"):
            error = header.get("error", {})
            raise RemoteError(error.get("name", "?"), error.get("message", ""))
        return header, out

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
