"""Start-up time of the ``webml`` command, next to starting Python with NumPy.

    .venv/bin/python bench/startup.py [--runs 15]

Runs each command ``--runs`` times in a fresh process (output discarded) and
prints the median and fastest wall time of each, and the median's ratio to
``python -c "import numpy"``, the anchor: ``webml --help`` and ``--version``
import only NumPy and the CLI's own modules (the API, ONNX Runtime, onnx and
the zoo load when a command needs them).  Target (issue 11): ``webml --help``
costs little more than the anchor (ratio near 1, was about 7 before).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    'python -c "import numpy"': [sys.executable, "-c", "import numpy"],
    "webml --help": [sys.executable, "-m", "webml.cli", "--help"],
    "webml --version": [sys.executable, "-m", "webml.cli", "--version"],
    "webml wpt --help": [sys.executable, "-m", "webml.cli", "wpt", "--help"],
}


def wall_times(argv: list[str], runs: int) -> list[float]:
    """Seconds of ``runs`` runs of ``argv``, each in a new process."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default: %(default)s)")
    args = parser.parse_args()
    wall_times(COMMANDS['python -c "import numpy"'], 2)  # warm the file cache first
    medians: dict[str, float] = {}
    print(f"{'command':28} {'median':>9} {'fastest':>9} {'ratio':>7}")
    for label, argv in COMMANDS.items():
        times = wall_times(argv, args.runs)
        medians[label] = statistics.median(times)
        anchor = medians['python -c "import numpy"']
        print(f"{label:28} {1e3 * medians[label]:7.0f}ms {1e3 * min(times):7.0f}ms {medians[label] / anchor:6.2f}x")


if __name__ == "__main__":
    main()
