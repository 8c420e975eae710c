"""Protected models served by name (``webml serve --model NAME=PKG``): clients get outputs, never weights.

The service loads each package once at start (:func:`webml.protected.load`, the
service's own key and trusted publishers), in a context of its own; the
``listModels`` call describes them from their signed headers (names, inputs,
outputs, publisher, expiry) and ``runModel`` computes one with the caller's
inputs.  No call gives a served model's graph, constants or tensors to a
client: the weights stay in this process, and the service's quotas (runs and
compute seconds per minute) bound how fast a client can query it.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import dtypes
from ..errors import NotAllowedError

__all__ = ["ServedModel", "ServedModels"]


@dataclass
class ServedModel:
    name: str
    graph: Any  # webml.MLGraph, protected
    context: Any  # webml.MLContext, the service's
    info: dict[str, Any]  # the signed header, as webml.protected.describe gives it
    expires: dt.datetime | None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": {n: d.as_dict() for n, d in self.graph.input_descriptors.items()},
            "outputs": {n: d.as_dict() for n, d in self.graph.output_descriptors.items()},
            "publisher": self.info["publisher"]["fingerprint"],
            "created": self.info["created"],
            "expires": self.info["expires"],
        }


class ServedModels:
    """The served models by name; ``run`` may be called from any thread."""

    def __init__(self, models: Sequence[ServedModel] = ()) -> None:
        self._models = {m.name: m for m in models}
        self._locks = {m.name: threading.Lock() for m in models}

    @classmethod
    def load(
        cls,
        packages: Mapping[str, str | os.PathLike[str]],
        *,
        key: Any,
        trusted: Sequence[Any],
        backend: str | None = None,
        free_dimensions: Mapping[str, int] | None = None,
    ) -> ServedModels:
        """Load each ``name -> package`` for the service's ``key``, signed by one of ``trusted``;
        ``free_dimensions`` fixes the models' dynamic dimensions by name (those a model lacks are
        ignored for it)."""
        import webml
        import webml.protected as wp

        models = []
        for name, package in packages.items():
            context = webml.ml.create_context(backend=backend)
            info = wp.describe(package, trusted=trusted)
            names = {d for io in info["inputs"] for d in io["shape"] if isinstance(d, str)}
            free = {n: size for n, size in (free_dimensions or {}).items() if n in names} or None
            graph = wp.load(package, context, key=key, trusted=trusted, free_dimensions=free)
            expires = None if info["expires"] is None else dt.datetime.fromisoformat(info["expires"])
            models.append(ServedModel(name, graph, context, info, expires))
        return cls(models)

    def __len__(self) -> int:
        return len(self._models)

    def names(self) -> list[str]:
        return sorted(self._models)

    def describe(self) -> list[dict[str, Any]]:
        return [self._models[n].describe() for n in self.names()]

    def get(self, name: Any, where: str) -> ServedModel:
        if not isinstance(name, str) or name not in self._models:
            raise TypeError(f"{where}: no served model named {name!r} (served: {', '.join(self.names()) or 'none'})")
        model = self._models[name]
        if model.expires is not None and dt.datetime.now(dt.UTC) >= model.expires:
            raise NotAllowedError(f"{where}: the model {name!r} expired on {model.info['expires']}")
        return model

    def run(self, name: Any, inputs: Any, payload: memoryview) -> tuple[dict[str, Any], bytes]:
        """Compute model ``name`` on ``inputs`` ({input: {offset, length}} in ``payload``); the outputs'
        descriptors with their places in the answer's payload, and that payload."""
        where = "runModel"
        model = self.get(name, where)
        expected = model.graph.input_descriptors
        if not isinstance(inputs, dict):
            raise TypeError(f"{where}: inputs must be an object of name -> {{offset, length}}")
        missing, extra = sorted(expected.keys() - inputs.keys()), sorted(inputs.keys() - expected.keys())
        if missing or extra:
            raise TypeError(f"{where}: the model's inputs are {sorted(expected)}; missing {missing}, unknown {extra}")
        arrays = {}
        for input_name, desc in expected.items():
            place = inputs[input_name]
            offset = place.get("offset") if isinstance(place, dict) else None
            length = place.get("length") if isinstance(place, dict) else None
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, length)):
                raise TypeError(f"{where}: input {input_name!r} must be {{offset, length}} of non-negative integers")
            if length != desc.byte_length or offset + length > len(payload):
                raise TypeError(
                    f"{where}: input {input_name!r} is {desc} ({desc.byte_length} bytes); got {length} bytes at "
                    f"{offset} of a {len(payload)}-byte payload"
                )
            arrays[input_name] = dtypes.from_bytes(desc.data_type, payload[offset : offset + length], desc.shape)
        with self._locks[model.name]:
            results = model.context.compute(model.graph, arrays)
        header: dict[str, Any] = {}
        parts: list[bytes] = []
        offset = 0
        for output_name, desc in model.graph.output_descriptors.items():
            data = dtypes.to_bytes(desc.data_type, np.asarray(results[output_name]))
            header[output_name] = {**desc.as_dict(), "offset": offset, "length": len(data)}
            parts.append(data)
            offset += len(data)
        return header, b"".join(parts)
