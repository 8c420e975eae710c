"""Loading a protected model next to loading the same model unprotected (issue 17: at most 1.2x).

    .venv/bin/python bench/protected_load.py [--repeats 9] [--backend onnxruntime] [--model efficientnet]

For each model, in one process with the repeats interleaved (unprotected,
protected, unprotected ...), prints the median and fastest time of

* ``unprotected``: ``webml.onnx.load(path, context)`` of the ONNX file, the anchor;
* ``protected``: ``webml.protected.load(package, context, key=..., trusted=...)`` of the same
  model protected: signature check, key unwrap, the recipient's payload MAC (GMAC) and AES-256-GCM decryption
  in memory, then the same import from memory;
* ``open only``: the protected load's verification and decryption alone (no import),

and each median's ratio to the anchor's.  Both graphs are built on the same backend with
the same options, and each load's graph is destroyed before the next.  The figures of a busy
machine are noisy: compare ratios of one run, not times across runs.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx

import webml
import webml.onnx
import webml.protected as wp
from webml.protected.opening import open_package
from webml.zoo import efficientnet_lite

ROOT = Path(__file__).resolve().parent.parent


def models() -> dict[str, Callable[[], onnx.ModelProto]]:
    def efficientnet() -> onnx.ModelProto:
        context = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
        return webml.onnx.to_model(efficientnet_lite.build(context, efficientnet_lite.random_parameters()))

    return {"efficientnet": efficientnet, "bert": lambda: onnx.load(ROOT / "tests" / "fixtures" / "bert_tiny.onnx")}


def measure(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    for fn in cases.values():
        fn()  # warm: imports, the page cache
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(repeats):
        for label, fn in cases.items():
            gc.collect()
            start = time.perf_counter()
            result = fn()
            times[label].append(time.perf_counter() - start)
            destroy = getattr(result, "destroy", None)
            if destroy is not None:
                destroy()
            del result
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--model", choices=["efficientnet", "bert", "all"], default="all")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the backend (default 1)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    chosen = models() if args.model == "all" else {args.model: models()[args.model]}
    publisher, device = wp.generate_key_pair(), wp.generate_key_pair()
    trusted = [publisher.public_key()]
    context = webml.ml.create_context(backend=args.backend, intra_op_threads=args.threads)
    print(f"backend {args.backend}, {args.threads} thread(s), {args.repeats} repeats interleaved")
    with tempfile.TemporaryDirectory() as folder:
        for name, make in chosen.items():
            path = Path(folder) / f"{name}.onnx"
            onnx.save(make(), path)
            package = wp.protect(path, Path(folder) / f"{name}.webmlpkg", recipients=[device.public_key()],
                                 key=publisher)
            free = {"sequence": 16} if name == "bert" else None
            cases = {
                "unprotected": lambda p=path, f=free: webml.onnx.load(p, context, free_dimensions=f),
                "protected": lambda p=package, f=free: wp.load(p, context, key=device, trusted=trusted,
                                                               free_dimensions=f),
                "open only": lambda p=package: open_package(p, key=device, trusted=trusted, backend=args.backend),
            }
            times = measure(cases, args.repeats)
            anchor = statistics.median(times["unprotected"])
            size = path.stat().st_size
            print(f"\n{name} ({size / 1e6:.1f} MB of ONNX, package {package.stat().st_size / 1e6:.1f} MB)")
            print(f"  {'case':14} {'median ms':>10} {'fastest ms':>11} {'ratio':>7}")
            for label, values in times.items():
                median = statistics.median(values)
                print(f"  {label:14} {median * 1e3:10.1f} {min(values) * 1e3:11.1f} {median / anchor:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
