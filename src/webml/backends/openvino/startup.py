"""The openvino backend's startup fallback: a graph's first call runs on ONNX Runtime while OpenVINO compiles it.

OpenVINO's compile takes 1.4 to 4 times as long as ONNX Runtime takes to
create a session for the same model (bench/load.py), and most of it is
OpenVINO's own graph passes, which no compile property shortens.  So, as
OpenVINO's AUTO device does while a GPU compiles (its CPU "startup
fallback"), ``build()`` returns once an ONNX Runtime session of the same
lowered model exists, and OpenVINO compiles in a background thread.  The
graph's first dispatch or compute runs on ONNX Runtime; every later one on
OpenVINO, waiting for its compile if it has not ended.  The session is
released as soon as both the first call and the compile are done.

Unlike AUTO's switch, the engine of a call never depends on timing: a program
gets the same bits at every run.  Both engines compute in exact float32, within
the spec's tolerances, but the first call's results may differ from later
ones in their last bits; ``MLGraph.wait_for_engine()`` before the first call
makes it OpenVINO's too, and the backend's ``startup_fallback=False``
compiles before ``build()`` returns.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import numpy as np

from ...storage import return_freed_memory
from ..base import CompiledGraph
from ..onnxruntime import OrtGraph
from ..samples import ChunkedGraph

__all__ = ["StartupGraph"]

#: What runs the first call: ONNX Runtime's session, whole or chunk by chunk (both run host arrays).
Fallback: TypeAlias = OrtGraph | ChunkedGraph


class StartupGraph(CompiledGraph):
    """A graph whose first call runs on ``fallback`` while ``compile()``, in a thread of its own, makes the
    graph that runs every later call (which waits for it).  Which engine runs a call depends only on the
    calls made, never on how fast the machine compiles: a program's results are the same bits at every
    run.  Should the compile fail, the fallback goes on running the graph, and the next call warns once
    with the reason."""

    def __init__(self, fallback: Fallback, compile: Callable[[], CompiledGraph], *, releases_constants: bool) -> None:
        self.releases_constants = releases_constants
        self._fallback: Fallback | None = fallback  # until it has run its call and OpenVINO's graph is there
        self._fallback_ran = False
        self._final: CompiledGraph | None = None
        self._failure = ""
        self._released = False
        # Held by a run on the fallback and by whatever releases it: it is released between runs only.
        self._lock = threading.Lock()
        self._done = threading.Event()
        # Not a daemon: at exit the interpreter waits for the compile rather than stop it halfway.
        threading.Thread(target=self._compile, args=(compile,), name="webml-openvino-compile").start()

    def _compile(self, compile: Callable[[], CompiledGraph]) -> None:
        final: CompiledGraph | None = None
        failure = "the compile ended without a graph"
        try:
            final = compile()
        except Exception as exc:  # reported by the next call; the fallback goes on meanwhile
            failure = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                if final is None:
                    self._failure = failure
                    unused = None
                elif self._released:
                    unused = final
                else:
                    self._final = final
                    unused = self._retire() if self._fallback_ran else None
            try:
                _let_go(unused)  # before a waiting call goes on: it finds the fallback released
            finally:
                self._done.set()  # whatever happened: a call waiting for the compile goes on

    def _retire(self) -> Fallback | None:
        """Take the fallback out of use (under the lock), once OpenVINO's graph is there; the caller releases it."""
        fallback, self._fallback = self._fallback, None
        return fallback

    def _call(self, on_final: Callable[[CompiledGraph], Any], on_fallback: Callable[[Fallback], Any]) -> Any:
        final = self._final
        if final is not None and self._fallback is None:
            return on_final(final)
        unused = result = None
        with self._lock:
            fallback = self._fallback
            first = fallback is not None and not self._fallback_ran
            if first:
                try:
                    result = on_fallback(fallback)
                finally:
                    self._fallback_ran = True
                    unused = self._retire() if self._final is not None else None
        if first:
            _let_go(unused)
            return result
        self._done.wait()  # a later call: OpenVINO's, once compiled
        with self._lock:
            if self._final is not None:
                unused = self._retire()
                final = self._final
            elif self._fallback is not None:
                if self._failure:
                    failure, self._failure = self._failure, ""
                    warnings.warn(
                        f"openvino backend: OpenVINO could not compile the graph ({failure}); ONNX Runtime runs it",
                        RuntimeWarning,
                        stacklevel=5,
                    )
                return on_fallback(self._fallback)
            else:
                raise RuntimeError("the graph is released")  # the API layer refuses a destroyed graph first
        _let_go(unused)
        return on_final(final)

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._call(lambda g: g.run(inputs), lambda g: g.run(inputs))

    def dispatch(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        # The backend's tensors (OvTensor) are host arrays of the storage dtypes, which the fallback runs on.
        arrays = ({n: t.array for n, t in inputs.items()}, {n: t.array for n, t in outputs.items()})
        self._call(lambda g: g.dispatch(inputs, outputs), lambda g: g.dispatch_arrays(*arrays))

    def running_on(self) -> str | None:
        with self._lock:
            if self._fallback is None:
                return None
            if not self._fallback_ran:
                return "onnxruntime"  # the first call
            return "onnxruntime" if self._done.is_set() and self._final is None else None  # a failed compile

    def wait_for_engine(self, timeout: float | None) -> bool:
        if not self._done.wait(timeout):
            return False
        with self._lock:
            if self._final is None:
                return False
            unused = self._retire()  # waited for: OpenVINO runs every call from now on
        _let_go(unused)
        return True

    def release(self) -> None:
        with self._lock:
            self._released = True
            graphs = [g for g in (self._fallback, self._final) if g is not None]
            self._fallback = self._final = None
        for graph in graphs:
            graph.release()


def _let_go(graph: CompiledGraph | None) -> None:
    """Release a graph no call will run, and give its memory back to the system."""
    if graph is not None:
        graph.release()
        return_freed_memory()
