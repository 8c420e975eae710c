"""The JavaScript client (js/, npm name ``webml``) of issue 15.

* ``node --test js/``, the README's test command: the client's unit tests (validation errors,
  output shapes, frames, tensors, lost contexts) against a stand-in service, and the WPT validation
  traces replayed through the JS rules alone;
* ``js/src/rules.json`` is what ``python -m webml.serve.rules`` exports now;
* end to end against ``webml serve`` started here on 127.0.0.1: the WPT conformance cases and the
  traced validation tests replayed through the JS client in Node (conformance: every case the
  Python API passes on the reference backend passes; validation: at least 95%), and a page in
  headless Chromium that uses ``installNavigatorML`` and runs a small graph, its origin granted.

Everything needed (node, npm, js/'s packages from its lock, Chromium) is a prerequisite: a missing
one fails the test that needs it with what to install, never skips it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webml.conformance import wpt
from webml.serve import rules
from webml.serve.testing import TOKEN, make_service, running
from wgsl_tools import BrowserToolError, ensure_npm, tool

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "js"


def _node(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    ensure_npm(JS)
    return subprocess.run([tool("node"), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_rules_json_is_current() -> None:
    assert rules.main(["--check"]) == 0, "js/src/rules.json is stale: run python -m webml.serve.rules"


def test_rules_export_every_operator() -> None:
    exported = rules.export()
    assert len(exported["operators"]) == 95
    assert exported["operators"]["gru"]["outputs"] == ["output0", "output1"]
    assert [a["name"] for a in exported["operators"]["split"]["arguments"]] == ["input", "splits"]


def test_node_unit_tests() -> None:
    """The README's test command, ``node --test js/``."""
    done = _node("--test", "js/", timeout=600)
    assert done.returncode == 0, f"node --test js/ failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    assert "# fail 0" in done.stdout


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("serve")
    svc = make_service(folder)
    with running(svc) as server:
        yield svc, f"ws://127.0.0.1:{server.port}/webnn"


def _replay(suite: str, url: str, out: Path, timeout: float) -> dict[str, Any]:
    done = _node("js/tools/replay/run.js", suite, "--url", url, "--token", TOKEN, "--out", str(out), timeout=timeout)
    assert done.returncode == 0, f"run.js {suite} failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}"
    return json.loads(out.read_text())


def test_wpt_conformance_through_the_js_client(service: Any, tmp_path: Path) -> None:
    """Every conformance case the Python API passes (reference backend) passes through Node and the service."""
    _, url = service
    report = _replay("conformance", url, tmp_path / "conformance.json", timeout=900)
    python = wpt.run_all("reference")
    js = {f"{r['file']}::{r['name']}": r for r in report["results"]}
    assert len(js) == len(python), "the JS runner saw other cases than webml.conformance.wpt"
    lost = [f"{r.key}: {js[r.key]['reason']}" for r in python if r.passed and js[r.key]["status"] != "passed"]
    assert not lost, f"{len(lost)} cases pass in Python but not through the JS client:\n" + "\n".join(lost[:30])
    assert report["summary"]["passed"] >= sum(r.passed for r in python)


def test_wpt_validation_through_the_js_client(service: Any, tmp_path: Path) -> None:
    """The traced validation tests through the JS client and the service: 95% of those that check something pass."""
    _, url = service
    summary = _replay("validation", url, tmp_path / "validation.json", timeout=600)["summary"]
    checked = summary["passed"] + summary["failed"]
    assert checked > 800, summary
    assert summary["passed"] / checked >= 0.95, summary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page(url: str, page_port: int) -> tuple[int, dict[str, Any]]:
    chromium = os.environ.get("WEBML_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).is_file():
        raise BrowserToolError(
            f"no Chromium at {chromium}: the page test needs it (Debian: apt install chromium, or set WEBML_CHROMIUM)"
        )
    args = ["--service", url, "--page-port", str(page_port), "--timeout", "90"]
    done = _node("js/tools/run-page.js", *args, timeout=150)
    assert done.returncode in (0, 1), f"run-page.js could not run ({done.returncode}):\n{done.stderr[-4000:]}"
    return done.returncode, json.loads(done.stdout)


def test_a_page_in_chromium_runs_a_graph_through_installNavigatorML(service: Any) -> None:
    svc, url = service
    port = _free_port()
    svc.grants.add(f"http://127.0.0.1:{port}")
    code, result = _page(url, port)
    assert code == 0, result
    assert result["navigatorHadML"] is False
    # relu([[1, 0, 1], [0, 1, -1]] @ [[1, 2], [3, 4], [5, 6]])
    assert result["output"] == [6, 8, 0, 0]
    assert (result["dataType"], result["shape"]) == ("float32", [2, 2])
    assert result["syncError"] == "TypeError: add: the shapes of a [2, 3] and b [3, 2] are not broadcastable"


def test_a_page_of_an_ungranted_origin_is_refused(service: Any) -> None:
    _, url = service
    code, result = _page(url, _free_port())
    assert code == 1
    assert result["error"].startswith("NotAllowedError: "), result


def test_node_without_the_token_is_refused_with_the_services_reason(service: Any) -> None:
    _, url = service
    script = (
        'import { connect } from "./js/src/index.js";'
        "try { await connect({ url: process.argv[1] }); console.log('connected'); }"
        " catch (e) { console.log(`${e.name}: ${e.message}`); }"
    )
    done = _node("--input-type=module", "-e", script, url, timeout=60)
    assert done.returncode == 0, done.stderr
    refusal = "NotAllowedError: webml serve refused the connection (HTTP 403): no token"
    assert done.stdout.startswith(refusal), done.stdout
