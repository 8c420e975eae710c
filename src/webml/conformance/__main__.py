"""``python -m webml.conformance``: run the WPT suites against a backend."""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

from ..backends import BACKENDS
from . import report, wpt

DEFAULT_DOCS = Path("docs/conformance.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="webml wpt", description="Run the vendored WebNN Web Platform Tests against a backend."
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run"], help="what to do (run)")
    parser.add_argument("--backend", action="append", help="backend name (repeatable; default: every backend)")
    parser.add_argument("--ops", help="comma-separated spec operator names to restrict the conformance cases to")
    parser.add_argument("--no-validation", action="store_true", help="skip the traced validation tests")
    parser.add_argument(
        "--write-docs",
        nargs="?",
        const=str(DEFAULT_DOCS),
        metavar="PATH",
        help=f"regenerate the conformance report (default {DEFAULT_DOCS})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list every failure, expected ones too")
    args = parser.parse_args(argv)
    backends = args.backend or list(BACKENDS)
    ops = args.ops.split(",") if args.ops else None

    outcomes: list[report.Outcome] = []
    for backend in backends:
        start = time.perf_counter()
        outcomes += report.judge("conformance", backend, wpt.run_all(backend, ops))
        if not args.no_validation and ops is None:
            from . import validation

            outcomes += report.judge("validation", backend, validation.replay_all(backend))
        print(f"[{backend}] ran in {time.perf_counter() - start:.1f} s", file=sys.stderr)

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


if __name__ == "__main__":
    sys.exit(main())
