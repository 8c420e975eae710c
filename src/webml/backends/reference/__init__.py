"""The reference backend: vectorised float64 NumPy kernels, the oracle.

Readable rather than fast.  Each result is computed in float64 (or exact
64-bit integers) and rounded to the output's data type.  Tensors are NumPy
arrays on the host.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import dtypes
from ...ir import Graph, OperandDesc
from ...ops import FAMILIES
from ..base import Backend, CompiledGraph
from .kernels import KERNELS, lift

# One kernel module per operator family, named as in webml.ops.
for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")

__all__ = ["KERNELS", "ReferenceBackend", "create"]


class ReferenceGraph(CompiledGraph):
    def __init__(self, graph: Graph, float64: bool = False) -> None:
        self.float64 = float64
        missing = sorted({n.op for n in graph.nodes} - KERNELS.keys())
        if missing:
            raise NotImplementedError(f"no reference kernel for {', '.join(missing)}")
        self.graph = graph

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        g = self.graph
        env: dict[int, np.ndarray] = dict(g.constants)
        for name, oid in g.inputs.items():
            env[oid] = inputs[name]
        for node in g.nodes:
            args = {
                name: [lift(env[i]) for i in ids] if isinstance(ids, tuple) else lift(env[ids])
                for name, ids in node.inputs.items()
            }
            descs = [g.operands[o] for o in node.outputs]
            out: Any = descs[0] if len(descs) == 1 else descs
            with np.errstate(all="ignore"):
                result = KERNELS[node.op](**args, out=out, **node.attrs)
            results = [result] if len(descs) == 1 else list(result)
            for oid, desc, value in zip(node.outputs, descs, results):
                if self.float64 and dtypes.is_float(desc.data_type):
                    value = np.asarray(value, dtype=np.float64)  # exact mode: no rounding
                else:
                    value = dtypes.cast_array(np.asarray(value), desc.data_type)
                if value.shape != desc.shape:
                    raise AssertionError(f"reference {node.op} produced shape {value.shape}, expected {desc.shape}")
                env[oid] = value
        return {name: np.array(env[oid], copy=True) for name, oid in g.outputs.items()}

    def dispatch(self, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
        results = self.run({name: t.array for name, t in inputs.items()})
        for name, handle in outputs.items():
            result = results[name]
            if handle.array.dtype == result.dtype and handle.array.shape == result.shape:
                np.copyto(handle.array, result)  # in place: an exported view (MLTensor.__dlpack__) sees it
            else:  # float64 mode: the result is wider than the tensor's own array
                handle.array = result


class HostTensor:
    """A tensor of the reference backend: a NumPy array."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


class ReferenceBackend(Backend):
    name = "reference"
    # 2 GiB per tensor, as Chromium's backends: enough for real models, and
    # it keeps the float64 oracle's working set bounded.
    max_tensor_byte_length = 2**31

    def __init__(self, float64: bool = False) -> None:
        self.float64 = float64

    def compile(self, graph: Graph) -> ReferenceGraph:
        return ReferenceGraph(graph, self.float64)

    def host_dtype(self, data_type: str) -> np.dtype:
        if self.float64 and dtypes.is_float(data_type):
            return np.dtype(np.float64)
        return dtypes.numpy_dtype(data_type)

    def create_tensor(self, desc: OperandDesc) -> HostTensor:
        return HostTensor(np.zeros(desc.shape, dtype=dtypes.numpy_dtype(desc.data_type)))

    def write_tensor(self, handle: HostTensor, array: np.ndarray) -> None:
        handle.array = np.array(array, copy=True)

    def read_tensor(self, handle: HostTensor) -> np.ndarray:
        return np.array(handle.array, copy=True)

    def constant_data(self, handle: HostTensor) -> np.ndarray:
        return handle.array

    # No host_memory: the oracle keeps arrays of its own, so import_tensor copies into one, counted;
    # host_view exports the array a tensor holds (a dispatch writes it in place).
    def host_view(self, handle: HostTensor) -> np.ndarray | None:
        return handle.array

    def data_pointer(self, handle: HostTensor) -> int | None:
        return handle.array.ctypes.data

    def release_tensor(self, handle: HostTensor) -> None:
        handle.array = None  # type: ignore[assignment]


def create(*, float64: bool = False) -> ReferenceBackend:
    """The reference backend.  ``float64=True`` (non-spec, for numerical checks such as
    finite differences) keeps every floating-point result in float64 instead of
    rounding it to the operand's type; ``compute()`` then returns float64 arrays."""
    if not isinstance(float64, bool):
        raise TypeError(f"createContext: float64 must be a bool, got {float64!r}")
    return ReferenceBackend(float64)
