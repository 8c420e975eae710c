"""The benchmark: webml on onnxruntime against plain ONNX Runtime on the very same model.

    .venv/bin/python bench/run.py [--repeats 50] [--write-docs docs/performance.md]

For EfficientNet-Lite0 (batch 1 and 8) and a BERT-style encoder (6 layers,
hidden 384, 12 heads, sequence 128, batch 1), built with MLGraphBuilder with
random weights, it measures in one run: graph build time; the median
latency of webml's dispatch (MLTensors, IOBinding) and of a plain
``onnxruntime.InferenceSession.run`` on the model written by
``webml.onnx.save``, interleaved so both see the same machine state, and
their ratio; achieved GFLOP/s against a large float32 matmul in ONNX Runtime
(the machine's practical peak); and the build memory of bench/memory.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import webml
import webml.onnx
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import bert

HERE = Path(__file__).parent


def matmul_peak(n: int = 2048, repeats: int = 10, threads: int | None = None) -> float:
    """GFLOP/s of an n x n x n float32 MatMul in ONNX Runtime (``threads``: its intra-op threads, default all)."""
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", [a, b], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    session.run(None, {"a": x, "b": x})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"a": x, "b": x})
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def bench_model(
    name: str, build, feed_name: str, feed: np.ndarray, flops: float, repeats: int, **options: object
) -> dict:
    # keep_constants: webml.onnx.save below writes the model for the raw session (no effect on speed).
    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True, **options)
    start = time.perf_counter()
    graph = build(context)
    build_s = time.perf_counter() - start
    ((out_name, out_desc),) = graph.output_descriptors.items()

    x = context.create_tensor({"dataType": "float32", "shape": list(feed.shape), "writable": True})
    y = context.create_tensor({**out_desc.as_dict(), "readable": True})
    context.write_tensor(x, feed)

    with tempfile.TemporaryDirectory() as tmp:
        path = webml.onnx.save(graph, Path(tmp) / f"{name}.onnx")
        raw = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw_out = raw.run(None, {feed_name: feed})[0]

    for _ in range(5):  # warm both up
        context.dispatch(graph, {feed_name: x}, {out_name: y})
        raw.run(None, {feed_name: feed})
    np.testing.assert_allclose(context.read_tensor(y), raw_out, rtol=1e-4, atol=1e-4)

    # Alternate blocks of runs, dropping each block's first run: both sessions see the
    # same machine state, and one's idle spinning threads do not slow the other's runs.
    webml_times: list[float] = []
    raw_times: list[float] = []
    block = 10
    for _ in range(max(1, repeats // block)):
        for run, times in (
            (lambda: context.dispatch(graph, {feed_name: x}, {out_name: y}), webml_times),
            (lambda: raw.run(None, {feed_name: feed}), raw_times),
        ):
            run()
            for _ in range(block):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
    w, r = statistics.median(webml_times), statistics.median(raw_times)
    return {
        "model": name + ("" if options.get("prepack_weights", True) else " (prepack_weights=False)"),
        "build_s": build_s,
        "webml_ms": w * 1e3,
        "raw_ms": r * 1e3,
        "ratio": w / r,
        "gflops": flops / w / 1e9,
    }


def memory(*flags: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE / "memory.py"), "--json", *flags], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime {ort.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--write-docs", metavar="PATH", help="write the results as markdown")
    args = parser.parse_args()

    effnet = efficientnet_lite.random_parameters()
    encoder = bert.random_parameters()
    rng = np.random.default_rng(0)
    runs = []
    hidden = rng.standard_normal((1, 128, 384)).astype(np.float32)
    for options in ({}, {"prepack_weights": False}):
        for batch in (1, 8):
            image = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
            runs.append(
                bench_model(
                    f"EfficientNet-Lite0 batch {batch}",
                    lambda ctx, batch=batch: efficientnet_lite.build(ctx, effnet, batch=batch),
                    "image",
                    image,
                    efficientnet_lite.flops(batch),
                    args.repeats,
                    **options,
                )
            )
        runs.append(
            bench_model(
                "BERT encoder (6x384, seq 128) batch 1",
                lambda ctx: bert.build(ctx, encoder),
                "hidden_states",
                hidden,
                bert.flops(),
                args.repeats,
                **options,
            )
        )
    peak = matmul_peak()
    mem = memory()
    mem_onnx = memory("--source", "onnx")
    mem_unpacked = memory("--no-prepack")

    lines = [
        f"machine: {machine()}",
        f"float32 matmul peak (ONNX Runtime, 2048^3): {peak:.1f} GFLOP/s",
        "",
        "| model | build (s) | webml dispatch (ms) | raw ONNX Runtime (ms) | ratio | GFLOP/s | % of matmul peak |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        lines.append(
            f"| {r['model']} | {r['build_s']:.2f} | {r['webml_ms']:.2f} | {r['raw_ms']:.2f} | {r['ratio']:.3f} | "
            f"{r['gflops']:.1f} | {100 * r['gflops'] / peak:.0f}% |"
        )
    lines += [
        "",
        f"build memory ({mem['weights_mb']:.0f} MB of weights, an MLP of 2048x2048 matmul layers), resident "
        "memory above the baseline as multiples of the weights (target after build: 1.2x):",
        "",
        "| configuration | peak during build | after build |",
        "| --- | ---: | ---: |",
        f"| default, MLGraphBuilder (the caller's arrays = 1x) | {mem['peak_x']:.2f}x | {mem['after_x']:.2f}x |",
        f"| default, webml.onnx.load of a model file | {mem_onnx['peak_x']:.2f}x | {mem_onnx['after_x']:.2f}x |",
        f"| prepack_weights=False, MLGraphBuilder | {mem_unpacked['peak_x']:.2f}x | {mem_unpacked['after_x']:.2f}x |",
        "",
        "Both sides run the same ONNX model (written by `webml.onnx.save`) with ONNX Runtime's default",
        "threads (webml's without spinning); the plain session uses ONNX Runtime's default options, which",
        "repack MatMul/Gemm/Conv weights into the kernels' layouts at load time. So does webml's default:",
        "ONNX Runtime frees each original it packed, and webml drops its own copy of the constants once",
        "the session is built (`keep_constants=False`), so the weights are held about once. Without",
        "prepacking MLAS packs the weights on every call: transformer matrix products are slower (the",
        "`prepack_weights=False` rows). Resident memory counts shared-memory pages once, mapped or not",
        "(RSS minus RssShmem plus the system's Shmem growth)."
    ]
    text = "\n".join(lines)
    print(text)
    if args.write_docs:
        write_docs(Path(args.write_docs), text)


def write_docs(
    path: Path,
    text: str,
    section: str = "inference",
    title: str = "Inference: webml on ONNX Runtime against plain ONNX Runtime",
    script: str = "bench/run.py",
) -> None:
    """Write the results into the report's ``section``, keeping the other sections."""
    from webml.conformance.report import replace_marked_section

    if not path.exists():
        path.write_text("# Performance\n", encoding="utf-8")
    body = (
        f"## {title}\n\n"
        f"Measured by `.venv/bin/python {script} --write-docs {path.as_posix()}`"
        f" on {time.strftime('%Y-%m-%d')}.\n\n" + text
    )
    replace_marked_section(path, section, body)


if __name__ == "__main__":
    main()
