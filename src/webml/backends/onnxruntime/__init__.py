"""The ONNX Runtime backend: each MLGraph is lowered once, at build, to one ONNX
model and one InferenceSession; MLTensors are OrtValues bound with IOBinding,
so chained dispatches never copy through the host.

ONNX Runtime records telemetry on Linux unless ``ORT_DISABLE_TELEMETRY=1``:
webml sets it (unless the user has set it) before importing onnxruntime.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import threading
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

from ...ir import Graph, OperandDesc
from ..base import Backend, CompiledGraph, check_flag, check_threads, preferred_threads
from .lowering import Lowered, from_storage, handles, lower, storage_dtype, to_storage

__all__ = ["GRAPH_OPTIMIZATION_LEVELS", "OnnxRuntimeBackend", "create", "quiet_warnings"]

GRAPH_OPTIMIZATION_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_PROVIDERS = ["CPUExecutionProvider"]


class OrtTensor:
    """An MLTensor of this backend: an OrtValue over a host array it owns."""

    __slots__ = ("array", "bound_by", "data_type", "value")

    def __init__(self, array: np.ndarray, data_type: str) -> None:
        self.array = array  # keeps the OrtValue's memory alive
        self.data_type = data_type
        self.value = ort.OrtValue.ortvalue_from_numpy(array)
        self.bound_by: weakref.WeakSet[OrtGraph] = weakref.WeakSet()  # graphs whose cached binding holds it


class OrtGraph(CompiledGraph):
    def __init__(self, graph: Graph, session: ort.InferenceSession, input_names: dict, output_names: dict) -> None:
        self.session = session
        self.outputs = tuple(graph.outputs)  # not the graph: its constants must not outlive the build
        self.input_names = input_names
        self.output_names = output_names
        self.input_types = {n: d.data_type for n, d in graph.input_descs().items()}
        self.output_types = {n: d.data_type for n, d in graph.output_descs().items()}
        self._onnx_outputs = [output_names[n] for n in graph.outputs]
        self._binding: tuple[list, ort.IOBinding] | None = None
        # Guards the cached binding, so that checking its key and running it is one step: a
        # dispatch always runs the binding of its own tensors, whoever calls and from what
        # thread.  That is this cache's own rule, so it lives with the cache; ordering the
        # calls of a context (the spec's timeline) is the API layer's lock (api/context.py).
        self._binding_lock = threading.Lock()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {self.input_names[n]: to_storage(a, self.input_types[n]) for n, a in inputs.items()}
        results = self.session.run(self._onnx_outputs, feed)
        return {n: from_storage(r, self.output_types[n]) for n, r in zip(self.outputs, results)}

    def dispatch(self, inputs: Mapping[str, OrtTensor], outputs: Mapping[str, OrtTensor]) -> None:
        # Dispatching again with the same tensors (the common loop) reuses the binding.
        # The key holds the OrtValues themselves, so it cannot match a later tensor.
        key = [(n, t.value) for n, t in inputs.items()] + [(n, t.value) for n, t in outputs.items()]
        with self._binding_lock:
            if self._binding is None or not _same(self._binding[0], key):
                binding = self.session.io_binding()
                for name, tensor in inputs.items():
                    binding.bind_ortvalue_input(self.input_names[name], tensor.value)
                for name, tensor in outputs.items():
                    binding.bind_ortvalue_output(self.output_names[name], tensor.value)
                self._binding = (key, binding)
                for tensor in (*inputs.values(), *outputs.values()):
                    tensor.bound_by.add(self)
            self.session.run_with_iobinding(self._binding[1])

    def dispatch_arrays(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        """Run on host arrays of the storage dtypes (another backend's tensors' memory), writing the
        outputs' arrays in place: OrtValues over them, no copy."""
        binding = self.session.io_binding()
        values = []  # alive until the run ends
        for names, arrays, bind in (
            (self.input_names, inputs, binding.bind_ortvalue_input),
            (self.output_names, outputs, binding.bind_ortvalue_output),
        ):
            for name, array in arrays.items():
                values.append(ort.OrtValue.ortvalue_from_numpy(array))
                bind(names[name], values[-1])
        self.session.run_with_iobinding(binding)

    def forget_binding(self) -> None:
        """Drop the cached binding (it holds a tensor being released)."""
        with self._binding_lock:
            self._binding = None

    def release(self) -> None:
        with self._binding_lock:
            self._binding = None
            self.session = None  # type: ignore[assignment]


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(n1 == n2 and v1 is v2 for (n1, v1), (n2, v2) in zip(a, b))


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on the CPU.

    Options (non-spec, passed to ``webml.ml.create_context``):

    * ``intra_op_threads``: threads per operator (default: ONNX Runtime's choice, all cores);
    * ``allow_spinning``: whether idle intra-op threads spin waiting for work
      (ONNX Runtime's ``session.intra_op.allow_spinning``; default False).
      Spinning saves a wake-up per operator on an idle machine, but on a busy
      one the spinning threads take the cores the work needs: measured on a
      shared 2-core machine (``bench/threads.py``), a BERT encoder ran 1.8x
      slower with 2 spinning threads than with 1, and as fast as with 1 with
      2 threads that do not spin;
    * ``graph_optimization_level``: "disabled", "basic", "extended" or "all" (default);
    * ``prepack_weights``: let ONNX Runtime repack MatMul/Gemm/Conv weights into its
      kernels' layouts at build (default True: 7-20% faster matrix products).
      ONNX Runtime frees each original it packed and maps the shared-memory
      pages of the others, so once webml drops its own copy (see
      ``keep_constants``) the weights are held about once;
    * ``keep_constants``: keep the graph's constant arrays after build
      (default False), for what reads them again: ``webml.onnx.save`` and
      ``webml.onnx.to_model`` of the graph, or ``graph.ir.constants``.  By
      default they are released once the session is built, and those refuse
      with an error saying to create the context with ``keep_constants=True``.

    The spec's ``power_preference`` sets the default thread count: "low-power"
    uses half the cores this process may run on (at least 1), "high-performance"
    all of them, "default" ONNX Runtime's choice (one per physical core).
    Spinning stays off unless ``allow_spinning=True``; explicit options win.
    """

    name = "onnxruntime"
    max_tensor_byte_length = 2**31

    def __init__(
        self,
        *,
        intra_op_threads: int | None = None,
        allow_spinning: bool = False,
        graph_optimization_level: str = "all",
        prepack_weights: bool = True,
        keep_constants: bool = False,
    ) -> None:
        if graph_optimization_level not in GRAPH_OPTIMIZATION_LEVELS:
            raise TypeError(
                "createContext: graph_optimization_level must be one of "
                f"{', '.join(GRAPH_OPTIMIZATION_LEVELS)}, got {graph_optimization_level!r}"
            )
        self.intra_op_threads = check_threads(intra_op_threads)
        self.allow_spinning = check_flag(allow_spinning, "allow_spinning")
        self.graph_optimization_level = graph_optimization_level
        self.prepack_weights = check_flag(prepack_weights, "prepack_weights")
        self.keep_constants = check_flag(keep_constants, "keep_constants")
        self.power_preference = "default"

    def prefer(self, power_preference: str) -> None:
        self.power_preference = power_preference

    def threads(self) -> int | None:
        """The intra-op thread count of sessions (None: ONNX Runtime's choice)."""
        return preferred_threads(self.intra_op_threads, self.power_preference)

    def session_options(self, external_dir: bool) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.graph_optimization_level = GRAPH_OPTIMIZATION_LEVELS[self.graph_optimization_level]
        threads = self.threads()
        if threads is not None:
            options.intra_op_num_threads = threads
        # Off by default: spinning threads slow a busy machine down (see the class docstring).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.allow_spinning else "0")
        # ONNX Runtime fuses a DequantizeLinear of int8/int4 weights and its MatMul into MatMulNBits,
        # whose default accuracy level quantizes the activations to int8 too (a 0.4% error on an int8
        # MLP, tests/test_shrink.py): level 0 keeps the fused kernel and computes in float32, exactly.
        options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
        if not self.prepack_weights:
            options.add_session_config_entry("session.disable_prepacking", "1")
        if external_dir:
            # External-data locations are paths below "/" (webml.storage's files, model files).
            options.add_session_config_entry("session.model_external_initializers_file_folder_path", "/")
        return options

    def compile(self, graph: Graph) -> OrtGraph:
        return self.compile_lowered(graph, lower(graph))

    def compile_lowered(self, graph: Graph, lowered: Lowered) -> OrtGraph:
        """A session of ``graph``'s lowered model (the openvino backend's startup fallback uses it too)."""
        weights = lowered.weights
        options = self.session_options(weights.located)
        if weights.ortvalues:
            names = list(weights.ortvalues)
            values = [ort.OrtValue.ortvalue_from_numpy(weights.ortvalues[n]) for n in names]
            options.add_external_initializers(names, values)
        session = ort.InferenceSession(lowered.model.SerializeToString(), options, providers=_PROVIDERS)
        compiled = OrtGraph(graph, session, lowered.input_names, lowered.output_names)
        compiled.releases_constants = not self.keep_constants
        return compiled

    def create_tensor(self, desc: OperandDesc) -> OrtTensor:
        return OrtTensor(np.zeros(desc.shape, dtype=storage_dtype(desc.data_type)), desc.data_type)

    def write_tensor(self, handle: OrtTensor, array: np.ndarray) -> None:
        handle.value.update_inplace(to_storage(array, handle.data_type))

    def read_tensor(self, handle: OrtTensor) -> np.ndarray:
        return from_storage(np.array(handle.value.numpy(), copy=True), handle.data_type)

    def constant_data(self, handle: OrtTensor) -> np.ndarray:
        return from_storage(handle.array, handle.data_type)

    folds_constants = True  # its ConstantFolding optimizer, at session creation

    # Host memory: an OrtValue made by ortvalue_from_numpy points at the array's own memory (CPU, C order).
    host_memory = True

    def import_host_array(self, desc: OperandDesc, array: np.ndarray) -> OrtTensor | None:
        if array.dtype != storage_dtype(desc.data_type) or not array.flags.c_contiguous:
            return None  # the 4-bit types are int8 values here, not packed storage
        tensor = OrtTensor(array, desc.data_type)
        return tensor if tensor.value.data_ptr() == array.ctypes.data else None

    def host_view(self, handle: OrtTensor) -> np.ndarray | None:
        return None if handle.data_type in ("int4", "uint4") else handle.array

    def data_pointer(self, handle: OrtTensor) -> int | None:
        return handle.value.data_ptr()

    def release_tensor(self, handle: OrtTensor) -> None:
        for graph in list(handle.bound_by):  # a cached binding would keep the memory alive
            graph.forget_binding()
        handle.value = None  # type: ignore[assignment]
        handle.array = None  # type: ignore[assignment]

    def supports(self, op: str, argument: str, data_type: str, rank: int) -> bool:
        return handles(op, argument, data_type)


def quiet_warnings() -> None:
    """Keep ONNX Runtime's warnings (e.g. "Could not find a CPU kernel and hence can't constant fold")
    off stderr: they are about its own optimiser, not the user's model or a result."""
    ort.set_default_logger_severity(3)  # errors and fatal ones only


def create(**options: Any) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(**options)
