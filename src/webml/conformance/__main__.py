"""``python -m webml.conformance``: run the WPT suites against a backend."""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Protocol

from ..backends import BACKENDS

DEFAULT_DOCS = Path("docs/conformance.md")

EXAMPLES = """\
examples:
  webml wpt                                 every case on every backend (a few minutes)
  webml wpt --backend reference             one backend
  webml wpt --backend onnxruntime --ops conv2d,relu --verbose
  webml wpt --write-docs                    regenerate docs/conformance.md"""


class Progress(Protocol):
    """What reports the run's progress (the CLI's ``webml.cli.common.Progress``)."""

    def step(self, message: str) -> None: ...

    def count(self, done: int, total: int, what: str) -> None: ...


class _Lines:
    """Progress for ``python -m webml.conformance``: each step and each finished count, a line on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr)

    def count(self, done: int, total: int, what: str) -> None:
        if done == total:
            self.step(f"  {what}: {done}/{total}")


def main(argv: list[str] | None = None, progress: Progress | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="webml wpt",
        description="Run the vendored WebNN Web Platform Tests against a backend.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run"], help="what to do (run)")
    parser.add_argument(
        "--backend", action="append", choices=BACKENDS, help="backend name (repeatable; default: every backend)"
    )
    parser.add_argument("--ops", help="comma-separated spec operator names to restrict the conformance cases to")
    parser.add_argument("--no-validation", action="store_true", help="skip the traced validation tests")
    parser.add_argument(
        "--write-docs",
        nargs="?",
        const=str(DEFAULT_DOCS),
        metavar="PATH",
        help=f"regenerate the conformance report (default {DEFAULT_DOCS})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="list every failure, expected ones too; ONNX Runtime's warnings"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    from . import report, wpt  # after parsing: they load the API and the operator registry (--help need not)

    backends = list(dict.fromkeys(args.backend or BACKENDS))
    ops = _operators(parser, args.ops)
    if progress is None:
        progress = _Lines(args.quiet)
    if "onnxruntime" in backends and not args.verbose:
        from ..backends.onnxruntime import quiet_warnings

        quiet_warnings()

    outcomes: list[report.Outcome] = []
    for backend in backends:
        start = time.perf_counter()
        progress.step(f"[{backend}] conformance cases")
        outcomes += report.judge("conformance", backend, wpt.run_all(backend, ops, progress=progress.count))
        if not args.no_validation and ops is None:
            from . import validation

            progress.step(f"[{backend}] validation tests")
            outcomes += report.judge("validation", backend, validation.replay_all(backend, progress=progress.count))
        progress.step(f"[{backend}] ran in {time.perf_counter() - start:.1f} s")

    per_op: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for o in outcomes:
        if not o.checked:  # counted apart: checks nothing
            continue
        for op in o.operators or ("(api)",):
            cell = per_op[(o.backend, o.kind, op)]
            cell[0] += o.passed
            cell[1] += 1
    for (backend, kind, op), (p, t) in sorted(per_op.items()):
        mark = "" if p == t else "  <-"
        print(f"{backend:12} {kind:12} {op:24} {p:5}/{t:<5}{mark}")
    bad = [o for o in outcomes if not o.ok]
    for o in outcomes:
        if o.status == "FAIL" or (args.verbose and o.status == "XFAIL"):
            print(f"{o.status} [{o.backend}] {o.kind} {o.key}: {o.reason}")
        elif o.status == "XPASS":
            print(f"XPASS [{o.backend}] {o.kind} {o.key}: expected to fail ({o.expected_reason}) but passed")
        elif o.status == "EMPTY" and not o.ok:
            print(f"EMPTY [{o.backend}] {o.kind} {o.key}: expected to fail ({o.expected_reason}) but checks nothing")
    xfail = sum(o.status == "XFAIL" for o in outcomes)
    print(f"{xfail} of the failures are expected; {len(bad)} results disagree with the expectations")
    if args.write_docs:
        command = "python -m webml.conformance --write-docs" + "".join(f" --backend {b}" for b in backends)
        report.write_markdown(Path(args.write_docs), outcomes, command)
        print(f"wrote {args.write_docs}", file=sys.stderr)
    print(report.summary_line(outcomes))
    return 1 if bad else 0


def _operators(parser: argparse.ArgumentParser, names: str | None) -> list[str] | None:
    """The --ops names, each one some conformance case uses (else a usage error, exit status 2)."""
    if names is None:
        return None
    ops = [name.strip() for name in names.split(",") if name.strip()]
    if not ops:
        parser.error("--ops: give comma-separated operator names, e.g. --ops relu,conv2d")
    from . import wpt

    known = wpt.operator_names()
    unknown = [name for name in ops if name not in known]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=3) or [k for k in known if k.lower() == name.lower()]
            hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        parser.error(
            f"--ops: no conformance case uses {', '.join(hints)}; the operators are the spec's names "
            f"(camelCase, e.g. reduceSum, conv2d): {', '.join(sorted(known))}"
        )
    return ops


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, as `webml wpt` does
        sys.exit(130)
