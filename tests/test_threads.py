"""Threads: a context's timeline operations may be called from any thread.

Each test forces very frequent thread switches (``sys.setswitchinterval``) so
that an unguarded check-then-act in the API or a backend shows up as a stale
output or an internal exception within a few thousand calls.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import webml
from webml.backends import create_backend

BACKENDS = ["reference", "onnxruntime", "openvino"]
THREADS = 4
DESC = {"dataType": "float32", "shape": [4]}


@pytest.fixture
def fast_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def affine_graph(context):
    """y = 2x + 1: exact in float32 for the values used here."""
    builder = webml.MLGraphBuilder(context)
    x = builder.input("x", DESC)
    two, one = builder.constant("float32", 2.0), builder.constant("float32", 1.0)
    return builder.build({"y": builder.add(builder.mul(x, two), one)})


def run_threads(bodies: list[Callable[[], None]]) -> list[BaseException]:
    """Run each body in its own thread, started together; the exceptions they raised."""
    start = threading.Barrier(len(bodies))
    errors: list[BaseException] = []

    def wrap(body: Callable[[], None]) -> None:
        start.wait()
        try:
            body()
        except BaseException as exc:  # reported to the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def own_tensors(context):
    x = context.create_tensor({**DESC, "writable": True})
    y = context.create_tensor({**DESC, "readable": True})
    return x, y


def values(thread: int, step: int) -> np.ndarray:
    return np.full(4, thread * 100_000 + step, np.float32)  # distinct per thread and per step


@pytest.mark.parametrize("backend", BACKENDS)
def test_threads_dispatching_one_graph_each_read_their_own_results(backend, fast_switching):
    context = webml.ml.create_context(backend=backend)
    graph = affine_graph(context)
    steps = 3000 if backend == "onnxruntime" else 600
    stale: list[tuple[int, int]] = []

    def worker(thread: int) -> Callable[[], None]:
        x, y = own_tensors(context)

        def body() -> None:
            for step in range(steps):
                context.write_tensor(x, values(thread, step))
                context.dispatch(graph, {"x": x}, {"y": y})
                got = context.read_tensor(y)
                if not np.array_equal(got, 2 * values(thread, step) + 1):
                    stale.append((thread, step))
                if step % 50 == 0:  # compute shares the graph too
                    out = context.compute(graph, {"x": values(thread, step)})["y"]
                    if not np.array_equal(out, 2 * values(thread, step) + 1):
                        stale.append((thread, step))

        return body

    errors = run_threads([worker(i) for i in range(THREADS)])
    assert errors == []
    assert stale == [], f"{len(stale)} stale outputs in {THREADS * steps} dispatches"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backend_alone_keeps_each_threads_results_apart(backend, fast_switching):
    """The backend's own caches (onnxruntime's cached IOBinding) hold without the context's lock."""
    # keep_constants: the graph's IR is compiled again below.
    context = webml.ml.create_context(backend=backend, **({} if backend == "reference" else {"keep_constants": True}))
    ir = affine_graph(context).ir
    engine = create_backend(backend)
    compiled = engine.compile(ir)
    desc = ir.input_descs()["x"]
    steps = 2000 if backend == "onnxruntime" else 400
    stale: list[tuple[int, int]] = []

    def worker(thread: int) -> Callable[[], None]:
        x, y = engine.create_tensor(desc), engine.create_tensor(desc)

        def body() -> None:
            for step in range(steps):
                engine.write_tensor(x, values(thread, step))
                compiled.dispatch({"x": x}, {"y": y})
                if not np.array_equal(engine.read_tensor(y), 2 * values(thread, step) + 1):
                    stale.append((thread, step))

        return body

    assert run_threads([worker(i) for i in range(THREADS)]) == []
    assert stale == [], f"{len(stale)} stale outputs in {THREADS * steps} dispatches"


