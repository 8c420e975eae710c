"""The openvino backend side by side: webml (openvino, onnxruntime) against raw OpenVINO f32 and raw ONNX Runtime.

    .venv/bin/python bench/openvino_backend.py [--repeats 30] [--threads 1]

For EfficientNet-Lite0 batch 1 and the BERT-style encoder of bench/bert.py
(6x384, sequence 128), both built with MLGraphBuilder with random weights, it
prints the build time of each webml backend and the median latency of four
runners on the very same model, timed in interleaved blocks in one process:
webml's dispatch (MLTensors) on each backend, ``onnxruntime.InferenceSession.run``
and OpenVINO's ``CompiledModel`` (f32, no dynamic quantization) on the model
``webml.onnx.save`` writes.  Ratios are against raw ONNX Runtime of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import openvino as ov

import webml
import webml.onnx
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import bert

BLOCK = 10


def webml_runner(backend: str, build, feed_name: str, feed: np.ndarray, threads: int | None) -> tuple:
    options = {"onnxruntime": {"intra_op_threads": threads}, "openvino": {"num_threads": threads}}[backend]
    context = webml.ml.create_context(backend=backend, **options)
    start = time.perf_counter()
    graph = build(context)
    build_s = time.perf_counter() - start
    # One MLTensor per input and output, written once: each timed run is a dispatch alone.
    inputs = {feed_name: context.create_tensor({"dataType": "float32", "shape": list(feed.shape), "writable": True})}
    outputs = {n: context.create_tensor({**d.as_dict(), "readable": True}) for n, d in graph.output_descriptors.items()}
    context.write_tensor(inputs[feed_name], feed)
    (output,) = outputs.values()
    return graph, build_s, lambda: context.dispatch(graph, inputs, outputs), lambda: context.read_tensor(output)


def raw_runners(path: Path, feed_name: str, feed: np.ndarray, threads: int | None) -> dict[str, Callable]:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()
    request.set_input_tensor(ov.Tensor(feed, shared_memory=True))
    return {
        "raw onnxruntime": lambda: session.run(None, {feed_name: feed}),
        "raw openvino f32": lambda: request.infer(),
    }


def bench(name: str, build, feed_name: str, feed: np.ndarray, repeats: int, threads: int | None) -> None:
    runners: dict[str, Callable] = {}
    builds = {}
    reference = None
    for backend in ("onnxruntime", "openvino"):
        graph, builds[backend], run, read = webml_runner(backend, build, feed_name, feed, threads)
        run()
        if reference is None:
            reference = read()
        np.testing.assert_allclose(read(), reference, rtol=1e-4, atol=1e-4)
        runners[f"webml {backend}"] = run
    with tempfile.TemporaryDirectory() as tmp:
        path = webml.onnx.save(graph, Path(tmp) / "model.onnx")
        runners.update(raw_runners(Path(path), feed_name, feed, threads))
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(max(1, repeats // BLOCK)):
        for label, run in runners.items():
            run()  # each block's first run is dropped: the previous runner's threads may still be busy
            for _ in range(BLOCK):
                start = time.perf_counter()
                run()
                times[label].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    anchor = medians["raw onnxruntime"]
    print(f"\n{name}  (build: " + ", ".join(f"{b} {s * 1e3:.0f} ms" for b, s in builds.items()) + ")")
    for label, ms in medians.items():
        print(f"  {label:18s} {ms:8.2f} ms   x{ms / anchor:.2f} of raw onnxruntime")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: each one's own)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    effnet = efficientnet_lite.random_parameters()
    image = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    bench("EfficientNet-Lite0 batch 1", lambda c: efficientnet_lite.build(c, effnet), "image", image,
          args.repeats, args.threads)
    encoder = bert.random_parameters()
    hidden = rng.standard_normal((1, 128, 384)).astype(np.float32)
    bench("BERT encoder (6x384, seq 128) batch 1", lambda c: bert.build(c, encoder), "hidden_states", hidden,
          args.repeats, args.threads)


if __name__ == "__main__":
    main()
