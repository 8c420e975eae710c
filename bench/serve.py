"""Per-call overhead of ``webml serve`` against the in-process Python API.

    .venv/bin/python bench/serve.py [--backend onnxruntime] [--runs 300] [--big-runs 40]

Starts ``webml serve`` in its own process (on 127.0.0.1, a free port, a
temporary token file), then times the same work through the Python client of
the protocol (``webml.serve.client``) and in this process with ``webml.ml``:

* small graph: ``relu(x * w + b)`` on 64 float32 values: ``dispatch`` alone,
  and ``writeTensor`` + ``dispatch`` + ``readTensor``;
* 4 MiB tensor: ``writeTensor`` then ``readTensor`` of 1 Mi float32 values.

Prints the median and p99 in milliseconds of each, side by side, and the
service's overhead (service median minus in-process median).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import webml
from webml.serve.client import Client

N = 64
BIG = 1 << 20  # float32 values: 4 MiB


def percentile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    for _ in range(min(10, runs)):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def in_process(backend: str, runs: int, big_runs: int) -> dict[str, list[float]]:
    context = webml.ml.create_context(backend=backend)
    builder = webml.MLGraphBuilder(context)
    desc = {"dataType": "float32", "shape": [N]}
    x = builder.input("x", desc)
    w = builder.constant(desc, np.full(N, 0.5, np.float32))
    b = builder.constant(desc, np.full(N, 0.25, np.float32))
    graph = builder.build({"y": builder.relu(builder.add(builder.mul(x, w), b))})
    t_in = context.create_tensor({**desc, "writable": True})
    t_out = context.create_tensor({**desc, "readable": True})
    data = np.linspace(-1, 1, N, dtype=np.float32)
    big = context.create_tensor({"dataType": "float32", "shape": [BIG], "writable": True, "readable": True})
    big_data = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)

    def dispatch() -> None:
        context.dispatch(graph, {"x": t_in}, {"y": t_out})

    def round_trip() -> None:
        context.write_tensor(t_in, data)
        dispatch()
        context.read_tensor(t_out)

    def big_trip() -> None:
        context.write_tensor(big, big_data)
        context.read_tensor(big)

    return {"dispatch": timed(dispatch, runs), "write+dispatch+read": timed(round_trip, runs),
            "4 MiB write+read": timed(big_trip, big_runs)}


def served(url: str, token: str, runs: int, big_runs: int) -> dict[str, list[float]]:
    with Client(url, token=token) as c:
        ctx = c.call("createContext", options={})[0]["context"]
        desc = {"dataType": "float32", "shape": [N]}
        graph = {
            "operands": {str(i): desc for i in range(6)},
            "inputs": {"x": 0},
            "constants": {"1": {"offset": 0, "length": 4 * N}, "2": {"offset": 4 * N, "length": 4 * N}},
            "nodes": [{"op": "mul", "args": [0, 1], "outputs": [3]}, {"op": "add", "args": [3, 2], "outputs": [4]},
                      {"op": "relu", "args": [4], "outputs": [5]}],
            "outputs": {"y": 5},
        }
        weights = np.full(N, 0.5, np.float32).tobytes() + np.full(N, 0.25, np.float32).tobytes()
        g = c.call("build", weights, context=ctx, graph=graph)[0]["graph"]
        t_in = c.call("createTensor", context=ctx, descriptor={**desc, "writable": True})[0]["tensor"]
        t_out = c.call("createTensor", context=ctx, descriptor={**desc, "readable": True})[0]["tensor"]
        big = c.call("createTensor", context=ctx, descriptor={"dataType": "float32", "shape": [BIG],
                                                              "writable": True, "readable": True})[0]["tensor"]
        data = np.linspace(-1, 1, N, dtype=np.float32).tobytes()
        big_data = np.random.default_rng(0).standard_normal(BIG).astype(np.float32).tobytes()

        def dispatch() -> None:
            c.call("dispatch", context=ctx, graph=g, inputs={"x": t_in}, outputs={"y": t_out})

        def round_trip() -> None:
            c.call("writeTensor", data, tensor=t_in)
            dispatch()
            np.frombuffer(c.call("readTensor", tensor=t_out)[1], np.float32)

        def big_trip() -> None:
            c.call("writeTensor", big_data, tensor=big)
            got = c.call("readTensor", tensor=big)[1]
            assert len(got) == 4 * BIG

        return {"dispatch": timed(dispatch, runs), "write+dispatch+read": timed(round_trip, runs),
                "4 MiB write+read": timed(big_trip, big_runs)}


def start_service(backend: str, folder: Path) -> tuple[subprocess.Popen, str, str]:
    token_file = folder / "serve.token"
    proc = subprocess.Popen(
        [sys.executable, "-m", "webml", "serve", "--port", "0", "--backend", backend, "--token-file", str(token_file),
         "--audit", str(folder / "audit.jsonl"), "--grants", str(folder / "grants.json")],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if m := re.search(r"(ws://\S+/webnn)", line):
            return proc, m[1], token_file.read_text().strip()
    proc.kill()
    raise SystemExit("webml serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--big-runs", type=int, default=40)
    args = parser.parse_args()
    local = in_process(args.backend, args.runs, args.big_runs)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, token = start_service(args.backend, Path(tmp))
        try:
            remote = served(url, token, args.runs, args.big_runs)
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"webml serve vs in-process, backend {args.backend} (ms; {args.runs} runs, {args.big_runs} for 4 MiB)")
    print(f"{'':22} {'in-process':>21} {'service':>21} {'overhead':>9}")
    print(f"{'':22} {'median':>10} {'p99':>10} {'median':>10} {'p99':>10} {'median':>9}")
    for name in local:
        a, b = local[name], remote[name]
        ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        print(f"{name:22} {ma:10.3f} {percentile(a, 0.99) * 1e3:10.3f} {mb:10.3f} "
              f"{percentile(b, 0.99) * 1e3:10.3f} {mb - ma:9.3f}")


if __name__ == "__main__":
    main()
