"""The ASGI app (Starlette): the ``/webnn`` WebSocket, the admin stats, the static pages; and the uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import frames, policy, teach
from . import token as tokens
from .admission import SUBPROTOCOL, Admitted, Refused, admit, loopback_host
from .audit import AuditLog
from .grants import GrantError, GrantStore
from .models import ServedModels
from .quotas import QuotaExceededError, Quotas
from .session import KNOWN_OPS, LIVE, CallError, Session

__all__ = ["Server", "Service", "create_app"]

log = logging.getLogger("webml.serve")

STATIC = Path(__file__).with_name("static")
#: Calls waiting in one connection's queue (the reader waits beyond it: back-pressure on the client).
QUEUE_LENGTH = 16


@dataclass
class _Connection:
    websocket: WebSocket
    session: Session
    send_lock: anyio.Lock = field(default_factory=anyio.Lock)

    async def send(self, header: dict[str, Any], payload: bytes = b"") -> bool:
        """Send one message; False when the client has gone."""
        try:
            message = frames.encode(header, payload)
        except ValueError:  # a result JSON cannot carry (NaN): an error answer instead
            message = frames.encode({"id": header.get("id"), "ok": False,
                                     "error": {"name": "OperationError", "message": "the result is not JSON"}})
        try:
            async with self.send_lock:
                await self.websocket.send_bytes(message)
        except Exception:
            return False
        return True


@dataclass
class Service:
    """The service's state: options, the connections open now."""

    token: str
    token_file: str = ""
    grants: GrantStore = field(default_factory=GrantStore)
    allow_origins: frozenset[str] = frozenset()
    audit: AuditLog = field(default_factory=lambda: AuditLog(None))
    backend: str | None = None
    quotas: Quotas = field(default_factory=Quotas)
    max_message_bytes: int = frames.DEFAULT_MAX_MESSAGE_BYTES
    max_header_bytes: int = frames.DEFAULT_MAX_HEADER_BYTES
    models: ServedModels = field(default_factory=ServedModels)  # protected models (webml serve --model)
    connections: dict[int, _Connection] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- the WebSocket ---------------------------------------------------------------

    async def webnn(self, websocket: WebSocket) -> None:
        connection_id = next(self._ids)
        decision = admit(
            websocket.headers,
            # One Sec-WebSocket-Protocol header may list several (RFC 6455); some servers split it, some not.
            [p.strip() for entry in websocket.scope.get("subprotocols", []) for p in entry.split(",") if p.strip()],
            token=self.token,
            token_file=self.token_file,
            grants=self.grants,
            allow_origins=self.allow_origins,
        )
        client = websocket.client
        peer = f"{client.host}:{client.port}" if client else None
        if isinstance(decision, Refused):
            self.audit.log("refused", connection=connection_id, origin=decision.origin, peer=peer,
                           host=websocket.headers.get("host"), reason=decision.message)
            if decision.ungranted and decision.origin is not None:
                with contextlib.suppress(GrantError, OSError):
                    self.grants.record_request(decision.origin)
            denial = JSONResponse({"error": "NotAllowedError", "message": decision.message}, status_code=403)
            # uvicorn < 0.50 (which Flower pins) adds a Content-Length of its own to a denial, a second one
            # that HTTP clients reject; newer versions add one only when it is missing.
            denial.raw_headers = [(k, v) for k, v in denial.raw_headers if k != b"content-length"]
            await websocket.send_denial_response(denial)
            return
        await self._serve(websocket, decision, connection_id, peer)

    async def _serve(self, websocket: WebSocket, admitted: Admitted, connection_id: int, peer: str | None) -> None:
        session = Session(admitted.principal, self.quotas, self.audit, backend=self.backend,
                          capabilities=admitted.capabilities, origin=admitted.origin, connection=connection_id,
                          models=self.models)
        self.audit.log("connect", connection=connection_id, origin=admitted.origin, grant=admitted.grant,
                       token=admitted.principal == "token", capabilities=list(admitted.capabilities), peer=peer)
        await websocket.accept(subprotocol=SUBPROTOCOL)
        connection = _Connection(websocket, session)
        self.connections[connection_id] = connection
        in_flight = [0]
        send_calls, receive_calls = anyio.create_memory_object_stream[tuple[dict[str, Any], Any, int]](QUEUE_LENGTH)
        close: list[tuple[int, str]] = []

        async def reader() -> None:
            async with send_calls:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    data = message.get("bytes")
                    try:
                        if data is None:
                            raise frames.FrameError(frames.PROTOCOL_ERROR, "text message: every message is binary")
                        header, payload = frames.decode(data, self.max_header_bytes, self.max_message_bytes)
                        if header.get("op") not in KNOWN_OPS:
                            raise frames.FrameError(frames.PROTOCOL_ERROR, f"unknown op {str(header.get('op'))[:64]!r}")
                        if isinstance(header.get("id"), bool) or not isinstance(header.get("id"), int):
                            raise frames.FrameError(frames.PROTOCOL_ERROR, "the call has no integer id")
                    except frames.FrameError as exc:
                        close.append((exc.code, exc.reason[:120]))
                        self.audit.log("protocol", connection=connection_id, code=exc.code, reason=exc.reason)
                        return
                    try:
                        self.quotas.reserve(session.principal, "in_flight_bytes", len(data))
                    except QuotaExceededError as exc:
                        self.audit.log("quota", connection=connection_id, principal=session.principal,
                                       op=header.get("op"), message=exc.message)
                        await send_calls.send((header, CallError(exc.name, exc.message), 0))
                        continue
                    in_flight[0] += len(data)
                    await send_calls.send((header, payload, len(data)))

        async def worker() -> None:
            async with receive_calls:
                async for header, payload, size in receive_calls:
                    try:
                        if isinstance(payload, CallError):
                            raise payload
                        result, out = await anyio.to_thread.run_sync(session.call, header, payload)
                        answer = {"id": header["id"], "ok": True, **result}
                    except CallError as exc:
                        answer, out = {"id": header["id"], "ok": False,
                                       "error": {"name": exc.name, "message": exc.message}}, b""
                    finally:
                        del payload
                        self.quotas.release(session.principal, "in_flight_bytes", size)
                        in_flight[0] -= size
                    if not await connection.send(answer, out):
                        group.cancel_scope.cancel()  # the client has gone: stop reading too
                        return

        async def read_then_stop() -> None:
            try:
                await reader()  # the client closed, or sent a bad message: no more of its calls run
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, WebSocketDisconnect):
                pass  # the worker stopped first (the client went away while answers were due)
            group.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(read_then_stop)
                group.start_soon(worker)
        finally:
            with anyio.CancelScope(shield=True):
                if close:
                    with contextlib.suppress(Exception):
                        async with connection.send_lock:
                            await websocket.close(*close[0])
                await anyio.to_thread.run_sync(session.close)  # waits for a call in progress, then frees
                self.connections.pop(connection_id, None)  # gone from the stats once its objects are
                self.quotas.release(session.principal, "in_flight_bytes", in_flight[0])
                self.audit.log("disconnect", connection=connection_id, principal=session.principal,
                               reason=close[0][1] if close else "closed by the client")

    async def lose_all(self, message: str = "the webml service is shutting down") -> None:
        """Send ``lost`` for every open context of every connection (the service's shutdown)."""
        for connection in list(self.connections.values()):
            for cid in list(connection.session.contexts):
                await connection.send({"event": "lost", "context": cid, "message": message})

    # -- HTTP ------------------------------------------------------------------------------

    async def stats(self, request: Request) -> JSONResponse:
        """Live object counts and quota usage: only with the token, from loopback, not from a page."""
        auth = request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if not loopback_host(request.headers.get("host")) or "origin" in request.headers \
                or scheme.lower() != "bearer" or not tokens.check(value.strip(), self.token):
            return JSONResponse({"error": "NotAllowedError", "message": "the stats need the token"}, status_code=403)
        sessions = {"contexts": 0, "graphs": 0, "tensors": 0}
        for connection in list(self.connections.values()):
            for k, v in connection.session.counts().items():
                sessions[k] += v
        return JSONResponse({
            "connections": len(self.connections),
            "calls_running": sum(c.session.busy for c in list(self.connections.values())),
            "sessions": sessions,
            "live": {k: len(v) for k, v in LIVE.items()},
            "quotas": self.quotas.usage(),
        })


