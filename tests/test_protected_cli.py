"""``webml keys``, ``protect``, ``unprotect``, ``rewrap`` and ``info PKG``: outputs, and every bad input
as one ``webml: error:`` line; no output ever holds a weight."""

from __future__ import annotations

import json
import stat

import numpy as np
import onnx
import pytest

import webml
import webml.protected as wp
from protected_models import small_input, small_model, weight_signatures
from webml.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code, err, *fragments):
    assert code != 0
    assert err.startswith("webml: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


def assert_no_weights(text: str, model: onnx.ModelProto):
    """No weight bytes, and no run of the weights' values printed as numbers either."""
    raw = text.encode("utf-8", "surrogateescape")
    for signature in weight_signatures(model):
        assert signature not in raw
    first = onnx.numpy_helper.to_array(model.graph.initializer[0]).ravel()[:4]
    assert not any(f"{v:.4f}" in text for v in first)


@pytest.fixture
def folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("publisher", "kiosk", "tablet"):
        code, _out, err = run(capsys, "keys", "new", name)
        assert code == 0, err
    onnx.save(small_model(), tmp_path / "mlp.onnx")
    return tmp_path


def test_keys_new_and_show(folder, capsys):
    assert stat.S_IMODE((folder / "kiosk.key").stat().st_mode) == 0o600
    code, out, _ = run(capsys, "keys", "show", "kiosk.pub", "--json")
    info = json.loads(out)
    key = wp.load_public_key(folder / "kiosk.pub")
    assert code == 0 and info["recipient_key_id"] == key.key_id and info["publisher_fingerprint"] == key.fingerprint
    assert_clean_error(*run(capsys, "keys", "new", "kiosk")[::2], "exists already")
    assert_clean_error(*run(capsys, "keys", "new", "../x")[::2], "the name must be")
    assert_clean_error(*run(capsys, "keys", "show", "nothing.pub")[::2], "no such key file")
    code, out, err = run(capsys, "keys", "new", "other", "--dir", folder / "missing")
    assert_clean_error(code, err, "is not a folder")


def test_protect_info_load_unprotect(folder, capsys):
    code, out, err = run(capsys, "protect", "mlp.onnx", "-o", "mlp.webmlpkg", "--recipient", "kiosk.pub",
                         "--sign", "publisher.key", "--expires", "30d", "--backend", "onnxruntime")
    assert code == 0, err
    assert "1 recipient(s)" in out and "expires" in out and "backends onnxruntime" in out
    code, out, err = run(capsys, "info", "mlp.webmlpkg", "--trusted", "publisher.pub")
    assert code == 0, err
    assert "signature valid; a trusted publisher" in out and "x: float32[1, 256]" in out
    assert_no_weights(out, small_model())
    code, out, _ = run(capsys, "info", "mlp.webmlpkg", "--json")
    info = json.loads(out)
    assert info["publisher"]["trusted"] is None and info["backends"] == ["onnxruntime"]
    assert info["outputs"] == [{"name": "y", "dtype": "float32", "shape": [1, 8]}]
    assert_no_weights(out, small_model())
    assert_clean_error(*run(capsys, "info", "mlp.webmlpkg", "--trusted", "kiosk.pub")[::2], "not among the trusted")
    assert_clean_error(*run(capsys, "info", "mlp.onnx", "--trusted", "kiosk.pub")[::2], "protected packages")

    # The package the CLI wrote loads, for the kiosk.
    context = webml.ml.create_context(backend="onnxruntime")
    graph = wp.load(folder / "mlp.webmlpkg", context, key=folder / "kiosk.key", trusted=[folder / "publisher.pub"])
    assert context.compute(graph, small_input())["y"].shape == (1, 8)

    assert_clean_error(*run(capsys, "unprotect", "mlp.webmlpkg", "-o", "out.onnx", "--key", "publisher.key")[::2],
                       "--i-am-the-publisher")
    code, _, err = run(capsys, "unprotect", "mlp.webmlpkg", "-o", "out.onnx", "--key", "kiosk.key",
                       "--i-am-the-publisher")
    assert_clean_error(code, err, "only its publisher's own key may unprotect")
    assert not (folder / "out.onnx").exists()
    code, out, err = run(capsys, "unprotect", "mlp.webmlpkg", "-o", "out.onnx", "--key", "publisher.key",
                         "--i-am-the-publisher")
    assert code == 0, err
    assert_no_weights(out + err, small_model())
    assert onnx.load(folder / "out.onnx").graph.initializer[0].raw_data == small_model().graph.initializer[0].raw_data


def test_rewrap(folder, capsys):
    run(capsys, "protect", "mlp.onnx", "-o", "mlp.webmlpkg", "--recipient", "kiosk.pub", "--sign", "publisher.key")
    code, _out, err = run(capsys, "rewrap", "mlp.webmlpkg", "-o", "mlp.webmlpkg", "--key", "publisher.key",
                         "--add", "tablet.pub", "--remove", "kiosk.pub")
    assert code == 0, err
    ids = {r["key_id"] for r in wp.describe(folder / "mlp.webmlpkg")["recipients"]}
    assert wp.load_public_key(folder / "tablet.pub").key_id in ids
    assert wp.load_public_key(folder / "kiosk.pub").key_id not in ids
    assert_clean_error(*run(capsys, "rewrap", "mlp.webmlpkg", "-o", "x.webmlpkg", "--key", "publisher.key")[::2],
                       "--add PUB or --remove")
    code, _, err = run(capsys, "rewrap", "mlp.webmlpkg", "-o", "x.webmlpkg", "--key", "tablet.key",
                       "--add", "kiosk.pub")
    assert_clean_error(code, err, "not among the trusted")


def test_protect_bad_inputs(folder, capsys):
    base = ["protect", "mlp.onnx", "-o", "p.webmlpkg", "--sign", "publisher.key"]
    assert_clean_error(*run(capsys, *base)[::2], "--recipient")
    assert_clean_error(*run(capsys, *base, "--recipient", "kiosk.key")[::2], "private key file")
    assert_clean_error(*run(capsys, *base, "--recipient", "kiosk.pub", "--expires", "soon")[::2], "duration")
    assert_clean_error(*run(capsys, *base, "--recipient", "kiosk.pub", "--backend", "tpu")[::2], "backends")
    (folder / "publisher.key").chmod(0o644)
    assert_clean_error(*run(capsys, *base, "--recipient", "kiosk.pub")[::2], "readable by others")
    (folder / "junk.onnx").write_bytes(b"\x00junk")
    assert_clean_error(*run(capsys, "protect", "junk.onnx", "-o", "p.webmlpkg", "--recipient", "kiosk.pub",
                            "--sign", "kiosk.key")[::2], "not an ONNX model")
    assert not (folder / "p.webmlpkg").exists()
    assert not list(folder.glob(".*.part"))


def test_info_of_a_damaged_package(folder, capsys):
    run(capsys, "protect", "mlp.onnx", "-o", "mlp.webmlpkg", "--recipient", "kiosk.pub", "--sign", "publisher.key")
    data = bytearray((folder / "mlp.webmlpkg").read_bytes())
    data[40] ^= 1
    (folder / "bad.webmlpkg").write_bytes(bytes(data))
    code, out, err = run(capsys, "info", "bad.webmlpkg")
    assert_clean_error(code, err, "bad.webmlpkg")
    assert out == ""
    np.testing.assert_equal(code, 2)
