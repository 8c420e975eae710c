"""Federated training with Flower: webml's Trainer on each device, Flower's strategies on the server.

* :func:`simulate` — a federation of virtual clients on one machine
  (Flower's simulation engine on Ray), IID or Dirichlet non-IID splits,
  FedAvg / FedProx / FedAdam, SecAgg+ secure aggregation, client-level
  differential privacy with its (ε, δ) budget, simulated dropouts;
* :func:`run_server` / :func:`run_client` — the same over the network
  (Flower's gRPC transport, TLS);
* :class:`FederatedClient` — the Flower client itself: local SGD with
  :class:`webml.train.Trainer` on data that never leaves it.

Importing this package sets ``FLWR_TELEMETRY_ENABLED=0`` (unless the user
set it): Flower reports usage events to its makers by default, and data
(even about usage) stays on the device here.  See ``docs/federated.md``.
"""

import os

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from .client import ClientDropout, FederatedClient, Proximal
from .model import from_arrays, initial_model, to_arrays
from .network import NamedClassesClient, run_client, run_server
from .partition import Split, parse_split, partition
from .privacy import PrivacyBudget, privacy_budget
from .server import STRATEGIES, RecordingStrategy, make_strategy, write_history
from .simulation import SimulationResult, simulate

__all__ = [
    "STRATEGIES",
    "ClientDropout",
    "FederatedClient",
    "NamedClassesClient",
    "PrivacyBudget",
    "Proximal",
    "RecordingStrategy",
    "SimulationResult",
    "Split",
    "from_arrays",
    "initial_model",
    "make_strategy",
    "parse_split",
    "partition",
    "privacy_budget",
    "run_client",
    "run_server",
    "simulate",
    "to_arrays",
    "write_history",
]
