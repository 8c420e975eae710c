"""The federated pieces that need no Flower run: partitions, the privacy budget, the client's local
training (FedProx's proximal term against a float64 NumPy formula), the wire format and Trainer.set_parameters.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

import webml
from webml.federated.client import FederatedClient, Proximal
from webml.federated.model import from_arrays, initial_model, to_arrays
from webml.federated.partition import parse_split, partition
from webml.federated.privacy import gdp_mu, privacy_budget
from webml.train import SGD, Trainer
from webml.train.transfer import head_forward

# -- partitions ---------------------------------------------------------------------------------------------


def test_iid_and_dirichlet_partitions_cover_every_sample_once():
    labels = np.repeat(np.arange(5), 40)
    iid = partition(labels, 8, "iid", seed=1)
    assert sorted(len(p) for p in iid) == [25] * 8
    for split in ("iid", "dirichlet:0.5", "dirichlet:100"):
        parts = partition(labels, 8, split, seed=1)
        assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(200))
        assert min(len(p) for p in parts) >= 1
    again = partition(labels, 8, "dirichlet:0.5", seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(again, partition(labels, 8, "dirichlet:0.5", seed=1)))
    # A small alpha concentrates classes, a large one approaches IID.
    skew = [np.bincount(labels[p], minlength=5).max() / len(p) for p in partition(labels, 8, "dirichlet:0.1", seed=1)]
    flat = [np.bincount(labels[p], minlength=5).max() / len(p) for p in partition(labels, 8, "dirichlet:100", seed=1)]
    assert np.mean(skew) > 0.7 > 0.35 > np.mean(flat)


@pytest.mark.parametrize(
    "text, message",
    [
        ("dirichlet", "must be 'iid' or 'dirichlet:ALPHA'"),
        ("shards:2", "must be 'iid' or 'dirichlet:ALPHA'"),
        ("dirichlet:0", "positive number, got '0'"),
        ("dirichlet:nan", "positive number, got 'nan'"),
        ("dirichlet:abc", "positive number, got 'abc'"),
    ],
)
def test_bad_split_names_are_refused(text, message):
    with pytest.raises(ValueError, match="split: ") as err:
        parse_split(text)
    assert message in str(err.value)


def test_partition_refuses_impossible_requests():
    with pytest.raises(ValueError, match="3 clients but only 2 samples"):
        partition(np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="clients must be a positive integer"):
        partition(np.array([0, 1]), 0)
    with pytest.raises(ValueError, match="1-D array of class indices"):
        partition(np.array([0.5, 1.0]), 1)


# -- privacy budget ------------------------------------------------------------------------------------------


def hockey_stick_delta(epsilon: float, mu: float) -> float:
    """δ(ε) of distinguishing N(μ, 1) from N(0, 1), by numerical integration of its definition."""
    integrand = lambda t: max(0.0, norm.pdf(t, mu, 1) - math.exp(epsilon) * norm.pdf(t, 0, 1))  # noqa: E731
    return quad(integrand, -12, 12 + mu + epsilon / mu, points=[epsilon / mu + mu / 2], limit=400)[0]


@pytest.mark.parametrize("sigma, rounds, delta", [(1.0, 1, 1e-5), (2.0, 20, 1e-5), (0.8, 5, 1e-3)])
def test_epsilon_matches_the_gaussian_mechanism_by_integration(sigma, rounds, delta):
    budget = privacy_budget(sigma, rounds, delta)
    assert budget.mu == pytest.approx(math.sqrt(rounds) / sigma)
    assert hockey_stick_delta(budget.epsilon, budget.mu) == pytest.approx(delta, rel=1e-4)
    # More noise, fewer rounds or a larger delta: a smaller epsilon.
    assert privacy_budget(sigma * 2, rounds, delta).epsilon < budget.epsilon
    assert privacy_budget(sigma, rounds, delta * 10).epsilon < budget.epsilon


def test_client_sampling_uses_the_clt_formula_and_bad_values_are_refused():
    assert gdp_mu(1.5, 100, 0.1) == pytest.approx(0.1 * math.sqrt(100 * (math.exp(1 / 1.5**2) - 1)))
    assert privacy_budget(0.0, 3, 1e-5).epsilon == math.inf
    for kwargs, message in [
        ({"noise_multiplier": -1.0, "rounds": 1, "delta": 1e-5}, "noise_multiplier must be >= 0"),
        ({"noise_multiplier": 1.0, "rounds": 0, "delta": 1e-5}, "rounds must be a positive integer"),
        ({"noise_multiplier": 1.0, "rounds": 1, "delta": 1.0}, r"delta must be in \(0, 1\)"),
        ({"noise_multiplier": 1.0, "rounds": 1, "delta": 1e-5, "sample_rate": 0.0}, "sample_rate"),
    ]:
        with pytest.raises(ValueError, match=message):
            privacy_budget(**kwargs)


# -- client ----------------------------------------------------------------------------------------------------


def softmax_step(w, b, x, y, lr, mu, w0, b0):
    """One full-batch SGD step of mean softmax cross-entropy plus mu/2 |params - anchor|^2, in float64."""
    logits = x @ w + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    gw, gb = x.T @ p / len(y), p.mean(0)
    return w - lr * (gw + mu * (w - w0)), b - lr * (gb + mu * (b - b0))


@pytest.mark.parametrize("mu", [0.0, 0.5])
def test_local_training_with_the_proximal_term_matches_numpy(mu):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    start = initial_model(5, 3, seed=1)
    start["b"] = rng.normal(size=3).astype(np.float32)
    client = FederatedClient(x, y, classes=3)
    config = {"local_epochs": 3, "batch_size": 16, "learning_rate": 0.7, "seed": 0, "round": 1}
    if mu:
        config["proximal_mu"] = mu
    arrays, count, metrics = client.fit(to_arrays(start), config)
    assert count == 16 and metrics["loss"] > 0
    w, b = start["w"].astype(np.float64), start["b"].astype(np.float64)
    for _ in range(3):  # three epochs of one full batch each
        w, b = softmax_step(w, b, x.astype(np.float64), y, 0.7, mu, start["w"], start["b"])
    got = from_arrays(arrays, dim=5, classes=3)
    np.testing.assert_allclose(got["w"], w, atol=2e-5)
    np.testing.assert_allclose(got["b"], b, atol=2e-5)


def test_a_client_reuses_its_trainer_from_round_to_round_as_if_new():
    """The second round starts from the new global model with a fresh optimizer (and FedProx anchor)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(24, 4)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    config = {"local_epochs": 2, "batch_size": 6, "learning_rate": 0.3, "seed": 1, "round": 1, "proximal_mu": 0.5}
    first = to_arrays(initial_model(4, 3, seed=0))
    second = to_arrays(initial_model(4, 3, seed=9))
    reused = FederatedClient(x, y, 3)
    reused.fit(first, config)
    trainer = reused._trainer
    again = reused.fit(second, {**config, "round": 2})[0]
    assert reused._trainer is trainer  # the same graphs, not rebuilt
    fresh = FederatedClient(x, y, 3).fit(second, {**config, "round": 2})[0]
    for a, b in zip(again, fresh):
        np.testing.assert_array_equal(a, b)
    reused.close()


