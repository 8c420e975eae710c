"""webml serve under load and faults (loopback, bounded): 32 concurrent clients, a client killed mid-dispatch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from webml.serve.client import Client
from webml.serve.testing import TOKEN, make_service, running

F32 = "float32"
CLIENTS = 32
SECONDS = 4.0


def _stats(server) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/admin/stats",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def _wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _client_work(url: str, index: int, stop_at: float, results: list) -> None:
    """Build y = relu(x * w + index) and dispatch it until ``stop_at``, checking every answer."""
    rounds = 0
    try:
        with Client(url, token=TOKEN) as c:
            ctx = c.call("createContext", options={})[0]["context"]
            w = np.full(16, 0.5, np.float32)
            bias = np.full(16, index, np.float32)
            graph = {
                "operands": {str(i): {"dataType": F32, "shape": [16]} for i in range(6)},
                "inputs": {"x": 0},
                "constants": {"1": {"offset": 0, "length": 64}, "2": {"offset": 64, "length": 64}},
                "nodes": [{"op": "mul", "args": [0, 1], "outputs": [3]}, {"op": "add", "args": [3, 2], "outputs": [4]},
                          {"op": "relu", "args": [4], "outputs": [5]}],
                "outputs": {"y": 5},
            }
            g = c.call("build", w.tobytes() + bias.tobytes(), context=ctx, graph=graph)[0]["graph"]
            desc = {"dataType": F32, "shape": [16]}
            t_in = c.call("createTensor", context=ctx, descriptor={**desc, "writable": True})[0]["tensor"]
            t_out = c.call("createTensor", context=ctx, descriptor={**desc, "readable": True})[0]["tensor"]
            rng = np.random.default_rng(index)
            while time.monotonic() < stop_at:
                x = rng.standard_normal(16).astype(np.float32)
                c.call("writeTensor", x.tobytes(), tensor=t_in)
                c.call("dispatch", context=ctx, graph=g, inputs={"x": t_in}, outputs={"y": t_out})
                got = np.frombuffer(c.call("readTensor", tensor=t_out)[1], np.float32)
                np.testing.assert_allclose(got, np.maximum(x * 0.5 + index, 0), rtol=1e-6)
                if rounds % 3 == 0:  # tensors come and go too
                    extra = c.call("createTensor", context=ctx, descriptor=desc)[0]["tensor"]
                    c.call("destroyTensor", tensor=extra)
                rounds += 1
            if index % 2:
                c.call("destroyContext", context=ctx)  # half destroy, half leave it to the close
        results.append(("ok", rounds))
    except Exception as exc:  # reported by the test
        results.append(("error", f"client {index}: {type(exc).__name__}: {exc}"))


def test_32_concurrent_clients_no_error_no_leak(tmp_path: Path) -> None:
    with running(make_service(tmp_path, backend="reference")) as server:
        url = f"ws://127.0.0.1:{server.port}/webnn"
        results: list = []
        stop_at = time.monotonic() + SECONDS
        threads = [threading.Thread(target=_client_work, args=(url, i, stop_at, results)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        peak = 0
        while any(t.is_alive() for t in threads) and time.monotonic() < stop_at + 60:
            peak = max(peak, _stats(server)["connections"])
            time.sleep(0.2)
        for t in threads:
            t.join(60)
        errors = [r[1] for r in results if r[0] == "error"]
        assert not errors, errors[:5]
        assert len(results) == CLIENTS and all(rounds > 0 for _, rounds in results)
        assert peak >= CLIENTS // 2  # they did run side by side
        assert _wait_until(lambda: _stats(server)["connections"] == 0)
        stats = _stats(server)
        assert stats["live"] == {"contexts": 0, "graphs": 0, "tensors": 0}, stats
        usage = stats["quotas"]["token"]
        assert usage["contexts"] == usage["tensor_bytes"] == usage["in_flight_bytes"] == usage["model_bytes"] == 0


_SLOW_CLIENT = """
import sys, time
import numpy as np
from webml.serve.client import Client
from webml.serve import frames
url, token = sys.argv[1], sys.argv[2]
c = Client(url, token=token)
ctx = c.call("createContext", options={})[0]["context"]
n, depth = 384, 60
operands = {str(i): {"dataType": "float32", "shape": [n, n]} for i in range(depth + 2)}
nodes = [{"op": "matmul", "args": [k + 1 if k else 0, 1], "outputs": [k + 2]} for k in range(depth)]
graph = {"operands": operands, "inputs": {"x": 0}, "constants": {"1": {"offset": 0, "length": n * n * 4}},
         "nodes": nodes, "outputs": {"y": depth + 1}}
w = (np.eye(n, dtype=np.float32)).tobytes()
g = c.call("build", w, context=ctx, graph=graph)[0]["graph"]
desc = {"dataType": "float32", "shape": [n, n]}
t_in = c.call("createTensor", context=ctx, descriptor={**desc, "writable": True})[0]["tensor"]
t_out = c.call("createTensor", context=ctx, descriptor={**desc, "readable": True})[0]["tensor"]
print("ready", flush=True)
while True:
    c.send("dispatch", context=ctx, graph=g, inputs={"x": t_in}, outputs={"y": t_out})
    c.receive()
"""


def test_a_client_killed_mid_dispatch_frees_its_resources(tmp_path: Path) -> None:
    with running(make_service(tmp_path, backend="reference")) as server:
        url = f"ws://127.0.0.1:{server.port}/webnn"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen([sys.executable, "-c", _SLOW_CLIENT, url, TOKEN], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            assert _stats(server)["live"] == {"contexts": 1, "graphs": 1, "tensors": 2}
            assert _wait_until(lambda: _stats(server)["calls_running"] == 1, timeout=20)
            os.kill(proc.pid, signal.SIGKILL)  # in the middle of a dispatch
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        with Client(url, token=TOKEN) as other:  # others are served meanwhile
            assert other.call("createContext", options={})[0]["ok"]
        assert _wait_until(lambda: _stats(server)["connections"] == 0, timeout=60)
        stats = _stats(server)
        assert stats["live"] == {"contexts": 0, "graphs": 0, "tensors": 0}, stats
        assert stats["quotas"]["token"]["tensor_bytes"] == 0 and stats["quotas"]["token"]["model_bytes"] == 0
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "disconnect" for e in events) == 2
