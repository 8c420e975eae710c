"""Helpers shared by the ``webml`` subcommands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import CliError


def parse_assignments(items: list[str], option: str) -> dict[str, str]:
    """``["a=1", "b=x.npy"]`` -> ``{"a": "1", "b": "x.npy"}``; a malformed item is a CliError."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise CliError(f"{option} expects NAME=VALUE, got {item!r}")
        if name in out:
            raise CliError(f"{option} {name} is given twice")
        out[name] = value
    return out


def read_onnx(path: str) -> Any:
    """The ModelProto at ``path``, or a CliError that says why it can't be read."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise CliError(f"no such model file: {path!r}")
    try:
        return onnx.load(str(p))
    except Exception as exc:  # protobuf decode errors come in several types
        raise CliError(f"{path!r} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None


def load_onnx_model(path: str, context: Any, free_dimensions: dict[str, int] | None = None) -> Any:
    """Import the ONNX model at ``path`` into an MLGraph of ``context``."""
    import webml.onnx

    if not Path(path).is_file():
        raise CliError(f"no such model file: {path!r}")
    try:
        return webml.onnx.load(path, context, free_dimensions=free_dimensions)
    except webml.onnx.OnnxImportError as exc:
        raise CliError(str(exc)) from None
