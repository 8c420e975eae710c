"""``webml run MODEL.onnx --input NAME=FILE.npy ...``: run any ONNX model through webml.

Dynamic dimensions are settled by the arrays given, as ONNX Runtime does
(``--free-dim NAME=SIZE`` fixes one by name instead).  Each output is
printed with its statistics and its values (NumPy's summarised printing);
``--json`` prints all of it as one JSON object instead.  ``--repeat N``
times N more runs after the first and prints min, mean, p50, p90, p99 and
max, as ``onnxruntime_perf_test`` does.

With ``--output-dir``, each output is saved as ``NAME.npy`` with NAME made
a safe file name (letters, digits, ``-``, ``_``, ``.``); names that would
collide (``a/b`` and ``a_b``, or ``Y`` and ``y`` on a case-insensitive
disk) get ``-2``, ``-3``, ... in graph order, and every renamed output is
printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import CliError
from .arrays import INPUT_HELP, read_input_array
from .common import (
    Progress,
    check_output_dir,
    load_onnx_model,
    onnx_errors,
    parse_assignments,
    parse_free_dimensions,
    positive_int,
    read_onnx_model,
    write_files_atomically,
)

#: The percentiles --repeat prints, as onnxruntime_perf_test does.
PERCENTILES = (50, 90, 99)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX model")
    p.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy", help=INPUT_HELP)
    p.add_argument(
        "--free-dim",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="fix a dynamic dimension by name (repeatable; by default the inputs' shapes settle them)",
    )
    p.add_argument(
        "--output-dir",
        "-o",
        help="save each output as NAME.npy there (NAME made a safe, unique file name; renamings are printed)",
    )
    p.add_argument("--json", action="store_true", help="print the outputs (and timings) as one JSON object")
    p.add_argument(
        "--repeat",
        type=positive_int,
        default=0,
        metavar="N",
        help="time N more runs after the first; print min, mean, p50, p90, p99 and max in ms",
    )


def main(args: argparse.Namespace) -> int:
    import webml

    free = parse_free_dimensions(args.free_dim)
    files = parse_assignments(args.input, "--input")
    from webml.backends import own_engine_options

    # One engine's results, the same bits as webml batch's (no startup fallback).
    context = webml.ml.create_context(backend=args.backend, **own_engine_options(args.backend))
    model = read_onnx_model(args.model)
    _check_free_dims(model, free)
    with cli_hints(), onnx_errors():
        loaded = load_onnx_model(model, context, free, dynamic=True)
        graph, feeds = _feeds(loaded, files, free)
    out_dir = check_output_dir(args.output_dir, "--output-dir") if args.output_dir else None
    outputs = context.compute(graph, feeds)
    timing = _time(context, graph, feeds, args.repeat, Progress.of(args)) if args.repeat else None
    file_names = output_file_names(list(outputs)) if out_dir is not None else {}
    if out_dir is not None:
        _save_outputs(out_dir, outputs, file_names)
    if args.json:
        print(json.dumps(_report(args, feeds, outputs, timing, file_names), indent=2, allow_nan=False))
        return 0
    for name, array in outputs.items():
        print(_summary(name, array))
        print(_indent(_values(array)))
    if timing is not None:
        print(_timing_line(timing))
    if out_dir is not None:
        for name, file_name in file_names.items():
            if file_name != f"{name}.npy":
                print(f"output {name!r} saved as {file_name}")
        print(f"saved {len(outputs)} output(s) in {out_dir}")
    return 0


@contextlib.contextmanager
def cli_hints() -> Iterator[None]:
    """The importer's Python hints (``free_dimensions={'N': ...}``) said in the CLI's syntax."""
    try:
        yield
    except CliError as exc:
        message = re.sub(r"free_dimensions=\{'([^']*)': \.\.\.\}", r"--free-dim \1=SIZE", str(exc))
        raise CliError(message.replace("free_dimensions", "--free-dim")) from None


def _check_free_dims(model: Any, free: dict[str, int]) -> None:
    """Every --free-dim names a dynamic dimension of the model's inputs."""
    import webml.onnx

    dynamic = list(dict.fromkeys(d for a in webml.onnx.model_inputs(model) for d in a.shape if isinstance(d, str)))
    for name in free:
        if name not in dynamic:
            known = ", ".join(dynamic) if dynamic else "none (every input dimension is fixed)"
            raise CliError(
                f"--free-dim {name}: the model's inputs have no dynamic dimension named {name!r} (theirs: {known})"
            )


