"""``webml run MODEL.onnx --input NAME=FILE.npy ...``: run any ONNX model through webml."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import CliError
from .common import load_onnx_model, parse_assignments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX model")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy", help="an input (repeatable)")
    p.add_argument(
        "--free-dim", action="append", default=[], metavar="NAME=SIZE", help="fix a dynamic dimension (repeatable)"
    )
    p.add_argument("--output-dir", "-o", help="save each output as NAME.npy there")


def _load_npy(name: str, path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CliError(f"input {name!r}: no such file {path!r}") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"input {name!r}: {path!r} is not a readable .npy file ({exc})") from None


def main(args: argparse.Namespace) -> int:
    import webml

    free = {k: _positive_int(k, v) for k, v in parse_assignments(args.free_dim, "--free-dim").items()}
    context = webml.ml.create_context(backend=args.backend)
    graph = load_onnx_model(args.model, context, free)
    files = parse_assignments(args.input, "--input")
    expected = graph.input_descriptors
    unknown = sorted(files.keys() - expected.keys())
    missing = sorted(expected.keys() - files.keys())
    if unknown or missing:
        parts = [f"unknown input(s) {unknown}" if unknown else "", f"missing input(s) {missing}" if missing else ""]
        raise CliError("; ".join(p for p in parts if p) + f" (the model's inputs: {_describe(expected)})")
    feeds = {}
    for name, path in files.items():
        array = _load_npy(name, path)
        desc = expected[name]
        if array.dtype != np.dtype(webml.dtypes.numpy_dtype(desc.data_type)):
            raise CliError(f"input {name!r} has dtype {array.dtype}, the model expects {desc.data_type}")
        if tuple(array.shape) != desc.shape:
            raise CliError(f"input {name!r} has shape {list(array.shape)}, the model expects {list(desc.shape)}")
        feeds[name] = array
    outputs = context.compute(graph, feeds)
    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for name, array in outputs.items():
        print(_summary(name, array))
        if out_dir is not None:
            np.save(out_dir / f"{_safe(name)}.npy", array)
    if out_dir is not None:
        print(f"saved {len(outputs)} output(s) in {out_dir}")
    return 0


def _summary(name: str, a: np.ndarray) -> str:
    stats = ""
    if a.size:
        f = a.astype(np.float64)
        finite = f[np.isfinite(f)]
        stats = f" min {f.min():.6g} max {f.max():.6g} mean {f.mean():.6g} std {f.std():.6g}"
        if finite.size != f.size:
            stats += f" ({f.size - finite.size} non-finite)"
    return f"{name}: {a.dtype} {list(a.shape)}{stats}"


def _describe(descs: dict) -> str:
    return ", ".join(f"{n} {d}" for n, d in descs.items())


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "output"


def _positive_int(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise CliError(f"--free-dim {name}: {value!r} is not an integer") from None
    if n <= 0:
        raise CliError(f"--free-dim {name}: the size must be positive, got {n}")
    return n
