"""Batch inference on Ray: a model over a folder of images, of ``.npy`` files, or a Parquet dataset.

:func:`run` reads INPUT with Ray Data, runs the model in ``workers`` Ray
actors (``map_batches`` with ``concurrency=workers``), each of which builds
the model's WebNN graph once, and writes the results as Parquet
(``write_parquet``) in OUT, one row per item with the item's identifier::

    import pyarrow.parquet as pq
    import webml.batch

    summary = webml.batch.run("model.onnx", "arrays/", "out/", workers=2)
    print(summary.items, summary.failures[:1])
    # 201 [Failure(id='bad.npy', error="input 'x' has shape [3], the model expects [1, 4]")]
    rows = pq.read_table("out/", columns=["id", "y", "error"]).to_pylist()

(``tests/test_batch.py`` runs these calls; ``docs/batch.md`` has the whole story.)

The model is one of (see :mod:`webml.batch.models`):

* ``None``, ``"-"`` or ``"efficientnet-lite0"``: the built-in pretrained
  EfficientNet-Lite0 on a folder of images (as ``webml classify``);
* an ONNX image classifier on a folder of images (as ``webml classify --model``);
* a classifier trained by ``webml train`` (``.npz``, EfficientNet-Lite0 base) on a folder of images;
* any ONNX model on a folder of ``.npy`` files (a model of one input, as
  ``webml run -i NAME=FILE.npy``) or on Parquet (a column per model input,
  named as the input, plus the ``id_column``).

Output columns: ``id`` (the file's path relative to INPUT, or the id
column's value), ``error`` (null, or why the item failed), the results
(``labels`` and ``probabilities`` of the top-k classes, best first, for an
image classifier; one column per model output, its values flattened, for
an ONNX model: the shape is in the field's ``webml.shape`` metadata), then
``worker`` (host:pid of the worker that made the row) and ``graph_builds``
(how many graphs that worker had built: 1).

With no ``address`` a local Ray is started (``num_cpus`` the machine's,
at least one more than the workers take; no dashboard, no usage statistics) and stopped at
the end; with one, the driver joins that cluster and leaves it running.  If
this process is already connected to Ray (``ray.init`` was called), that
connection is used and left open.  Workers import webml: locally they get the
driver's ``sys.path``; on a cluster, webml must be installed on every node
(``pip install webml[batch]``) and INPUT and OUT must be paths every node sees
(docs/batch.md).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inputs import Items, find_items
from .models import LITE, ModelSpec, describe_onnx
from .worker import META_COLUMNS, BatchWorker, ProgressCounter

__all__ = ["DEFAULT_BATCH_SIZE", "BatchSummary", "Failure", "run"]

#: Items per ``map_batches`` call (and images per compute of EfficientNet-Lite0).
DEFAULT_BATCH_SIZE = 16

#: Seconds between two progress reports.
_PROGRESS_INTERVAL = 0.5


@dataclass(frozen=True)
class Failure:
    """An item that failed: its identifier and why."""

    id: str
    error: str


@dataclass
class BatchSummary:
    """What :func:`run` did: items written, those that failed (with identifiers), seconds, workers."""

    items: int
    failures: list[Failure]
    seconds: float
    out: Path
    #: The backend the workers ran on.
    backend: str = ""
    #: Rows per worker (host:pid).
    workers: dict[str, int] = field(default_factory=dict)
    #: Graphs each worker built (1 each: built in the worker's ``__init__``, never per batch).
    graph_builds: dict[str, int] = field(default_factory=dict)
    #: Files of INPUT that were not read (links out of it, non-regular files), with why.
    skipped: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return self.items - len(self.failures)


def run(
    model: str | os.PathLike[str] | None,
    input: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    address: str | None = None,
    workers: int = 1,
    cpus_per_worker: int = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    backend: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    top_k: int = 5,
    labels: list[str] | None = None,
    normalize: str | None = None,
    free_dimensions: Mapping[str, int] | None = None,
    id_column: str = "id",
    runtime_env: Mapping[str, Any] | None = None,
) -> BatchSummary:
    """Run ``model`` over every item of ``input`` on Ray and write the results in the folder ``out``.

    ``out`` must not exist or be an empty folder.  ``progress(done, total)``
    is called as items complete.  ``top_k``, ``labels`` and ``normalize``
    are for image classifiers (as ``webml classify``); ``free_dimensions``
    fixes an ONNX model's dynamic dimensions by name (a dynamic first
    dimension is set to 1 unless given: items run one at a time);
    ``id_column`` names the Parquet column of identifiers.  Each worker
    takes ``cpus_per_worker`` of Ray's CPUs and runs ONNX Runtime with as
    many threads.  ``runtime_env`` (a Ray runtime environment, e.g.
    ``{"pip": ["webml[batch]"]}``) is passed to ``ray.init`` when joining a
    cluster at ``address``.  Bad arguments
    raise ``ValueError``/``TypeError``/``FileNotFoundError`` naming the
    argument before Ray starts; failed items are in the summary's
    ``failures`` and in the ``error`` column, and do not stop the others.
    """
    _check_count("workers", workers)
    _check_count("cpus_per_worker", cpus_per_worker)
    _check_count("batch_size", batch_size)
    _check_count("top_k", top_k)
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable (done, total) or None, got {type(progress).__name__}")
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ValueError(f"address must be a Ray address such as '10.0.0.1:6379', got {address!r}")
    if not isinstance(id_column, str) or not id_column:
        raise ValueError(f"id_column must be a column name, got {id_column!r}")
    if runtime_env is not None and (address is None or not isinstance(runtime_env, Mapping)):
        raise ValueError(
            "runtime_env must be a dict, given with an address: it is for a cluster's workers "
            "(a local Ray's workers get this process's environment)"
        )
    if labels is not None and (isinstance(labels, str) or not all(isinstance(n, str) for n in labels)):
        raise TypeError("labels must be a list of class names (strings)")
    items = find_items(input)
    out_dir = _check_out(out)
    spec = _model_spec(model, items, backend, top_k, labels, normalize, dict(free_dimensions or {}), id_column)
    if address is not None:
        _check_reachable(address)
    out_dir.mkdir(parents=True, exist_ok=True)  # only once everything was checked
    start = time.perf_counter()
    with _ray(address, workers * cpus_per_worker, dict(runtime_env or {})) as ray:
        import ray.data

        ds = _dataset(ray, items, spec, id_column)
        total = ds.count() if items.kind == "parquet" else len(items.ids)
        counter = ray.remote(num_cpus=0)(ProgressCounter).remote() if progress else None
        mapped = ds.map_batches(
            BatchWorker,
            fn_constructor_kwargs={
                "spec": spec,
                "batch_size": batch_size,
                "id_column": id_column,
                "counter": counter,
                "from_parquet": items.kind == "parquet",
            },
            batch_size=batch_size,
            batch_format="pyarrow",
            concurrency=workers,
            num_cpus=cpus_per_worker,
            # A local run has no node to lose; without restarts Ray also does not warn, per worker,
            # that a restart could not get the constructor's arguments back. A cluster keeps Ray's default.
            **({} if address else {"max_restarts": 0}),
        )
        try:
            _write(ray, mapped, out_dir, counter, total, progress)
        except ray.exceptions.RayError as exc:  # a worker died or could not start: the run stops
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise RuntimeError(
                f"the run on Ray failed ({type(exc).__name__}: {first}); what was written is in {str(out_dir)!r}"
            ) from exc
    seconds = time.perf_counter() - start
    return _summary(out_dir, seconds, items.skipped, spec.backend or "")


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_out(out: str | os.PathLike[str]) -> Path:
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out {str(out)!r} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise ValueError(f"out {str(out)!r} is a folder that is not empty; give a new or empty one")
    return path.resolve()


def _model_spec(
    model: Any,
    items: Items,
    backend: str | None,
    top_k: int,
    labels: list[str] | None,
    normalize: str | None,
    free: dict[str, int],
    id_column: str,
) -> ModelSpec:
    """The model checked against the kind of input, before any Ray work (see the module's notes)."""
    import webml
    from webml.images import NORMALIZATIONS

    from ..backends import BACKENDS, DEFAULT_BACKEND

    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    backend = backend or DEFAULT_BACKEND  # chosen here: every worker runs the one the driver checked
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    if model is None or (isinstance(model, str) and model in ("-", LITE)):
        if items.kind != "images":
            raise ValueError(f"model: EfficientNet-Lite0 classifies images; the input holds {items.kind} files")
        if labels is not None or normalize is not None or free:
            raise ValueError("labels, normalize and free_dimensions go with an ONNX model, not EfficientNet-Lite0")
        from ..zoo import efficientnet_lite as lite

        if not 1 <= top_k <= lite.CLASSES:
            raise ValueError(f"top_k must be from 1 to {lite.CLASSES}, got {top_k}")
        lite.checkpoint_path()  # the weights' package is installed (a clear error if not)
        return ModelSpec("lite", backend=backend, top_k=top_k)
    if not isinstance(model, str | os.PathLike):
        raise TypeError(f"model must be a path to an ONNX file, '-' or {LITE!r}, got {type(model).__name__}")
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model {str(model)!r}: no such file")
    if path.suffix.lower() == ".npz":
        return _head_spec(str(path.resolve()), items, backend, top_k, labels, normalize, free)
    if path.suffix.lower() != ".onnx":
        raise ValueError(
            f"model {str(model)!r}: webml batch runs ONNX models (.onnx), classifiers made by webml train (.npz) "
            f"and {LITE!r}"
        )
    context = webml.ml.create_context(backend=backend)
    model_file = str(path.resolve())
    free = {**_batch_dimensions(model_file), **free}
    inputs, outputs = describe_onnx(model_file, context, free)
    if items.kind == "images":
        return _classifier_spec(model_file, inputs, outputs, backend, top_k, labels, normalize, free)
    if labels is not None or normalize is not None:
        raise ValueError(f"labels and normalize go with images; the input holds {items.kind} files")
    clash = sorted(set(outputs) & set(META_COLUMNS))
    if clash:
        raise ValueError(f"model {str(model)!r} has outputs named {clash}, which are columns webml batch writes")
    if items.kind == "npy" and len(inputs) != 1:
        raise ValueError(
            f"model {str(model)!r} takes {len(inputs)} inputs ({', '.join(inputs)}); a folder of .npy files "
            "feeds one: give Parquet with a column per input instead"
        )
    if items.kind == "parquet":
        missing = [c for c in [id_column, *inputs] if c not in items.columns]
        if missing:
            raise ValueError(
                f"input {str(items.root)!r}: the Parquet data has no column(s) {missing} "
                f"(its columns: {items.columns}; one per model input and the id column {id_column!r})"
            )
    return ModelSpec("onnx", model_file, backend, free_dimensions=free, inputs=inputs, outputs=outputs)


def _head_spec(model_file, items, backend, top_k, labels, normalize, free) -> ModelSpec:
    """A classifier written by ``webml train`` (.npz) on the EfficientNet-Lite0 base."""
    from ..train.transfer import is_classifier_file, load_classifier

    if not is_classifier_file(model_file):
        raise ValueError(f"model {model_file!r} is not a classifier written by webml train")
    if items.kind != "images":
        raise ValueError(f"model {model_file!r} classifies images; the input holds {items.kind} files")
    if labels is not None or normalize is not None or free:
        raise ValueError("labels, normalize and free_dimensions do not go with a webml train classifier")
    classifier = load_classifier(model_file)
    if classifier.base_spec.get("kind") != "efficientnet-lite0":
        raise ValueError(
            f"model {model_file!r} was trained on the base {classifier.base_name!r}; webml batch runs .npz "
            "classifiers of the efficientnet-lite0 base (for others, give the ONNX model of base and head)"
        )
    classes = len(classifier.class_names)
    if not 1 <= top_k <= classes:
        raise ValueError(f"top_k must be from 1 to {classes} (the classifier has {classes} classes), got {top_k}")
    return ModelSpec("head", model_file, backend, top_k=top_k)


def _batch_dimensions(model_file: str) -> dict[str, int]:
    """A dynamic first dimension of each input set to 1 (items run one at a time, as ``webml classify``)."""
    import webml.onnx

    dims = webml.onnx.input_dimensions(webml.onnx.read_model(model_file)).values()
    return {d[0]: 1 for d in dims if d and isinstance(d[0], str)}


def _classifier_spec(model_file, inputs, outputs, backend, top_k, labels, normalize, free) -> ModelSpec:
    """An ONNX image classifier: one image-batch input (NCHW or NHWC, 3 channels), scores first."""
    import numpy as np

    import webml.onnx

    from ..train.export import classifier_metadata

    ((name, (_, shape)),) = inputs.items() if len(inputs) == 1 else ((None, (None, ())),)
    if name is None or len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise ValueError(
            f"model {model_file!r}: an image classifier has one input, an image batch (NCHW or NHWC, 3 channels); "
            f"this model takes {({n: list(s) for n, (_, s) in inputs.items()})}"
        )
    exported = classifier_metadata(webml.onnx.read_model(model_file))
    if exported is not None and normalize is not None:
        raise ValueError(f"normalize does not go with {model_file!r}: webml train wrote its preprocessing in it")
    classes = int(np.prod(next(iter(outputs.values()))[1][1:], dtype=np.int64))
    names = labels if labels is not None else (exported or {}).get("labels")
    if names is not None and len(names) != classes:
        raise ValueError(f"labels: {len(names)} names, the model outputs {classes} classes")
    if not 1 <= top_k <= classes:
        raise ValueError(f"top_k must be from 1 to {classes} (the model has {classes} classes), got {top_k}")
    return ModelSpec(
        "onnx-classifier",
        model_file,
        backend,
        top_k=top_k,
        labels=tuple(labels) if labels is not None else None,
        normalize=normalize,
        free_dimensions=free,
    )


@contextmanager
def _ray(address: str | None, cpus: int, runtime_env: dict[str, Any]) -> Iterator[Any]:
    """Ray, started locally or joined at ``address`` (or the connection this process has), quiet."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage statistics sent anywhere
    # Quiet: a FutureWarning on every start.
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    try:
        import ray
    except ModuleNotFoundError:
        raise ModuleNotFoundError("webml batch runs on Ray, not installed here: pip install 'webml[batch]'") from None

    if ray.is_initialized():
        if address is not None:
            raise ValueError(f"address {address!r}: this process is already connected to Ray (ray.init was called)")
        yield ray
        return
    common = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address is None:
        # Local workers get the driver's sys.path, so a webml found by PYTHONPATH or a checkout works there too.
        path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        ray.init(
            address="local",
            num_cpus=max(os.cpu_count() or 1, cpus + 1),  # one more for Ray Data's read and write tasks
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
            **common,
        )
    else:
        try:
            ray.init(address=address, runtime_env=runtime_env or None, **common)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConnectionError(f"address {address!r}: cannot join the Ray cluster there ({exc})") from None
    try:
        _quiet_ray_data()
        yield ray
    finally:
        ray.shutdown()


#: Seconds to wait for a TCP connection to a cluster's address before saying it cannot be reached.
CONNECT_TIMEOUT = 10.0


def _check_reachable(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) address takes a TCP connection, or ConnectionError.

    ``ray.init`` itself retries an unreachable address for minutes; this says so in seconds.
    Other forms (``auto``) are left to Ray.
    """
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ConnectionError(
            f"address {address!r}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one with `ray start --head` or check the address"
        ) from None


def _quiet_ray_data() -> None:
    """Ray Data's console log and progress bars off (its full log stays in the session's ray-data.log)."""
    import ray.data

    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.ERROR)
    ray.data.DataContext.get_current().enable_progress_bars = False


