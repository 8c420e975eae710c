"""Helpers shared by the ``webml`` subcommands."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from . import CliError


def is_quiet(args: argparse.Namespace) -> bool:
    """Whether the global ``--quiet`` was given: no progress, only results and errors."""
    return bool(getattr(args, "quiet", False))


def is_verbose(args: argparse.Namespace) -> bool:
    """Whether the global ``--verbose`` was given: ONNX Runtime's own warnings too."""
    return bool(getattr(args, "verbose", False))


def progress_stream(args: argparse.Namespace) -> IO[str] | None:
    """Where a command writes progress (stderr), or ``None`` with ``--quiet``: for APIs taking ``progress=stream``."""
    return None if is_quiet(args) else sys.stderr


class Progress:
    """Progress of the long steps of a command, on stderr (stdout keeps the results, for pipes).

    On a terminal a count is redrawn in place; piped, it is plain lines, one per tenth of the
    way (so a log shows the command is alive without a line per item); with ``--quiet`` nothing.
    """

    interval = 0.1  # seconds between redraws on a terminal

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream
        isatty = getattr(stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.last_draw = 0.0
        self.last_tenth = -1
        self.drawn = False  # a count is on the terminal's current line

    @classmethod
    def of(cls, args: argparse.Namespace) -> Progress:
        """The progress of a command run with ``args`` (silent with ``--quiet``)."""
        return cls(progress_stream(args))

    def step(self, message: str) -> None:
        """Say that a step starts (or ends): one line."""
        if self.stream is None:
            return
        self._end_count()
        self.stream.write(message + "\n")
        self.stream.flush()

    def count(self, done: int, total: int, what: str) -> None:
        """``done`` of ``total`` items of ``what`` are done."""
        if self.stream is None or total <= 0:
            return
        line = f"  {what}: {done}/{total}"
        if self.live:
            now = time.perf_counter()
            if now - self.last_draw < self.interval and done < total:
                return
            self.last_draw = now
            self.stream.write("\r" + line + "\033[K")
            self.drawn = True
            if done >= total:
                self._end_count()
        else:
            tenth = 10 * done // total
            if tenth == self.last_tenth:
                return
            self.last_tenth = tenth
            self.stream.write(line + "\n")
        self.stream.flush()

    def _end_count(self) -> None:
        if self.stream is not None and self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.last_tenth = -1


def quiet_onnxruntime() -> None:
    """ONNX Runtime's warnings off stderr (``--verbose`` keeps them); imported only when a command runs on it."""
    from ..backends.onnxruntime import quiet_warnings

    quiet_warnings()


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


def positive_int(value: str) -> int:
    """An argparse ``type``: an integer of at least 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def parse_free_dimensions(items: list[str]) -> dict[str, int]:
    """``--free-dim NAME=SIZE`` options as ``{NAME: SIZE}``; a size that is not a positive integer is a CliError."""
    out: dict[str, int] = {}
    for name, value in parse_assignments(items, "--free-dim").items():
        try:
            out[name] = positive_int(value)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"--free-dim {name}: {exc}") from None
    return out


@contextlib.contextmanager
def onnx_errors() -> Iterator[None]:
    """What ``webml.onnx`` refuses (an OnnxImportError) becomes a CliError with its message."""
    import webml.onnx

    try:
        yield
    except webml.onnx.OnnxImportError as exc:
        raise CliError(str(exc)) from None


def read_onnx_model(path: str) -> Any:
    """The checked ModelProto at ``path`` (its external data read), or a CliError that says why not."""
    import webml.onnx

    if not Path(path).is_file():
        raise CliError(f"no such model file: {path!r}")
    with onnx_errors():
        return webml.onnx.read_model(path)


def load_onnx_model(
    model: Any, context: Any, free_dimensions: dict[str, int] | None = None, *, dynamic: bool = False
) -> Any:
    """Import the ONNX model (a path, or a ModelProto from :func:`read_onnx_model`) into an MLGraph of ``context``.

    A model left with dynamic dimensions is a CliError, unless ``dynamic`` (then it is a DynamicGraph).
    """
    import webml.onnx

    if isinstance(model, str) and not Path(model).is_file():
        raise CliError(f"no such model file: {model!r}")
    with onnx_errors():
        graph = webml.onnx.load(model, context, free_dimensions=free_dimensions)
    if isinstance(graph, webml.onnx.DynamicGraph) and not dynamic:
        shapes = ", ".join(f"{a.name} {a.shape}" for a in graph.inputs)
        raise CliError(f"the model's inputs keep dynamic dimensions ({shapes}); this command needs fixed ones")
    return graph


def check_output_file(path: str, option: str, suffix: str) -> Path:
    """``path`` as a file the command may write (checked before any work), or a CliError saying why not."""
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise CliError(f"{option} {path!r}: the file name must end in {suffix}")
    if p.is_dir():
        raise CliError(f"{option} {path!r} is a folder; name the file to write (e.g. {str(p / ('model' + suffix))!r})")
    if p.exists() and not p.is_file():
        raise CliError(f"{option} {path!r} exists and is not a regular file")
    parent = p.resolve().parent
    if not parent.is_dir():
        raise CliError(f"{option} {path!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"{option} {path!r}: the folder {str(parent)!r} is not writable")
    return p


def check_output_dir(path: str, option: str) -> Path:
    """``path`` as a folder the command may write into (made when it writes), or a CliError saying why not."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CliError(f"{option} {path!r} exists and is not a folder")
    existing = p.resolve()
    while not existing.exists():  # the folders to make go under the nearest one that exists
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CliError(f"{option} {path!r}: {str(existing)!r} is not a writable folder")
    return p


def write_files_atomically(writes: dict[Path, Callable[[str], None]]) -> None:
    """Call ``write(temp_path)`` for each target into a new file beside it, then move them all in place.

    A failure while writing leaves every target as it was, and no temporary file behind.
    """
    temps: list[tuple[str, Path]] = []
    try:
        for target, write in writes.items():
            temp = str(target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as for open()
            temps.append((temp, target))
            write(temp)
        for temp, target in temps:
            os.replace(temp, target)
    except BaseException:
        for temp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        raise
