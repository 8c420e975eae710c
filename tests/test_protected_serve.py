"""Served protected models (``webml serve --model NAME=PKG``): listModels and runModel give outputs,
never weights; the model-run quota; the JS client's listModels()/runModel() against the real service."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import webml.protected as wp
from protected_models import small_input, small_model, weight_signatures
from test_serve_cli import read_until
from webml.cli import main
from webml.serve.client import Client, RemoteError
from webml.serve.models import ServedModels
from webml.serve.quotas import Limits
from webml.serve.testing import TOKEN, audit_events, make_service, running
from wgsl_tools import ensure_npm, tool

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    publisher, service_key = wp.new_key_pair("publisher", folder), wp.new_key_pair("service", folder)
    package = wp.protect(small_model(), folder / "mlp.webmlpkg", recipients=[service_key[1]], key=publisher[0])
    models = ServedModels.load({"mlp": package}, key=service_key[0], trusted=[publisher[1]], backend="onnxruntime")
    return folder, publisher, service_key, package, models


def expected_output() -> np.ndarray:
    session = ort.InferenceSession(small_model().SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, small_input())[0]


def _url(server) -> str:
    return f"ws://127.0.0.1:{server.port}/webnn"


def test_list_and_run_over_the_protocol(setup, tmp_path):
    *_, models = setup
    with running(make_service(tmp_path, backend="onnxruntime", models=models)) as server, \
            Client(_url(server), token=TOKEN) as c:
        header, payload = c.call("listModels")
        assert [m["name"] for m in header["models"]] == ["mlp"]
        assert header["models"][0]["inputs"] == {"x": {"dataType": "float32", "shape": [1, 256]}}
        assert len(payload) == 0
        x = small_input()["x"]
        header, payload = c.call("runModel", x.tobytes(), model="mlp", inputs={"x": {"offset": 0, "length": x.nbytes}})
        out = header["outputs"]["y"]
        assert (out["dataType"], out["shape"], out["offset"], out["length"]) == ("float32", [1, 8], 0, 32)
        y = np.frombuffer(bytes(payload), np.float32).reshape(1, 8)
        np.testing.assert_array_equal(y, expected_output())
        for op, args, data, message in [
            ("runModel", {"model": "other", "inputs": {}}, b"", "no served model named 'other'"),
            ("runModel", {"model": "mlp", "inputs": {}}, b"", "missing ['x']"),
            ("runModel", {"model": "mlp", "inputs": {"x": {"offset": 0, "length": 12}}}, bytes(12), "1024 bytes"),
            ("runModel", {"model": "mlp", "inputs": {"x": {"offset": 8, "length": 1024}}}, bytes(1024), "payload"),
            ("runModel", {"model": "mlp", "inputs": {"x": [0, 1]}}, b"", "offset, length"),
        ]:
            with pytest.raises(RemoteError, match="TypeError") as info:
                c.call(op, data, **args)
            assert message in info.value.message


def test_no_answer_holds_weights(setup, tmp_path):
    """Every op a client can send about a served model: none answers with weight bytes."""
    *_, models = setup
    signatures = weight_signatures(small_model())
    with running(make_service(tmp_path, backend="onnxruntime", models=models)) as server, \
            Client(_url(server), token=TOKEN) as c:
        x = small_input()["x"]
        answers = [c.call("listModels"), c.call("runModel", x.tobytes(), model="mlp",
                                                  inputs={"x": {"offset": 0, "length": x.nbytes}})]
        stats = (tmp_path / "audit.jsonl").read_bytes()
    for header, payload in answers:
        blob = json.dumps(header).encode() + bytes(payload)
        assert not any(s in blob for s in signatures)
    assert not any(s in stats for s in signatures)


def test_model_run_quota(setup, tmp_path):
    *_, models = setup
    limits = Limits(model_runs=2)
    x = small_input()["x"]
    args = {"model": "mlp", "inputs": {"x": {"offset": 0, "length": x.nbytes}}}
    with running(make_service(tmp_path, backend="onnxruntime", models=models, limits=limits)) as server, \
            Client(_url(server), token=TOKEN) as c:
        c.call("runModel", x.tobytes(), **args)
        c.call("runModel", x.tobytes(), **args)
        with pytest.raises(RemoteError, match="QuotaExceededError: quota of model runs per minute exceeded: 2 of 2"):
            c.call("runModel", x.tobytes(), **args)
        c.call("listModels")  # the service keeps serving
    runs = [e for e in audit_events(tmp_path / "audit.jsonl") if e["event"] == "run_model"]
    assert [(e["model"], e["principal"]) for e in runs] == [("mlp", "token")] * 2


def test_an_expired_served_model_is_refused(setup, tmp_path):
    _folder, publisher, service_key, *_ = setup
    package = wp.protect(small_model(), tmp_path / "soon.webmlpkg", recipients=[service_key[1]], key=publisher[0],
                         expires=dt.timedelta(days=1))
    models = ServedModels.load({"soon": package}, key=service_key[0], trusted=[publisher[1]], backend="onnxruntime")
    models.get("soon", "test").expires = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # as a day later
    x = small_input()["x"]
    with running(make_service(tmp_path, backend="onnxruntime", models=models)) as server, \
            Client(_url(server), token=TOKEN) as c:
        with pytest.raises(RemoteError, match="NotAllowedError: runModel: the model 'soon' expired"):
            c.call("runModel", x.tobytes(), model="soon", inputs={"x": {"offset": 0, "length": x.nbytes}})


def test_serve_cli_refuses_bad_model_options(setup, capsys):
    folder, publisher, service_key, package, _ = setup
    for argv, fragment in [
        (["serve", "--model", f"mlp={package}"], "needs --model-key"),
        (["serve", "--model-key", str(service_key[0])], "are for --model"),
        (["serve", "--model", f"mlp={package}", "--model-key", str(service_key[0]), "--trusted", str(publisher[1]),
          "--model-free-dim", "batch=0"], "positive integer"),
        (["serve", "--model", "mlp", "--model-key", str(service_key[0]), "--trusted", str(publisher[1])],
         "NAME=VALUE"),
        (["serve", "--model", f"mlp={package}", "--model-key", str(publisher[0]), "--trusted", str(service_key[1])],
         "not among the trusted"),
        (["serve", "--model", f"mlp={folder / 'none.webmlpkg'}", "--model-key", str(service_key[0]),
          "--trusted", str(publisher[1])], "no such package"),
    ]:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("webml: error: ") and fragment in err, (argv, err)


def test_a_dynamic_model_is_served_with_its_dimensions_fixed(setup, tmp_path):
    _, publisher, service_key, *_ = setup
    bert = ROOT / "tests" / "fixtures" / "bert_tiny.onnx"
    package = wp.protect(bert, tmp_path / "bert.webmlpkg", recipients=[service_key[1]], key=publisher[0])
    with pytest.raises(wp.PackageError, match="'sequence'"):
        ServedModels.load({"bert": package}, key=service_key[0], trusted=[publisher[1]], backend="onnxruntime")
    models = ServedModels.load({"bert": package}, key=service_key[0], trusted=[publisher[1]], backend="onnxruntime",
                               free_dimensions={"sequence": 8, "batch": 2})
    assert models.describe()[0]["inputs"]["input_ids"] == {"dataType": "int64", "shape": [1, 8]}


def test_js_client_list_models_and_run_model(setup, tmp_path):
    _folder, publisher, _, _, models = setup
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({
        "model": "mlp",
        "publisher": wp.load_public_key(publisher[1]).fingerprint,
        "input": {"x": {"data": small_input()["x"].ravel().tolist()}},
        "output": {"y": {"data": expected_output().ravel().tolist()}},
    }))
    ensure_npm(ROOT / "js")
    with running(make_service(tmp_path, backend="onnxruntime", models=models)) as server:
        env = {"WEBML_URL": _url(server), "WEBML_TOKEN": TOKEN, "WEBML_EXPECTED": str(expected)}
        done = subprocess.run([tool("node"), "--test", "js/tools/serve-models.e2e.js"], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert "# pass 3" in done.stdout and "# fail 0" in done.stdout


def test_webml_serve_model_as_the_user_starts_it(setup, tmp_path):
    """``webml serve --model``: it says what it serves, and a client runs the model."""
    _, publisher, service_key, package, _ = setup
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "WEBML_GRANTS": str(tmp_path / "grants.json")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "webml", "serve", "--port", "0", "--backend", "onnxruntime", "--model",
         f"mlp={package}", "--model-key", str(service_key[0]), "--trusted", str(publisher[1])],
        stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        text = read_until(proc, "protected models")
        assert "protected models (listModels, runModel): mlp" in text, text
        port = re.search(r"ws://127\.0\.0\.1:(\d+)/webnn", text)[1]
        token = (tmp_path / "run" / "webml" / f"serve-{port}.token").read_text().strip()
        x = small_input()["x"]
        with Client(f"ws://127.0.0.1:{port}/webnn", token=token) as c:
            _, payload = c.call("runModel", x.tobytes(), model="mlp",
                                inputs={"x": {"offset": 0, "length": x.nbytes}})
        np.testing.assert_array_equal(np.frombuffer(bytes(payload), np.float32).reshape(1, 8), expected_output())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
