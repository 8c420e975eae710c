"""``webml shrink MODEL.onnx --to float16|int8|int4 -o OUT.onnx``: smaller weights, and what they cost.

Writes the shrunk model (see :mod:`webml.shrink`) and prints its report:
the files' sizes, each output's agreement with the float32 model on the
calibration inputs (``--calibration``: a folder of images or of .npy/.npz
files, or one .npy/.npz file; random inputs otherwise, said so; int8/int4 also
correct their biases on them, so keep some inputs apart to judge on), the latency
before and after, and the layers kept in float32 with the reason;
``--report FILE.json`` also writes it as JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import CliError
from .common import Progress, check_output_file, onnx_errors, parse_assignments, read_onnx_model, write_files_atomically

PRECISIONS = ("float16", "int8", "int4")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a float32 ONNX model")
    p.add_argument("--to", required=True, help="float16, int8 (per channel) or int4 (block-wise)")
    p.add_argument("-o", "--output", required=True, help="the ONNX file to write")
    p.add_argument("--keep-io", choices=("float32", "float16"), default="float32",
                   help="the inputs' and outputs' type for --to float16 (default: %(default)s, cast at the edges)")
    p.add_argument("--block-size", type=int, default=32, help="int4 block size along the input axis (default: 32)")
    p.add_argument("--asymmetric", action="store_true", help="int8/int4 with zero points (default: symmetric)")
    p.add_argument("--keep-embeddings", action="store_true", help="keep the embedding tables float32")
    p.add_argument("--calibration", metavar="PATH",
                   help="a folder of images or .npy/.npz files, or one such file: int8/int4 take back each "
                   "layer's mean shift on it (bias correction), and the report measures on it")
    p.add_argument("--no-bias-correction", dest="correct_bias", action="store_false",
                   help="with --calibration: measure on it, but leave the biases as they are")
    p.add_argument("--max-drop", type=float, metavar="X",
                   help="with --calibration: widen the most sensitive weights a rung at a time (int4, int8, "
                   "float16, float32) until the outputs' drop (1 - top-1 agreement, or 1 - cosine) is at most X")
    p.add_argument("--kind", choices=("classifier", "embedding", "other"),
                   help="how outputs are compared (default: by their rank, see webml.shrink.report)")
    p.add_argument("--report", metavar="FILE.json", help="also write the report as JSON")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=1,128",
                   help="fix a dynamic input's shape (repeatable)")


def _shapes(items: list[str]) -> dict[str, list[int]]:
    shapes = {}
    for name, text in parse_assignments(items, "--input-shape").items():
        try:
            shapes[name] = [int(d) for d in text.split(",")]
        except ValueError:
            raise CliError(f"--input-shape {name}={text}: expected sizes separated by commas, e.g. 1,128") from None
    return shapes


def main(args: argparse.Namespace) -> int:
    from webml.errors import DOMException
    from webml.shrink import ShrinkError, report, shrink, shrink_context

    if args.to not in PRECISIONS:
        raise CliError(f"--to must be one of {', '.join(PRECISIONS)}, got {args.to!r}")
    if args.calibration is not None:
        folder = Path(args.calibration)
        if not folder.exists():
            raise CliError(f"--calibration {args.calibration!r}: no such file or folder")
        if folder.is_dir() and not any(folder.iterdir()):
            raise CliError(f"--calibration {args.calibration!r} is an empty folder")
    if args.max_drop is not None and args.calibration is None:
        raise CliError("--max-drop needs --calibration (the inputs the drop is measured on)")
    check_output_file(args.output, "--output", ".onnx")
    if args.report:
        check_output_file(args.report, "--report", ".json")
    shapes = _shapes(args.input_shape)
    progress = Progress.of(args)
    with onnx_errors():
        model = read_onnx_model(args.model)
        try:
            progress.step(f"shrinking {args.model} to {args.to}")
            context = shrink_context(args.backend)
            result = shrink(model, args.to, context=context, keep_io=args.keep_io, block_size=args.block_size,
                            symmetric=not args.asymmetric, keep_embeddings=args.keep_embeddings,
                            input_shapes=shapes or None, calibration=args.calibration, max_drop=args.max_drop,
                            correct_bias=args.correct_bias, progress=progress.count)
            progress.step("measuring the shrunk model against the float32 one")
            measured = report(result, args.calibration, kind=args.kind)
        except (ShrinkError, TypeError, DOMException) as exc:
            raise CliError(str(exc)) from None
    writes = {Path(args.output): lambda temp: result.save(temp)}
    if args.report:
        writes[Path(args.report)] = lambda temp: Path(temp).write_text(measured.to_json() + "\n", encoding="utf-8")
    write_files_atomically(writes)
    print(measured)
    print(f"wrote {args.output}" + (f" and {args.report}" if args.report else ""))
    return 0
