"""WGSL in the browser's terms, for the tests: Tint's verdict on modules, and compute jobs in Chromium.

The work is done by the npm project in tests/browser (Dawn for Node.js and headless Chromium through
playwright-core); ``ensure_npm`` installs it, or any of the tests' npm projects, from its lock.
Everything here raises when a prerequisite is missing (node, npm, Chromium, a WebGPU adapter): these checks never skip.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BROWSER = Path(__file__).resolve().parent / "browser"
#: Written into a project's node_modules by ``ensure_npm``: the hash of the lock it installed.
STAMP_NAME = ".webml-lock-sha256"
NPM_TIMEOUT_S = 600


class BrowserToolError(RuntimeError):
    """A browser-side check could not run (as opposed to a kernel it rejected)."""


def tool(name: str) -> str:
    """The path of command ``name`` (node, npm); BrowserToolError when it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        raise BrowserToolError(
            f"{name!r} is not on PATH: the browser and JavaScript tests need Node.js 20+ and npm"
            " (Debian: apt-get install nodejs npm)"
        )
    return path


def _lock_hash(project: Path) -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((project / name).read_bytes())
    return digest.hexdigest()


def ensure_npm(project: Path = BROWSER) -> Path:
    """Installs an npm project's packages (``npm ci``) when node_modules is missing or older than the lock
    (default: tests/browser; also js/ and tests/teach).

    Safe to call from several test processes at once (a file lock).  Returns the project's folder.
    """
    tool("node")
    npm = tool("npm")
    want = _lock_hash(project)
    stamp = project / "node_modules" / STAMP_NAME
    if stamp.is_file() and stamp.read_text().strip() == want:
        return project
    with open(project / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == want:
            return project
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        try:
            done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise BrowserToolError(f"`npm ci` in {project} ran past {NPM_TIMEOUT_S} s") from e
        if done.returncode != 0:
            raise BrowserToolError(f"`npm ci` in {project} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        stamp.write_text(want + "\n")
    return project


def _node(script: str, payload: Any, timeout_s: float) -> tuple[int, Any]:
    """Runs ``node tests/browser/SCRIPT PAYLOAD.json --timeout T``; its exit status and its JSON answer.

    Statuses 0 and 1 carry an answer; any other status, or no JSON, raises with the script's stderr.
    """
    ensure_npm()
    node = tool("node")
    with tempfile.TemporaryDirectory(prefix="webml-wgsl-") as tmp:
        path = Path(tmp) / "input.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        # The Vulkan loader wants a runtime directory (it only complains without one).
        env = {**os.environ, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR") or tmp}
        command = [node, str(BROWSER / script), str(path), "--timeout", f"{timeout_s:g}"]
        try:
            # The script stops itself at timeout_s (the browser killed); this is the backstop.
            done = subprocess.run(command, cwd=BROWSER, env=env, capture_output=True, text=True, timeout=timeout_s + 30)
        except subprocess.TimeoutExpired as e:
            raise BrowserToolError(f"{script} ran past {timeout_s + 30:g} s") from e
    if done.returncode not in (0, 1):
        raise BrowserToolError(f"{script} failed ({done.returncode}):\n{done.stderr.strip()}")
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise BrowserToolError(f"{script} gave no JSON:\n{done.stdout}\n{done.stderr}") from e


def tint_errors(sources: Mapping[str, str], timeout_s: float | None = None) -> dict[str, list[str]]:
    """Tint's error messages for each WGSL compute module it rejects, by name; ``{}`` when all are accepted.

    A module is accepted when it compiles and makes a compute pipeline (entry point ``main``, layout
    "auto") on WebGPU's default limits, with every feature Dawn offers (shader-f16, subgroups, ...).
    """
    if not sources:
        return {}
    if timeout_s is None:
        # SwiftShader compiles each module to machine code: minutes for large tiled programs on 2 busy cores.
        timeout_s = 180 + 0.5 * len(sources)
    status, rejected = _node("check-wgsl.mjs", dict(sources), timeout_s)
    if (status == 0) != (rejected == {}):
        raise BrowserToolError(f"check-wgsl.mjs exited {status} with {rejected!r}")
    return rejected


def _bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes) else memoryview(data).tobytes()


def run_in_chromium(jobs: Iterable[Mapping[str, Any]], timeout_s: float = 120) -> dict[str, dict[int, bytes]]:
    """Runs WGSL compute jobs in headless Chromium's WebGPU; the read bindings' bytes, by job and binding.

    A job is ``{name, source, bindings: [{binding, type, data, size}], workgroups: [x, y, z], read}``
    as tests/browser/run-chromium.mjs reads it, except that ``data`` is bytes-like (bytes, a NumPy
    array) rather than base64.  Raises when any job fails, with every failing job's messages.
    """
    payload = []
    for job in jobs:
        bindings = []
        for b in job["bindings"]:
            b = dict(b)
            if b.get("data") is not None:
                b["data"] = base64.b64encode(_bytes(b["data"])).decode("ascii")
            bindings.append(b)
        payload.append({**job, "bindings": bindings})
    _, out = _node("run-chromium.mjs", payload, timeout_s)
    if out["errors"]:
        lines = [f"{name}: {message}" for name, messages in out["errors"].items() for message in messages]
        raise BrowserToolError("Chromium's WebGPU failed jobs:\n" + "\n".join(lines))
    return {
        name: {int(binding): base64.b64decode(b64) for binding, b64 in results.items()}
        for name, results in out["results"].items()
    }
