"""Everyday CLI habits (issue 11): --version, examples in --help, `webml wpt` usage errors, ONNX Runtime's
warnings, Ctrl-C, progress and --quiet, and a start-up that imports only what the command needs.

Each test runs the real entry point (``python -m webml.cli``, what the console script runs) in a
subprocess, as a user would.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import webml
from webml import cli
from webml.cli.common import Progress, progress_stream

#: Every command of `webml --help` (test_every_command_is_listed keeps it so).
COMMANDS = (
    "classify", "video", "train", "federated", "run", "shrink", "info", "export", "serve", "batch", "wpt",
    "keys", "protect", "unprotect", "rewrap", "grants", "demo",
)


def webml_cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webml.cli", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_version():
    result = webml_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"webml {webml.__version__}"


def test_every_command_is_listed():
    listed = webml_cli("--help").stdout.split("COMMAND ...", 1)[1]
    shown = set(re.findall(r"^    ([a-z]+) ", listed, flags=re.M))
    assert shown == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_examples(command):
    result = webml_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    examples = result.stdout.split("examples:\n", 1)[1]
    assert f"webml {command}" in examples


def test_help_lists_the_global_options_and_examples():
    result = webml_cli("--help")
    assert result.returncode == 0
    for fragment in ("--version", "--quiet", "--verbose", "examples:", "webml COMMAND --help"):
        assert fragment in result.stdout


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["wpt", "--help"], ["run", "--help"]])
def test_help_and_version_import_neither_onnx_nor_the_api(argv):
    """`webml --help` costs little more than starting Python with NumPy (bench/startup.py measures it)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "webml.cli", *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "webml.cli" in imported  # the check sees the command's own imports
    heavy = {"onnxruntime", "openvino", "onnx", "skimage", "ml_dtypes", "PIL", "webml.api", "webml.ops", "webml.zoo"}
    assert not heavy & imported


