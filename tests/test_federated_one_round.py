"""One round of each option against plain FedAvg: secure aggregation (Flower's SecAgg+) gives FedAvg's
aggregate within its quantisation, also when a client drops out mid-round; client-side differential privacy
adds noise of the scale its budget is computed for; FedAdam takes Adam's server step from FedAvg's aggregate;
FedProx's clients stay nearer the global model.

Every simulation has the same seeds, so each client computes the same update in each (for DP, the clipping
norm is too large to bind, so only the noise differs).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits

from webml.federated.model import initial_model
from webml.federated.privacy import privacy_budget
from webml.federated.simulation import simulate

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

COMMON = {"clients": 5, "rounds": 1, "split": "dirichlet:0.5", "learning_rate": 0.5, "batch_size": 8, "seed": 4}
CLIP, BITS = 4.0, 20
NOISE, NORM = 1.0, 100.0


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target


#: Client 2 trains and then fails in round 1 (in the FedAvg and SecAgg+ runs).
DROPOUT = {1: [2]}


@pytest.fixture(scope="module")
def plain(digits):
    return simulate(*digits, **COMMON)


@pytest.fixture(scope="module")
def plain_with_dropout(digits):
    return simulate(*digits, **COMMON, dropouts=DROPOUT)


def test_secagg_plus_gives_the_fedavg_aggregate_within_its_quantisation(digits, plain_with_dropout):
    plain = plain_with_dropout
    secure = simulate(*digits, **COMMON, secagg=True, secagg_clip=CLIP, secagg_bits=BITS, dropouts=DROPOUT)
    for run in (plain, secure):
        record = run.history["rounds"][0]
        assert (record["clients"], record["results"], record["failures"], record["aggregated"]) == (5, 4, 1, True)
        assert record["failure_reasons"] == ["the client dropped out of round 1 after training"]
    assert secure.history["config"]["secagg"] == {"clipping_range": CLIP, "bits": BITS}
    sizes = np.delete(np.array(secure.history["config"]["partition_sizes"], np.float64), DROPOUT[1])
    # Each client sends (n_i / max n) * params, stochastically rounded to a step of 2c / 2^bits (an error
    # below one step); the server divides the sum by the sum of the (quantised) weights.
    step = 2 * CLIP / 2**BITS
    ratios = sizes / sizes.max()
    largest = max(float(np.abs(a).max()) for a in plain.parameters.values())
    tolerance = len(sizes) * step / ratios.sum() + largest * 0.5 / (2**BITS * ratios.min())
    for name, expected in plain.parameters.items():
        difference = np.abs(secure.parameters[name].astype(np.float64) - expected)
        assert difference.max() <= tolerance, (name, difference.max(), tolerance)
    # Not bit-identical: the quantisation is there (and the comparison could fail).
    assert max(np.abs(secure.parameters[n] - plain.parameters[n]).max() for n in plain.parameters) > 0


def test_client_side_dp_adds_noise_of_the_budgeted_scale(digits, plain):
    private = simulate(*digits, **COMMON, dp_noise=NOISE, dp_clip=NORM, dp_delta=1e-5)
    assert private.history["privacy"] == privacy_budget(NOISE, 1, 1e-5).as_dict()
    assert private.history["privacy"]["epsilon"] == pytest.approx(4.377, abs=1e-3)
    # The server's Gaussian noise has standard deviation sigma * C / m on each coordinate of the mean
    # of the m clipped updates; the weighted/unweighted mean difference is tiny beside it.
    noise = private.parameters["w"].astype(np.float64) - plain.parameters["w"]
    expected = NOISE * NORM / COMMON["clients"]
    assert np.std(noise) == pytest.approx(expected, rel=0.1)
    assert abs(np.mean(noise)) < 4 * expected / math.sqrt(noise.size)
    # Flower's DP wrapper skips a round with any failure (the noise is calibrated to m updates).
    dropped = simulate(*digits, **{**COMMON, "clients": 3}, dp_noise=NOISE, dp_clip=NORM, dropouts={1: [0]})
    record = dropped.history["rounds"][0]
    assert (record["results"], record["failures"], record["aggregated"]) == (2, 1, False)
    start = initial_model(64, 10, seed=COMMON["seed"])
    assert all(np.array_equal(dropped.parameters[n], start[n]) for n in start)


def test_bad_secure_and_private_settings_are_refused(digits):
    x, y = digits
    for kwargs, message in [
        ({"secagg": True, "dp_noise": 1.0}, "secagg and dp_noise together"),
        ({"secagg": True, "clients": 2}, "at least 3 clients"),
        ({"secagg": True, "secagg_bits": 40}, "secagg_bits must be an integer in"),
        ({"dp_noise": -1.0}, "noise_multiplier must be >= 0"),
        ({"dp_noise": 1.0, "dp_delta": 2.0}, r"delta must be in \(0, 1\)"),
        ({"strategy": "fedsgd"}, "strategy must be one of fedavg, fedprox, fedadam"),
        ({"dropouts": {1: [9]}}, "dropouts names client 9"),
        ({"dropouts": {2: [0]}}, r"dropouts names round 2, rounds are 1\.\.1"),
        ({"dropouts": [1]}, "dropouts must be a dict"),
        ({"dropouts": {1: 3}}, r"dropouts\[1\] must be a list"),
    ]:
        with pytest.raises((ValueError, TypeError), match=message):
            simulate(x, y, **{**COMMON, **kwargs})


def test_fedadam_takes_adams_server_step_from_the_fedavg_aggregate(digits, plain_with_dropout):
    plain = plain_with_dropout
    eta = 0.05
    adam = simulate(*digits, **COMMON, strategy="fedadam", server_learning_rate=eta, dropouts=DROPOUT)
    assert adam.history["config"]["server_learning_rate"] == eta
    start = initial_model(64, 10, seed=COMMON["seed"])
    for name, average in plain.parameters.items():
        # Reddi et al. 2021 (FedAdam), first round from zero moments, beta1 0.9, beta2 0.99, tau 1e-9, with
        # Flower's bias correction sqrt(1 - beta2^(t+1)) / (1 - beta1^(t+1)) at t = 1.
        delta = average.astype(np.float64) - start[name]
        m, v = 0.1 * delta, 0.01 * delta**2
        step = eta * math.sqrt(1 - 0.99**2) / (1 - 0.9**2)
        expected = start[name] + step * m / (np.sqrt(v) + 1e-9)
        # Where the clients did not move a weight (digits' always-blank pixels), the average differs from the
        # start only by rounding, which Adam's normalisation blows up to any step up to its bound: compare
        # the weights that moved, and bound the others.
        moved = np.abs(delta) > 1e-5
        assert moved.mean() > 0.5
        np.testing.assert_allclose(adam.parameters[name][moved], expected[moved], atol=1e-5)
        assert np.all(np.abs(adam.parameters[name] - start[name]) <= step * (1 + 1e-6) + 1e-7)


def test_fedprox_clients_stay_nearer_the_global_model(digits, plain_with_dropout):
    plain = plain_with_dropout
    prox = simulate(*digits, **COMMON, strategy="fedprox", proximal_mu=1.0, dropouts=DROPOUT)
    assert prox.history["config"]["proximal_mu"] == 1.0
    assert prox.history["rounds"][0]["results"] == COMMON["clients"] - 1
    start = initial_model(64, 10, seed=COMMON["seed"])

    def moved(params):
        return math.sqrt(sum(float(np.sum((params[n].astype(np.float64) - start[n]) ** 2)) for n in start))

    assert 0 < moved(prox.parameters) < 0.9 * moved(plain.parameters)
