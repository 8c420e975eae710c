"""One connection's contexts, graphs and tensors, and its calls (run in a worker thread, one at a time)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import webml

from .. import dtypes
from ..errors import DOMException, NotAllowedError
from . import policy
from .audit import AuditLog
from .models import ServedModels
from .quotas import Quotas
from .replay import replay

__all__ = ["LIVE", "CallError", "Session"]

log = logging.getLogger("webml.serve")

#: Every MLTensor, MLGraph and MLContext the service made and has not destroyed (the leak check's count).
LIVE: dict[str, weakref.WeakSet[Any]] = {"contexts": weakref.WeakSet(), "graphs": weakref.WeakSet(),
                                         "tensors": weakref.WeakSet()}


class CallError(Exception):
    """A call's error answer: ``{"name": name, "message": message}``."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def error_of(exc: BaseException) -> CallError:
    """The spec's error name and a message for any exception a call raised (never a traceback)."""
    if isinstance(exc, CallError):
        return exc
    if isinstance(exc, DOMException):
        return CallError(exc.name, exc.message or str(exc))
    if isinstance(exc, TypeError | ValueError | KeyError | IndexError | OverflowError):
        return CallError("TypeError", str(exc))
    if isinstance(exc, MemoryError):
        return CallError("UnknownError", "out of memory")
    log.exception("webml serve: an unexpected error in a call")
    return CallError("OperationError", f"{type(exc).__name__}: {exc}")


@dataclass
class _Tensor:
    tensor: webml.MLTensor
    context: int
    nbytes: int


@dataclass
class _Graph:
    graph: webml.MLGraph
    context: int
    nbytes: int