def test_the_proximal_term_keeps_the_update_near_the_global_model():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = rng.integers(0, 4, 64)
    start = to_arrays(initial_model(6, 4))
    config = {"local_epochs": 4, "batch_size": 8, "learning_rate": 0.5, "seed": 2, "round": 1}
    free = FederatedClient(x, y, 4).fit(start, config)[0]
    held = FederatedClient(x, y, 4).fit(start, {**config, "proximal_mu": 1.0})[0]
    distance = lambda arrays: math.sqrt(sum(float(np.sum((a - s) ** 2)) for a, s in zip(arrays, start)))  # noqa: E731
    assert distance(held) < 0.5 * distance(free)


def test_client_refuses_bad_data_and_bad_parameters():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        FederatedClient(x, np.array([0, 1, 2, 0]), 2)
    with pytest.raises(ValueError, match="x must be a non-empty float32"):
        FederatedClient(x.astype(np.float64), np.zeros(4, int), 2)
    client = FederatedClient(x, np.array([0, 1, 1, 0]), 2)
    with pytest.raises(ValueError, match="expected 2 arrays"):
        client.fit([np.zeros(2, np.float32)], {})
    with pytest.raises(ValueError, match=r"'w' has shape \[4, 2\]"):
        client.fit([np.zeros(2, np.float32), np.zeros((4, 2), np.float32)], {})
    with pytest.raises(ValueError, match="non-finite"):
        client.fit([np.zeros(2, np.float32), np.full((3, 2), np.inf, np.float32)], {})
    with pytest.raises(ValueError, match="'local_epochs' must be an integer"):
        client.fit(to_arrays(initial_model(3, 2)), {"local_epochs": 1.5})
    with pytest.raises(ValueError, match="must be floating point"):
        from_arrays([np.zeros(2, np.int32), np.zeros((3, 2), np.int32)], dim=3, classes=2)
    with pytest.raises(ValueError, match="Proximal: mu must be a number >= 0"):
        Proximal(SGD(0.1), -1.0)
    # Parameters beyond SecAgg+'s clipping range would be silently clipped there: the client refuses.
    bounded = FederatedClient(np.ones((4, 3), np.float32), np.array([0, 1, 1, 0]), 2, value_bound=1e-3)
    big = initial_model(3, 2)
    with pytest.raises(ValueError, match=r"outside the secure aggregation's clipping range ±0.001"):
        bounded.fit(to_arrays(big), {"learning_rate": 0.5})


