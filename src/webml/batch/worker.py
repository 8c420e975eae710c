"""The Ray Data side of a batch run: the worker (an actor class for ``map_batches``) and the output schema.

Ray makes one :class:`BatchWorker` per worker (``concurrency=workers``);
its ``__init__`` creates a context and builds the model's graph, once, and
each call runs one batch (a ``pyarrow.Table`` of identifiers and paths or
Parquet cells) and returns a ``pyarrow.Table`` of results.  Every output
row says which worker made it (``worker``) and how many graphs had been
compiled on that worker's context by then (``graph_builds``, counted at the
context, whoever builds: 1 for the worker's whole life).

A batch's rows keep their input order.  An item that fails (an unreadable
image, a wrong-shape array) gets its message in ``error`` and nulls in the
result columns; should the model itself fail on a batch, every item of that
batch gets the message, and the other batches still complete.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import numpy as np

from .models import IMAGE_COLUMNS, ModelSpec, make_runner

__all__ = ["META_COLUMNS", "BatchWorker", "ProgressCounter", "output_schema"]

#: Backends whose ``intra_op_threads`` option a worker sets to its Ray CPUs.
THREADED_BACKENDS = ("onnxruntime", "openvino")

#: Columns of every output row besides the results: the item's identifier, its error, who made it.
META_COLUMNS = ("id", "error", "worker", "graph_builds")


def _arrow_type(data_type: str) -> Any:
    import pyarrow as pa

    from ..dtypes import numpy_dtype

    # Parquet has no 4-bit integers: they are stored widened to 8 bits.
    widened = {"int4": "int8", "uint4": "uint8"}.get(data_type, data_type)
    return pa.from_numpy_dtype(np.dtype(numpy_dtype(widened)))


def output_schema(spec: ModelSpec) -> Any:
    """The pyarrow schema of the output rows for ``spec``.

    An ONNX model's output is a column of that name holding the values of
    each item's output flattened (C order); the field's metadata says its
    shape and data type (``webml.shape``, ``webml.data_type``).
    """
    import pyarrow as pa

    fields = [pa.field("id", pa.string(), nullable=False), pa.field("error", pa.string())]
    if spec.kind == "onnx":
        for name, (data_type, shape) in spec.outputs.items():
            meta = {"webml.shape": json.dumps(list(shape)), "webml.data_type": data_type}
            fields.append(pa.field(name, pa.list_(_arrow_type(data_type)), metadata=meta))
    else:
        fields += [pa.field("labels", pa.list_(pa.string())), pa.field("probabilities", pa.list_(pa.float64()))]
    fields += [pa.field("worker", pa.string(), nullable=False), pa.field("graph_builds", pa.int32(), nullable=False)]
    return pa.schema(fields)


def result_columns(spec: ModelSpec) -> list[str]:
    """The names of the result columns for ``spec`` (model outputs, or labels and probabilities)."""
    return list(spec.outputs) if spec.kind == "onnx" else list(IMAGE_COLUMNS)


class ProgressCounter:
    """Items done, counted by the workers and read by the driver (a Ray actor of no CPU)."""

    def __init__(self) -> None:
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n

    def get(self) -> int:
        return self.done


class BatchWorker:
    """One worker: a context and the model's graph, built once, then one call per batch.

    A batch has the ``id_column`` and either ``path`` (files of INPUT) or, ``from_parquet``,
    a column per model input.
    """

    def __init__(
        self,
        spec: ModelSpec,
        batch_size: int,
        id_column: str = "id",
        counter: Any = None,
        backend_options: dict[str, Any] | None = None,
        from_parquet: bool = False,
    ) -> None:
        import webml
        from webml.backends import own_engine_options

        # Every row one engine's results, whenever it ran (no startup fallback), as webml run gives them.
        options = {**own_engine_options(spec.backend), **(backend_options or {})}
        if spec.backend in THREADED_BACKENDS and "intra_op_threads" not in options:
            # As many threads as the CPUs Ray gave this worker: ONNX Runtime and OpenVINO would take
            # every core of the machine, and N workers would fight over them.
            import ray

            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
            options["intra_op_threads"] = max(1, int(cpus))
        self.context = webml.ml.create_context(backend=spec.backend, **options)
        self.graph_builds = 0
        self._count_builds(self.context)
        self.spec, self.id_column, self.counter, self.from_parquet = spec, id_column, counter, from_parquet
        self.runner = make_runner(spec, self.context, batch_size)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.schema = output_schema(spec)
        self.columns = result_columns(spec)

    def _count_builds(self, context: Any) -> None:
        """Count every graph compiled on ``context``, by whatever code builds it (the ``graph_builds`` column)."""
        compile_graph = context.compile_graph  # MLGraphBuilder.build's last step, for every graph of the context

        def counted(ir: Any, where: str) -> Any:
            self.graph_builds += 1
            return compile_graph(ir, where)

        context.compile_graph = counted

    def __call__(self, batch: Any) -> Any:
        raw_ids = batch.column(self.id_column).to_pylist()
        ids = ["<null>" if v is None else str(v) for v in raw_ids]
        if self.from_parquet:
            names = list(self.spec.inputs)
            cells = {n: batch.column(n).to_pylist() for n in names}
            items: list[Any] = [{n: cells[n][i] for n in names} for i in range(len(ids))]
        else:
            items = batch.column("path").to_pylist()
        try:
            results = self.runner.run(items)
        except Exception as exc:  # the model failed on this batch: its items say so, the others go on
            results = [f"the model failed on this batch ({type(exc).__name__}: {exc})"] * len(ids)
        null_id = f"the id column {self.id_column!r} is null in this row"
        results = [null_id if v is None else r for v, r in zip(raw_ids, results)]
        table = self._table(ids, results)
        if self.counter is not None:
            self.counter.add.remote(len(ids))  # progress, not waited for
        return table

    def _table(self, ids: list[str], results: list[Any]) -> Any:
        import pyarrow as pa

        errors = [r if isinstance(r, str) else None for r in results]
        columns: dict[str, list[Any]] = {"id": ids, "error": errors}
        for name in self.columns:
            columns[name] = [None if isinstance(r, str) else _cell(r[name]) for r in results]
        columns["worker"] = [self.name] * len(ids)
        columns["graph_builds"] = [self.graph_builds] * len(ids)
        return pa.table({f.name: pa.array(columns[f.name], f.type) for f in self.schema}, schema=self.schema)


def _cell(value: Any) -> Any:
    """A result as a Parquet cell: an array flattened to a list (4-bit integers widened), others as they are."""
    if isinstance(value, np.ndarray):
        if value.dtype.itemsize == 1 and value.dtype.kind not in "iub":  # ml_dtypes int4/uint4
            value = value.astype(np.int8 if "u" not in value.dtype.name else np.uint8)
        return value.reshape(-1)
    return value