@dataclass
class Session:
    """The state of one WebSocket connection."""

    principal: str  # "origin:https://..." or "token"
    quotas: Quotas
    audit: AuditLog
    backend: str | None = None
    capabilities: tuple[str, ...] = ("compute", "accelerated")
    origin: str | None = None
    connection: int = 0
    models: ServedModels = field(default_factory=ServedModels)  # protected models served by name (listModels)
    contexts: dict[int, webml.MLContext] = field(default_factory=dict)
    graphs: dict[int, _Graph] = field(default_factory=dict)
    tensors: dict[int, _Tensor] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False
    busy: bool = False  # a call is running (the stats' calls_running)
    _policy_checked: bool = False

    # -- the call table ----------------------------------------------------------

    def call(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        """Answer one call: ``({"ok": True, ...}, payload)``; raises CallError for an error answer."""
        op = header.get("op")
        handler: Callable[[dict[str, Any], memoryview], tuple[dict[str, Any], bytes]] | None = _CALLS.get(op)
        if handler is None:
            raise CallError("TypeError", f"unknown op {op!r}")
        with self._lock:
            if self._closed:
                raise CallError("InvalidStateError", "the connection is closed")
            self._check_policy(header)
            self.busy = True
            try:
                return handler(self, header, payload)
            except BaseException as exc:
                error = error_of(exc)
                if error.name == "QuotaExceededError":
                    self.audit.log("quota", connection=self.connection, principal=self.principal, op=op,
                                   message=error.message)
                raise error from None
            finally:
                self.busy = False

    def _check_policy(self, header: dict[str, Any]) -> None:
        """A browser page conveys its document's Permissions-Policy in its first call (``document``)."""
        if self.origin is None or self._policy_checked:
            return
        self._policy_checked = True
        document = header.get("document")
        if document is None:
            return
        if not isinstance(document, dict):
            raise CallError("TypeError", "document must be an object {permissionsPolicy, crossOriginFrame}")
        declared = document.get("permissionsPolicy")
        cross = document.get("crossOriginFrame", False)
        if (declared is not None and not isinstance(declared, str)) or not isinstance(cross, bool):
            raise CallError("TypeError", "document.permissionsPolicy must be a string, crossOriginFrame a boolean")
        try:
            allowed = policy.allows(declared, self.origin, cross_origin_frame=cross)
        except policy.PolicyError as exc:
            allowed, reason = False, str(exc)
        else:
            reason = "the document's Permissions-Policy does not allow the 'webnn' feature"
        if not allowed:
            self.capabilities = ()
            self.audit.log("refused", connection=self.connection, origin=self.origin, reason=reason,
                           permissions_policy=declared, cross_origin_frame=cross)
            raise CallError("NotAllowedError", reason)

    # -- ids ----------------------------------------------------------------------

    def _context(self, header: dict[str, Any], key: str = "context") -> tuple[int, webml.MLContext]:
        cid = header.get(key)
        if cid not in self.contexts:
            raise CallError("TypeError", f"{header.get('op')}: {key} {cid!r} is not a context of this connection")
        return cid, self.contexts[cid]

    def _tensor(self, tid: Any, where: str) -> _Tensor:
        if isinstance(tid, bool) or tid not in self.tensors:
            raise CallError("TypeError", f"{where}: tensor {tid!r} is not a tensor of this connection")
        return self.tensors[tid]

    def _new_id(self) -> int:
        return next(self._ids)

    def _need(self, capability: str, where: str) -> None:
        if capability not in self.capabilities:
            raise NotAllowedError(f"{where}: the grant of {self.origin} does not include {capability!r}")

    # -- calls ----------------------------------------------------------------------

    def create_context(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        self._need("compute", "createContext")
        options = header.get("options") or {}
        if not isinstance(options, dict):
            raise TypeError("createContext: options must be an MLContextOptions object")
        options = {k: options[k] for k in ("powerPreference", "accelerated") if k in options}
        if "accelerated" not in self.capabilities:
            options["accelerated"] = False
        self.quotas.reserve(self.principal, "contexts", 1)
        try:
            context = webml.ml.create_context(options, backend=self.backend)
        except BaseException:
            self.quotas.release(self.principal, "contexts", 1)
            raise
        cid = self._new_id()
        self.contexts[cid] = context
        LIVE["contexts"].add(context)
        return {"context": cid, "accelerated": context.accelerated, "backend": context.backend}, b""

    def op_support_limits(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        _, context = self._context(header)
        return {"limits": context.op_support_limits()}, b""

    def build(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        cid, context = self._context(header)

        def constant_tensor(tid: int) -> webml.MLTensor:
            entry = self._tensor(tid, "build")
            if entry.context != cid:
                raise TypeError(f"build: tensor {tid} belongs to another context")
            return entry.tensor

        nbytes = len(payload)
        self.quotas.reserve(self.principal, "model_bytes", nbytes)
        try:
            result = replay(context, header.get("graph"), payload, constant_tensor)
        except BaseException:
            self.quotas.release(self.principal, "model_bytes", nbytes)
            raise
        gid = self._new_id()
        self.graphs[gid] = _Graph(result.graph, cid, nbytes)
        LIVE["graphs"].add(result.graph)
        self.audit.log("build", connection=self.connection, principal=self.principal, graph=gid,
                       operators=dict(result.operators), constant_bytes=result.constant_bytes)
        return {"graph": gid}, b""

    def _descriptor_bytes(self, descriptor: Any, where: str) -> int:
        if not isinstance(descriptor, dict):
            raise TypeError(f"{where}: descriptor must be an MLTensorDescriptor object")
        data_type, shape = descriptor.get("dataType"), descriptor.get("shape")
        if data_type not in dtypes.DATA_TYPES or not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 53 for d in shape
        ) or len(shape) > 16:
            return 0  # the API's own check gives the message
        count = 1
        for d in shape:
            count *= d
        return dtypes.byte_length(data_type, count)

    def create_tensor(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        return self._create_tensor(header, payload, constant=False)

    def create_constant_tensor(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        return self._create_tensor(header, payload, constant=True)

    def _create_tensor(
        self, header: dict[str, Any], payload: memoryview, constant: bool
    ) -> tuple[dict[str, Any], bytes]:
        op = header.get("op")
        cid, context = self._context(header)
        descriptor = header.get("descriptor")
        nbytes = self._descriptor_bytes(descriptor, op)
        self.quotas.reserve(self.principal, "tensor_bytes", nbytes)
        try:
            if constant:
                tensor = context.create_constant_tensor(descriptor, payload)
            else:
                desc = {k: descriptor[k] for k in ("dataType", "shape", "readable", "writable") if k in descriptor}
                if descriptor.get("exportableToGPU"):
                    raise webml.NotSupportedError("createTensor: exportableToGPU is not supported by webml serve")
                tensor = context.create_tensor(desc)
        except BaseException:
            self.quotas.release(self.principal, "tensor_bytes", nbytes)
            raise
        tid = self._new_id()
        self.tensors[tid] = _Tensor(tensor, cid, nbytes)
        LIVE["tensors"].add(tensor)
        return {"tensor": tid}, b""

    def write_tensor(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        entry = self._tensor(header.get("tensor"), "writeTensor")
        self.contexts[entry.context].write_tensor(entry.tensor, payload)
        return {}, b""

    def read_tensor(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        entry = self._tensor(header.get("tensor"), "readTensor")
        array = self.contexts[entry.context].read_tensor(entry.tensor)
        return {}, dtypes.to_bytes(entry.tensor.descriptor.data_type, array)

    def dispatch(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        cid, context = self._context(header)
        gid = header.get("graph")
        if isinstance(gid, bool) or gid not in self.graphs or self.graphs[gid].context != cid:
            raise TypeError(f"dispatch: graph {gid!r} is not a graph of context {cid}")
        named = {}
        for what in ("inputs", "outputs"):
            ids = header.get(what)
            if not isinstance(ids, dict):
                raise TypeError(f"dispatch: {what} must be an object of name -> tensor id")
            named[what] = {name: self._tensor(tid, f"dispatch: {what} {name!r}").tensor for name, tid in ids.items()}
        self.quotas.check_compute(self.principal)
        start = time.perf_counter()
        try:
            context.dispatch(self.graphs[gid].graph, named["inputs"], named["outputs"])
        finally:
            self.quotas.charge_compute(self.principal, time.perf_counter() - start)
        return {}, b""

    def list_models(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        self._need("compute", "listModels")
        return {"models": self.models.describe()}, b""

    def run_model(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        """A served protected model's outputs for the caller's inputs: never its weights."""
        self._need("compute", "runModel")
        name = header.get("model")
        self.models.get(name, "runModel")  # an unknown or expired model is refused before any quota is taken
        self.quotas.check_compute(self.principal)
        self.quotas.take_model_run(self.principal)
        start = time.perf_counter()
        try:
            outputs, data = self.models.run(name, header.get("inputs"), payload)
        finally:
            self.quotas.charge_compute(self.principal, time.perf_counter() - start)
        # Who queried which protected model how often: what an owner reads to spot model stealing.
        self.audit.log("run_model", connection=self.connection, principal=self.principal, model=name)
        return {"outputs": outputs}, data

    def destroy_tensor(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        tid = header.get("tensor")
        self._tensor(tid, "destroyTensor")
        self._drop_tensor(tid)
        return {}, b""

    def destroy_graph(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        gid = header.get("graph")
        if isinstance(gid, bool) or gid not in self.graphs:
            raise TypeError(f"destroyGraph: graph {gid!r} is not a graph of this connection")
        self._drop_graph(gid)
        return {}, b""

    def destroy_context(self, header: dict[str, Any], payload: memoryview) -> tuple[dict[str, Any], bytes]:
        cid, _ = self._context(header)
        self._drop_context(cid)
        return {}, b""

    # -- freeing ---------------------------------------------------------------------

    def _drop_tensor(self, tid: int) -> None:
        entry = self.tensors.pop(tid)
        entry.tensor.destroy()
        LIVE["tensors"].discard(entry.tensor)
        self.quotas.release(self.principal, "tensor_bytes", entry.nbytes)

    def _drop_graph(self, gid: int) -> None:
        entry = self.graphs.pop(gid)
        entry.graph.destroy()
        LIVE["graphs"].discard(entry.graph)
        self.quotas.release(self.principal, "model_bytes", entry.nbytes)

    def _drop_context(self, cid: int) -> None:
        for tid in [t for t, e in self.tensors.items() if e.context == cid]:
            self._drop_tensor(tid)
        for gid in [g for g, e in self.graphs.items() if e.context == cid]:
            self._drop_graph(gid)
        context = self.contexts.pop(cid)
        context.destroy()
        LIVE["contexts"].discard(context)
        self.quotas.release(self.principal, "contexts", 1)

    def close(self) -> None:
        """Destroy everything (waits for a call in progress to end first); idempotent."""
        with self._lock:
            self._closed = True
            for cid in list(self.contexts):
                try:
                    self._drop_context(cid)
                except Exception:  # one backend's failure to free must not keep the others alive
                    log.exception("webml serve: freeing context %s", cid)

    def counts(self) -> dict[str, int]:
        return {"contexts": len(self.contexts), "graphs": len(self.graphs), "tensors": len(self.tensors)}


_CALLS: dict[Any, Callable[..., tuple[dict[str, Any], bytes]]] = {
    "createContext": Session.create_context,
    "opSupportLimits": Session.op_support_limits,
    "build": Session.build,
    "createTensor": Session.create_tensor,
    "createConstantTensor": Session.create_constant_tensor,
    "writeTensor": Session.write_tensor,
    "readTensor": Session.read_tensor,
    "dispatch": Session.dispatch,
    "destroyTensor": Session.destroy_tensor,
    "destroyGraph": Session.destroy_graph,
    "destroyContext": Session.destroy_context,
    "listModels": Session.list_models,
    "runModel": Session.run_model,
}

KNOWN_OPS = frozenset(_CALLS)
