"""How many samples one OpenVINO run should compute: EfficientNet-Lite0 at batch 8, by image size and chunk.

    .venv/bin/python bench/batch_chunks.py [--repeats 30] [--threads 1] [--sizes ...] [--write-docs docs/performance.md]

For each image size, webml's openvino backend runs the batch of 8 in chunks
of 1, 2, 4 and 8 images (the ``batch_chunk`` option; 8 is the whole batch,
as OpenVINO alone runs it) and with the default choice, against raw ONNX
Runtime on the whole batch (the anchor), timed in interleaved blocks.  It
prints each median's ratio to the anchor, the bytes of one image's largest
activation and the chunk the default chose (the largest divisor of the
batch whose chunk's largest activation fits in
``webml.backends.openvino.CHUNK_BYTES``): the figures that constant was
measured from.  On a shared machine compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import webml
from webml.backends import openvino as ovb
from webml.backends import samples
from webml.zoo import efficientnet_lite

sys.path.insert(0, str(Path(__file__).parent))
import run
from openvino_backend import check_outputs, interleaved_medians, ort_runner, saved_model, webml_runner

BATCH = 8
CHUNKS = (1, 2, 4, 8)


def largest_image_bytes(graph) -> int:
    axes = samples.sample_axes(graph)
    return 0 if axes is None else samples.largest_sample_bytes(graph, axes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per runner")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every runner")
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128, 160, 192, 224, 256, 288])
    parser.add_argument("--write-docs", metavar="PATH", help="write the results as markdown")
    args = parser.parse_args()
    params = efficientnet_lite.random_parameters()
    lines = [
        f"machine: {run.machine()}; shared with other work while measured: compare the ratios of one row",
        f"EfficientNet-Lite0 (random weights), batch {BATCH}, {args.threads} thread(s) per runner, median of"
        f" {max(1, args.repeats // 10) * 10} runs in interleaved blocks; CHUNK_BYTES {ovb.CHUNK_BYTES / 2**20:.0f} MiB."
        " Each cell: ms (ratio to raw ONNX Runtime on the whole batch) of webml's openvino backend running",
        "the batch in chunks of that many images; chunk 8 is the whole batch, as OpenVINO alone runs it.",
        "",
        f"| size | largest activation / image | raw onnxruntime | {' | '.join(f'chunk {k}' for k in CHUNKS)}"
        " | default (its chunk) |",
        "| ---: | ---: | ---: |" + " ---: |" * (len(CHUNKS) + 1),
    ]
    print("\n".join(lines), flush=True)
    for size in args.sizes:

        def build(context, size=size):
            return efficientnet_lite.build(context, params, batch=BATCH, image_size=size)

        feeds = {"image": np.random.default_rng(0).standard_normal((BATCH, 3, size, size)).astype(np.float32)}
        runners = {f"chunk {k}": webml_runner("openvino", build, feeds, args.threads, batch_chunk=k) for k in CHUNKS}
        runners["default"] = webml_runner("openvino", build, feeds, args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            runners["raw onnxruntime"] = ort_runner(saved_model(build, Path(tmp) / "model.onnx"), feeds, args.threads)
        check_outputs(runners)
        medians = interleaved_medians({k: r.run for k, r in runners.items()}, args.repeats)
        anchor = medians["raw onnxruntime"]
        cells = [f"{medians[f'chunk {k}']:.1f} ({medians[f'chunk {k}'] / anchor:.2f})" for k in CHUNKS]
        graph = build(webml.ml.create_context(backend="reference")).ir
        _, chosen, _ = ovb.OpenVinoBackend().chunking(graph)
        default = f"{medians['default']:.1f} ({medians['default'] / anchor:.2f}, {chosen})"
        largest = f"{largest_image_bytes(graph) / 2**20:.2f} MiB"
        lines.append(f"| {size} | {largest} | {anchor:.1f} | {' | '.join(cells)} | {default} |")
        print(lines[-1], flush=True)
    if args.write_docs:
        run.write_docs(
            Path(args.write_docs),
            "\n".join(lines),
            section="batch-chunks",
            title="Batches in chunks on the openvino backend (`batch_chunk`)",
            script="bench/batch_chunks.py",
        )


if __name__ == "__main__":
    main()
