"""``webml federated``: simulate on a generated image folder (EfficientNet-Lite0 features), the server with
two clients over TLS on loopback, and clear errors for bad options.

The folders are augmented crops of scikit-image's sample photos (tests/test_transfer.make_images); the
certificates are made here with ``cryptography`` for 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import webml
from test_transfer import CLASSES, make_images
from webml.cli import main
from webml.federated.privacy import privacy_budget
from webml.train.transfer import load_classifier

TIMEOUT = 240  # seconds for a whole federated command on 2 busy cores


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    src = str(Path(webml.__file__).parent.parent)
    return {**os.environ, "WEBML_CACHE_DIR": str(cache), "PYTHONPATH": src, "FLWR_TELEMETRY_ENABLED": "0"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    make_images(root / "all", 8, seed=3, size=96)
    make_images(root / "device_a", 5, seed=5, size=96)
    make_images(root / "device_b", 5, seed=6, size=96)
    for extra in (root / "device_b" / "coffee").iterdir():  # device B has two of the three classes
        extra.unlink()
    (root / "device_b" / "coffee").rmdir()
    return root


def webml_cli(*argv, env, timeout=TIMEOUT):
    result = subprocess.run(
        [sys.executable, "-m", "webml.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_simulate_on_an_image_folder_with_dp_writes_history_and_a_usable_classifier(photos, env, tmp_path):
    history_path, model_path = tmp_path / "h.json", tmp_path / "fed.npz"
    code, out, err = webml_cli(
        "federated", "simulate", photos / "all", "--clients", 3, "--rounds", 3, "--split", "dirichlet:1",
        "--learning-rate", 0.1, "--dp-noise", 0.5, "--dp-clip", 5.0,
        "--history", history_path, "--output", model_path, env=env,
    )  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err
    for r in (1, 2, 3):
        assert f"round {r}/3  3/3 clients" in err
    history = json.loads(history_path.read_text())
    assert [r["round"] for r in history["rounds"]] == [1, 2, 3]
    assert history["config"]["class_names"] == list(CLASSES)
    assert sum(history["config"]["partition_sizes"]) == 18  # 24 images, 6 held out (2 per class)
    budget = privacy_budget(0.5, 3, 1e-5)
    assert history["privacy"]["epsilon"] == pytest.approx(budget.epsilon)
    assert f"privacy: ({budget.epsilon:.3g}, 1e-05)-DP at the client level" in out
    # The global head is a classifier file for `webml classify --model`.
    classifier = load_classifier(model_path)
    assert classifier.class_names == list(CLASSES) and classifier.base_name == "efficientnet-lite0"
    image = photos / "device_a" / "chelsea" / "00.png"
    code, out, err = webml_cli("classify", "--model", model_path, "--json", "--top-k", 3, image, env=env)
    assert code == 0, err
    top = json.loads(out)["top"]
    assert len(top) == 3 and sum(p for _, p in top) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["simulate", "{photos}/all", "--clients", "3", "--rounds", "2", "--split", "shards"], "--split 'shards'"),
        (["simulate", "{photos}/all", "--clients", "0", "--rounds", "2"], "--clients must be at least 1"),
        (["simulate", "{photos}/all", "--clients", "3", "--rounds", "2", "--secagg", "--dp-noise", "1"], "choose one"),
        (["simulate", "{photos}/all", "--clients", "2", "--rounds", "2", "--secagg"], "at least 3 clients"),
        (["simulate", "{photos}/all", "--clients", "3", "--rounds", "2", "--dp-noise", "-1"], "--dp-noise must be"),
        (["simulate", "{photos}/all", "--clients", "3", "--rounds", "2", "-o", "m.onnx"], "must end in .npz"),
        (["simulate", "{photos}/nowhere", "--clients", "3", "--rounds", "2"], "does not exist"),
        (["simulate", "{photos}/all", "--clients", "30", "--rounds", "2"], "only 18 training images"),
        (["server", "--min-clients", "2", "--rounds", "1", "--classes", "a,b"], "or --insecure for none"),
        (["server", "--insecure", "--min-clients", "2", "--rounds", "1", "--classes", "a,a"], "two distinct"),
        (["server", "--min-clients", "2", "--rounds", "1", "--classes", "a,b", "--certificates", "x", "y", "z"],
         "--certificates 'x': no such file"),
        (["client", "{photos}/all", "--server", "127.0.0.1:1"], "or --insecure for none"),
        (["client", "{photos}/all", "--server", "127.0.0.1:1", "--insecure", "--root-certificates", "ca.pem"],
         "one of the two"),
        ([], "name a subcommand"),
    ],
)
def test_bad_options_give_one_clear_error(argv, message, photos, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WEBML_CACHE_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = main(["federated", *(a.format(photos=photos) for a in argv)])
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.splitlines()[-1]  # after any progress lines (the embedding of the folder)
    assert last.startswith("webml: error: ") and message in last, err
    assert "Traceback" not in err


def test_ctrl_c_stops_a_simulation_with_status_130(photos, env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "webml.cli", "federated", "simulate", str(photos / "all"), "--clients", "3",
         "--rounds", "1000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        seen = []
        for line in proc.stderr:  # wait until the federation is running, then press Ctrl-C
            seen.append(line)
            if line.startswith("round 2/1000"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    err = "".join(seen) + err
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "round 1000/1000" not in err and out == ""


def test_help_has_examples_of_each_subcommand(env):
    code, out, err = webml_cli("federated", "--help", env=env, timeout=60)
    assert code == 0, err
    examples = out.split("examples:\n", 1)[1]
    for sub in ("simulate", "server", "client"):
        assert f"webml federated {sub}" in examples
    code, out, err = webml_cli("federated", "simulate", "--help", env=env, timeout=60)
    assert code == 0 and "--dp-noise" in out and "--secagg" in out, err


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("webml test CA")).issuer_name(name("webml test CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_and_two_clients_over_tls_on_loopback(photos, env, tmp_path):
    ca, cert, key = make_certificates(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    history_path = tmp_path / "server.json"
    command = [sys.executable, "-m", "webml.cli", "federated"]
    server = subprocess.Popen(
        [*command, "server", "--address", address, "--min-clients", "2", "--rounds", "3",
         "--classes", ",".join(CLASSES), "--certificates", ca, cert, key, "--history", history_path],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    clients = [
        subprocess.Popen(
            [*command, "client", photos / device, "--server", address, "--root-certificates", ca,
             "--validation-split", "0.4", "--connect-timeout", "120"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for device in ("device_a", "device_b")
    ]
    try:
        outputs = [p.communicate(timeout=TIMEOUT) for p in (server, *clients)]
    finally:
        for p in (server, *clients):
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip((server, *clients), outputs):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    server_out, server_err = outputs[0]
    assert "(TLS)" in server_err and "final accuracy:" in server_out
    history = json.loads(history_path.read_text())
    assert history["config"]["tls"] is True and history["config"]["classes"] == list(CLASSES)
    assert [(r["round"], r["clients"], r["results"], r["failures"]) for r in history["rounds"]] == [
        (1, 2, 2, 0), (2, 2, 2, 0), (3, 2, 2, 0),
    ]  # fmt: skip
    # The clients evaluated every round's global model on their held-out images.
    assert all(0 <= r["client_accuracy"] <= 1 and r["evaluate_failures"] == 0 for r in history["rounds"])
    assert np.isfinite(history["rounds"][-1]["train_loss"])
    assert "joining" in outputs[2][1] and "(astronaut, chelsea)" in outputs[2][1]
