"""The ``webml`` command.

    webml classify [IMAGE ...]          top-5 ImageNet classes (default: a sample photo)
    webml run MODEL.onnx --input N=F.npy run any ONNX model, print output statistics
    webml info MODEL.onnx               inputs, outputs, operators and what is unsupported
    webml train DATA_DIR --output M.npz transfer learning on one sub-folder of images per class
    webml wpt [--backend NAME]          the WebNN Web Platform Tests
    webml demo                          build and run a small network with the builder

Bad input (an unreadable or corrupt file, an unsupported operator, a wrong
input name, shape or data type, an image that is not an image) gives one
clear message on stderr and a non-zero exit status, never a traceback
(set ``WEBML_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..backends import BACKENDS, DEFAULT_BACKEND

__all__ = ["CliError", "main"]


class CliError(Exception):
    """A user-facing error: printed as ``webml: error: <message>``, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    from . import classify, demo, info, run, train

    parser = argparse.ArgumentParser(prog="webml", description="The W3C WebNN API for Python.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def backend_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS, help="default: %(default)s")

    # Each subcommand module has add_arguments(parser) and main(args); all but info run on a backend.
    for command, module, help_text, on_backend in (
        ("classify", classify, "classify images with EfficientNet-Lite0 or an ONNX image classifier", True),
        ("train", train, "train a classifier on a folder of class sub-folders (transfer learning)", True),
        ("run", run, "run an ONNX model on .npy inputs", True),
        ("info", info, "describe an ONNX model and what webml supports of it", False),
    ):
        p = sub.add_parser(command, help=help_text)
        module.add_arguments(p)
        if on_backend:
            backend_option(p)
        p.set_defaults(handler=module.main)

    sub.add_parser("wpt", help="run the WebNN Web Platform Tests (webml wpt --help)", add_help=False)

    p = sub.add_parser("demo", help="build and run a small network with the builder")
    backend_option(p)
    p.set_defaults(handler=lambda args: demo.demo(args.backend))
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `webml ... | head`: the reader has gone; stop quietly
        sys.stdout = open(os.devnull, "w")  # replaces the closed pipe until exit
        return 141


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "wpt":
        from ..conformance.__main__ import main as wpt_main

        return wpt_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv or ["classify"])
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:  # one clear line for the user, whatever went wrong
        if os.environ.get("WEBML_DEBUG"):
            raise
        print(f"webml: error: {_message(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, (CliError, OSError, ValueError, TypeError)) else 1


def _message(exc: Exception) -> str:
    """What the user reads: errors that are written for users as they are, others with their type."""
    from ..images import UnreadableImageError

    if isinstance(exc, (CliError, UnreadableImageError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    sys.exit(main())
