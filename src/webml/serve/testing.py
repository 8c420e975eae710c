"""The service on 127.0.0.1 in a thread of this process, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .app import Server, Service
from .audit import AuditLog
from .grants import GrantStore
from .quotas import Limits, Quotas

__all__ = ["TOKEN", "audit_events", "handshake", "make_service", "running"]

TOKEN = "0123456789abcdef" * 4


def make_service(folder: Path, backend: str = "reference", limits: Limits | None = None, **options: Any) -> Service:
    """A service with its grants file and audit log in ``folder`` and the token ``TOKEN``."""
    return Service(token=TOKEN, token_file=str(folder / "serve.token"), grants=GrantStore(folder / "grants.json"),
                   audit=AuditLog(folder / "audit.jsonl"), backend=backend, quotas=Quotas(limits), **options)


@contextlib.contextmanager
def running(service: Service, timeout: float = 20) -> Iterator[Server]:
    """Start the service on a free port of 127.0.0.1; stop it (sending ``lost``) on exit."""
    server = Server(service, host="127.0.0.1", port=0, timeout_graceful_shutdown=5)
    thread = threading.Thread(target=server.run, name="webml-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("webml serve did not start")
        time.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout)


def handshake(port: int, headers: dict[str, str], path: str = "/webnn", timeout: float = 10) -> tuple[int, bytes]:
    """A raw WebSocket opening handshake to 127.0.0.1: the HTTP status and body of the answer.

    ``headers`` are sent as given (Host included), so a test can send what a browser, a page
    of another origin or a DNS-rebinding attacker would.
    """
    import base64
    import os
    import socket

    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        while length is not None and len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return status, body


def audit_events(path: Path) -> list[dict[str, Any]]:
    """The audit log's records."""
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
