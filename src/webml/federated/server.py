"""The server side: Flower's strategies (FedAvg, FedProx, FedAdam), and a history of every round.

:func:`make_strategy` builds one of Flower's own strategies with the
federation's settings: the initial model, how many clients a round needs,
the local-training config sent to clients (:func:`fit_config`), and, for
simulations, a central evaluation on held-out data.  With client-side
differential privacy it is wrapped in Flower's
``DifferentialPrivacyClientSideFixedClipping``.

:class:`RecordingStrategy` wraps any strategy without changing what it does
and records each round — clients asked, results, failures (a client that
fails or drops out does not stop the round: Flower's strategies accept
failures and aggregate the results that came), mean local loss, accuracy —
and writes one progress line per round.  Its :meth:`RecordingStrategy.history`
is what ``--history`` saves as JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

import numpy as np
from flwr.common import FitIns, Parameters, Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping, FedAdam, FedAvg, FedProx, Strategy

__all__ = [
    "HISTORY_FORMAT",
    "STRATEGIES",
    "RecordingStrategy",
    "UpdateRefused",
    "fit_config",
    "flower_logs",
    "make_strategy",
    "write_history",
]

#: Strategy names accepted by :func:`make_strategy` (Flower's FedAvg, FedProx, FedAdam).
STRATEGIES = ("fedavg", "fedprox", "fedadam")
#: The ``format`` entry of a history file.
HISTORY_FORMAT = "webml.federated.history"

EvaluateFn = Callable[[int, list[np.ndarray], dict[str, Scalar]], "tuple[float, dict[str, Scalar]] | None"]


@contextlib.contextmanager
def flower_logs(verbose: bool, quiet_level: int = logging.ERROR) -> Iterator[None]:
    """Flower's own log lines at ``quiet_level`` and above only, unless ``verbose``; as before afterwards."""
    logger = logging.getLogger("flwr")
    level = logger.level
    if not verbose:
        logger.setLevel(quiet_level)
    try:
        yield
    finally:
        logger.setLevel(level)