class Dispatcher:
    """A thread body that writes, dispatches, reads (and computes) until refused.

    Expected refusals (the spec's): InvalidStateError for a destroyed graph or a
    lost context, a TypeError saying the tensor is destroyed.  Any other
    exception, and any wrong result of a call that completed, is unexpected.
    ``go`` is set once this thread has made a few round trips.
    """

    def __init__(self, context, graph, thread: int, go: threading.Event) -> None:
        self.context, self.graph, self.thread, self.go = context, graph, thread, go
        self.x, self.y = own_tensors(context)
        self.refused: BaseException | None = None
        self.unexpected: list[str] = []

    def __call__(self) -> None:
        context, graph, thread = self.context, self.graph, self.thread
        step = 0
        try:
            while step < 100_000:
                context.write_tensor(self.x, values(thread, step))
                context.dispatch(graph, {"x": self.x}, {"y": self.y})
                if not np.array_equal(context.read_tensor(self.y), 2 * values(thread, step) + 1):
                    self.unexpected.append(f"step {step}: stale output")
                if step % 7 == 0:
                    out = context.compute(graph, {"x": values(thread, step)})["y"]
                    if not np.array_equal(out, 2 * values(thread, step) + 1):
                        self.unexpected.append(f"step {step}: wrong compute result")
                step += 1
                if step == 20:
                    self.go.set()
            self.unexpected.append("never refused")
        except webml.InvalidStateError as exc:
            self.refused = exc
        except TypeError as exc:
            if "destroyed" not in str(exc):
                self.unexpected.append(f"step {step}: TypeError: {exc}")
            self.refused = exc
        except Exception as exc:
            self.unexpected.append(f"step {step}: {type(exc).__name__}: {exc}")
        finally:
            self.go.set()  # never leave the destroyer waiting


def race(context, graph, destroy: Callable[[list[Dispatcher]], None], destroyers: int = 1) -> list[Dispatcher]:
    """THREADS dispatchers on ``graph`` and ``destroyers`` threads calling ``destroy`` mid-way."""
    go = threading.Event()
    dispatchers = [Dispatcher(context, graph, i, go) for i in range(THREADS)]

    def destroyer() -> None:
        go.wait(timeout=30)
        destroy(dispatchers)

    assert run_threads([*dispatchers, *[destroyer] * destroyers]) == []
    return dispatchers


def check_still_usable(context) -> None:
    graph = affine_graph(context)
    x, y = own_tensors(context)
    context.write_tensor(x, values(7, 7))
    context.dispatch(graph, {"x": x}, {"y": y})
    np.testing.assert_array_equal(context.read_tensor(y), 2 * values(7, 7) + 1)


ROUNDS = 12


@pytest.mark.parametrize("backend", BACKENDS)
def test_destroying_the_graph_while_threads_dispatch_it(backend, fast_switching):
    context = webml.ml.create_context(backend=backend)
    for _ in range(ROUNDS):
        graph = affine_graph(context)
        for d in race(context, graph, lambda ds, graph=graph: graph.destroy()):
            assert d.unexpected == []
            assert isinstance(d.refused, webml.InvalidStateError), d.refused
    check_still_usable(context)


@pytest.mark.parametrize("backend", BACKENDS)
def test_destroying_tensors_while_threads_dispatch_with_them(backend, fast_switching):
    context = webml.ml.create_context(backend=backend)
    graph = affine_graph(context)

    def destroy_tensors(dispatchers: list[Dispatcher]) -> None:
        for d in dispatchers:
            d.y.destroy()
            d.x.destroy()

    for _ in range(ROUNDS):
        for d in race(context, graph, destroy_tensors):
            assert d.unexpected == []
            assert type(d.refused) is TypeError, d.refused
    check_still_usable(context)


@pytest.mark.parametrize("backend", BACKENDS)
def test_destroying_the_context_while_threads_dispatch(backend, fast_switching):
    for _ in range(ROUNDS // 2):
        context = webml.ml.create_context(backend=backend)
        graph = affine_graph(context)
        # Two threads destroy it at once: destroy() is idempotent from any thread.
        for d in race(context, graph, lambda ds, context=context: context.destroy(), destroyers=2):
            assert d.unexpected == []
            assert isinstance(d.refused, (webml.InvalidStateError, TypeError)), d.refused
        assert context.lost.result() == {"message": "destroy() was called on the context"}
        with pytest.raises(webml.InvalidStateError):
            context.create_tensor(DESC)
