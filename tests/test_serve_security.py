"""webml serve's permission model: Host, token, grants, Permissions-Policy, the audit of every refusal."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from webml.serve import policy
from webml.serve import token as tokens
from webml.serve.client import Client, RemoteError
from webml.serve.grants import GrantError, GrantStore, normalize_origin, parse_expiry
from webml.serve.testing import TOKEN, audit_events, handshake, make_service, running

ORIGIN = "https://app.example"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    service = make_service(tmp_path, allow_origins=frozenset({"http://localhost:5173"}))
    with running(service) as server:
        yield server, tmp_path


def _refusals(folder: Path) -> list[dict]:
    return [e for e in audit_events(folder / "audit.jsonl") if e["event"] == "refused"]


def _assert_refused(port: int, headers: dict[str, str], folder: Path, words: str) -> None:
    before = len(_refusals(folder))
    status, body = handshake(port, {"Sec-WebSocket-Protocol": "webml.v1", **headers})
    assert status == 403
    answer = json.loads(body)
    assert answer["error"] == "NotAllowedError" and words in answer["message"], answer
    refusals = _refusals(folder)
    assert len(refusals) == before + 1 and words in refusals[-1]["reason"]
    assert not [e for e in audit_events(folder / "audit.jsonl") if e["event"] == "connect"]


def test_refusals_happen_before_any_call_and_are_audited(served) -> None:
    server, folder = served
    port = server.port
    host = f"127.0.0.1:{port}"
    _assert_refused(port, {"Host": host, "Origin": ORIGIN}, folder, "not granted")
    _assert_refused(port, {"Host": f"evil.example:{port}", "Authorization": f"Bearer {TOKEN}"}, folder, "loopback")
    _assert_refused(port, {"Host": f"rebound.example:{port}", "Origin": "http://localhost:5173"}, folder, "loopback")
    _assert_refused(port, {"Host": host}, folder, "no token")
    _assert_refused(port, {"Host": host, "Authorization": "Bearer " + "0" * 64}, folder, "token is wrong")
    _assert_refused(port, {"Host": host, "Sec-WebSocket-Protocol": f"webml.v1, webml.token.{'1' * 64}"}, folder,
                    "token is wrong")
    status, body = handshake(port, {"Host": host, "Authorization": f"Bearer {TOKEN}"})  # no webml.v1
    assert status == 403 and b"webml.v1" in body
    # The ungranted origin's first use is recorded for the user to grant.
    requests = GrantStore(folder / "grants.json").requests()
    assert list(requests) == [ORIGIN] and requests[ORIGIN]["count"] == 1
    assert server.service.connections == {}


def test_token_as_header_or_subprotocol_and_allowed_origin(served) -> None:
    server, _ = served
    url = f"ws://127.0.0.1:{server.port}/webnn"
    with Client(url, token=TOKEN) as c:
        assert c.ws.subprotocol == "webml.v1"
        assert c.call("createContext", options={})[0]["ok"]
    with Client(url, headers={"Sec-WebSocket-Protocol": f"webml.token.{TOKEN}"}) as c:
        assert c.call("createContext", options={})[0]["ok"]
    with Client(f"ws://localhost:{server.port}/webnn", origin="http://localhost:5173") as c:  # --allow-origin
        assert c.call("createContext", options={})[0]["ok"]


def test_granted_origin_works_and_revocation_is_immediate(served) -> None:
    server, folder = served
    store = GrantStore(folder / "grants.json")
    url = f"ws://127.0.0.1:{server.port}/webnn"
    store.add(ORIGIN, expires="1h")
    with Client(url, origin=ORIGIN) as c:
        header, _ = c.call("createContext", options={"accelerated": True})
        assert header["accelerated"] is True
        assert store.revoke(ORIGIN)
        # The open connection goes on; a new one is refused at once.
        status, body = handshake(server.port, {"Host": f"127.0.0.1:{server.port}", "Origin": ORIGIN,
                                               "Sec-WebSocket-Protocol": "webml.v1"})
        assert status == 403 and b"not granted" in body
        assert c.call("opSupportLimits", context=header["context"])[0]["ok"]
    connects = [e for e in audit_events(folder / "audit.jsonl") if e["event"] == "connect"]
    assert connects[0]["origin"] == ORIGIN and connects[0]["grant"] == "grants-file" and not connects[0]["token"]


def test_capabilities_and_expiry_of_a_grant(served) -> None:
    server, folder = served
    store = GrantStore(folder / "grants.json")
    url = f"ws://127.0.0.1:{server.port}/webnn"
    store.add(ORIGIN, capabilities=["compute"])
    with Client(url, origin=ORIGIN) as c:
        assert c.call("createContext", options={"accelerated": True})[0]["accelerated"] is False
    store.add(ORIGIN, expires="2000-01-01T00:00:00")
    status, _ = handshake(server.port, {"Host": f"127.0.0.1:{server.port}", "Origin": ORIGIN,
                                        "Sec-WebSocket-Protocol": "webml.v1"})
    assert status == 403


@pytest.mark.parametrize(
    ("document", "allowed"),
    [
        ({"permissionsPolicy": "webnn=()", "crossOriginFrame": False}, False),
        ({"crossOriginFrame": True}, False),  # the default allowlist 'self' does not reach a cross-origin frame
        ({"permissionsPolicy": f'webnn=(self "{ORIGIN}")', "crossOriginFrame": True}, True),
        ({"permissionsPolicy": "webnn=(self)", "crossOriginFrame": False}, True),
        ({"permissionsPolicy": "webnn=(((", "crossOriginFrame": False}, False),
    ],
)
def test_a_pages_permissions_policy_is_honoured(served, document: dict, allowed: bool) -> None:
    server, folder = served
    GrantStore(folder / "grants.json").add(ORIGIN)
    with Client(f"ws://127.0.0.1:{server.port}/webnn", origin=ORIGIN) as c:
        if allowed:
            assert c.call("createContext", options={}, document=document)[0]["ok"]
            return
        with pytest.raises(RemoteError) as first:
            c.call("createContext", options={}, document=document)
        assert first.value.name == "NotAllowedError"
        with pytest.raises(RemoteError) as later:  # the page stays refused
            c.call("createContext", options={})
        assert later.value.name == "NotAllowedError"
    assert any("Permissions-Policy" in e["reason"] or "structured-field" in e["reason"] for e in _refusals(folder))


def test_pages_served_by_the_service_say_webnn_self(served) -> None:
    server, _ = served
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as page:
        assert page.headers["Permissions-Policy"] == "webnn=(self)"
        assert b"webml serve" in page.read()
    assert policy.allows(page.headers["Permissions-Policy"], ORIGIN)
    assert not policy.allows(page.headers["Permissions-Policy"], ORIGIN, cross_origin_frame=True)
    foreign = urllib.request.Request(f"http://127.0.0.1:{server.port}/", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(foreign, timeout=10)
    assert refused.value.code == 403


def test_stats_need_the_token(served) -> None:
    server, _ = served
    url = f"http://127.0.0.1:{server.port}/admin/stats"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {TOKEN}", "Origin": ORIGIN}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10)
        assert refused.value.code == 403
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.load(answer)["connections"] == 0


def test_token_file_is_the_users_alone(tmp_path: Path) -> None:
    path = tmp_path / "run" / "serve-8765.token"
    token = tokens.new_token()
    tokens.write_token(path, token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == token and len(token) == 64
    assert tokens.check(token, token) and not tokens.check(token[:-1] + "x", token) and not tokens.check(None, token)
    assert tokens.default_path(9000).name == "serve-9000.token"


def test_grants_file_and_origins() -> None:
    assert normalize_origin("HTTPS://App.Example:443/") == ORIGIN
    assert normalize_origin("http://[::1]:8080") == "http://[::1]:8080"
    for bad in ("app.example", "ftp://x", "https://a.example/path", "https://u@a.example", ""):
        with pytest.raises(GrantError):
            normalize_origin(bad)
    with pytest.raises(GrantError):
        parse_expiry("tomorrow")
    assert parse_expiry("never") is None


def test_grants_command(tmp_path: Path) -> None:
    env = {**os.environ, "WEBML_GRANTS": str(tmp_path / "g.json")}

    def webml(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "webml", "grants", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    added = webml("add", "https://App.Example", "--capabilities", "compute", "--expires", "30d")
    assert added.returncode == 0 and "granted https://app.example: compute until" in added.stdout
    assert stat.S_IMODE((tmp_path / "g.json").stat().st_mode) == 0o600
    listed = webml("list")
    assert "https://app.example\tcompute\tuntil" in listed.stdout
    bad = webml("add", "not an origin")
    assert bad.returncode == 2 and "webml: error: not an origin" in bad.stderr and "Traceback" not in bad.stderr
    assert webml("revoke", ORIGIN).returncode == 0
    missing = webml("revoke", ORIGIN)
    assert missing.returncode == 2 and "has no grant" in missing.stderr
    assert "no grants" in webml("list").stdout