def test_a_hidden_layer_head_goes_over_the_wire():
    params = initial_model(6, 3, hidden=4)
    arrays = to_arrays(params)
    assert [a.shape for a in arrays] == [(3,), (4,), (4, 3), (6, 4)]
    back = from_arrays(arrays, dim=6, classes=3)
    assert all(np.array_equal(back[n], params[n]) for n in params)


# -- Trainer.set_parameters and reset_optimizer_state ---------------------------------------------------------------


def test_set_parameters_checks_names_shapes_and_values_and_reset_restarts_the_optimizer():
    ctx = webml.ml.create_context()
    trainer = Trainer(ctx, head_forward, initial_model(3, 2), SGD(0.1, momentum=0.9), batch_size=2, input_shape=[3])
    x = np.eye(3, dtype=np.float32)[[0, 1]]
    trainer.train_step(x, np.array([0, 1]))
    assert trainer.steps == 1 and np.any(trainer.optimizer_state()["w"]["velocity"])
    new = {"w": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)}
    trainer.set_parameters(new)
    assert np.array_equal(trainer.parameters()["w"], new["w"])
    trainer.reset_optimizer_state()
    assert trainer.steps == 0 and not np.any(trainer.optimizer_state()["w"]["velocity"])
    with pytest.raises(ValueError, match=r"set_parameters: the given parameters .* missing \['b'\]"):
        trainer.set_parameters({"w": new["w"]})
    with pytest.raises(ValueError, match="unexpected"):
        trainer.set_parameters({**new, "extra": np.zeros(1, np.float32)})
    with pytest.raises(ValueError, match="non-finite"):
        trainer.set_parameters({**new, "b": np.array([np.nan, 0], np.float32)})
    with pytest.raises(TypeError, match="float64"):
        trainer.set_parameters({**new, "b": np.zeros(2)})
    trainer.close()


# -- the server refuses updates that are not the model ------------------------------------------------------------


def test_the_server_refuses_updates_of_the_wrong_shape_or_non_finite_and_aggregates_the_rest():
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

    from webml.federated.server import RecordingStrategy, fit_config, make_strategy

    start = to_arrays(initial_model(3, 2))
    settings = fit_config(local_epochs=1, batch_size=2, learning_rate=0.1, seed=0)
    inner = make_strategy("fedavg", start, min_clients=3, on_fit_config=settings)
    recorder = RecordingStrategy(inner, rounds=1)
    recorder.initialize_parameters(client_manager=None)

    def res(arrays, count=4):
        return FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), count, {"loss": 0.5})

    good = [a + 1 for a in start]
    results = [
        (None, res(good)),
        (None, res([start[0], np.zeros((2, 3), np.float32)])),  # w transposed
        (None, res([start[0], np.full_like(start[1], np.nan)])),
        (None, res(good, count=0)),
    ]
    aggregated, _ = recorder.aggregate_fit(1, results, [])
    for a, b in zip(parameters_to_ndarrays(aggregated), good):
        np.testing.assert_array_equal(a, b)
    record = recorder.records[1]
    assert (record["results"], record["failures"]) == (1, 3)
    reasons = " | ".join(record["failure_reasons"])
    assert "array 1 is float32 [2, 3], the model's is float32 [3, 2]" in reasons
    assert "non-finite" in reasons and "num_examples must be a positive integer, got 0" in reasons
