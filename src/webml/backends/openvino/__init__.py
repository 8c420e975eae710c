"""The OpenVINO backend: each MLGraph is lowered once, at build, by the ONNX
Runtime backend's lowering (:func:`webml.backends.onnxruntime.lowering.lower`),
read by OpenVINO's ONNX frontend and compiled for the CPU in exact float32;
MLTensors are OpenVINO tensors over host arrays they own, set on the infer
request, so a dispatch copies nothing through the host.

Large constants are not serialized: they become inputs of the ONNX model that
OpenVINO reads, then are replaced in the OpenVINO model by constants sharing
private mappings of the files ``constant()`` copied them into, so OpenVINO
takes them without a copy of its own.  Compiling packs matrix weights into
OpenVINO's own layouts, a copy, and OpenVINO keeps every original as well:
the backend asks for those files on a disk file system
(``constants_on_disk``) and, once compiled, drops the mappings' pages from
resident memory (``MADV_DONTNEED``).  The pages OpenVINO still reads
(weights it did not pack) come back from the file's page cache on first use;
the others stay out, as page cache the system reclaims.  bench/memory.py
measures the result.

A graph's first call runs on ONNX Runtime, from the same lowered model, while
OpenVINO compiles it in a background thread (:mod:`.startup`, the
``startup_fallback`` option).

A batched graph that computes each sample apart runs a few samples at a time
when its batch's activations would not fit in the cache (the ``batch_chunk``
option, :mod:`webml.backends.samples`): OpenVINO's kernels go through the whole
batch layer by layer, and at EfficientNet-Lite0's batch 8 they are then 20%
slower than four runs of two images.

Data stays on the device, and nothing is written: OpenVINO's telemetry lives
in its model converter (``openvino.tools.ovc``), which ``import openvino``
loads unless it cannot, and whose import starts telemetry that counts as
consent when no consent file exists (``openvino_telemetry``'s
``enable_opt_in_dialog=False``): it writes a client id and statistics under
``~/intel`` and sends an "import" event.  webml never converts models (it
uses ``read_model`` and ``compile_model`` only), so it imports OpenVINO with
the converter blocked (:func:`_import_openvino`); ``openvino.tools.ovc`` stays
importable later for a program that wants it.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from onnx import helper

from ...ir import Graph, OperandDesc
from ...storage import drop_resident_pages, file_mapping_of, map_file
from ..base import Backend, CompiledGraph, check_flag, check_threads, preferred_threads
from ..onnxruntime import OnnxRuntimeBackend, OrtGraph
from ..onnxruntime.lowering import Lowered, from_storage, handles, lower, storage_dtype, to_storage
from ..samples import ChunkedGraph, batch_size, chunk_graph, largest_sample_bytes, sample_axes
from .limits import unsupported
from .startup import StartupGraph

__all__ = ["PRECISIONS", "OpenVinoBackend", "create", "ov"]


def _import_openvino():
    """``import openvino`` without its model converter, whose import writes telemetry files (see above)."""
    converter = "openvino.tools.ovc"
    if "openvino" in sys.modules or converter in sys.modules:
        import openvino

        return openvino
    sys.modules[converter] = None  # type: ignore[assignment]  # openvino's own try/except ImportError skips it
    try:
        import openvino
    finally:
        if sys.modules.get(converter, 0) is None:
            del sys.modules[converter]
    return openvino


#: The ``openvino`` module, imported without its converter: programs (bench/, tests) take it from here.
ov = _import_openvino()

#: ``precision`` option -> OpenVINO's INFERENCE_PRECISION_HINT.  Only "f32" is exact (the spec's results).
PRECISIONS = {"f32": "f32", "bf16": "bf16"}

#: The most bytes of a chunk's largest activation when ``batch_chunk`` is chosen: measured on EfficientNet-Lite0 at
#: batch 8 and 96 to 288 pixels (AMD EPYC, 1 MiB L2 per core, 32 MiB L3; bench/batch_chunks.py), where the fastest
#: chunks held 4.7 to 9.2 MiB (or one sample, when a sample alone held more).
CHUNK_BYTES = 10 * 2**20


class OvTensor:
    """An MLTensor of this backend: an OpenVINO tensor over a host array it owns."""

    __slots__ = ("array", "data_type", "value")

    def __init__(self, array: np.ndarray, data_type: str) -> None:
        self.array = array  # the tensor's memory: OpenVINO reads and writes it in place
        self.data_type = data_type
        self.value = ov.Tensor(array, shared_memory=True)


class OvGraph(CompiledGraph):
    def __init__(self, graph: Graph, compiled: ov.CompiledModel, lowered: Lowered, keep: list[Any]) -> None:
        self.graph = graph
        self.compiled = compiled
        self.input_types = {n: d.data_type for n, d in graph.input_descs().items()}
        self.output_types = {n: d.data_type for n, d in graph.output_descs().items()}
        self._inputs = {n: compiled.input(lowered.input_names[n]) for n in graph.inputs}
        self._outputs = {n: compiled.output(lowered.output_names[n]) for n in graph.outputs}
        # Two infer requests: dispatch sets MLTensors as its outputs, which compute() must never
        # write, so compute() runs a request of its own (OpenVINO's output memory, copied out).
        self._request = compiled.create_infer_request()
        self._compute_request = compiled.create_infer_request()
        self._constants = keep  # what OpenVINO's constants share: alive as long as the graph
        # Setting a request's tensors and running it is one step, whatever the thread (ordering a
        # context's calls is the API layer's lock, api/context.py).
        self._lock = threading.Lock()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {self._inputs[n]: to_storage(a, self.input_types[n]) for n, a in inputs.items()}
        with self._lock:
            results = self._compute_request.infer(feed, share_inputs=True, share_outputs=False)
            return {n: from_storage(results[port], self.output_types[n]) for n, port in self._outputs.items()}

    def dispatch(self, inputs: Mapping[str, OvTensor], outputs: Mapping[str, OvTensor]) -> None:
        with self._lock:
            for name, tensor in inputs.items():
                self._request.set_tensor(self._inputs[name], tensor.value)
            for name, tensor in outputs.items():
                self._request.set_tensor(self._outputs[name], tensor.value)
            self._request.infer()

    def release(self) -> None:
        with self._lock:
            self._request = self._compute_request = None  # type: ignore[assignment]
            self.compiled = None  # type: ignore[assignment]
            self._constants = []


def _shared_constants(lowered: Lowered) -> tuple[dict[str, np.ndarray], list[mmap.mmap]]:
    """The arrays of ``lowered``'s large constants that OpenVINO's constants will share, by initializer
    name, and the private mappings of files among them: mapped now, the files may go."""
    initializers = {t.name: t for t in lowered.model.graph.initializer}
    weights = {**lowered.weights.ortvalues, **lowered.weights.in_model_files}
    shared = {n: _shareable(a) for n, a in weights.items()}
    maps = []
    for name, path in lowered.weights.external_files.items():
        tensor = initializers[name]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
        maps.append(_private_map(path))
        shared[name] = np.frombuffer(maps[-1], dtype=dtype).reshape(tuple(tensor.dims))
    return shared, maps


def _read(core: ov.Core, lowered: Lowered, shared: Mapping[str, np.ndarray]) -> ov.Model:
    """OpenVINO's model of ``lowered``, its large constants sharing the ``shared`` arrays' memory
    (``lowered``'s model is changed)."""
    graph = lowered.model.graph
    # Each large initializer becomes a model input here, and an OpenVINO constant below.
    kept = [t for t in graph.initializer if t.name not in shared]
    moved = [t for t in graph.initializer if t.name in shared]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in moved)
    model = core.read_model(lowered.model.SerializeToString(), b"")
    for parameter in list(model.get_parameters()):
        name = parameter.get_friendly_name()
        if name in shared:
            constant = ov.op.Constant(shared[name], shared_memory=True)
            parameter.output(0).replace(constant.output(0))
            model.remove_parameter(parameter)
    return model


