"""A Flower client whose local training is webml's :class:`~webml.train.Trainer`.

:class:`FederatedClient` is a Flower ``NumPyClient`` holding one device's
data (features ``x`` and class indices ``y``), which never leave it: ``fit``
starts a Trainer from the global head the server sent, trains it locally
with SGD for the epochs the server's config asks and returns only the new
parameters; ``evaluate`` reports the accuracy of a global head on the
client's held-out (or, without one, training) data.

The server's fit config carries ``local_epochs``, ``batch_size``,
``learning_rate``, ``seed`` and ``round`` (see
:func:`webml.federated.server.fit_config`), and FedProx adds
``proximal_mu``: the client then minimises the local loss plus
``mu/2 ||w - w_global||^2`` through :class:`Proximal`, which adds
``mu (w - w_global)`` to every gradient (Li et al., "Federated Optimization
in Heterogeneous Networks", 2020) — Flower's FedProx strategy only sends
``mu``, the term itself is the client's to apply.

>>> import numpy as np
>>> from webml.federated.client import FederatedClient
>>> from webml.federated.model import initial_model, to_arrays
>>> x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
>>> y = (x[:, 0] > 0).astype(np.int64)
>>> client = FederatedClient(x, y, classes=2)
>>> config = {"local_epochs": 5, "batch_size": 8, "learning_rate": 0.5, "seed": 0, "round": 1}
>>> arrays, count, metrics = client.fit(to_arrays(initial_model(4, 2)), config)
>>> count, sorted(metrics)
(32, ['loss'])
>>> client.evaluate(arrays, {})[2]["accuracy"] > 0.9
True
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
from flwr.client import NumPyClient

from ..api.builder import MLGraphBuilder
from ..api.context import MLContext
from ..api.operand import MLOperand
from ..train.optimizers import SGD, Optimizer
from ..train.trainer import Trainer
from ..train.transfer import head_forward
from .model import from_arrays, initial_model, to_arrays

__all__ = ["ClientDropout", "FederatedClient", "Proximal"]

#: One context per backend and process: a simulation creates a client per message.
_CONTEXTS: dict[str | None, MLContext] = {}


def shared_context(backend: str | None) -> MLContext:
    """The process's one context of ``backend`` (made on first use)."""
    if backend not in _CONTEXTS:
        import webml
        from webml.backends import own_engine_options

        # No startup fallback: a client made for a round computes what a reused one computes, bit for bit.
        _CONTEXTS[backend] = webml.ml.create_context(backend=backend, **own_engine_options(backend))
    return _CONTEXTS[backend]


class ClientDropout(RuntimeError):
    """Raised by a client told to drop out of a round (simulating a device that goes away mid-round)."""


class Proximal(Optimizer):
    """FedProx's proximal term around another optimizer: the gradient gains ``mu (param - anchor)``.

    The anchor is each parameter's value when the optimizer state is made
    (the Trainer makes it from the parameters it starts with, here the global
    model of the round) and stays constant through the local steps.
    """

    def __init__(self, inner: Optimizer, mu: float) -> None:
        if not isinstance(inner, Optimizer):
            raise TypeError(f"Proximal: inner must be a webml.train Optimizer, got {inner!r}")
        if "anchor" in inner.state_names:
            raise TypeError(f"Proximal: {type(inner).__name__} already has a state named 'anchor'")
        if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not np.isfinite(mu) or mu < 0:
            raise ValueError(f"Proximal: mu must be a number >= 0, got {mu!r}")
        self.inner = inner
        self.mu = float(mu)
        self.state_names = (*inner.state_names, "anchor")

    def init_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {**self.inner.init_state(param), "anchor": np.array(param, np.float32)}

    def update(
        self, b: MLGraphBuilder, param: MLOperand, grad: MLOperand, state: Mapping[str, MLOperand], step: MLOperand
    ) -> tuple[MLOperand, dict[str, MLOperand]]:
        self._check(param, grad, state)
        pull = b.mul(b.sub(param, state["anchor"]), b.constant(param.data_type, self.mu))
        inner_state = {k: v for k, v in state.items() if k != "anchor"}
        new_param, new_state = self.inner.update(b, param, b.add(grad, pull), inner_state, step)
        return new_param, {**new_state, "anchor": state["anchor"]}


def _config_number(config: Mapping[str, Any], key: str, default: Any, kind: type) -> Any:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"fit config: {key!r} must be a number, got {value!r}")
    if kind is int and float(value) != int(value):
        raise ValueError(f"fit config: {key!r} must be an integer, got {value!r}")
    return kind(value)


