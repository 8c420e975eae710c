"""Federated training over the network with Flower's gRPC deployment: one server, clients on devices.

:func:`run_server` serves ``rounds`` rounds to the clients that connect
(``flwr.server.start_server``); :func:`run_client` connects one device's
data to a server (``flwr.client.start_client``) and returns when the
server is done.  The federation's label set is the server's
(``class_names``): it sends the names with every round, and each client
maps its own class folders onto them, so a client may hold only some of
the classes (the usual non-IID case).  Clients evaluate each round's global
model on a held-out share of their own data; the server records the
weighted mean accuracy.

Transport security is Flower's: the server takes ``certificates``
(CA certificate, server certificate, server private key, PEM bytes) and the
client ``root_certificates`` (the CA's PEM); without them both sides must
say ``insecure=True``.

These are Flower's legacy, still-supported entry points; Flower's newer
deployment (``flower-superlink``, ``flower-supernode`` and ``flwr run`` on a
packaged app) is where its secure-aggregation and DP mods run over the
network — here SecAgg+ and DP are for simulations only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np
from flwr.client import NumPyClient

from .client import FederatedClient
from .model import from_arrays, initial_model
from .server import RecordingStrategy, fit_config, flower_logs, make_strategy

__all__ = ["NamedClassesClient", "run_client", "run_server"]


def _check_names(class_names: Sequence[str], where: str) -> list[str]:
    names = list(class_names)
    if len(names) < 2 or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{where}: class names must be at least two distinct non-empty names, got {names!r}")
    return names


def run_server(
    address: str,
    *,
    rounds: int,
    min_clients: int,
    class_names: Sequence[str],
    dim: int = 1280,
    hidden: int = 0,
    strategy: str = "fedavg",
    local_epochs: int = 1,
    batch_size: int = 8,
    learning_rate: float = 0.1,
    proximal_mu: float = 0.01,
    server_learning_rate: float = 0.1,
    round_timeout: float | None = None,
    certificates: tuple[bytes, bytes, bytes] | None = None,
    insecure: bool = False,
    seed: int = 0,
    progress: IO[str] | None = None,
    verbose: bool = False,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Serve ``rounds`` rounds to at least ``min_clients`` clients; the history and the final global head."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no usage reports from Flower
    from flwr.server import ServerConfig, start_server

    names = _check_names(class_names, "run_server")
    if certificates is None and not insecure:
        raise ValueError("run_server: give certificates (CA, server certificate, server key) or insecure=True")
    if certificates is not None and (insecure or len(certificates) != 3):
        raise ValueError("run_server: certificates are three PEM byte strings (CA, certificate, key), without insecure")
    if round_timeout is not None and not round_timeout > 0:
        raise ValueError(f"run_server: round_timeout must be positive seconds, got {round_timeout}")
    initial = initial_model(dim, len(names), hidden, seed)
    base_config = fit_config(local_epochs=local_epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    classes_json = json.dumps(names)

    def on_fit_config(server_round: int) -> dict[str, Any]:
        return {**base_config(server_round), "classes": classes_json}

    inner = make_strategy(
        strategy,
        [initial[n] for n in sorted(initial)],
        min_clients=min_clients,
        on_fit_config=on_fit_config,
        fraction_evaluate=1.0,
        proximal_mu=proximal_mu,
        server_learning_rate=server_learning_rate,
        # Clients need the class names to evaluate too (a client may join after the first fit round).
        on_evaluate_config=lambda server_round: {"classes": classes_json, "round": server_round},
    )
    config = {
        "address": address,
        "rounds": rounds,
        "min_clients": min_clients,
        "classes": names,
        "strategy": strategy,
        "local_epochs": local_epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hidden": hidden,
        "tls": certificates is not None,
    }
    recorder = RecordingStrategy(inner, rounds, progress=progress, distributed_evaluation=True, config=config)
    with flower_logs(verbose):
        start_server(
            server_address=address,
            config=ServerConfig(num_rounds=rounds, round_timeout=round_timeout),
            strategy=recorder,
            certificates=certificates,
        )
    if recorder.parameters is None:
        raise RuntimeError("run_server: no global model (no round completed)")
    return recorder.history(), from_arrays(recorder.parameters, dim=dim, classes=len(names))


class NamedClassesClient(NumPyClient):
    """A device's features with their class *names*; labels follow the server's list of names.

    ``validation_split`` of the samples (per class, seeded) is held out for
    evaluation.  A class of this client that the server does not know fails
    the round with a message that names it.
    """

    def __init__(
        self,
        features: np.ndarray,
        sample_classes: Sequence[str],
        *,
        validation_split: float = 0.2,
        seed: int = 0,
        backend: str | None = None,
    ) -> None:
        features = np.asarray(features)
        if features.ndim != 2 or features.dtype != np.float32 or len(features) != len(sample_classes):
            raise ValueError(
                f"NamedClassesClient: features must be float32 [N, dim] with one class name per row, "
                f"got {features.dtype} {features.shape} and {len(sample_classes)} names"
            )
        if not 0 <= validation_split < 1:
            raise ValueError(f"NamedClassesClient: validation_split must be in [0, 1), got {validation_split}")
        self.features = features
        self.sample_classes = list(sample_classes)
        self.validation_split = validation_split
        self.seed = seed
        self.backend = backend
        self._clients: dict[str, FederatedClient] = {}

    def _client(self, config: Mapping[str, Any]) -> FederatedClient:
        from ..train.image_folder import stratified_split

        text = config.get("classes")
        if not isinstance(text, str):
            raise ValueError("the server sent no class names (is it a webml federated server?)")
        if text not in self._clients:
            names = _check_names(json.loads(text), "server's classes")
            unknown = sorted(set(self.sample_classes) - set(names))
            if unknown:
                raise ValueError(f"this client's classes {unknown} are not among the server's {names}")
            labels = np.array([names.index(c) for c in self.sample_classes], np.int64)
            train, val = stratified_split(labels, self.validation_split, self.seed)
            validation = (self.features[val], labels[val]) if len(val) else None
            self._clients[text] = FederatedClient(
                self.features[train], labels[train], len(names), validation=validation, backend=self.backend
            )
        return self._clients[text]

    def get_parameters(self, config: Mapping[str, Any]) -> list[np.ndarray]:
        return self._client(config).get_parameters(config)

    def fit(self, parameters: list[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        return self._client(config).fit(parameters, config)

    def evaluate(self, parameters: list[np.ndarray], config: Mapping[str, Any]) -> tuple[float, int, dict]:
        return self._client(config).evaluate(parameters, config)


def run_client(
    client: NumPyClient,
    server: str,
    *,
    root_certificates: bytes | None = None,
    insecure: bool = False,
    connect_timeout: float | None = 60.0,
    verbose: bool = False,
) -> None:
    """Take part in the server's rounds until it is done (gives up after ``connect_timeout`` s unreachable)."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    from flwr.client import start_client

    if root_certificates is None and not insecure:
        raise ValueError("run_client: give root_certificates (the server's CA, PEM) or insecure=True")
    if root_certificates is not None and insecure:
        raise ValueError("run_client: root_certificates and insecure=True contradict each other")
    # One client object for every message: the local split and the label mapping are made once.
    with flower_logs(verbose):
        start_client(
            server_address=server,
            client_fn=lambda _context: client.to_client(),
            root_certificates=root_certificates,
            insecure=insecure,
            max_wait_time=connect_timeout,
        )
