"""MLContext: tensors, dispatch, compute, support limits, destroy.

Threads: the spec runs a context's tensor and graph work on one timeline, so
every timeline operation here (create/write/read tensor, dispatch, compute,
and the destroy of the context, its graphs and tensors) holds the context's
lock from its first check to its last step.  Calls from any thread are then
ordered as on that timeline, backends see one call at a time per context, and
a graph or tensor destroyed by another thread is refused with the spec's error
instead of vanishing halfway through a call.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from concurrent.futures import Future
from operator import attrgetter
from typing import Any, Generic, TypeVar

import numpy as np

from .. import dtypes
from ..backends.base import Backend
from ..errors import InvalidStateError, OperationError
from ..ir import Graph, OperandDesc
from ..ops import OPS
from ..ops.registry import MAX_RANK
from ..storage import ConstantStore
from .buffers import host_array, to_array, writer
from .descriptors import check_dimensions, parse_operand_descriptor, parse_tensor_descriptor
from .graph import MLGraph, compiled_graph
from .spelling import PythonSpelling, add_javascript_names
from .tensor import MLTensor, backend_handle, checked_tensor

T = TypeVar("T")


class MLContext(PythonSpelling):
    """The global state of graph building and execution on one backend.

    Create one with :func:`webml.ml.create_context`.
    """

    def __init__(self, backend: Backend, *, power_preference: str = "default", accelerated: bool = True) -> None:
        self._backend = backend
        backend.prefer(power_preference)  # e.g. onnxruntime's threads
        self._power_preference = power_preference
        self._accelerated = accelerated
        self._lost_future: Future[dict[str, str]] = Future()
        self._is_lost = False
        # Reentrant: destroy() destroys graphs and tensors, whose destroy() takes it too.
        self._timeline = threading.RLock()
        self._graphs: _Owned[MLGraph] = _Owned(self._timeline)
        self._tensors: _Owned[MLTensor] = _Owned(self._timeline)
        self._import_copies = 0

    # -- attributes ------------------------------------------------------------

    # The spec's read-only attributes.
    accelerated = property(attrgetter("_accelerated"), doc="Whether the context may use acceleration (bool).")
    power_preference = property(attrgetter("_power_preference"), doc="The MLPowerPreference it was created with.")

    @property
    def backend(self) -> str:
        """The backend's name (non-spec)."""
        return self._backend.name

    @property
    def lost(self) -> Future[dict[str, str]]:
        """A Future resolved with an MLContextLostInfo dict (``{"message": ...}``) when the context is lost."""
        return self._lost_future

    # -- for the builder (non-spec) ---------------------------------------------

    def check_not_lost(self, where: str) -> None:
        """Raise InvalidStateError (prefixed with ``where``) if the context is lost (non-spec)."""
        if self._is_lost:
            raise InvalidStateError(f"{where}: the context is lost")

    @property
    def max_tensor_byte_length(self) -> int:
        """The backend's largest tensor, in bytes: ``op_support_limits()["maxTensorByteLength"]`` (non-spec)."""
        return self._backend.max_tensor_byte_length

    @property
    def folds_constants(self) -> bool:
        """Whether the backend computes operations on constants once, at build (non-spec):
        ``Backend.folds_constants``, which the ONNX importer asks."""
        return self._backend.folds_constants

    def supports(self, op: str, argument: str, data_type: str, rank: int) -> bool:
        """Whether the backend takes ``data_type`` at ``rank`` for an argument of ``op`` (non-spec).

        ``op`` and ``argument`` are spec names; ``"input"``, ``"constant"`` and
        ``"output"`` name the graph's own operands, with themselves as argument.
        :meth:`op_support_limits` reports the same as data.
        """
        return self._backend.supports(op, argument, data_type, rank)

    def constant_store(self, *, in_memory: bool = False, lender: memoryview | None = None) -> ConstantStore:
        """Where a builder of this context copies its constants (non-spec): files in shared
        memory, or on disk for a backend that asks for it (``Backend.constants_on_disk``);
        ``in_memory``: anonymous memory only, for protected graphs (:mod:`webml.protected`);
        ``lender``: memory whose read-only arrays are used in place (see ConstantStore)."""
        return ConstantStore(on_disk=self._backend.constants_on_disk, in_memory=in_memory, lender=lender)

    def constant_tensor_data(self, tensor: MLTensor, where: str) -> np.ndarray:
        """A read-only view of a constant tensor's data, for a graph being built (non-spec).

        Under the timeline lock: another thread may destroy the tensor meanwhile.
        """
        with self._timeline:
            checked_tensor(tensor, self, where, "a constant tensor used by the graph")
            if not tensor.constant:
                raise TypeError(f"{where}: the tensor is not a constant tensor")
            view = self._backend.constant_data(backend_handle(tensor)).view()
        view.flags.writeable = False
        return view

    def compile_graph(self, ir: Graph, where: str) -> MLGraph:
        """Compile ``ir`` into an MLGraph that this context owns (non-spec: MLGraphBuilder.build's last step).

        The IR must come from an MLGraphBuilder of this context, which has
        validated it: backends trust the graphs they get.
        """
        try:
            compiled = self._backend.compile(ir)
        except Exception as exc:
            raise OperationError(f"{where}: the {self._backend.name} backend failed: {exc}") from exc
        graph = MLGraph(self, ir, compiled, timeline=self._timeline)
        self._graphs.add(graph)
        return graph

    def destroy(self) -> None:
        """Lose the context: destroy its graphs and tensors.  Idempotent, from any thread."""
        with self._timeline:
            if self._is_lost:
                return
            self._is_lost = True
            for graph in self._graphs.snapshot():
                graph.destroy()
            for tensor in self._tensors.snapshot():
                tensor.destroy()
        # Outside the lock: a callback on ``lost`` may use other threads that wait for it.
        self._lost_future.set_result({"message": "destroy() was called on the context"})

    # -- tensors -----------------------------------------------------------------

    def create_tensor(self, descriptor: Mapping[str, Any]) -> MLTensor:
        """A zero-filled tensor: ``{"dataType", "shape", "readable", "writable", "exportableToGPU"}``."""
        with self._timeline:
            self.check_not_lost("createTensor")
            desc, flags = parse_tensor_descriptor(descriptor, "createTensor")
            check_dimensions(desc, "createTensor", self._backend.max_tensor_byte_length)
            return self._new_tensor(desc, self._backend.create_tensor(desc), **flags)

    def create_constant_tensor(self, descriptor: Mapping[str, Any], data: Any) -> MLTensor:
        """A constant tensor holding a copy of ``data``, usable by ``builder.constant(tensor)``."""
        with self._timeline:
            self.check_not_lost("createConstantTensor")
            desc = parse_operand_descriptor(descriptor, "createConstantTensor")
            check_dimensions(desc, "createConstantTensor", self._backend.max_tensor_byte_length)
            array = to_array(data, desc, "createConstantTensor")
            handle = self._backend.create_tensor(desc)
            self._backend.write_tensor(handle, array)
            return self._new_tensor(desc, handle, constant=True)

    def import_tensor(self, obj: Any, *, writable: bool | None = None) -> MLTensor:
        """An MLTensor that is ``obj``'s memory, without a copy where the backend can (non-spec).

        ``obj``: a NumPy array, a DLPack tensor in host memory (``__dlpack__``), a PyAV
        ``VideoPlane`` (``[height, line_size]`` uint8) or any buffer-protocol object; its dtype
        and shape are the tensor's.  The tensor is readable; ``writable`` defaults to whether
        ``obj`` may be written (True on a read-only source is a TypeError).  On onnxruntime and
        openvino the tensor shares the memory (``shares_memory``; writes through either side
        show in the other, and the tensor keeps ``obj`` alive); the reference and webgpu
        backends, a non-contiguous array, and a read-only buffer on openvino get one copy,
        counted by :attr:`import_copies`.  See :mod:`webml.api.imports`.
        """
        from .imports import host_memory_of

        if writable is not None and not isinstance(writable, bool):
            raise TypeError(f"importTensor: writable must be a bool or None, got {writable!r}")
        memory = host_memory_of(obj)
        if writable and not memory.writable:
            raise TypeError("importTensor: writable=True, but the source's memory is read-only")
        with self._timeline:
            self.check_not_lost("importTensor")
            desc = parse_operand_descriptor(
                {"dataType": dtypes.data_type_of(memory.array.dtype), "shape": list(memory.array.shape)}, "importTensor"
            )
            check_dimensions(desc, "importTensor", self._backend.max_tensor_byte_length)
            handle = None
            if self._backend.host_memory and not memory.copied:
                handle = self._backend.import_host_array(desc, memory.array)
            shared = handle is not None
            if handle is None:
                handle = self._backend.create_tensor(desc)
                self._backend.write_tensor(handle, memory.array)
            if not shared or memory.copied:
                self._import_copies += 1
            return self._new_tensor(
                desc,
                handle,
                readable=True,
                writable=memory.writable if writable is None else writable,
                source=obj if shared else None,
                shares_memory=shared,
                read_only_memory=shared and not memory.writable,
            )

    @property
    def import_copies(self) -> int:
        """How many host copies :meth:`import_tensor` has made (0 while every import shared its memory; non-spec)."""
        return self._import_copies

    def data_pointer(self, tensor: MLTensor) -> int | None:
        """The address of ``tensor``'s data as the backend's engine holds it, or None where it is not host
        memory (non-spec: for checking that an import shares memory)."""
        with self._timeline:
            checked_tensor(tensor, self, "dataPointer")
            return self._backend.data_pointer(backend_handle(tensor))

    def host_memory_view(self, tensor: MLTensor, where: str) -> np.ndarray:
        """An array over a readable tensor's host memory, no copy (non-spec: MLTensor's export).

        Read-only unless the tensor is writable.  It is the tensor's memory, so later dispatches and
        writes show through it (the reference backend's float64 mode excepted: a dispatch gives an
        output a wider array of its own).
        """
        from .imports import exported_view

        with self._timeline:
            checked_tensor(tensor, self, where)
            if not tensor.readable:
                raise TypeError(f"{where}: the tensor is not readable (create it with 'readable': True)")
            self.check_not_lost(where)
            view = self._backend.host_view(backend_handle(tensor))
            if view is None or view.dtype != dtypes.numpy_dtype(tensor.data_type):
                raise TypeError(
                    f"{where}: the {self._backend.name} backend's {tensor.data_type} tensors are not host memory "
                    "of that type; use read_tensor() for a copy"
                )
            return exported_view(view, tensor.writable and not tensor.read_only_memory)

    def _new_tensor(self, desc: OperandDesc, handle: Any, **flags: Any) -> MLTensor:
        tensor = MLTensor(self, desc, handle, timeline=self._timeline, release=self._backend.release_tensor, **flags)
        self._tensors.add(tensor)
        return tensor

    def write_tensor(self, tensor: MLTensor, data: Any) -> None:
        """Copy ``data`` (an array of the tensor's dtype, or raw bytes) into a writable tensor."""
        with self._timeline:
            checked_tensor(tensor, self, "writeTensor")
            if not tensor.writable:
                raise TypeError("writeTensor: the tensor is not writable (create it with 'writable': True)")
            array = to_array(data, tensor.descriptor, "writeTensor")
            if self._is_lost:
                return  # the spec's timeline steps abort silently on a lost context
            self._backend.write_tensor(backend_handle(tensor), array)

    def read_tensor(self, tensor: MLTensor, out: Any = None) -> np.ndarray | None:
        """A NumPy array of the tensor's data, or, given ``out``, fill that buffer and return None."""
        with self._timeline:
            checked_tensor(tensor, self, "readTensor")
            if not tensor.readable:
                raise TypeError("readTensor: the tensor is not readable (create it with 'readable': True)")
            write = None if out is None else writer(out, tensor.descriptor, "readTensor")
            self.check_not_lost("readTensor")
            array = self._backend.read_tensor(backend_handle(tensor))  # a copy: filling ``out`` needs no lock
        if write is None:
            return array
        write(array)
        return None

    def export_to_gpu(self, tensor: MLTensor) -> Any:
        """Rent ``tensor`` to WebGPU: its GPU buffer as a ``wgpu.GPUBuffer`` of the context's device, no
        copy (the MLTensor explainer's ``exportToGPU``; WebGPU interop, webgpu backend only).

        The tensor must have been created with ``exportableToGPU: True``.  Work already dispatched on
        it comes first in the device's queue.  Until the caller returns it by calling ``destroy()`` on
        the buffer, WebNN cannot use the tensor (dispatch, read_tensor, write_tensor raise
        InvalidStateError); the buffer is the tensor's packed bytes (an ``array<u32>`` in WGSL).
        """
        with self._timeline:
            checked_tensor(tensor, self, "exportToGPU")
            if not tensor.exportable_to_gpu:
                raise TypeError("exportToGPU: the tensor is not exportable (create it with 'exportableToGPU': True)")
            self.check_not_lost("exportToGPU")
            buffer = self._backend.export_to_gpu(backend_handle(tensor), on_return=tensor.returned_from_gpu)
            tensor.exported_to_gpu()
            return buffer

    # -- execution -----------------------------------------------------------------

    def dispatch(self, graph: MLGraph, inputs: Mapping[str, MLTensor], outputs: Mapping[str, MLTensor]) -> None:
        """Run ``graph`` reading ``inputs`` and writing ``outputs`` (dicts of name -> MLTensor)."""
        with self._timeline:
            compiled = compiled_graph(graph, self, "dispatch")
            for what, named in (("inputs", inputs), ("outputs", outputs)):
                if not isinstance(named, Mapping):
                    raise TypeError(f"dispatch: {what} must be a dict of name -> MLTensor")
            all_tensors = [*inputs.values(), *outputs.values()]
            if len({id(t) for t in all_tensors}) != len(all_tensors):
                raise TypeError("dispatch: the same tensor is used more than once")
            for t in all_tensors:
                checked_tensor(t, self, "dispatch")
            for name, t in outputs.items():
                if t.read_only_memory:
                    raise TypeError(
                        f"dispatch: output {name!r} is imported read-only memory; the graph cannot write it"
                    )
            _match_tensors(inputs, graph.input_descriptors, "inputs")
            _match_tensors(outputs, graph.output_descriptors, "outputs")
            if self._is_lost:
                return
            compiled.dispatch(
                {n: backend_handle(t) for n, t in inputs.items()}, {n: backend_handle(t) for n, t in outputs.items()}
            )

    def compute(self, graph: MLGraph, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run ``graph`` on host arrays and return its outputs as NumPy arrays (non-spec).

        Each input is a NumPy array of the input's dtype and shape, or numbers
        in (nested) lists of that shape, cast to the input's data type (see
        :func:`webml.api.buffers.host_array`).
        """
        with self._timeline:
            compiled = compiled_graph(graph, self, "compute")
            self.check_not_lost("compute")
            if not isinstance(inputs, Mapping):
                raise TypeError("compute: inputs must be a dict of name -> array")
            expected = graph.input_descriptors
            missing = sorted(expected.keys() - inputs.keys())
            extra = sorted(inputs.keys() - expected.keys())
            if missing or extra:
                raise TypeError(
                    "compute: "
                    + "; ".join(
                        p
                        for p in (
                            f"missing inputs {missing}" if missing else "",
                            f"unknown inputs {extra}" if extra else "",
                        )
                        if p
                    )
                    + f" (the graph's inputs: {sorted(expected)})"
                )
            arrays = {
                name: _host_array(inputs[name], desc, name, self._backend.host_dtype(desc.data_type))
                for name, desc in expected.items()
            }
            return compiled.run(arrays)

    def op_support_limits(self) -> dict[str, Any]:
        """The MLOpSupportLimits of this context's backend (spec camelCase keys)."""
        b = self._backend
        all_types = list(dtypes.DATA_TYPES)

        def io_limits(kind: str) -> dict[str, Any]:
            return {
                "dataTypes": [t for t in all_types if b.supports(kind, kind, t, 0)],
                "rankRange": {"min": 0, "max": MAX_RANK},
            }

        limits: dict[str, Any] = {
            "preferredInputLayout": b.preferred_input_layout,
            "maxTensorByteLength": b.max_tensor_byte_length,
            "input": io_limits("input"),
            "constant": io_limits("constant"),
            "output": io_limits("output"),
        }
        for opdef in OPS.values():
            entry = {}
            for arg, lim in opdef.limits.items():
                d = lim.as_dict()
                d["dataTypes"] = [t for t in d["dataTypes"] if b.supports(opdef.name, arg, t, lim.min_rank)]
                entry[arg] = d
            limits[opdef.name] = entry
        return limits


