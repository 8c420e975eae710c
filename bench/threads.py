"""Threads: the BERT-style encoder of bench/bert.py with 1 and 2 intra-op threads, spinning on and off, per backend.

    .venv/bin/python bench/threads.py [--repeats 40] [--sequence 128] [--busy N]

Builds one context per setting (``intra_op_threads``, ``allow_spinning``)
and the ``power_preference`` presets, on the onnxruntime backend and on the
openvino backend (which has no spinning option), then times ``compute`` in interleaved
blocks (each block's first run dropped), so every setting sees the same
machine state.  Prints the median latency of each and its ratio to the
anchor, 1 thread without spinning.  ``--busy N`` runs N processes that
keep a core busy each while timing, as a shared machine's other work would.
On a shared machine the figures are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import webml

sys.path.insert(0, str(Path(__file__).parent))
import bert

#: (label, create_context options); the first is the anchor.
SETTINGS: list[tuple[str, dict[str, object]]] = [
    ("1 thread, no spinning", {"intra_op_threads": 1, "allow_spinning": False}),
    ("1 thread, spinning", {"intra_op_threads": 1, "allow_spinning": True}),
    ("2 threads, no spinning", {"intra_op_threads": 2, "allow_spinning": False}),
    ("2 threads, spinning", {"intra_op_threads": 2, "allow_spinning": True}),
    ("default", {}),
    ("power_preference='low-power'", {"power_preference": "low-power"}),
    ("power_preference='high-performance'", {"power_preference": "high-performance"}),
]
SETTINGS = [(f"onnxruntime, {label}", {"backend": "onnxruntime", **o}) for label, o in SETTINGS] + [
    ("openvino, 1 thread", {"backend": "openvino", "intra_op_threads": 1}),
    ("openvino, 2 threads", {"backend": "openvino", "intra_op_threads": 2}),
    ("openvino, default", {"backend": "openvino"}),
    ("openvino, power_preference='low-power'", {"backend": "openvino", "power_preference": "low-power"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--sequence", type=int, default=128)
    parser.add_argument("--block", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="processes keeping a core busy each while timing")
    args = parser.parse_args()
    params = bert.random_parameters()
    feed = {"hidden_states": np.random.default_rng(1).standard_normal((1, args.sequence, 384)).astype(np.float32)}
    runs = []
    for label, options in SETTINGS:
        context = webml.ml.create_context(**options)
        graph = bert.build(context, params, sequence=args.sequence)
        context.compute(graph, feed)  # warm up
        graph.wait_for_engine()  # openvino: its own engine, not the startup fallback, is timed
        runs.append((label, context, graph, []))
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for _ in range(max(1, args.repeats // args.block)):
            for _, context, graph, times in runs:
                context.compute(graph, feed)  # wakes the pool: not timed
                for _ in range(args.block):
                    start = time.perf_counter()
                    context.compute(graph, feed)
                    times.append(time.perf_counter() - start)
    finally:
        for process in busy:
            process.kill()
    anchor = statistics.median(runs[0][3])
    print(
        f"BERT encoder 6x384, sequence {args.sequence}, batch 1 (median of {len(runs[0][3])} runs each;"
        f" {args.busy} other busy process(es))"
    )
    print("| setting | median ms | ratio to onnxruntime, 1 thread, no spinning |\n| --- | --- | --- |")
    for label, _, _, times in runs:
        median = statistics.median(times)
        print(f"| {label} | {median * 1e3:.1f} | {median / anchor:.2f} |")


if __name__ == "__main__":
    main()
