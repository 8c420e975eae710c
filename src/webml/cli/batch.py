"""``webml batch MODEL INPUT OUT``: a model over a folder of images, ``.npy`` files or Parquet, on Ray.

MODEL is ``-`` (or ``efficientnet-lite0``) for the built-in EfficientNet-Lite0,
or an ONNX file.  Results go to OUT as Parquet (see :mod:`webml.batch`).
Progress goes to stderr; stdout gets one line per failed item
(``FAILED <id>: <why>``) and a summary line, or with ``--json`` the summary
as one JSON object.

Exit status: 0 when at least one item was processed (failed items are listed,
and are in the ``error`` column); 1 when every item failed; 2 for a usage
error (a bad argument, an INPUT with no items, a model that cannot run,
an OUT folder that is not empty, a Ray address that cannot be joined).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..images import NORMALIZATIONS
from . import CliError
from .classify import read_labels
from .common import Progress, parse_free_dimensions, positive_int

#: Failed items listed on stdout (the rest are counted; all are in OUT's error column).
MAX_LISTED = 50


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        metavar="MODEL",
        help="an ONNX model, a classifier made by webml train (.npz), or - (efficientnet-lite0): the built-in one",
    )
    p.add_argument("input", metavar="INPUT", help="a folder of images or of .npy files, or Parquet (file or folder)")
    p.add_argument("out", metavar="OUT", help="the folder to write the results in, as Parquet (new or empty)")
    p.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS") or None,
        help="join the Ray cluster at this address (default: $RAY_ADDRESS, as `ray job submit` sets it; "
        "else a local Ray is started)",
    )
    p.add_argument(
        "--workers", type=positive_int, default=1, metavar="N", help="Ray workers, one graph each (default: 1)"
    )
    p.add_argument(
        "--cpus-per-worker", type=positive_int, default=1, metavar="C",
        help="Ray CPUs per worker, and ONNX Runtime threads (default: 1)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=None, metavar="B", help="items per batch (default: 16)"
    )
    p.add_argument("--labels", help="with an ONNX image classifier: a text file of class names, one per line")
    p.add_argument(
        "--normalize",
        choices=sorted(NORMALIZATIONS),
        help="with an ONNX image classifier: input normalization (default: imagenet, or the model's own)",
    )
    p.add_argument(
        "--top-k", type=positive_int, default=5, metavar="K", help="with images: classes kept per image (default: 5)"
    )
    p.add_argument(
        "--free-dim",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="fix a dynamic dimension of the model by name (a dynamic first dimension is 1 by default)",
    )
    p.add_argument("--id-column", default="id", help="with Parquet: the column of item identifiers (default: id)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object (every failure in it)")


def main(args: argparse.Namespace) -> int:
    import webml.batch

    labels = read_labels(args.labels) if args.labels else None
    free = parse_free_dimensions(args.free_dim)
    progress = Progress.of(args)
    try:
        summary = webml.batch.run(
            args.model,
            args.input,
            args.out,
            address=args.address,
            workers=args.workers,
            cpus_per_worker=args.cpus_per_worker,
            batch_size=args.batch_size or webml.batch.DEFAULT_BATCH_SIZE,
            backend=args.backend,
            progress=lambda done, total: progress.count(done, total, "items"),
            top_k=args.top_k,
            labels=labels,
            normalize=args.normalize,
            free_dimensions=free,
            id_column=args.id_column,
        )
    except (ValueError, TypeError, FileNotFoundError, ConnectionError) as exc:
        raise CliError(_option_names(str(exc))) from None
    except RuntimeError as exc:  # the run itself failed (not a usage error): status 1
        print(f"webml: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_report(summary), indent=2))
        return 0 if summary.succeeded else 1
    for failure in summary.failures[:MAX_LISTED]:
        print(f"FAILED {_shown(failure.id)}: {failure.error}")
    if len(summary.failures) > MAX_LISTED:
        print(f"... and {len(summary.failures) - MAX_LISTED} more failed (see the error column in {summary.out})")
    for skipped in summary.skipped:
        print(f"skipped {_shown(skipped)}")
    rate = summary.items / summary.seconds if summary.seconds else 0.0
    print(
        f"{summary.succeeded} of {summary.items} item(s) done, {len(summary.failures)} failed, "
        f"{summary.seconds:.1f} s ({rate:.1f} items/s, {summary.backend} backend); results in {summary.out}"
    )
    return 0 if summary.succeeded else 1


def _report(summary: Any) -> dict[str, Any]:
    return {
        "items": summary.items,
        "succeeded": summary.succeeded,
        "failures": [{"id": f.id, "error": f.error} for f in summary.failures],
        "skipped": summary.skipped,
        "seconds": round(summary.seconds, 3),
        "out": str(summary.out),
        "backend": summary.backend,
        "workers": summary.workers,
        "graph_builds": summary.graph_builds,
    }


def _shown(name: str) -> str:
    """An identifier as printed: a name with control characters (a newline in a file name) quoted."""
    return name if name.isprintable() else ascii(name)


def _option_names(message: str) -> str:
    """The API's argument names in a message said as the command's options."""
    message = message.replace("free_dimensions", "--free-dim")
    options = (("batch_size", "--batch-size"), ("top_k", "--top-k"), ("id_column", "--id-column"),
               ("address", "--address"), ("labels", "--labels"), ("normalize", "--normalize"))
    for api, option in options:
        if message.startswith(api + " ") or message.startswith(api + ":"):
            return option + message[len(api):]
    for api, arg in (("model", "MODEL"), ("input", "INPUT"), ("out", "OUT")):
        if message.startswith(api + " ") or message.startswith(api + ":"):
            return arg + message[len(api):]
    return message


