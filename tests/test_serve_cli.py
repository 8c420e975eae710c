"""``webml serve`` as the user starts it: loopback only, the token file, Ctrl-C makes contexts lost."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from webml.serve import frames
from webml.serve.client import Client


def read_until(proc: subprocess.Popen, marker: str, seconds: float = 60) -> str:
    """The service's stderr up to the first line holding ``marker`` (or all of it, if it ends or time runs out)."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not any(marker in line for line in lines):
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
    return "".join(lines)


def _webml(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "webml", "serve", *args], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


def test_serve_prints_how_to_connect_and_ctrl_c_loses_contexts(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "WEBML_GRANTS": str(tmp_path / "grants.json")}
    proc = _webml("--port", "0", "--backend", "reference", env=env)
    try:
        text = read_until(proc, "web pages")
        url = re.search(r"ws://127\.0\.0\.1:(\d+)/webnn", text)
        assert url, text
        token_file = tmp_path / "run" / "webml" / f"serve-{url[1]}.token"
        assert str(token_file) in text and "Bearer" not in text  # the file's path is printed, not the token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert token not in text
        client = Client(url[0], token=token)
        context = client.call("createContext", options={})[0]["context"]
        proc.send_signal(signal.SIGINT)
        event = frames.decode(client.ws.recv(timeout=30))[0]
        assert event == {"event": "lost", "context": context, "message": "the webml service is shutting down"}
        with pytest.raises(ConnectionClosed):
            client.ws.recv(timeout=30)
        assert proc.wait(30) in (0, 130)
        audit = (tmp_path / "state" / "webml" / "serve-audit.jsonl").read_text()
        assert '"event":"connect"' in audit and '"token":true' in audit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize(("args", "words"), [
    (["--host", "0.0.0.0"], "loopback addresses only"),
    (["--host", "example.com"], "not an IP address"),
    (["--allow-origin", "nope"], "--allow-origin: not an origin"),
    (["--port", "70000"], "not a port"),
])
def test_serve_refuses_bad_options(tmp_path: Path, args: list[str], words: str) -> None:
    proc = _webml(*args, env={"XDG_RUNTIME_DIR": str(tmp_path)})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and words in err and "Traceback" not in err, err