def test_lazy_package_keeps_its_names():
    # Importing webml loads the API on first use; its names, and submodules, are there as before.
    code = (
        "import sys, webml\n"
        "assert 'webml.api' not in sys.modules\n"
        "assert webml.MLGraphBuilder.__name__ == 'MLGraphBuilder' and webml.ml.create_context\n"
        "assert webml.dtypes.numpy_dtype('float32').name == 'float32'\n"
        "assert 'MLContext' in dir(webml)\n"
        "try:\n    webml.no_such_name\nexcept AttributeError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "no attribute 'no_such_name'" in result.stdout


def test_wpt_unknown_backend_is_a_usage_error():
    result = webml_cli("wpt", "--backend", "nosuch")
    assert result.returncode == 2
    assert "invalid choice: 'nosuch'" in result.stderr and "onnxruntime" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_wpt_ops_that_match_nothing_is_a_usage_error():
    result = webml_cli("wpt", "--ops", "relu,reduce_sum,nosuch")
    assert result.returncode == 2
    assert "no conformance case uses 'reduce_sum' (did you mean reduceSum" in result.stderr
    assert "'nosuch'" in result.stderr and "'relu'" not in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert webml_cli("wpt", "--ops", ",").returncode == 2


def test_wpt_silences_onnxruntime_warnings_unless_verbose():
    # abs over a constant makes ONNX Runtime warn that it "could not find a CPU kernel ... constant fold".
    argv = ("wpt", "--backend", "onnxruntime", "--ops", "abs", "--no-validation")
    quiet = webml_cli(*argv)
    assert quiet.returncode == 0, quiet.stderr
    assert "constant fold" not in quiet.stderr and "W:onnxruntime" not in quiet.stderr
    assert re.search(r"\d+ passed, 0 failed", quiet.stdout)
    verbose = webml_cli(*argv, "--verbose")
    assert verbose.returncode == 0
    assert "constant fold" in verbose.stderr


def test_wpt_progress_is_plain_lines_when_piped_and_none_with_quiet():
    result = webml_cli("wpt", "--backend", "reference", "--ops", "relu", "--no-validation")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "[reference] conformance cases"
    counts = [line for line in lines if "files:" in line]
    total = int(counts[-1].rsplit("/", 1)[1])
    assert counts[-1] == f"  files: {total}/{total}"
    assert 2 <= len(counts) <= 11  # a line per tenth, not per file
    assert "\r" not in result.stderr and "\033" not in result.stderr
    assert lines[-1].startswith("[reference] ran in ")
    for argv in (["-q", "wpt"], ["wpt", "--quiet"]):
        result = webml_cli(*argv, "--backend", "reference", "--ops", "relu", "--no-validation")
        assert result.returncode == 0 and result.stderr == ""
        assert "18 passed" in result.stdout


def test_ctrl_c_stops_quietly_with_status_130():
    proc = subprocess.Popen(
        [sys.executable, "-m", "webml.cli", "wpt", "--backend", "reference"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # it has started running cases
        assert first.startswith("[reference]"), first
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "passed" not in out


def test_ctrl_c_in_any_command_is_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("webml.cli.demo.demo", lambda backend: interrupted(None))
    assert cli.main(["demo", "--backend", "reference"]) == 130
    out, err = capsys.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize("argv", [["-q", "demo"], ["demo", "--quiet"], ["--verbose", "demo", "-q"]])
def test_global_options_before_or_after_the_command(argv):
    result = webml_cli(*argv, "--backend", "reference")
    assert result.returncode == 0, result.stderr
    assert "max |webml - numpy float64|" in result.stdout


def test_demo_on_onnxruntime_prints_no_onnxruntime_warnings():
    result = webml_cli("demo")
    assert result.returncode == 0, result.stderr
    assert "onnxruntime:" not in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_helper():
    piped = io.StringIO()
    progress = Progress(piped)
    progress.step("reading")
    for i in range(1, 1001):
        progress.count(i, 1000, "images")
    progress.step("done")
    lines = piped.getvalue().splitlines()
    assert lines[0] == "reading" and lines[-1] == "done"
    assert lines[1] == "  images: 1/1000" and lines[-2] == "  images: 1000/1000"
    assert len(lines) == 2 + 11  # 0, 10, ..., 100 %

    terminal = _Terminal()
    progress = Progress(terminal)
    for i in range(1, 1001):
        progress.count(i, 1000, "images")
    progress.step("done")
    text = terminal.getvalue()
    assert text.startswith("\r  images: 1/1000\033[K")
    assert text.endswith("\r  images: 1000/1000\033[K\ndone\n")
    assert text.count("\n") == 2

    quiet = Progress(None)
    quiet.step("reading")
    quiet.count(1, 2, "images")  # nothing to write to, and no error


def test_progress_of_the_global_quiet_option():
    assert Progress.of(argparse.Namespace(quiet=True)).stream is None
    assert Progress.of(argparse.Namespace(quiet=False)).stream is sys.stderr
    assert progress_stream(argparse.Namespace()) is sys.stderr  # a command without the option


def test_run_sh_says_what_it_runs():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "run.sh"), encoding="utf-8") as f:
        text = f.read()
    assert "webml classify" in text  # what ./run.sh with no arguments does (cli.main: no command -> classify)


def test_classify_counts_images_when_piped_and_is_silent_with_quiet(tmp_path):
    """Many images: a plain progress line per tenth of the way on stderr (stdout keeps the results)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"p{i:02}.png")
    loud = webml_cli("classify", str(tmp_path), "--top-k", "1", "--json")
    assert loud.returncode == 0, loud.stderr
    assert len(loud.stdout.splitlines()) == 20
    assert "images: 16/20" in loud.stderr and "images: 20/20" in loud.stderr and "\r" not in loud.stderr
    quiet = webml_cli("-q", "classify", str(tmp_path), "--top-k", "1", "--json")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == loud.stdout