def fit_config(
    *, local_epochs: int, batch_size: int, learning_rate: float, seed: int
) -> Callable[[int], dict[str, Scalar]]:
    """The ``on_fit_config_fn`` of the strategies: the local-training settings, the round and a per-round seed."""
    for name, value in (("local_epochs", local_epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")

    def config(server_round: int) -> dict[str, Scalar]:
        return {
            "local_epochs": local_epochs,
            "batch_size": batch_size,
            "learning_rate": float(learning_rate),
            "seed": int(seed) * 100_003 + server_round,
            "round": server_round,
        }

    return config


def _weighted_accuracy(metrics: list[tuple[int, dict[str, Scalar]]]) -> dict[str, Scalar]:
    total = sum(n for n, _ in metrics)
    if not total:
        return {}
    return {"accuracy": sum(n * float(m.get("accuracy", 0.0)) for n, m in metrics) / total}


def _weighted_loss(metrics: list[tuple[int, dict[str, Scalar]]]) -> dict[str, Scalar]:
    total = sum(n for n, _ in metrics)
    return {"loss": sum(n * float(m["loss"]) for n, m in metrics) / total} if total else {}


def make_strategy(
    name: str,
    initial: list[np.ndarray],
    *,
    min_clients: int,
    on_fit_config: Callable[[int], dict[str, Scalar]],
    fraction_fit: float = 1.0,
    evaluate_fn: EvaluateFn | None = None,
    fraction_evaluate: float = 0.0,
    proximal_mu: float = 0.01,
    server_learning_rate: float = 0.1,
    dp_noise: float | None = None,
    dp_clip: float = 1.0,
    on_evaluate_config: Callable[[int], dict[str, Scalar]] | None = None,
) -> Strategy:
    """One of Flower's strategies (``fedavg``, ``fedprox``, ``fedadam``), optionally with client-side DP."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if isinstance(min_clients, bool) or not isinstance(min_clients, int) or min_clients < 1:
        raise ValueError(f"min_clients must be a positive integer, got {min_clients!r}")
    if not 0 < fraction_fit <= 1:
        raise ValueError(f"fraction_fit must be in (0, 1], got {fraction_fit}")
    common: dict[str, Any] = {
        "fraction_fit": fraction_fit,
        "fraction_evaluate": fraction_evaluate,
        "min_fit_clients": max(1, math.ceil(min_clients * fraction_fit)),
        "min_evaluate_clients": max(1, math.ceil(min_clients * fraction_evaluate)) if fraction_evaluate else 1,
        "min_available_clients": min_clients,
        "evaluate_fn": evaluate_fn,
        "on_fit_config_fn": on_fit_config,
        "on_evaluate_config_fn": on_evaluate_config,
        "accept_failures": True,
        "initial_parameters": ndarrays_to_parameters(initial),
        "fit_metrics_aggregation_fn": _weighted_loss,
        "evaluate_metrics_aggregation_fn": _weighted_accuracy,
    }
    strategy: Strategy
    if name == "fedavg":
        strategy = FedAvg(**common)
    elif name == "fedprox":
        if not proximal_mu > 0:
            raise ValueError(f"proximal_mu must be positive for fedprox, got {proximal_mu}")
        strategy = FedProx(**common, proximal_mu=float(proximal_mu))
    else:
        if not server_learning_rate > 0:
            raise ValueError(f"server_learning_rate must be positive for fedadam, got {server_learning_rate}")
        strategy = FedAdam(**common, eta=float(server_learning_rate))
    if dp_noise is not None:
        if not (dp_noise >= 0 and math.isfinite(dp_noise)):
            raise ValueError(f"dp_noise (the noise multiplier) must be a number >= 0, got {dp_noise}")
        if not (dp_clip > 0 and math.isfinite(dp_clip)):
            raise ValueError(f"dp_clip (the clipping norm) must be positive, got {dp_clip}")
        sampled = max(1, round(min_clients * fraction_fit))
        strategy = DifferentialPrivacyClientSideFixedClipping(strategy, float(dp_noise), float(dp_clip), sampled)
    return strategy


class RecordingStrategy(Strategy):
    """``inner`` unchanged, with a record of every round and a progress line per round on ``progress``.

    ``rounds`` is the number of rounds (for the progress lines);
    ``distributed_evaluation`` says whether clients evaluate after each
    round (the line then waits for their accuracy).
    """

    def __init__(
        self,
        inner: Strategy,
        rounds: int,
        *,
        progress: IO[str] | None = None,
        distributed_evaluation: bool = False,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.inner = inner
        self.rounds_total = rounds
        self.progress = progress
        self.distributed_evaluation = distributed_evaluation
        self.config = dict(config or {})
        self.records: dict[int, dict[str, Any]] = {}
        self.initial: dict[str, Any] = {}
        self.parameters: list[np.ndarray] | None = None
        self._started = time.perf_counter()
        self._round_start: dict[int, float] = {}
        #: Set (e.g. on Ctrl-C) to stop: later rounds select no clients, so the run ends promptly.
        self.stop_requested = False

    def __repr__(self) -> str:
        return f"RecordingStrategy({self.inner!r})"

    def _record(self, server_round: int) -> dict[str, Any]:
        return self.records.setdefault(server_round, {"round": server_round})

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        params = self.inner.initialize_parameters(client_manager)
        if params is not None:
            self.parameters = parameters_to_ndarrays(params)
        return params

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        if self.stop_requested:
            return []
        self._round_start[server_round] = time.perf_counter()
        instructions = self.inner.configure_fit(server_round, parameters, client_manager)
        self._record(server_round)["clients"] = len(instructions)
        return instructions

    def aggregate_fit(self, server_round, results, failures):
        # A client is a stranger: parameters that are not the model's (count, shapes, finite floats) are a
        # failure of that client, never an exception in the server's aggregation.
        kept, failures = [], list(failures)
        for proxy, res in results:
            problem = self._check_update(res)
            if problem is None:
                kept.append((proxy, res))
            else:
                failures.append(UpdateRefused(f"client update refused: {problem}"))
        results = kept
        aggregated, metrics = self.inner.aggregate_fit(server_round, results, failures)
        record = self._record(server_round)
        record["results"] = len(results)
        # SecAgg+ reports a client that drops out once per protocol stage it misses: count clients.
        asked = record.get("clients")
        record["failures"] = len(failures) if asked is None else min(len(failures), max(asked - len(results), 0))
        record["failure_reasons"] = sorted({_failure_reason(f) for f in failures})
        record["aggregated"] = aggregated is not None
        if "loss" in metrics:
            record["train_loss"] = float(metrics["loss"])
        if aggregated is not None:
            self.parameters = parameters_to_ndarrays(aggregated)
        return aggregated, metrics

    def _check_update(self, res: Any) -> str | None:
        if self.parameters is None:
            return None
        try:
            arrays = parameters_to_ndarrays(res.parameters)
        except Exception as exc:  # whatever the bytes were, the update is refused
            return f"unreadable parameters ({type(exc).__name__})"
        if len(arrays) != len(self.parameters):
            return f"{len(arrays)} arrays, the model has {len(self.parameters)}"
        for i, (a, ref) in enumerate(zip(arrays, self.parameters)):
            if a.shape != ref.shape or a.dtype.kind != "f":
                return f"array {i} is {a.dtype} {list(a.shape)}, the model's is {ref.dtype} {list(ref.shape)}"
            if not np.all(np.isfinite(a)):
                return f"array {i} has non-finite values"
        if isinstance(res.num_examples, bool) or not isinstance(res.num_examples, int) or res.num_examples < 1:
            return f"num_examples must be a positive integer, got {res.num_examples!r}"
        return None

    def configure_evaluate(self, server_round, parameters, client_manager):
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round, results, failures):
        loss, metrics = self.inner.aggregate_evaluate(server_round, results, failures)
        record = self._record(server_round)
        if loss is not None:
            record["client_loss"] = float(loss)
        if "accuracy" in metrics:
            record["client_accuracy"] = float(metrics["accuracy"])
        record["evaluate_failures"] = len(failures)
        if self.distributed_evaluation:
            self._finish(server_round)
        return loss, metrics

    def evaluate(self, server_round: int, parameters: Parameters):
        if server_round > 0 and server_round not in self._round_start:
            return None  # stopped before this round
        result = self.inner.evaluate(server_round, parameters)
        target = self.initial if server_round == 0 else self._record(server_round)
        if result is not None:
            target["loss"] = float(result[0])
            if "accuracy" in result[1]:
                target["accuracy"] = float(result[1]["accuracy"])
        if server_round > 0 and not self.distributed_evaluation:
            self._finish(server_round)
        return result

    def _finish(self, server_round: int) -> None:
        if server_round not in self._round_start:  # a round that did not run (after a stop)
            self.records.pop(server_round, None)
            return
        record = self._record(server_round)
        record["time"] = time.perf_counter() - self._round_start.get(server_round, self._started)
        if self.progress is None:
            return
        parts = [f"round {server_round}/{self.rounds_total}"]
        parts.append(f"{record.get('results', 0)}/{record.get('clients', 0)} clients")
        if record.get("failures"):
            reasons = "; ".join(sorted(set(record.get("failure_reasons", []))))
            parts.append(f"{record['failures']} failed ({reasons})" if reasons else f"{record['failures']} failed")
        if "train_loss" in record:
            parts.append(f"local loss {record['train_loss']:.4f}")
        for key, label in (("accuracy", "accuracy"), ("client_accuracy", "client accuracy")):
            if key in record:
                parts.append(f"{label} {record[key]:.2%}")
        parts.append(f"{record['time']:.1f} s")
        self.progress.write("  ".join(parts) + "\n")
        self.progress.flush()

    def history(self) -> dict[str, Any]:
        """The JSON-ready history: the run's config, the initial evaluation and one record per round."""
        rounds = [self.records[r] for r in sorted(self.records)]
        final = next((r["accuracy"] for r in reversed(rounds) if "accuracy" in r), None)
        if final is None:
            final = next((r["client_accuracy"] for r in reversed(rounds) if "client_accuracy" in r), None)
        return {
            "format": HISTORY_FORMAT,
            "version": 1,
            "config": self.config,
            "initial": self.initial,
            "rounds": rounds,
            "failures": sum(r.get("failures", 0) for r in rounds),
            "final_accuracy": final,
            "time": time.perf_counter() - self._started,
        }


class UpdateRefused(ValueError):
    """A client's update that is not the model (wrong arrays, non-finite values): counted as its failure."""


def _failure_reason(failure: Any) -> str:
    if isinstance(failure, UpdateRefused):
        return str(failure)[:300]
    if isinstance(failure, BaseException):
        text = str(failure)
        # Flower wraps a client's exception (in a Ray task error, in simulations) in a message error
        # whose text ends "... Message: <the client's own message>"; keep that.
        found = re.search(r"Message: ([^\n'\"\\]+)", text)
        text = found.group(1) if found else text.strip().splitlines()[0] if text.strip() else type(failure).__name__
        return text.strip()[:300]
    _, res = failure
    return f"status {res.status.code.name}: {res.status.message}"[:300]


def write_history(history: Mapping[str, Any], path: str) -> None:
    """Write ``history`` as indented JSON (non-finite numbers as null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    with open(path, "w", encoding="utf-8") as f:
        json.dump(clean(dict(history)), f, indent=2)
        f.write("\n")
