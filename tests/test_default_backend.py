"""Which backend ``create_context()`` uses when none is named: the bench's choice for this kind of
machine, visible as ``webml.backends.DEFAULT_BACKEND`` and ``context.backend``, overridden by
``backend=`` or ``$WEBML_BACKEND``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

import webml
from webml import backends
from webml.errors import NotSupportedError


def test_x86_64_machines_default_to_openvino_and_others_to_onnxruntime(monkeypatch):
    monkeypatch.delenv("WEBML_BACKEND", raising=False)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert backends._default_backend() == "openvino"  # openvino is a dependency: installed here
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert backends._default_backend() == "onnxruntime"


def test_the_environment_overrides_the_default(monkeypatch):
    monkeypatch.setenv("WEBML_BACKEND", "reference")
    assert backends._default_backend() == "reference"


def test_a_context_without_a_backend_uses_the_default():
    assert webml.ml.create_context().backend == backends.DEFAULT_BACKEND
    assert webml.ml.create_context(backend="onnxruntime").backend == "onnxruntime"


def test_the_default_is_read_when_webml_is_imported_and_a_wrong_one_is_named():
    code = "import webml; print(webml.ml.create_context().backend)"
    env = {**os.environ, "WEBML_BACKEND": "onnxruntime"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "onnxruntime", out.stderr
    code = "import webml; webml.ml.create_context()"
    env["WEBML_BACKEND"] = "tpu"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "unknown backend 'tpu'; available: onnxruntime, openvino, reference" in out.stderr


def test_an_unknown_backend_is_refused():
    with pytest.raises(NotSupportedError, match="unknown backend 'tpu'"):
        webml.ml.create_context(backend="tpu")
