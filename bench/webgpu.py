"""The webgpu backend benchmark: webml's WGSL kernels against ONNX Runtime's fastest provider here.

    .venv/bin/python bench/webgpu.py [--repeats 30] [--quick] [--write-docs docs/performance.md]

For EfficientNet-Lite0 batch 1 (the zoo's builder graph) and the BERT-style encoder of
bench/bert.py (6x384, 12 heads, sequence 128), both built with MLGraphBuilder with random
weights, it times webml's dispatch on the ``webgpu`` backend (MLTensors written once: a
run is one submit and its completion) against ``onnxruntime.InferenceSession.run`` on the
model ``webml.onnx.save`` writes, with the first of TensorRT, CUDA, ROCm, DirectML and CPU
that this ONNX Runtime build offers (the table says which), interleaved in blocks so both
see the same machine state (bench/openvino_backend.py's convention), and prints each
one's median, the ratio webgpu / ONNX Runtime, build time and time to first result,
with the WebGPU adapter (wgpu's adapter info) and the machine.

On lavapipe (Mesa's software Vulkan, the CI machines' adapter) the GPU is the CPU and the
times say little: ``--quick`` runs each model a few times only, to check that everything
runs and agrees.  A model webgpu cannot build yet (an operator without a kernel) is
reported as such, the others still run, and the exit status is then 1.
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

import webml
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import bert
import run
from openvino_backend import Feeds, Runner, saved_model

# ONNX Runtime's GPU providers, fastest first; CPU when none is there.
PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "ROCMExecutionProvider",
    "DmlExecutionProvider",
    "CPUExecutionProvider",
)
RTOL = ATOL = 1e-3  # float32 kernels in another summation order: agreement, not bit-equality


def best_provider() -> str:
    available = ort.get_available_providers()
    return next(p for p in PROVIDERS if p in available)


def adapter() -> str:
    """The WebGPU adapter webml's default webgpu context runs on, as wgpu describes it."""
    from webml.backends.webgpu.device import default_gpu

    info = default_gpu("high-performance").adapter_info
    parts = [info.get(k) for k in ("device", "description", "adapter_type", "backend_type")]
    return ", ".join(str(p) for p in parts if p)


def webgpu_runner(build: Callable[[webml.MLContext], webml.MLGraph], feeds: Feeds) -> Runner:
    """webml's dispatch on webgpu: MLTensors written once; a run ends when its results can be read."""
    start = time.perf_counter()
    context = webml.ml.create_context(backend="webgpu")
    built = time.perf_counter()
    graph = build(context)
    build_s = time.perf_counter() - built
    inputs = {n: context.create_tensor({**d.as_dict(), "writable": True}) for n, d in graph.input_descriptors.items()}
    for name, tensor in inputs.items():
        context.write_tensor(tensor, feeds[name])
    outputs = {n: context.create_tensor({**d.as_dict(), "readable": True}) for n, d in graph.output_descriptors.items()}
    first = next(iter(outputs.values()))

    def once() -> None:
        context.dispatch(graph, inputs, outputs)
        # A dispatch only queues the work: reading back (a small output) waits for the GPU to finish it.
        context.read_tensor(first)

    once()
    read = lambda: {n: context.read_tensor(t) for n, t in outputs.items()}  # noqa: E731
    read()
    return Runner(once, read, build_s, time.perf_counter() - start)