def _dataset(ray: Any, items: Items, spec: ModelSpec, id_column: str) -> Any:
    _quiet_ray_data()
    if items.kind == "parquet":
        return ray.data.read_parquet([str(f) for f in items.files], columns=[id_column, *spec.inputs])
    rows = [{"id": ident, "path": str(path)} for ident, path in zip(items.ids, items.files)]
    return ray.data.from_items(rows)


def _write(ray: Any, mapped: Any, out: Path, counter: Any, total: int, progress: Any) -> None:
    """``mapped.write_parquet(out)``, reporting progress from the workers' counter meanwhile."""
    if counter is None:
        mapped.write_parquet(str(out))
        return
    failure: list[BaseException] = []

    def write() -> None:
        try:
            mapped.write_parquet(str(out))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    writer = threading.Thread(target=write, name="webml-batch-write", daemon=True)
    writer.start()
    last = -1
    while writer.is_alive():
        writer.join(_PROGRESS_INTERVAL)
        done = ray.get(counter.get.remote())
        if done != last:
            progress(min(done, total), total)
            last = done
    if failure:
        raise failure[0]
    if last != total:
        progress(total, total)


def _summary(out: Path, seconds: float, skipped: list[str], backend: str) -> BatchSummary:
    """The summary, read back from the written Parquet (its small columns only)."""
    import pyarrow.parquet as pq

    table = pq.read_table(out, columns=list(META_COLUMNS))
    ids, errors, workers, builds = (table.column(c).to_pylist() for c in META_COLUMNS)
    failures = [Failure(i, e) for i, e in zip(ids, errors) if e is not None]
    failures.sort(key=lambda f: f.id)
    per_worker: dict[str, int] = {}
    graph_builds: dict[str, int] = {}
    for w, b in zip(workers, builds):
        per_worker[w] = per_worker.get(w, 0) + 1
        graph_builds[w] = max(graph_builds.get(w, 0), b)
    return BatchSummary(len(ids), failures, seconds, out, backend, per_worker, graph_builds, skipped)