class FederatedClient(NumPyClient):
    """One device: its features ``x`` ``[N, dim]`` (float32) and labels ``y`` ``[N]`` in ``[0, classes)``.

    ``validation`` is an optional held-out pair for :meth:`evaluate`.
    ``backend`` names the webml backend (default: webml's default).
    ``uniform_weight`` reports one example instead of ``N`` (the unweighted
    mean that client-level DP accounting assumes).  ``drop_rounds`` lists
    rounds in which the client trains and then fails with
    :class:`ClientDropout` instead of answering (for dropout studies).
    ``value_bound``, when set, refuses to send a parameter larger than it in
    magnitude (SecAgg+ clips values to its range before quantizing, which
    would silently change the model).
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        classes: int,
        *,
        validation: tuple[Any, Any] | None = None,
        backend: str | None = None,
        uniform_weight: bool = False,
        drop_rounds: Collection[int] = (),
        value_bound: float | None = None,
    ) -> None:
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 2:
            raise ValueError(f"FederatedClient: classes must be an integer >= 2, got {classes!r}")
        self.classes = int(classes)
        self.x, self.y = self._check_data(x, y, "FederatedClient")
        self.validation = None if validation is None else self._check_data(*validation, "FederatedClient validation")
        if self.validation is not None and self.validation[0].shape[1] != self.x.shape[1]:
            raise ValueError(
                f"FederatedClient: validation features have {self.validation[0].shape[1]} columns, "
                f"the training features {self.x.shape[1]}"
            )
        self.dim = int(self.x.shape[1])
        self.backend = backend
        self.uniform_weight = bool(uniform_weight)
        self.drop_rounds = frozenset(int(r) for r in drop_rounds)
        self.value_bound = value_bound
        self._trainer: Trainer | None = None
        self._trainer_key: tuple | None = None

    def _check_data(self, x: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        y = np.asarray(y)
        if x.ndim != 2 or x.dtype != np.float32 or len(x) == 0:
            raise ValueError(f"{where}: x must be a non-empty float32 array [N, features], got {x.dtype} {x.shape}")
        if y.shape != (len(x),) or y.dtype.kind not in "iu":
            raise ValueError(f"{where}: y must be {len(x)} integer class indices, got {y.dtype} {y.shape}")
        if y.min() < 0 or y.max() >= self.classes:
            raise ValueError(f"{where}: labels must be in [0, {self.classes}), got {int(y.min())}..{int(y.max())}")
        return np.ascontiguousarray(x), y.astype(np.int64)

    def get_parameters(self, config: Mapping[str, Any]) -> list[np.ndarray]:
        """A fresh head for this client's data (used only when the server has no initial model)."""
        return to_arrays(initial_model(self.dim, self.classes, _config_number(config, "hidden", 0, int)))

    def fit(self, parameters: list[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        """Train the global head on the local data; only the new parameters leave the client."""
        params = from_arrays(parameters, dim=self.dim, classes=self.classes)
        epochs = _config_number(config, "local_epochs", 1, int)
        batch = min(_config_number(config, "batch_size", 8, int), len(self.x))
        learning_rate = _config_number(config, "learning_rate", 0.1, float)
        mu = _config_number(config, "proximal_mu", 0.0, float)
        seed = _config_number(config, "seed", 0, int)
        server_round = _config_number(config, "round", 0, int)
        trainer = self._trainer_for(params, batch, learning_rate, mu)
        history = trainer.fit(self.x, self.y, epochs, seed=seed, progress=False)
        trained = trainer.parameters()
        if server_round in self.drop_rounds:
            raise ClientDropout(f"the client dropped out of round {server_round} after training")
        if self.value_bound is not None:
            largest = max(float(np.max(np.abs(a))) for a in trained.values())
            if largest > self.value_bound:
                raise ValueError(
                    f"a parameter reached {largest:.3g}, outside the secure aggregation's clipping range "
                    f"±{self.value_bound:g}: raise the range or lower the learning rate"
                )
        return to_arrays(trained), 1 if self.uniform_weight else len(self.x), {"loss": float(history["loss"][-1])}

    def _trainer_for(self, params: dict[str, np.ndarray], batch: int, learning_rate: float, mu: float) -> Trainer:
        """A Trainer at the global model with a fresh optimizer: the last one reused when the settings match."""
        key = (batch, learning_rate, mu, tuple((n, a.shape) for n, a in sorted(params.items())))
        if self._trainer is not None and self._trainer_key == key:
            self._trainer.set_parameters(params)
            # The optimizer starts afresh each round; for FedProx its anchor becomes this round's global model.
            self._trainer.reset_optimizer_state()
            return self._trainer
        self.close()
        optimizer: Optimizer = SGD(learning_rate)
        if mu > 0:
            optimizer = Proximal(optimizer, mu)
        self._trainer = Trainer(
            shared_context(self.backend), head_forward, params, optimizer, batch_size=batch, input_shape=[self.dim]
        )
        self._trainer_key = key
        return self._trainer

    def close(self) -> None:
        """Release the local Trainer's graphs and tensors (made again when needed)."""
        if self._trainer is not None:
            self._trainer.close()
            self._trainer = None

    def evaluate(self, parameters: list[np.ndarray], config: Mapping[str, Any]) -> tuple[float, int, dict]:
        """Cross-entropy and accuracy of the global head on the held-out (else the training) data."""
        params = from_arrays(parameters, dim=self.dim, classes=self.classes)
        x, y = self.validation if self.validation is not None else (self.x, self.y)
        loss, accuracy = head_metrics(shared_context(self.backend), params, x, y)
        return loss, len(x), {"accuracy": accuracy}


def head_metrics(
    context: MLContext, params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the head ``params`` on ``(x, y)`` (logits from a WebNN graph)."""
    b = MLGraphBuilder(context)
    xin = b.input("x", {"dataType": "float32", "shape": list(x.shape)})
    consts = {n: b.constant({"dataType": "float32", "shape": list(a.shape)}, a) for n, a in params.items()}
    graph = b.build({"logits": head_forward(b, consts, xin)})
    try:
        logits = context.compute(graph, {"x": x})["logits"].astype(np.float64)
    finally:
        graph.destroy()
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-np.mean(log_probs[np.arange(len(y)), y]))
    return loss, float(np.mean(np.argmax(logits, axis=1) == y))
