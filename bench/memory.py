"""Build memory: peak and retained resident memory of building a graph with >= 100 MB of weights.

    .venv/bin/python bench/memory.py [--backend onnxruntime] [--mb 112] [--width 2048]
        [--source builder|onnx] [--no-prepack]

Runs in a fresh process.  ``--source builder`` (default): creates the
weights (the caller's arrays, 1x), builds an MLP of ``--width`` square layers whose constants total
``--mb`` megabytes with MLGraphBuilder, then drops the caller's arrays.
``--source onnx``: writes that MLP as an ONNX model file first, then
``webml.onnx.load``s it (the caller holds nothing).  Prints the peak
resident memory during build and the resident memory after build, each
above the baseline taken before the weights existed (after a small warm-up
graph, so that the pages of the libraries' code are not counted), as
multiples of the weights' size.  Targets (issue 12): after build <= 1.2x;
peak near 2x for ``--source onnx``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import tempfile
import time

import numpy as np

import webml
import webml.onnx
from webml.storage import return_freed_memory


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


def _weight(seed: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((width, width)).astype(np.float32)


def _mlp(context: webml.MLContext, weights: list[np.ndarray], width: int) -> webml.MLGraph:
    builder = webml.MLGraphBuilder(context)
    h = builder.input("x", {"dataType": "float32", "shape": [1, width]})
    for w in weights:
        h = builder.relu(builder.matmul(h, builder.constant({"dataType": "float32", "shape": [width, width]}, w)))
    return builder.build({"y": h})


def _onnx_mlp(path: str, layers: int, width: int) -> int:
    """Write the MLP as an ONNX model file (weights inside); returns the weights' bytes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, h = [], [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array(_weight(i, width), f"w{i}"))
        nodes += [helper.make_node("MatMul", [h, f"w{i}"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        h = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, [1, width])],
        inits,
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return layers * width * width * 4


def measure(
    backend: str, megabytes: int, width: int = 2048, source: str = "builder", **options: object
) -> dict[str, float]:
    layer_bytes = width * width * 4
    layers = max(1, round(megabytes * 2**20 / layer_bytes))
    context = webml.ml.create_context(backend=backend, **options)
    x = np.random.default_rng(0).standard_normal((1, width)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up: the first builds and runs map the libraries' code, which is no weight memory, by the
        # same path as the measured build (a model file's weights are read from the file by ONNX Runtime).
        # Small, so that freeing it does not raise malloc's mmap threshold above the weights' size.
        if source == "onnx":
            _onnx_mlp(os.path.join(tmp, "warm.onnx"), 2, 64)
            warm = webml.onnx.load(os.path.join(tmp, "warm.onnx"), context)
        else:
            warm = _mlp(context, [np.eye(64, dtype=np.float32)], 64)
        for _ in range(2):  # the openvino backend runs a graph's first call on ONNX Runtime, later ones itself
            context.compute(warm, {"x": x[:, :64]})
        model_path = os.path.join(tmp, "mlp.onnx")
        if source == "onnx":
            _onnx_mlp(model_path, layers, width)
        gc.collect()
        return_freed_memory()  # writing the model file freed its bytes: not held by the baseline
        base = status("VmRSS")
        base_pss = rollup("Pss")
        base_shmem = shmem()
        reset_peak()

        start = time.perf_counter()
        if source == "onnx":
            size = layers * layer_bytes
            graph = webml.onnx.load(model_path, context)
        else:
            weights = [_weight(i, width) for i in range(layers)]
            size = sum(w.nbytes for w in weights)
            graph = _mlp(context, weights, width)
            del weights
            # Arrays under malloc's (dynamic) mmap threshold, as 784 KiB layers are, stay in its
            # heap once the caller frees them: hand those pages back, so that "after" counts what
            # webml and the engine hold, not the caller's freed memory.
            return_freed_memory()
        build_s = time.perf_counter() - start
        # After build is once the backend's own engine holds the graph (the openvino backend's
        # startup fallback runs it on ONNX Runtime until then); the peak counts the time between.
        graph.wait_for_engine()
        peak = status("VmHWM") - base
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
        "source": source,
        "options": options,
        "weights_mb": size / 2**20,
        "build_s": build_s,
        "peak_x": peak / size,
        "after_x": after / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--mb", type=int, default=112)
    parser.add_argument(
        "--width", type=int, default=2048, help="the layers' width (448: weights of 784 KiB each; default: %(default)s)"
    )
    parser.add_argument("--source", choices=("builder", "onnx"), default="builder")
    parser.add_argument("--no-prepack", action="store_true", help="onnxruntime: prepack_weights=False")
    parser.add_argument("--keep-constants", action="store_true", help="onnxruntime: keep_constants=True")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    options: dict[str, object] = {}
    if args.no_prepack:
        options["prepack_weights"] = False
    if args.keep_constants:
        options["keep_constants"] = True
    result = measure(args.backend, args.mb, args.width, source=args.source, **options)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['backend']} {result['options'] or ''} ({result['source']}): {result['weights_mb']:.0f} MB "
            f"of weights, build {result['build_s']:.2f} s, "
            f"peak {result['peak_x']:.2f}x, after build {result['after_x']:.2f}x"
        )


if __name__ == "__main__":
    main()
