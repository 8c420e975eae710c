"""Batch inference: items per second of ``webml.batch.run`` on Ray with 1 and 2 workers, against a plain loop.

    .venv/bin/python bench/batch.py [--images 96] [--batch-size 16] [--workload lite|npy] [--items 400]

``lite`` (the default): EfficientNet-Lite0 on ``--images`` photos cut from
scikit-image's samples.  ``npy``: a small ONNX classifier (conv, pool, gemm)
on ``--items`` ``.npy`` files, where the per-item overhead of Ray shows.

The anchor is a plain single-process loop, as a user would write it: one
context (webml's default backend and its default threads), the graph built
once, then the items batch by batch, results collected in memory.  The same
loop with one intra-op thread is printed too (one Ray worker gets one CPU,
so one thread).  One untimed pass of the loop on a few items comes first,
so that neither loop pays this process's imports; Ray's workers are new
processes and pay theirs, which is part of what Ray costs.
Ray runs share one local Ray started here (its start-up is timed and
printed apart); each run's time includes starting its workers, building
their graphs and writing Parquet.  On a shared machine figures are noisy:
compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import webml
import webml.batch


def _photos(root: Path, n: int) -> list[Path]:
    from PIL import Image

    from webml.zoo.efficientnet_lite import sample_image_path

    sources = [Image.open(sample_image_path(s)).convert("RGB") for s in ("chelsea", "coffee", "astronaut")]
    root.mkdir(parents=True)
    files = []
    for i in range(n):
        image = sources[i % len(sources)]
        w, h = image.size
        f = 0.6 + 0.4 * (i % 7) / 6
        crop = image.crop((0, 0, int(w * f), int(h * f)))
        files.append(root / f"{i:04d}.jpg")
        crop.save(files[-1], quality=90)
    return files


def _tiny_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(rng.standard_normal((16, 10)).astype(np.float32), "fc")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _plain_lite(files: list[Path], batch: int, **options) -> float:
    """The plain loop: EfficientNet-Lite0 built once, ``batch`` photos per compute."""
    from webml.zoo import efficientnet_lite as lite

    start = time.perf_counter()
    context = webml.ml.create_context(**options)
    graph = lite.build(context, lite.pretrained_parameters(), batch=batch)
    results = []
    for first in range(0, len(files), batch):
        chunk = lite.preprocess([str(f) for f in files[first : first + batch]])
        padded = np.zeros((batch, *chunk.shape[1:]), np.float32)
        padded[: len(chunk)] = chunk
        results.append(context.compute(graph, {"image": padded})["logits"][: len(chunk)])
    return time.perf_counter() - start


def _plain_npy(model: Path, files: list[Path], **options) -> float:
    """The plain loop: the ONNX model built once, one array per compute (as webml batch runs it)."""
    import webml.onnx

    start = time.perf_counter()
    context = webml.ml.create_context(**options)
    graph = webml.onnx.load(str(model), context)
    results = [context.compute(graph, {"x": np.load(f, allow_pickle=False)})["y"] for f in files]
    assert len(results) == len(files)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("lite", "npy"), default="lite")
    parser.add_argument("--images", type=int, default=96, help="photos (lite)")
    parser.add_argument("--items", type=int, default=400, help=".npy files (npy)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    work = Path(tempfile.mkdtemp(prefix="webml-bench-batch-"))
    try:
        if args.workload == "lite":
            files = _photos(work / "in", args.images)
            model = "-"
            plain = [("plain loop (anchor)", lambda: _plain_lite(files, args.batch_size)),
                     ("plain loop, 1 thread", lambda: _plain_lite(files, args.batch_size, intra_op_threads=1))]
        else:
            model = str(_tiny_model(work / "tiny.onnx"))
            (work / "in").mkdir()
            rng = np.random.default_rng(1)
            files = []
            for i in range(args.items):
                files.append(work / "in" / f"{i:05d}.npy")
                np.save(files[-1], rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
            plain = [("plain loop (anchor)", lambda: _plain_npy(Path(model), files)),
                     ("plain loop, 1 thread", lambda: _plain_npy(Path(model), files, intra_op_threads=1))]
        n = len(files)
        print(f"{args.workload}: {n} items, batch size {args.batch_size}, {os.cpu_count()} CPUs", file=sys.stderr)
        warm = files[: args.batch_size]
        if args.workload == "lite":
            _plain_lite(warm, args.batch_size)
        else:
            _plain_npy(Path(model), warm)
        rows = [(label, run()) for label, run in plain]
        import ray

        start = time.perf_counter()
        ray.init(address="local", num_cpus=max(os.cpu_count() or 1, 3), include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
        ray_start = time.perf_counter() - start
        try:
            for workers in (1, 2):
                out = work / f"out-{workers}"
                summary = webml.batch.run(model, work / "in", out, workers=workers, batch_size=args.batch_size)
                assert summary.items == n and not summary.failures, summary.failures[:3]
                rows.append((f"webml.batch, {workers} worker(s)", summary.seconds))
        finally:
            ray.shutdown()
        anchor = rows[0][1]
        print(f"{'setting':32} {'seconds':>8} {'items/s':>8} {'vs anchor':>9}")
        for label, seconds in rows:
            print(f"{label:32} {seconds:8.2f} {n / seconds:8.1f} {anchor / seconds:8.2f}x")
        print(f"(starting the local Ray itself took {ray_start:.2f} s, not counted above)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
