"""Federated training with Flower on scikit-learn's digits: 8 clients on a Dirichlet(0.5) split reach the
accuracy of centralised training on the same data and epochs; a client that drops out mid-round does not
stop the round and is recorded in the history.

One simulation (Flower's engine on a local Ray, started and stopped by the run) serves every assertion.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits

import webml
from webml.federated.model import initial_model
from webml.federated.server import write_history
from webml.federated.simulation import simulate
from webml.train import SGD, Trainer
from webml.train.transfer import head_forward

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

ROUNDS = 20
CLIENTS = 8
SETTINGS = {"learning_rate": 1.0, "batch_size": 8, "local_epochs": 1}


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[:360], order[360:]
    return x[train], data.target[train], x[test], data.target[test]


@pytest.fixture(scope="module")
def run(digits, tmp_path_factory):
    x, y, tx, ty = digits
    result = simulate(
        x,
        y,
        clients=CLIENTS,
        rounds=ROUNDS,
        split="dirichlet:0.5",
        test=(tx, ty),
        dropouts={3: [5]},
        seed=0,
        **SETTINGS,
    )
    path = tmp_path_factory.mktemp("fed") / "history.json"
    write_history(result.history, str(path))
    return result, json.loads(path.read_text())


def centralised_accuracy(digits) -> float:
    """The same head, optimizer, batch and number of passes over the same data, on one machine."""
    x, y, tx, ty = digits
    trainer = Trainer(
        webml.ml.create_context(),
        head_forward,
        initial_model(x.shape[1], 10),
        SGD(SETTINGS["learning_rate"]),
        batch_size=SETTINGS["batch_size"],
        input_shape=[x.shape[1]],
    )
    trainer.fit(x, y, ROUNDS * SETTINGS["local_epochs"], seed=0, progress=False)
    accuracy = trainer.evaluate(tx, ty)
    trainer.close()
    return accuracy


def test_eight_non_iid_clients_within_two_points_of_centralised(run, digits):
    result, history = run
    central = centralised_accuracy(digits)
    federated = history["final_accuracy"]
    assert federated == history["rounds"][-1]["accuracy"]
    assert federated >= central - 0.02, (federated, central)
    # The final model is the one evaluated: recompute its accuracy with NumPy.
    *_, tx, ty = digits
    p = result.parameters
    logits = tx.astype(np.float64) @ p["w"] + p["b"]
    assert np.mean(np.argmax(logits, 1) == ty) == pytest.approx(federated, abs=1 / len(ty))
    # Learning happened: from chance to the final accuracy.
    assert history["initial"]["accuracy"] < 0.3


def test_the_split_is_non_iid_and_covers_the_data(run, digits):
    _, history = run
    counts = np.array(history["config"]["partition_classes"])
    assert counts.shape == (CLIENTS, 10)
    assert counts.sum() == len(digits[1])
    assert (counts.sum(axis=0) == np.bincount(digits[1])).all()
    # Dirichlet(0.5): each client's largest class holds far more than the 10% of an IID share.
    shares = counts.max(axis=1) / counts.sum(axis=1)
    assert np.median(shares) > 0.25


def test_a_client_dropping_out_mid_round_does_not_stop_the_round(run):
    _, history = run
    rounds = {r["round"]: r for r in history["rounds"]}
    assert sorted(rounds) == list(range(1, ROUNDS + 1))
    dropped = rounds[3]
    assert (dropped["clients"], dropped["results"], dropped["failures"]) == (CLIENTS, CLIENTS - 1, 1)
    assert dropped["aggregated"] is True
    assert "dropped out of round 3" in dropped["failure_reasons"][0]
    assert history["failures"] == 1
    assert all(r["failures"] == 0 and r["results"] == CLIENTS for n, r in rounds.items() if n != 3)
    # The round after the dropout still improves on the round before it.
    assert rounds[4]["accuracy"] > rounds[2]["accuracy"] - 0.05
