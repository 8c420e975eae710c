"""Threads: the BERT-style encoder of bench/bert.py with 1 and 2 intra-op threads, spinning on and off.

    .venv/bin/python bench/threads.py [--repeats 40] [--sequence 128]

Builds one context per setting (``intra_op_threads``, ``allow_spinning``)
and the ``power_preference`` presets, then times ``compute`` in interleaved
blocks (each block's first run dropped), so every setting sees the same
machine state.  Prints the median latency of each and its ratio to the
anchor, 1 thread without spinning.  On a shared machine the figures are
noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--sequence", type=int, default=128)
    parser.add_argument("--block", type=int, default=5)
    args = parser.parse_args()
    params = bert.random_parameters()
    feed = {"hidden_states": np.random.default_rng(1).standard_normal((1, args.sequence, 384)).astype(np.float32)}
    runs = []
    for label, options in SETTINGS:
        context = webml.ml.create_context(backend="onnxruntime", **options)
        graph = bert.build(context, params, sequence=args.sequence)
        context.compute(graph, feed)  # warm up
        runs.append((label, context, graph, []))
    for _ in range(max(1, args.repeats // args.block)):
        for _, context, graph, times in runs:
            context.compute(graph, feed)  # wakes the pool: not timed
            for _ in range(args.block):
                start = time.perf_counter()
                context.compute(graph, feed)
                times.append(time.perf_counter() - start)
    anchor = statistics.median(runs[0][3])
    print(f"BERT encoder 6x384, sequence {args.sequence}, batch 1 (median of {len(runs[0][3])} runs each)")
    print("| setting | median ms | ratio to 1 thread, no spinning |\n| --- | --- | --- |")
    for label, _, _, times in runs:
        median = statistics.median(times)
        print(f"| {label} | {median * 1e3:.1f} | {median / anchor:.2f} |")


if __name__ == "__main__":
    main()