def _shareable(array: np.ndarray) -> np.ndarray:
    """``array``, or memory OpenVINO can share: it takes only writable memory as a constant without a copy
    (and never writes one).  A model file's mapping (webml.storage.FileMapping) is writable in name only and
    shared as it is; other read-only arrays are copied once."""
    if array.flags.writeable:
        return array
    if file_mapping_of(array) is not None:
        view = array.view()
        view.flags.writeable = True
        return view
    return array.copy()


def _private_map(path: str) -> mmap.mmap:
    """A private (copy-on-write) mapping of a whole file: its pages, writable in name only."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return map_file(fd)
    finally:
        os.close(fd)


class OpenVinoBackend(Backend):
    """OpenVINO on the CPU.

    Options (non-spec, passed to ``webml.ml.create_context``), named as the
    onnxruntime backend's where they mean the same:

    * ``intra_op_threads``: OpenVINO's INFERENCE_NUM_THREADS (default: its choice, all cores);
      the spec's ``power_preference`` sets the default as on onnxruntime ("low-power":
      half the cores, "high-performance": all of them);
    * ``keep_constants``: keep the graph's constant arrays after build (default False),
      for ``webml.onnx.save`` and ``webml.onnx.to_model`` of the graph;
    * ``precision``: "f32" (default, exact) or "bf16" (reduced precision on CPUs with
      bf16 units: faster, with errors around 1e-2, outside the spec's tolerances);
    * ``cache_dir``: a folder for OpenVINO's model cache (its ``CACHE_DIR``; default None, no
      cache): a graph compiled once is imported from the cache by later contexts and processes,
      which cuts its compile time by half or more (bench/load.py).  The cached blobs hold the
      weights, so a folder it makes is readable by its owner only (an existing one keeps its
      permissions), and a protected graph
      (:mod:`webml.protected`) never uses it.

    * ``startup_fallback``: whether a graph's first call runs on ONNX Runtime while OpenVINO
      compiles it in a background thread (default True, :mod:`.startup`): ``build()`` then takes
      about as long as ONNX Runtime's session creation rather than 1.4-4x as long; every later
      call runs on OpenVINO, waiting for its compile if need be.  Both compute in exact float32,
      but the first call's results may differ from later ones in the last bits (never from one
      run of a program to the next).  ``MLGraph.engine`` says which engine runs the next call,
      ``MLGraph.wait_for_engine()`` waits for OpenVINO and makes it run every call; False
      compiles before ``build()`` returns.  Only with ``precision="f32"``.

    * ``batch_chunk``: how many samples of a batch one OpenVINO run computes, for graphs that compute
      each sample apart (:func:`webml.backends.samples.sample_axes`: every input and output batched
      along its first axis, no operation mixing samples); others always run whole.  None (default)
      chooses the largest divisor of the batch whose chunk's largest activation fits in
      :data:`CHUNK_BYTES`; an int runs that many at a time where it divides the batch.  The results
      are the same samples computed by the same kernels (identical bits where measured).

    Activations are never quantized (DYNAMIC_QUANTIZATION_GROUP_SIZE 0): OpenVINO
    would otherwise quantize them for models with int8 weights.
    """

    name = "openvino"
    max_tensor_byte_length = 2**31
    constants_on_disk = True
    folds_constants = True  # its ConstantFolding, or a MatMul that reads compressed weights as they are

    def __init__(
        self,
        *,
        intra_op_threads: int | None = None,
        keep_constants: bool = False,
        precision: str = "f32",
        cache_dir: str | os.PathLike[str] | None = None,
        startup_fallback: bool = True,
        batch_chunk: int | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise TypeError(f"createContext: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.intra_op_threads = check_threads(intra_op_threads)
        self.keep_constants = check_flag(keep_constants, "keep_constants")
        self.precision = precision
        self.cache_dir = _cache_folder(cache_dir)
        self.startup_fallback = check_flag(startup_fallback, "startup_fallback")
        if batch_chunk is not None and (
            isinstance(batch_chunk, bool) or not isinstance(batch_chunk, int) or batch_chunk < 1
        ):
            raise TypeError(f"createContext: batch_chunk must be a positive int or None, got {batch_chunk!r}")
        self.batch_chunk = batch_chunk
        self.power_preference = "default"
        self.core = ov.Core()

    def prefer(self, power_preference: str) -> None:
        self.power_preference = power_preference

    def config(self) -> dict[str, str]:
        """The compile_model properties: exact float32 unless asked otherwise."""
        config = {
            "INFERENCE_PRECISION_HINT": PRECISIONS[self.precision],
            "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
        }
        threads = preferred_threads(self.intra_op_threads, self.power_preference)
        if threads:
            config["INFERENCE_NUM_THREADS"] = str(threads)
        return config

    def compile(self, graph: Graph) -> CompiledGraph:
        batch, chunk, target = self.chunking(graph)

        def chunked(compiled: Any) -> Any:
            return compiled if chunk == batch else ChunkedGraph(compiled, batch, chunk, _view)

        lowered = lower(target, blockwise_quantize=False)
        shared, maps = _shared_constants(lowered)
        fallback = self._fallback(target, lowered) if self.startup_fallback and self.precision == "f32" else None
        if fallback is None:
            return chunked(self._compile(target, lowered, shared, maps))
        return StartupGraph(
            chunked(fallback),
            lambda: chunked(self._compile(target, lowered, shared, maps)),
            releases_constants=not self.keep_constants,
        )

    def chunking(self, graph: Graph) -> tuple[int, int, Graph]:
        """``graph``'s batch, the samples one OpenVINO run of it computes (the ``batch_chunk`` option; the
        batch where it runs whole) and the graph of those samples."""
        batch = batch_size(graph)
        packed = ("int4", "uint4")  # two to a byte: a sample's elements are not a slice of the storage
        descs = [*graph.input_descs().values(), *graph.output_descs().values()]
        axes = sample_axes(graph) if not any(d.data_type in packed for d in descs) else None
        if axes is None:
            return batch, batch, graph
        chunk = self.batch_chunk
        if chunk is None:
            sample = max(largest_sample_bytes(graph, axes), 1)
            chunk = max((k for k in range(1, batch + 1) if batch % k == 0 and k * sample <= CHUNK_BYTES), default=1)
        if chunk >= batch or batch % chunk:
            return batch, batch, graph
        target = chunk_graph(graph, axes, chunk)
        return (batch, batch, graph) if target is None else (batch, chunk, target)

    def _fallback(self, graph: Graph, lowered: Lowered) -> OrtGraph | None:
        """An ONNX Runtime session of ``lowered`` (startup.py), or None where ONNX Runtime refuses the model.

        Without prepacking: ONNX Runtime then uses the weights where they are, and the fallback costs
        no second copy of them."""
        engine = OnnxRuntimeBackend(
            intra_op_threads=preferred_threads(self.intra_op_threads, self.power_preference), prepack_weights=False
        )
        try:
            return engine.compile_lowered(graph, lowered)
        except Exception:  # an ONNX Runtime limit: OpenVINO compiles before build returns, as without a fallback
            return None

    def _compile(
        self, graph: Graph, lowered: Lowered, shared: Mapping[str, np.ndarray], maps: list[mmap.mmap]
    ) -> OvGraph:
        model = _read(self.core, lowered, shared)
        config = self.config()
        if self.cache_dir is not None and not graph.protected:
            config["CACHE_DIR"] = str(self.cache_dir)
        compiled = self.core.compile_model(model, "CPU", config)
        del model
        # OpenVINO holds packed copies of most; it maps back what it reads.  A model file's mappings
        # too: the builder dropped their pages at build, before a background compile read them.
        files = {id(m): m for m in map(file_mapping_of, shared.values()) if m is not None}
        drop_resident_pages([*maps, *files.values()])
        result = OvGraph(graph, compiled, lowered, [*shared.values(), *maps])
        result.releases_constants = not self.keep_constants
        return result

    def create_tensor(self, desc: OperandDesc) -> OvTensor:
        return OvTensor(np.zeros(desc.shape, dtype=storage_dtype(desc.data_type)), desc.data_type)

    def write_tensor(self, handle: OvTensor, array: np.ndarray) -> None:
        np.copyto(handle.array, to_storage(array, handle.data_type))

    def read_tensor(self, handle: OvTensor) -> np.ndarray:
        return from_storage(handle.array.copy(), handle.data_type)

    def constant_data(self, handle: OvTensor) -> np.ndarray:
        return from_storage(handle.array, handle.data_type)

    # Host memory: ov.Tensor(array, shared_memory=True) uses a writable array's memory in place; a
    # read-only one (a bytes object, a read-only DLPack tensor) it refuses, and import_tensor copies.
    host_memory = True

    def import_host_array(self, desc: OperandDesc, array: np.ndarray) -> OvTensor | None:
        if array.dtype != storage_dtype(desc.data_type) or not array.flags.c_contiguous or not array.flags.writeable:
            return None
        tensor = OvTensor(array, desc.data_type)
        return tensor if tensor.value.data.ctypes.data == array.ctypes.data else None

    def host_view(self, handle: OvTensor) -> np.ndarray | None:
        return None if handle.data_type in ("int4", "uint4") else handle.array

    def data_pointer(self, handle: OvTensor) -> int | None:
        return handle.value.data.ctypes.data

    def release_tensor(self, handle: OvTensor) -> None:
        handle.value = None  # type: ignore[assignment]
        handle.array = None  # type: ignore[assignment]

    def supports(self, op: str, argument: str, data_type: str, rank: int) -> bool:
        return handles(op, argument, data_type) and not unsupported(op, argument, data_type)


def _view(tensor: OvTensor, start: int, stop: int) -> OvTensor:
    """Samples ``start:stop`` of a tensor, over its memory (ChunkedGraph)."""
    return OvTensor(tensor.array[start:stop], tensor.data_type)


def _cache_folder(value: object) -> Path | None:
    """The ``cache_dir`` option: None, or a folder (made, owner-only, if missing)."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise TypeError(f"createContext: cache_dir must be a folder path or None, got {value!r}")
    folder = Path(value).expanduser()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise TypeError(f"createContext: cache_dir {str(folder)!r} cannot be made a folder: {error.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TypeError(f"createContext: cache_dir {str(folder)!r} is not a writable folder")
    return folder


def create(**options: Any) -> OpenVinoBackend:
    return OpenVinoBackend(**options)
