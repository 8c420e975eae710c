"""Build memory: peak and retained resident memory of building a graph with >= 100 MB of weights.

    .venv/bin/python bench/memory.py [--backend onnxruntime] [--mb 112]

Runs in a fresh process: creates the weights (the caller's arrays, 1x),
builds an MLP whose constants total ``--mb`` megabytes, then drops the
caller's arrays.  Prints the peak resident memory during build and the
resident memory after build, each above the baseline taken before the
weights existed, as multiples of the weights' size (the caller's arrays
count as 1x).  Targets (issue 4): peak <= 2.5x, after build <= 1.3x.
"""

from __future__ import annotations

import argparse
import gc
import json
import time

import numpy as np

import webml


def _proc_field(path: str, field: str) -> float:
    """A ``Field:   <n> kB`` line of a /proc file, in bytes."""
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1]) * 1024
    raise KeyError(f"{field} in {path}")


def status(field: str) -> float:
    """A /proc/self/status memory field, in bytes."""
    return _proc_field("/proc/self/status", field)


def shmem() -> float:
    """Shared memory in use on the whole system (/proc/meminfo), in bytes: counts the
    pages of shared-memory files whether or not any process maps them."""
    return _proc_field("/proc/meminfo", "Shmem")


def rollup(field: str) -> float:
    """A /proc/self/smaps_rollup field, in bytes (Pss counts a page mapped twice once)."""
    return _proc_field("/proc/self/smaps_rollup", field)


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (peak RSS) to the current RSS


def measure(backend: str, megabytes: int, width: int = 2048, **options: object) -> dict[str, float]:
    layer_bytes = width * width * 4
    layers = max(1, round(megabytes * 2**20 / layer_bytes))
    context = webml.ml.create_context(backend=backend, **options)
    x = np.random.default_rng(0).standard_normal((1, width)).astype(np.float32)
    gc.collect()
    base = status("VmRSS")
    base_pss = rollup("Pss")
    base_shmem = shmem()
    reset_peak()

    weights = [np.random.default_rng(i).standard_normal((width, width)).astype(np.float32) for i in range(layers)]
    size = sum(w.nbytes for w in weights)
    start = time.perf_counter()
    builder = webml.MLGraphBuilder(context)
    h = builder.input("x", {"dataType": "float32", "shape": [1, width]})
    for w in weights:
        h = builder.relu(builder.matmul(h, builder.constant({"dataType": "float32", "shape": [width, width]}, w)))
    graph = builder.build({"y": h})
    build_s = time.perf_counter() - start
    peak = status("VmHWM") - base
    del weights, builder, h
    gc.collect()
    context.compute(graph, {"x": x})  # the graph still runs without the caller's arrays
    # Resident memory, counting shared-memory pages once whether mapped or not: what the
    # process maps of anything else, plus the shared memory in use since the baseline.
    after = status("VmRSS") - status("RssShmem") + shmem() - base_shmem - base
    breakdown = {f: status(f) for f in ("RssAnon", "RssShmem")}
    pss = rollup("Pss") - base_pss
    return {
        "after_pss_x": pss / size,
        "after_anon_mb": breakdown["RssAnon"] / 2**20,
        "after_shmem_mb": breakdown["RssShmem"] / 2**20,
        "backend": backend,
        "weights_mb": size / 2**20,
        "build_s": build_s,
        "peak_x": peak / size,
        "after_x": after / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--mb", type=int, default=112)
    parser.add_argument("--prepack", action="store_true", help="onnxruntime: prepack_weights=True")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    options = {"prepack_weights": True} if args.prepack else {}
    result = measure(args.backend, args.mb, **options)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['backend']}: {result['weights_mb']:.0f} MB of weights, build {result['build_s']:.2f} s, "
            f"peak {result['peak_x']:.2f}x, after build {result['after_x']:.2f}x"
        )


if __name__ == "__main__":
    main()
