"""The service on 127.0.0.1 in a thread of this process, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from .app import Server, Service

__all__ = ["running"]


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