class _PagesGuard:
    """HTTP: refuse a foreign Host (DNS rebinding); give pages ``Permissions-Policy: webnn=(self)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"permissions-policy", policy.self_header().encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        if not loopback_host(host):
            response = JSONResponse({"error": "NotAllowedError", "message": f"the Host {host!r} is not loopback"},
                                    status_code=403)
            await response(scope, receive, send)
            return

        async def send_with_policy(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_policy)


def create_app(service: Service) -> ASGIApp:
    app = Starlette(routes=[
        WebSocketRoute("/webnn", service.webnn),
        Route("/admin/stats", service.stats),
        *teach.routes(),
        Mount("/", StaticFiles(directory=STATIC, html=True)),
    ])
    app.state.service = service
    return _PagesGuard(app)


class Server(uvicorn.Server):
    """uvicorn's server, sending ``lost`` to every open context before it closes the connections."""

    def __init__(self, service: Service, host: str = "127.0.0.1", port: int = 8765, **options: Any) -> None:
        config = uvicorn.Config(
            create_app(service),
            host=host,
            port=port,
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            ws_max_size=service.max_message_bytes,
            lifespan="off",
            log_level=options.pop("log_level", "warning"),
            timeout_graceful_shutdown=options.pop("timeout_graceful_shutdown", 10),
            **options,
        )
        super().__init__(config)
        self.service = service

    async def shutdown(self, sockets: Any = None) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.service.lose_all(), timeout=5)
        await super().shutdown(sockets)

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the system's choice for port 0)."""
        for server in self.servers:
            for sock in server.sockets:
                return sock.getsockname()[1]
        return self.config.port
