"""Federated training on one machine with Flower's simulation engine (on Ray).

:func:`simulate` splits one labelled data set among ``clients`` virtual
clients (:mod:`webml.federated.partition`), runs ``rounds`` rounds of
Flower's ``ServerApp``/``ClientApp`` through ``flwr.simulation.run_simulation``
(each client a :class:`~webml.federated.client.FederatedClient` on its own
partition, in Ray actors) and returns the history and the final global
model.  Options:

* ``strategy``: ``fedavg`` (default), ``fedprox`` (``proximal_mu``) or
  ``fedadam`` (``server_learning_rate``), Flower's own;
* ``secagg=True``: Flower's SecAgg+ (``secaggplus_mod`` on the clients,
  ``SecAggPlusWorkflow`` on the server) — the server only ever sees the sum
  of the masked, quantized updates; ``secagg_clip`` is the range
  ``[-c, c]`` parameters are quantized in, with ``secagg_bits`` bits;
* ``dp_noise=σ``: client-side differential privacy (Flower's
  ``fixedclipping_mod`` clips each update to ``dp_clip``, the server adds
  Gaussian noise); the history's ``privacy`` entry gives (ε, δ) from
  :func:`webml.federated.privacy.privacy_budget`;
* ``dropouts={round: [client, ...]}``: those clients train and then fail in
  that round; the round goes on with the others and the history records the
  failure.

A test set, when given, is evaluated centrally after every round (the
accuracy of the progress lines); it is the simulation's stand-in for data
the server would never have in a real federation.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from .client import FederatedClient, head_metrics
from .model import from_arrays, initial_model
from .partition import Split, parse_split, partition
from .privacy import privacy_budget
from .server import STRATEGIES, RecordingStrategy, fit_config, flower_logs, make_strategy

__all__ = ["SimulationResult", "simulate"]


@dataclass
class SimulationResult:
    """What :func:`simulate` returns: the history (JSON-ready) and the final global head."""

    history: dict[str, Any]
    parameters: dict[str, np.ndarray]


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"simulate: {name} must be a positive integer, got {value!r}")
    return int(value)


def _check_xy(x: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.dtype != np.float32 or not len(x):
        raise ValueError(
            f"simulate: {where} features must be a non-empty float32 array [N, dim], got {x.dtype} {x.shape}"
        )
    if y.shape != (len(x),) or y.dtype.kind not in "iu" or (len(y) and y.min() < 0):
        raise ValueError(f"simulate: {where} labels must be {len(x)} class indices >= 0, got {y.dtype} {y.shape}")
    return x, y.astype(np.int64)


def simulate(
    x: Any,
    y: Any,
    *,
    clients: int,
    rounds: int,
    classes: int | None = None,
    split: str | Split = "iid",
    strategy: str = "fedavg",
    local_epochs: int = 1,
    batch_size: int = 8,
    learning_rate: float = 0.1,
    hidden: int = 0,
    test: tuple[Any, Any] | None = None,
    fraction_fit: float = 1.0,
    proximal_mu: float = 0.01,
    server_learning_rate: float = 0.1,
    secagg: bool = False,
    secagg_clip: float = 8.0,
    secagg_bits: int = 22,
    dp_noise: float | None = None,
    dp_clip: float = 1.0,
    dp_delta: float = 1e-5,
    dropouts: Mapping[int, Sequence[int]] | None = None,
    seed: int = 0,
    backend: str | None = None,
    num_cpus: int | None = None,
    progress: IO[str] | None = None,
    verbose: bool = False,
) -> SimulationResult:
    """Run a federated simulation of ``clients`` clients on ``(x, y)`` split by ``split``; see the module."""
    x, y = _check_xy(x, y, "training")
    clients = _positive(clients, "clients")
    rounds = _positive(rounds, "rounds")
    classes = int(y.max()) + 1 if classes is None else _positive(classes, "classes")
    if classes < 2 or y.max() >= classes:
        raise ValueError(f"simulate: labels must be in [0, classes) with classes >= 2, got classes={classes}")
    split = parse_split(split) if isinstance(split, str) else split
    if strategy not in STRATEGIES:
        raise ValueError(f"simulate: strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if test is not None:
        test = _check_xy(*test, "test")
        if test[0].shape[1] != x.shape[1] or test[1].max() >= classes:
            raise ValueError("simulate: the test set must have the training features' width and its classes")
    if secagg and dp_noise is not None:
        raise ValueError("simulate: secagg and dp_noise together are not supported (choose one)")
    if secagg and clients < 3:
        raise ValueError(f"simulate: secure aggregation (SecAgg+) needs at least 3 clients, got {clients}")
    if isinstance(secagg_bits, bool) or not isinstance(secagg_bits, int) or not 8 <= secagg_bits <= 30:
        raise ValueError(f"simulate: secagg_bits must be an integer in [8, 30], got {secagg_bits!r}")
    if not (secagg_clip > 0 and math.isfinite(secagg_clip)):
        raise ValueError(f"simulate: secagg_clip must be a positive number, got {secagg_clip!r}")
    drops: dict[int, set[int]] = {}
    if dropouts is not None and not isinstance(dropouts, Mapping):
        raise TypeError(f"simulate: dropouts must be a dict {{round: [client, ...]}}, got {type(dropouts).__name__}")
    for r, ids in (dropouts or {}).items():
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= rounds:
            raise ValueError(f"simulate: dropouts names round {r!r}, rounds are 1..{rounds}")
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
            raise TypeError(f"simulate: dropouts[{r}] must be a list of client numbers, got {ids!r}")
        for c in ids:
            if isinstance(c, bool) or not (isinstance(c, (int, np.integer)) and 0 <= c < clients):
                raise ValueError(f"simulate: dropouts names client {c!r}, clients are 0..{clients - 1}")
            drops.setdefault(int(c), set()).add(int(r))
    parts = partition(y, clients, split, seed=seed)
    initial = initial_model(x.shape[1], classes, hidden, seed)
    dp_budget = None
    if dp_noise is not None:
        dp_budget = privacy_budget(float(dp_noise), rounds, dp_delta, fraction_fit).as_dict()
    config = {
        "clients": clients,
        "rounds": rounds,
        "split": str(split),
        "strategy": strategy,
        "local_epochs": local_epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "fraction_fit": fraction_fit,
        "hidden": hidden,
        "seed": seed,
        "partition_sizes": [len(p) for p in parts],
        "partition_classes": [np.bincount(y[p], minlength=classes).tolist() for p in parts],
        "secagg": {"clipping_range": secagg_clip, "bits": secagg_bits} if secagg else None,
        "dp": {"noise_multiplier": dp_noise, "clipping_norm": dp_clip} if dp_noise is not None else None,
        **({"proximal_mu": proximal_mu} if strategy == "fedprox" else {}),
        **({"server_learning_rate": server_learning_rate} if strategy == "fedadam" else {}),
    }
    evaluate_fn = None
    if test is not None:
        test_x, test_y = test

        def evaluate_fn(server_round: int, arrays: list[np.ndarray], _config: dict) -> tuple[float, dict]:
            from .client import shared_context

            params = from_arrays(arrays, dim=x.shape[1], classes=classes)
            loss, accuracy = head_metrics(shared_context(backend), params, test_x, test_y)
            return loss, {"accuracy": accuracy}

    inner = make_strategy(
        strategy,
        [initial[n] for n in sorted(initial)],
        min_clients=clients,
        on_fit_config=fit_config(
            local_epochs=local_epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed
        ),
        fraction_fit=fraction_fit,
        evaluate_fn=evaluate_fn,
        proximal_mu=proximal_mu,
        server_learning_rate=server_learning_rate,
        dp_noise=dp_noise,
        dp_clip=dp_clip,
    )
    recorder = RecordingStrategy(inner, rounds, progress=progress, config=config)
    _run(
        recorder,
        rounds,
        parts,
        x,
        y,
        classes,
        backend=backend,
        secagg=secagg,
        secagg_clip=secagg_clip,
        secagg_bits=secagg_bits,
        dp=dp_noise is not None,
        drops=drops,
        num_cpus=num_cpus,
        verbose=verbose,
    )
    history = recorder.history()
    history["privacy"] = dp_budget
    if recorder.parameters is None:
        raise RuntimeError("simulate: the simulation ended without a global model")
    return SimulationResult(history, from_arrays(recorder.parameters, dim=x.shape[1], classes=classes))


def _run(
    recorder: RecordingStrategy,
    rounds: int,
    parts: list[np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    classes: int,
    *,
    backend: str | None,
    secagg: bool,
    secagg_clip: float,
    secagg_bits: int,
    dp: bool,
    drops: dict[int, set[int]],
    num_cpus: int | None,
    verbose: bool,
) -> None:
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # no usage reports from Flower
    # Ray's coming default (leave CUDA_VISIBLE_DEVICES alone for CPU-only actors), without its FutureWarning.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    from flwr.app import Context
    from flwr.client import ClientApp
    from flwr.client.mod import fixedclipping_mod, secaggplus_mod
    from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.simulation import run_simulation

    client_data = [(x[p], y[p]) for p in parts]

    def client_fn(context: Context):
        cid = int(context.node_config["partition-id"])
        cx, cy = client_data[cid]
        return FederatedClient(
            cx,
            cy,
            classes,
            backend=backend,
            uniform_weight=dp,
            drop_rounds=drops.get(cid, ()),
            value_bound=secagg_clip if secagg else None,
        ).to_client()

    mods = [secaggplus_mod] if secagg else [fixedclipping_mod] if dp else []
    client_app = ClientApp(client_fn=client_fn, mods=mods)
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds), strategy=recorder)
        if secagg:
            fit_workflow = SecAggPlusWorkflow(
                num_shares=len(parts),
                reconstruction_threshold=max(2, math.ceil(0.6 * len(parts))),
                clipping_range=secagg_clip,
                quantization_range=2**secagg_bits,
                # The weights are example counts; max_weight bounds them (a larger one costs precision).
                max_weight=float(max(len(p) for p in parts)),
            )
            DefaultWorkflow(fit_workflow=fit_workflow)(grid, legacy)
        else:
            DefaultWorkflow()(grid, legacy)

    cpus = num_cpus or os.cpu_count() or 1
    backend_config = {
        # address "local": always a Ray of our own, never a cluster that happens to run on this machine.
        "init_args": {
            "address": "local",
            "num_cpus": cpus,
            "logging_level": "error" if not verbose else "info",
            "log_to_driver": verbose,
        },
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    }
    # Ctrl-C does not reach Flower's engine loop as an exception; ask the strategy to stop instead
    # (later rounds select no clients), then stop with KeyboardInterrupt once Ray is shut down.
    previous = None
    if threading.current_thread() is threading.main_thread():

        def stop(_signum: int, _frame: Any) -> None:
            recorder.stop_requested = True

        previous = signal.signal(signal.SIGINT, stop)
    try:
        # Failures are in webml's own progress lines; Flower's lines only with verbose.
        with flower_logs(verbose, logging.CRITICAL):
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=len(parts),
                backend_config=backend_config,
            )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if recorder.stop_requested:
        raise KeyboardInterrupt