add_javascript_names(MLContext, {"exportToGPU": "export_to_gpu"})


class _Owned(Generic[T]):
    """The graphs or tensors that a context destroys with it.

    A weak set (dropping an object drops it here) behind the context's lock:
    the builder adds graphs from whatever thread builds them.
    """

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._items: weakref.WeakSet[T] = weakref.WeakSet()

    def add(self, item: T) -> None:
        with self._lock:
            self._items.add(item)

    def snapshot(self) -> list[T]:
        with self._lock:
            return list(self._items)


def _match_tensors(named: Mapping[str, MLTensor], descs: Mapping[str, OperandDesc], what: str) -> None:
    if len(named) != len(descs):
        raise TypeError(
            f"dispatch: {what} has {len(named)} tensors but the graph has {len(descs)} {what} ({sorted(descs)})"
        )
    for name, tensor in named.items():
        if tensor.constant:
            raise TypeError(f"dispatch: {what} {name!r} is a constant tensor")
        if name not in descs:
            raise TypeError(f"dispatch: the graph has no {what[:-1]} named {name!r} ({sorted(descs)})")
        if tensor.descriptor != descs[name]:
            raise TypeError(f"dispatch: {what[:-1]} {name!r} is {tensor.descriptor}, the graph expects {descs[name]}")


def _host_array(value: Any, desc: OperandDesc, name: str, target: np.dtype) -> np.ndarray:
    array = host_array(value, desc.data_type, "compute", f"input {name!r}", target)
    if array.shape != desc.shape:
        raise TypeError(f"compute: input {name!r} has shape {list(array.shape)}, the graph expects {list(desc.shape)}")
    return array
