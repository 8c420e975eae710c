"""``webml export --web MODEL OUT/``: a static folder that runs MODEL in the browser (see :mod:`webml.web`).

MODEL is an ONNX file (a shrunk one too) or a classifier written by ``webml
train`` (.npz, exported as one ONNX model of base and head).  OUT must be a
new or empty folder.  onnxruntime-web comes from the npm package pinned in
``src/webml/web/runtime/package-lock.json``, installed once by ``npm ci``
into webml's cache (the project's setup does it).
"""

from __future__ import annotations

import argparse

from . import CliError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--web", action="store_true", required=True, help="write a static web folder (onnxruntime-web)")
    p.add_argument("model", metavar="MODEL", help="an ONNX model, or a classifier written by webml train (.npz)")
    p.add_argument("out", metavar="OUT", help="the folder to write (new, or empty)")
    p.add_argument(
        "--normalize",
        choices=("imagenet", "lite", "unit"),
        help="an ONNX image model's input normalization in the demo (default: imagenet; "
        "a webml train classifier says its own)",
    )
    p.add_argument("--labels", help="a text file of class names, one per line, for an image model's demo")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from webml.web import WebExportError, export_web

    labels = None
    if args.labels:
        try:
            labels = [x.strip() for x in Path(args.labels).read_text(encoding="utf-8").splitlines() if x.strip()]
        except OSError as exc:
            raise CliError(f"cannot read the labels file {args.labels!r} ({exc})") from None
        if not labels:
            raise CliError(f"the labels file {args.labels!r} is empty")
    try:
        description = export_web(args.model, args.out, normalize=args.normalize, labels=labels)
    except WebExportError as exc:
        raise CliError(str(exc)) from None
    kind = "image model, top-5 demo" if "image" in description else "JSON inputs demo"
    print(f"wrote {args.out}/ ({kind}): index.html, webml-model.js, model.onnx, model.json, onnxruntime-web")
    print(f"serve it with any static server, e.g.: python3 -m http.server -d {args.out} 8000")
    return 0