def _feeds(loaded: Any, files: dict[str, str], free: dict[str, int]) -> tuple[Any, dict[str, np.ndarray]]:
    """The graph to run and its inputs read from ``files``; a DynamicGraph takes the arrays' shapes."""
    import webml

    dynamic = isinstance(loaded, webml.onnx.DynamicGraph)
    # A static graph names the inputs it needs; a dynamic model needs all of its inputs to settle its shapes.
    expected = (
        {a.name: (a.data_type, a.shape) for a in loaded.inputs}
        if dynamic
        else {n: (d.data_type, list(d.shape)) for n, d in loaded.input_descriptors.items()}
    )
    unknown = sorted(files.keys() - expected.keys())
    missing = sorted(expected.keys() - files.keys())
    if unknown or missing:
        parts = [f"unknown input(s) {unknown}" if unknown else "", f"missing input(s) {missing}" if missing else ""]
        described = ", ".join(f"{n} {t}{list(s)}" for n, (t, s) in expected.items())
        raise CliError("; ".join(p for p in parts if p) + f" (the model's inputs: {described})")
    feeds = {}
    for name, value in files.items():
        data_type, shape = expected[name]
        dtype = np.dtype(webml.dtypes.numpy_dtype(data_type))
        try:
            feeds[name] = read_input_array(name, value, dtype, tuple(shape))
        except CliError as exc:
            if free and "the model expects" in str(exc):
                given = ", ".join(f"--free-dim {k}={v}" for k, v in free.items())
                raise CliError(f"{exc} (with {given})") from None
            raise
    if not dynamic:
        return loaded, feeds
    graph = loaded.graph({n: a.shape for n, a in feeds.items()})
    return graph, {n: feeds[n] for n in graph.input_descriptors}


def _time(context: Any, graph: Any, feeds: dict[str, np.ndarray], repeat: int, progress: Progress) -> dict[str, Any]:
    """Milliseconds of ``repeat`` more runs (the first, already done, was the warm-up)."""
    times = []
    for done in range(1, repeat + 1):
        start = time.perf_counter()
        context.compute(graph, feeds)
        times.append((time.perf_counter() - start) * 1e3)
        progress.count(done, repeat, "timed runs")
    t = np.array(times)
    stats = {"runs": repeat, "min": t.min(), "mean": t.mean()}
    stats.update({f"p{q}": np.percentile(t, q) for q in PERCENTILES})
    stats["max"] = t.max()
    return {k: (v if k == "runs" else float(v)) for k, v in stats.items()}


def _timing_line(timing: dict[str, Any]) -> str:
    values = " ".join(f"{k} {v:.3f}" for k, v in timing.items() if k != "runs")
    return f"timing of {timing['runs']} run(s) after a warm-up, ms: {values}"


#: Outputs of more elements are printed summarised (NumPy's "..."), their first and last 3 per axis.
_PRINTED = 100


def _values(a: np.ndarray) -> str:
    return np.array2string(a, threshold=_PRINTED, edgeitems=3)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


#: Outputs up to this many elements are given whole in --json (larger ones as a summary only).
_JSON_VALUES = 1000


def _report(args: argparse.Namespace, feeds, outputs, timing, file_names) -> dict[str, Any]:
    report: dict[str, Any] = {
        "model": args.model,
        "backend": args.backend,
        "inputs": {n: {"dtype": str(a.dtype), "shape": list(a.shape)} for n, a in feeds.items()},
        "outputs": {n: _output_report(a) for n, a in outputs.items()},
    }
    if timing is not None:
        report["timing_ms"] = timing
    if file_names:
        report["output_dir"] = args.output_dir
        report["files"] = file_names
    return report


def _output_report(a: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"dtype": str(a.dtype), "shape": list(a.shape)}
    out.update({k: _json_number(v) for k, v in _stats(a).items()})
    out["summary"] = _values(a)
    out["values"] = _json_number(a.tolist()) if a.size <= _JSON_VALUES else None
    return out


def _json_number(value: Any) -> Any:
    """``value`` with every non-finite float as the string "nan", "inf" or "-inf" (JSON has none)."""
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def _stats(a: np.ndarray) -> dict[str, Any]:
    if not a.size:
        return {}
    f = a.astype(np.float64)
    finite = int(np.isfinite(f).sum())
    return {
        "min": float(f.min()),
        "max": float(f.max()),
        "mean": float(f.mean()),
        "std": float(f.std()),
        "non_finite": f.size - finite,
    }


def _save_outputs(out_dir: Path, outputs: dict[str, np.ndarray], file_names: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)

    def writer(array: np.ndarray):
        def write(temp: str) -> None:
            with open(temp, "wb") as f:  # np.save would append ".npy" to the temporary name
                np.save(f, array, allow_pickle=False)

        return write

    write_files_atomically({out_dir / file_names[n]: writer(a) for n, a in outputs.items()})


def _summary(name: str, a: np.ndarray) -> str:
    stats = _stats(a)
    text = " ".join(f"{k} {stats[k]:.6g}" for k in ("min", "max", "mean", "std") if k in stats)
    if stats.get("non_finite"):
        text += f" ({stats['non_finite']} non-finite)"
    return f"{name}: {a.dtype} {list(a.shape)}" + (f" {text}" if text else "")


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
