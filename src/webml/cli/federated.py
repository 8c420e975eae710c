"""``webml federated simulate|server|client``: federated training of a classifier head with Flower.

``simulate DATA_DIR`` embeds a folder of class sub-folders with
EfficientNet-Lite0 (the transfer-learning base, through the embedding
cache), holds ``--test-split`` of it out for evaluation, splits the rest
among ``--clients`` virtual clients (``--split iid|dirichlet:ALPHA``) and
runs ``--rounds`` rounds of Flower's simulation engine, one progress line
per round on stderr; ``--secagg`` aggregates with SecAgg+, ``--dp-noise S``
adds client-level differential privacy and prints its (ε, δ).
``server`` and ``client DATA_DIR --server ADDRESS`` run the same over the
network (Flower's gRPC transport; TLS with ``--certificates`` and
``--root-certificates``, or an explicit ``--insecure``).  ``--history``
writes every round as JSON; ``--output MODEL.npz`` saves the global head
as a classifier file that ``webml classify --model`` uses.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from . import CliError
from .common import check_output_file, progress_stream, write_files_atomically

#: The largest certificate or key file read (PEM files are a few kB).
MAX_PEM_BYTES = 1 << 20


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..backends import BACKENDS, DEFAULT_BACKEND
    from . import _global_options

    sub = p.add_subparsers(dest="federated_command", metavar="simulate|server|client")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_text, description=help_text)
        _global_options(sp, argparse.SUPPRESS)  # --quiet/--verbose after the subcommand too
        sp.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS, help="default: %(default)s")
        return sp

    def training(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--rounds", type=int, required=True, help="federated rounds")
        sp.add_argument("--strategy", choices=("fedavg", "fedprox", "fedadam"), default="fedavg")
        sp.add_argument("--local-epochs", type=int, default=1, help="passes over its data per client per round")
        sp.add_argument("--batch-size", type=int, default=8, help="default: %(default)s")
        sp.add_argument("--learning-rate", type=float, default=0.1, help="the clients' SGD step (default: %(default)s)")
        sp.add_argument("--proximal-mu", type=float, default=0.01, help="FedProx's mu (default: %(default)s)")
        sp.add_argument(
            "--server-learning-rate", type=float, default=0.1, help="FedAdam's server step (default: %(default)s)"
        )
        sp.add_argument("--hidden", type=int, default=0, help="width of a hidden ReLU layer (default: 0, none)")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--history", metavar="H.json", help="write every round's record as JSON")
        sp.add_argument("--output", "-o", metavar="MODEL.npz", help="save the global head as a classifier file")

    def embedding(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("data_dir", metavar="DATA_DIR", help="a folder with one sub-folder of images per class")
        sp.add_argument("--cache-dir", metavar="DIR", help="embedding cache folder (default: webml's)")
        sp.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache on disk")

    sp = command("simulate", "simulate a federation of clients on one machine (Flower's simulation engine)")
    embedding(sp)
    sp.add_argument("--clients", type=int, required=True, help="number of simulated clients")
    training(sp)
    sp.add_argument("--split", default="iid", help="iid or dirichlet:ALPHA (non-IID; default: %(default)s)")
    sp.add_argument("--test-split", type=float, default=0.2, help="share held out for evaluation (default: 0.2)")
    sp.add_argument("--secagg", action="store_true", help="secure aggregation (Flower's SecAgg+)")
    sp.add_argument("--secagg-clip", type=float, default=8.0, help="SecAgg+ quantisation range ±C (default: 8)")
    sp.add_argument("--dp-noise", type=float, metavar="SIGMA", help="client-level DP with this noise multiplier")
    sp.add_argument("--dp-clip", type=float, default=1.0, help="DP clipping norm of each update (default: 1)")
    sp.add_argument("--dp-delta", type=float, default=1e-5, help="the delta of the reported (epsilon, delta)")

    sp = command("server", "serve federated rounds to clients over the network (Flower's gRPC server)")
    sp.add_argument("--address", default="0.0.0.0:8080", help="host:port to listen on (default: %(default)s)")
    sp.add_argument("--min-clients", type=int, required=True, help="clients each round waits for")
    sp.add_argument("--classes", required=True, help="the federation's class names, comma-separated")
    sp.add_argument("--dim", type=int, default=1280, help="feature width (default: EfficientNet-Lite0's 1280)")
    sp.add_argument("--round-timeout", type=float, metavar="S", help="a client silent for S seconds counts as failed")
    sp.add_argument("--certificates", nargs=3, metavar=("CA", "CERT", "KEY"), help="TLS: PEM files")
    sp.add_argument("--insecure", action="store_true", help="no TLS (say so explicitly)")
    training(sp)

    sp = command("client", "take part in a federated server's rounds with this device's images")
    embedding(sp)
    sp.add_argument("--server", required=True, metavar="HOST:PORT", help="the server's address")
    sp.add_argument("--root-certificates", metavar="CA.pem", help="TLS: the server's CA certificate")
    sp.add_argument("--insecure", action="store_true", help="no TLS (say so explicitly)")
    sp.add_argument("--validation-split", type=float, default=0.2, help="share held out to evaluate (default: 0.2)")
    sp.add_argument("--connect-timeout", type=float, default=60.0, help="give up after S seconds unreachable")
    sp.add_argument("--seed", type=int, default=0)


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value < 1:
            raise CliError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def _positive_number(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise CliError(f"--{name.replace('_', '-')} must be a positive number, got {value}")


def _check_training(args: argparse.Namespace) -> None:
    _positive(args, "rounds", "local_epochs", "batch_size")
    _positive_number(args, "learning_rate", "proximal_mu", "server_learning_rate")
    if args.hidden < 0:
        raise CliError(f"--hidden must be 0 (no hidden layer) or more, got {args.hidden}")
    if args.history:
        check_output_file(args.history, "--history", ".json")
    if args.output:
        check_output_file(args.output, "--output", ".npz")


def _read_pem(path: str, option: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"{option} {path!r}: no such file")
    if p.stat().st_size > MAX_PEM_BYTES:
        raise CliError(f"{option} {path!r}: larger than {MAX_PEM_BYTES} bytes, not a PEM certificate or key")
    data = p.read_bytes()
    if b"-----BEGIN " not in data:
        raise CliError(f"{option} {path!r}: not a PEM file (no -----BEGIN line)")
    return data


def _features(args: argparse.Namespace, context: Any) -> tuple[Any, Any, Any]:
    """The folder, its EfficientNet-Lite0 embeddings and the base (through the embedding cache)."""
    from ..train.embeddings import EfficientNetLite0Features, EmbeddingCache, compute_embeddings, default_cache_dir
    from ..train.image_folder import DatasetError, load_image_folder

    try:
        folder = load_image_folder(args.data_dir)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    base = EfficientNetLite0Features(context)
    cache = EmbeddingCache(None if args.no_cache else (args.cache_dir or default_cache_dir()))
    emb = compute_embeddings(base, folder.paths, cache=cache, progress=progress_stream(args) or False)
    return folder, emb.features, base


def _write_outputs(args: argparse.Namespace, history: dict[str, Any], params: Any, names: list[str], base: Any) -> None:
    from ..federated.server import write_history
    from ..train.transfer import TransferClassifier

    writes: dict[Path, Any] = {}
    if args.history:
        writes[Path(args.history)] = lambda path: write_history(history, path)
    if args.output:
        metadata = {"training": {"federated": history["config"], "final_accuracy": history["final_accuracy"]}}
        classifier = TransferClassifier(names, params, base.name, dict(base.spec), metadata)
        writes[Path(args.output)] = classifier.save
    write_files_atomically(writes)


def _summary(history: dict[str, Any], args: argparse.Namespace) -> None:
    accuracy = history["final_accuracy"]
    text = "-" if accuracy is None else f"{accuracy:.2%}"
    rounds = history["rounds"]
    print(
        f"final accuracy: {text} after {len(rounds)} rounds, {history['failures']} client failure(s), "
        f"{history['time']:.1f} s"
    )
    privacy = history.get("privacy")
    if privacy:
        print(
            f"privacy: ({privacy['epsilon']:.3g}, {privacy['delta']:.3g})-DP at the client level "
            f"(mu = {privacy['mu']:.3g} Gaussian DP, noise multiplier {privacy['noise_multiplier']:g}, "
            f"{privacy['rounds']} rounds)"
        )
    for option in ("history", "output"):
        if getattr(args, option):
            print(f"{option}: {getattr(args, option)}")


def main(args: argparse.Namespace) -> int:
    command = getattr(args, "federated_command", None)
    if command is None:
        raise CliError("name a subcommand: webml federated simulate|server|client (see webml federated --help)")
    import importlib.util

    if importlib.util.find_spec("flwr") is None:
        raise CliError("webml federated needs Flower: install the 'federated' extra (pip install 'webml[federated]')")
    return {"simulate": _simulate, "server": _server, "client": _client}[command](args)


def _simulate(args: argparse.Namespace) -> int:
    import webml
    from webml.federated.partition import parse_split
    from webml.train.image_folder import stratified_split

    _positive(args, "clients")
    _check_training(args)
    try:
        split = parse_split(args.split)
    except ValueError as exc:
        raise CliError(f"--split {args.split!r}: {exc}") from None
    if not 0 < args.test_split < 1:
        raise CliError(f"--test-split must be in (0, 1), got {args.test_split}")
    if args.secagg and args.dp_noise is not None:
        raise CliError("--secagg and --dp-noise together are not supported: choose one")
    if args.secagg and args.clients < 3:
        raise CliError(f"--secagg needs at least 3 clients, got {args.clients}")
    if args.dp_noise is not None and not (math.isfinite(args.dp_noise) and args.dp_noise >= 0):
        raise CliError(f"--dp-noise must be a number >= 0, got {args.dp_noise}")
    _positive_number(args, "dp_clip", "secagg_clip")
    if not 0 < args.dp_delta < 1:
        raise CliError(f"--dp-delta must be in (0, 1), got {args.dp_delta}")
    from webml.federated.simulation import simulate

    context = webml.ml.create_context(backend=args.backend)
    folder, features, base = _features(args, context)
    train, test = stratified_split(folder.labels, args.test_split, args.seed)
    if len(train) < args.clients:
        raise CliError(f"--clients {args.clients}: only {len(train)} training images to share among them")
    labels = folder.labels.astype("int64")
    stream = progress_stream(args)
    if stream:
        stream.write(
            f"simulating {args.clients} clients ({split}) on {len(train)} images, evaluating on {len(test)} "
            f"({len(folder.class_names)} classes), {args.rounds} rounds of {args.strategy}"
            + (", SecAgg+" if args.secagg else "")
            + (f", DP noise {args.dp_noise:g}" if args.dp_noise is not None else "")
            + "\n"
        )
    start = time.perf_counter()
    result = simulate(
        features[train],
        labels[train],
        clients=args.clients,
        rounds=args.rounds,
        classes=len(folder.class_names),
        split=split,
        strategy=args.strategy,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        hidden=args.hidden,
        test=(features[test], labels[test]),
        proximal_mu=args.proximal_mu,
        server_learning_rate=args.server_learning_rate,
        secagg=args.secagg,
        secagg_clip=args.secagg_clip,
        dp_noise=args.dp_noise,
        dp_clip=args.dp_clip,
        dp_delta=args.dp_delta,
        seed=args.seed,
        backend=args.backend,
        progress=stream,
        verbose=bool(args.verbose),
    )
    result.history["config"]["data_dir"] = str(args.data_dir)
    result.history["config"]["class_names"] = list(folder.class_names)
    result.history["time"] = time.perf_counter() - start
    _write_outputs(args, result.history, result.parameters, list(folder.class_names), base)
    _summary(result.history, args)
    return 0


def _server(args: argparse.Namespace) -> int:
    import webml
    from webml.federated.network import run_server
    from webml.train.embeddings import EfficientNetLite0Features

    _positive(args, "min_clients", "dim")
    _check_training(args)
    _positive_number(args, "round_timeout")
    names = [n.strip() for n in args.classes.split(",")]
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise CliError(f"--classes must name at least two distinct classes, comma-separated, got {args.classes!r}")
    if bool(args.certificates) == bool(args.insecure):
        raise CliError("give --certificates CA CERT KEY for TLS, or --insecure for none (one of the two)")
    certificates = None
    if args.certificates:
        ca, cert, key = (_read_pem(p, "--certificates") for p in args.certificates)
        certificates = (ca, cert, key)
    stream = progress_stream(args)
    if stream:
        stream.write(
            f"serving {args.rounds} rounds of {args.strategy} on {args.address} "
            f"({'TLS' if certificates else 'insecure'}), waiting for {args.min_clients} clients\n"
        )
        stream.flush()
    history, params = run_server(
        args.address,
        rounds=args.rounds,
        min_clients=args.min_clients,
        class_names=names,
        dim=args.dim,
        hidden=args.hidden,
        strategy=args.strategy,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        proximal_mu=args.proximal_mu,
        server_learning_rate=args.server_learning_rate,
        round_timeout=args.round_timeout,
        certificates=certificates,
        insecure=args.insecure,
        seed=args.seed,
        progress=stream,
        verbose=bool(args.verbose),
    )
    base = EfficientNetLite0Features(webml.ml.create_context(backend=args.backend))
    _write_outputs(args, history, params, names, base)
    _summary(history, args)
    return 0


def _client(args: argparse.Namespace) -> int:
    import webml
    from webml.federated.network import NamedClassesClient, run_client

    if bool(args.root_certificates) == bool(args.insecure):
        raise CliError("give --root-certificates CA.pem for TLS, or --insecure for none (one of the two)")
    if not 0 <= args.validation_split < 1:
        raise CliError(f"--validation-split must be in [0, 1), got {args.validation_split}")
    _positive_number(args, "connect_timeout")
    root = _read_pem(args.root_certificates, "--root-certificates") if args.root_certificates else None
    context = webml.ml.create_context(backend=args.backend)
    folder, features, _ = _features(args, context)
    client = NamedClassesClient(
        features,
        [folder.class_names[i] for i in folder.labels],
        validation_split=args.validation_split,
        seed=args.seed,
        backend=args.backend,
    )
    stream = progress_stream(args)
    if stream:
        stream.write(f"joining {args.server} with {len(features)} images ({', '.join(folder.class_names)})\n")
        stream.flush()
    start = time.perf_counter()
    run_client(
        client,
        args.server,
        root_certificates=root,
        insecure=args.insecure,
        connect_timeout=args.connect_timeout,
        verbose=bool(args.verbose),
    )
    print(f"the server finished; this client took part for {time.perf_counter() - start:.1f} s")
    return 0
