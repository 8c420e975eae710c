"""The openvino backend side by side: webml (openvino, onnxruntime) against raw OpenVINO f32 and raw ONNX Runtime.

    .venv/bin/python bench/openvino_backend.py [--repeats 30] [--threads 1]

For EfficientNet-Lite0 batch 1 and the BERT-style encoder of bench/bert.py
(6x384, sequence 128), both built with MLGraphBuilder with random weights, it
prints the build time of each webml backend and the median latency of four
runners on the very same model, timed in interleaved blocks in one process:
webml's dispatch (MLTensors) on each backend, ``onnxruntime.InferenceSession.run``
and OpenVINO's ``CompiledModel`` (f32, no dynamic quantization) on the model
``webml.onnx.save`` writes.  Ratios are against raw ONNX Runtime of the same run.
The runners and the interleaved timing are shared with bench/compare.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

import webml
import webml.onnx
from webml.backends.openvino import ov  # OpenVINO without its converter, whose import writes telemetry
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import bert

BLOCK = 10
Feeds = dict[str, np.ndarray]


@dataclass
class Runner:
    """One engine ready to run one model on fixed inputs."""

    run: Callable[[], object]
    read: Callable[[], dict[str, np.ndarray]]  # the outputs of the latest run, by name
    build_s: float  # graph build / session creation / compilation
    first_s: float  # from nothing (the context or core included) to the first result read back


def _first_result(start: float, build_s: float, run: Callable, read: Callable) -> Runner:
    run()
    read()
    return Runner(run, read, build_s, time.perf_counter() - start)


def timed_engine(graph: webml.MLGraph) -> webml.MLGraph:
    """``graph`` once the backend's own engine can run every call, so that what is timed is that engine's:
    the openvino backend's startup fallback runs a first call on ONNX Runtime while OpenVINO compiles."""
    if not graph.wait_for_engine(600):
        raise SystemExit(f"the {graph.context.backend} backend could not compile the graph ({graph.engine} runs it)")
    return graph


def webml_runner(
    backend: str, build: Callable[[webml.MLContext], webml.MLGraph], feeds: Feeds, threads: int | None, **options: Any
) -> Runner:
    """webml's dispatch on ``backend`` with default options (but ``threads`` and ``options``): MLTensors
    written once."""
    start = time.perf_counter()
    context = webml.ml.create_context(backend=backend, intra_op_threads=threads, **options)
    built = time.perf_counter()
    graph = build(context)
    build_s = time.perf_counter() - built
    # One MLTensor per input and output, written once: each timed run is a dispatch alone.
    inputs = {
        name: context.create_tensor({**desc.as_dict(), "writable": True})
        for name, desc in graph.input_descriptors.items()
    }
    for name, tensor in inputs.items():
        context.write_tensor(tensor, feeds[name])
    outputs = {n: context.create_tensor({**d.as_dict(), "readable": True}) for n, d in graph.output_descriptors.items()}
    runner = _first_result(
        start,
        build_s,
        lambda: context.dispatch(graph, inputs, outputs),
        lambda: {name: context.read_tensor(tensor) for name, tensor in outputs.items()},
    )
    timed_engine(graph)
    return runner


def ort_runner(path: Path, feeds: Feeds, threads: int | None) -> Runner:
    """``onnxruntime.InferenceSession.run`` with ONNX Runtime's default options (but ``threads``)."""
    start = time.perf_counter()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    build_s = time.perf_counter() - start
    names = [o.name for o in session.get_outputs()]
    feeds = {i.name: feeds[i.name] for i in session.get_inputs()}
    last: list = []
    return _first_result(
        start,
        build_s,
        lambda: last.__setitem__(slice(None), session.run(None, feeds)),
        lambda: dict(zip(names, last, strict=True)),
    )


def openvino_runner(path: Path, feeds: Feeds, threads: int | None) -> Runner:
    """OpenVINO's CompiledModel, exact float32 (no bf16, no dynamic quantization), its inputs' shapes fixed."""
    start = time.perf_counter()
    core = ov.Core()
    model = core.read_model(str(path))
    names = [i.get_any_name() for i in model.inputs]
    # Fixed shapes, as webml compiles them: OpenVINO's best case for a dynamic model.
    model.reshape({name: list(feeds[name].shape) for name in names})
    config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    compiled = core.compile_model(model, "CPU", config)
    build_s = time.perf_counter() - start
    request = compiled.create_infer_request()
    for name in names:
        request.set_tensor(name, ov.Tensor(feeds[name], shared_memory=True))
    return _first_result(
        start,
        build_s,
        request.infer,
        lambda: {o.get_any_name(): request.get_tensor(o).data.copy() for o in compiled.outputs},
    )


def check_outputs(runners: dict[str, Runner], rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """Every runner's outputs match the first runner's, by name (all runners run the same weights)."""
    (first, reference), *others = ((label, r.read()) for label, r in runners.items())
    for label, outputs in others:
        for name in reference.keys() & outputs.keys():
            np.testing.assert_allclose(
                outputs[name], reference[name], rtol=rtol, atol=atol, err_msg=f"{label} vs {first}: {name}"
            )


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each run, timed in alternating blocks so that all see the same machine state."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(max(1, repeats // BLOCK)):
        for label, run in runs.items():
            run()  # each block's first run is dropped: the previous runner's threads may still be busy
            for _ in range(BLOCK):
                start = time.perf_counter()
                run()
                times[label].append(time.perf_counter() - start)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def saved_model(build: Callable[[webml.MLContext], webml.MLGraph], path: Path) -> Path:
    """The ONNX model of ``build``'s graph, as webml.onnx.save writes it (for the raw engines)."""
    return webml.onnx.save(build(webml.ml.create_context(backend="onnxruntime", keep_constants=True)), path)


def bench(name: str, build, feed_name: str, feed: np.ndarray, repeats: int, threads: int | None) -> None:
    feeds = {feed_name: feed}
    runners = {f"webml {b}": webml_runner(b, build, feeds, threads) for b in ("onnxruntime", "openvino")}
    with tempfile.TemporaryDirectory() as tmp:
        path = saved_model(build, Path(tmp) / "model.onnx")
        runners["raw onnxruntime"] = ort_runner(path, feeds, threads)
        runners["raw openvino f32"] = openvino_runner(path, feeds, threads)
    check_outputs(runners)
    medians = interleaved_medians({k: r.run for k, r in runners.items()}, repeats)
    anchor = medians["raw onnxruntime"]
    builds = {k: r.build_s for k, r in runners.items() if k.startswith("webml")}
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
    bench(
        "EfficientNet-Lite0 batch 1",
        lambda c: efficientnet_lite.build(c, effnet),
        "image",
        image,
        args.repeats,
        args.threads,
    )
    encoder = bert.random_parameters()
    hidden = rng.standard_normal((1, 128, 384)).astype(np.float32)
    bench(
        "BERT encoder (6x384, seq 128) batch 1",
        lambda c: bert.build(c, encoder),
        "hidden_states",
        hidden,
        args.repeats,
        args.threads,
    )


if __name__ == "__main__":
    main()