def ort_runner(path: Path, feeds: Feeds, provider: str) -> Runner:
    """``InferenceSession.run`` on ``provider`` with ONNX Runtime's default options."""
    start = time.perf_counter()
    session = ort.InferenceSession(str(path), providers=[provider])
    build_s = time.perf_counter() - start
    names = [o.name for o in session.get_outputs()]
    feeds = {i.name: feeds[i.name] for i in session.get_inputs()}
    last: list = []
    once = lambda: last.__setitem__(slice(None), session.run(None, feeds))  # noqa: E731
    once()
    return Runner(once, lambda: dict(zip(names, last, strict=True)), build_s, time.perf_counter() - start)


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int, block: int) -> dict[str, float]:
    """Median ms of each run, in alternating blocks (each block's first run dropped: a warm-up)."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(max(1, repeats // block)):
        for label, fn in runs.items():
            fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def bench(name: str, build: Callable, feeds: Feeds, provider: str, repeats: int, block: int) -> list[str]:
    """The model's table rows (or one saying why webgpu did not run it)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = saved_model(build, Path(tmp) / "model.onnx")
        raw = ort_runner(path, feeds, provider)
    try:
        gpu = webgpu_runner(build, feeds)
    except (webml.NotSupportedError, webml.OperationError, TypeError) as exc:
        return [f"| {name} | webml webgpu | not run: {str(exc).splitlines()[0][:160]} | | | |"]
    expected, actual = raw.read(), gpu.read()
    worst = 0.0
    for out, value in actual.items():
        np.testing.assert_allclose(value, expected[out], rtol=RTOL, atol=ATOL, err_msg=f"{name}: {out}")
        worst = max(worst, float(np.max(np.abs(value.astype(np.float64) - expected[out]))))
    medians = interleaved_medians({"webgpu": gpu.run, "onnxruntime": raw.run}, repeats, block)
    ratio = medians["webgpu"] / medians["onnxruntime"]
    return [
        f"| {name} | webml webgpu | {medians['webgpu']:.2f} | {ratio:.3f} | {gpu.build_s * 1e3:.0f} | "
        f"{gpu.first_s * 1e3:.0f} |",
        f"| {name} | onnxruntime {provider.removesuffix('ExecutionProvider')} | {medians['onnxruntime']:.2f} | "
        f"1.000 | {raw.build_s * 1e3:.0f} | {raw.first_s * 1e3:.0f} |",
        f"| {name} | (largest difference) | {worst:.1e} | | | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per runner and model")
    parser.add_argument("--quick", action="store_true", help="a few runs only: check that it runs (lavapipe)")
    parser.add_argument("--write-docs", metavar="PATH", help="write the results as markdown")
    args = parser.parse_args()
    repeats, block = (2, 1) if args.quick else (args.repeats, 10)
    provider = best_provider()
    rng = np.random.default_rng(0)
    effnet = efficientnet_lite.random_parameters()
    encoder = bert.random_parameters()
    models = [
        (
            "EfficientNet-Lite0 batch 1",
            lambda c: efficientnet_lite.build(c, effnet, batch=1),
            {"image": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)},
        ),
        (
            "BERT encoder 6x384, seq 128",
            lambda c: bert.build(c, encoder),
            {"hidden_states": rng.standard_normal((1, 128, 384)).astype(np.float32)},
        ),
    ]
    rows = [row for name, build, feeds in models for row in bench(name, build, feeds, provider, repeats, block)]
    not_run = [row for row in rows if "| not run: " in row]
    lines = [
        f"machine: {run.machine()}",
        f"WebGPU adapter: {adapter()} (wgpu {__import__('wgpu').__version__})",
        f"ONNX Runtime provider: {provider} (the fastest of {', '.join(ort.get_available_providers())})",
        f"median of {max(1, repeats // block) * block} runs each, in interleaved blocks of {block}"
        + (" (--quick: a check that it runs, not a measurement)" if args.quick else ""),
        "",
        "| model | runner | median (ms) | / onnxruntime | build (ms) | first result (ms) |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "webml's run is a dispatch (MLTensors written once) and the read-back of one output, which waits",
        "for the GPU; ONNX Runtime's is `InferenceSession.run` on the model `webml.onnx.save` writes, inputs",
        f"from and outputs to the host. Outputs agree within {RTOL:g} (the largest difference is listed).",
        "On a software adapter (lavapipe) the GPU is this CPU: the times then measure the WGSL kernels'",
        "work, not a GPU's.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        run.write_docs(
            Path(args.write_docs),
            text,
            section="webgpu",
            title="The webgpu backend against ONNX Runtime's fastest provider",
            script="bench/webgpu.py",
        )
    if not_run:
        sys.exit(f"{len(not_run)} model(s) did not run on webgpu")


if __name__ == "__main__":
    main()
