"""``webml run MODEL.onnx --input NAME=FILE.npy ...``: run any ONNX model through webml.

With ``--output-dir``, each output is saved as ``NAME.npy`` with NAME made
a safe file name (letters, digits, ``-``, ``_``, ``.``); names that would
collide (``a/b`` and ``a_b``, or ``Y`` and ``y`` on a case-insensitive
disk) get ``-2``, ``-3``, ... in graph order, and every renamed output is
printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from . import CliError
from .arrays import INPUT_HELP, read_input_array
from .common import check_output_dir, load_onnx_model, parse_assignments, write_files_atomically


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX model")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy", help=INPUT_HELP)
    p.add_argument(
        "--free-dim", action="append", default=[], metavar="NAME=SIZE", help="fix a dynamic dimension (repeatable)"
    )
    p.add_argument(
        "--output-dir",
        "-o",
        help="save each output as NAME.npy there (NAME made a safe, unique file name; renamings are printed)",
    )


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
    out_dir = check_output_dir(args.output_dir, "--output-dir") if args.output_dir else None
    feeds = {}
    for name, value in files.items():
        desc = expected[name]
        dtype = np.dtype(webml.dtypes.numpy_dtype(desc.data_type))
        feeds[name] = read_input_array(name, value, dtype, tuple(desc.shape))
    outputs = context.compute(graph, feeds)
    for name, array in outputs.items():
        print(_summary(name, array))
    if out_dir is not None:
        _save_outputs(out_dir, outputs)
    return 0


def _save_outputs(out_dir: Path, outputs: dict[str, np.ndarray]) -> None:
    file_names = output_file_names(list(outputs))
    out_dir.mkdir(parents=True, exist_ok=True)

    def writer(array: np.ndarray):
        def write(temp: str) -> None:
            with open(temp, "wb") as f:  # np.save would append ".npy" to the temporary name
                np.save(f, array, allow_pickle=False)

        return write

    write_files_atomically({out_dir / file_names[n]: writer(a) for n, a in outputs.items()})
    for name, file_name in file_names.items():
        if file_name != f"{name}.npy":
            print(f"output {name!r} saved as {file_name}")
    print(f"saved {len(outputs)} output(s) in {out_dir}")


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


_MAX_STEM = 100  # characters of a file name kept from an output name


def output_file_names(names: list[str]) -> dict[str, str]:
    """A distinct, safe ``.npy`` file name for each output name (see the module's notes)."""
    stems = {n: _safe(n) for n in names}
    taken: set[str] = set()
    out: dict[str, str] = {}
    # Names that are file names already keep them; the others take what is left.
    for n in sorted(names, key=lambda n: stems[n] != n):
        stem, k = stems[n], 1
        while (f"{stem}-{k}" if k > 1 else stem).casefold() in taken:
            k += 1
        stem = f"{stem}-{k}" if k > 1 else stem
        taken.add(stem.casefold())
        out[n] = f"{stem}.npy"
    return {n: out[n] for n in names}


def _safe(name: str) -> str:
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name[:_MAX_STEM])
    return ("_" + safe[1:] if safe.startswith(".") else safe) or "output"


def _positive_int(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise CliError(f"--free-dim {name}: {value!r} is not an integer") from None
    if n <= 0:
        raise CliError(f"--free-dim {name}: the size must be positive, got {n}")
    return n
