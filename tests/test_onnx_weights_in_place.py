"""``webml.onnx.load`` of a model file uses its large weights in place: arrays over a private mapping of the
file (webml.storage.FileMapping), not copies into webml's storage; once built, their pages leave resident
memory, and the graph still computes what ONNX Runtime computes from the same file."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import webml
import webml.onnx
from test_openvino_backend import resident_bytes
from webml import storage

WIDTH = 512  # 1 MiB weights: lifted out of the protobuf and large enough to go to storage if copied


def _mlp(path: Path, *, seed: int = 0, rows: int | str = WIDTH, width: int = WIDTH) -> dict[str, np.ndarray]:
    """A model file of two MatMuls (weights the engines pack) and a large Add (read as it is); ``rows``
    of x: a number, or a name (a dynamic dimension)."""
    rng = np.random.default_rng(seed)
    weights = {
        "w0": rng.standard_normal((width, width)).astype(np.float32),
        "w1": rng.standard_normal((width, width)).astype(np.float32),
        "bias": rng.standard_normal((width, width)).astype(np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w1"], ["m"]),
        helper.make_node("Add", ["m", "bias"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, width])],
        [numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return weights


def _resident_bytes_of(path: Path) -> int:
    """Resident bytes of this process's mappings of ``path``."""
    return resident_bytes(lambda header: header.endswith(str(path)))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_weights_are_used_in_place_and_leave_resident_memory(tmp_path, backend, monkeypatch):
    path = tmp_path / "mlp.onnx"
    _mlp(path)
    x = np.random.default_rng(1).standard_normal((WIDTH, WIDTH)).astype(np.float32)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    def no_copies(self, array, directory):
        raise AssertionError(f"a weight of {array.nbytes} bytes was copied into webml's storage")

    monkeypatch.setattr(storage.ConstantStore, "_copy_to_file", no_copies)
    context = webml.ml.create_context(backend=backend, intra_op_threads=1)
    graph = webml.onnx.load(path, context)
    assert graph.wait_for_engine(60)  # openvino: OpenVINO has compiled it (it starts on ONNX Runtime)
    assert _resident_bytes_of(path) < 1 << 20  # dropped after build: the engine has what it packed
    gc.collect()
    got = context.compute(graph, {"x": x})["y"]  # the engine's views of the mapping are still valid
    if backend == "onnxruntime":
        np.testing.assert_array_equal(got, expected)  # the same engine on the same weights
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
    # The Add reads its weight as it is, from the page cache: at most it and a little more map back.
    assert _resident_bytes_of(path) < (WIDTH * WIDTH * 4) + (1 << 20)


def _anonymous_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))


def test_onnx_runtime_maps_a_model_files_weights_from_the_file_not_a_copy(tmp_path):
    """ONNX Runtime copies an OrtValue it is given as an initializer; a weight that lies in the model file is
    handed over as the file's external data instead, which it maps (here without prepacking, which would
    make packed copies of the MatMuls' weights by design)."""
    path = tmp_path / "mlp.onnx"
    weights = _mlp(path, width=1024, rows=1024)  # 12 MiB of weights
    x = np.random.default_rng(1).standard_normal((1024, 1024)).astype(np.float32)
    context = webml.ml.create_context(backend="onnxruntime", prepack_weights=False, intra_op_threads=1)
    gc.collect()
    storage.return_freed_memory()
    before = _anonymous_bytes()
    graph = webml.onnx.load(path, context)  # fixed shapes: the session is made here
    assert _anonymous_bytes() - before < sum(w.nbytes for w in weights.values()) / 4
    got = context.compute(graph, {"x": x})["y"]
    expected = np.maximum(x.astype(np.float64) @ weights["w0"], 0) @ weights["w1"] + weights["bias"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_model_built_later_reads_the_loaded_file_even_once_another_is_renamed_over_it(tmp_path, backend):
    """The engine reads the weights of the file that was loaded (its descriptor, kept open while the weights
    are in use), not whatever file has that name when a dynamic model's graph is built at its first call."""
    path = tmp_path / "mlp.onnx"
    weights = _mlp(path, rows="n")
    model = webml.onnx.load(path, webml.ml.create_context(backend=backend, intra_op_threads=1))
    _mlp(tmp_path / "other.onnx", seed=1, rows="n")
    (tmp_path / "other.onnx").replace(path)
    x = np.random.default_rng(2).standard_normal((WIDTH, WIDTH)).astype(np.float32)  # the Add fixes n
    expected = np.maximum(x.astype(np.float64) @ weights["w0"], 0) @ weights["w1"] + weights["bias"]
    for _ in range(2):  # on openvino: ONNX Runtime's first call, then OpenVINO's
        np.testing.assert_allclose(model({"x": x})["y"], expected, rtol=1e-4, atol=1e-3)


def test_kept_constants_are_read_only_views_of_the_file_and_save_as_they_were(tmp_path):
    path = tmp_path / "mlp.onnx"
    weights = _mlp(path)
    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
    graph = webml.onnx.load(path, context)
    large = [a for a in graph.ir.constants.values() if a.nbytes >= storage.SHARED_THRESHOLD]
    assert len(large) == 3
    for array in large:
        assert storage.file_mapping_of(array) is not None
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0, 0] = 1.0
    saved = onnx.load(webml.onnx.save(graph, tmp_path / "saved.onnx"))
    stored = sorted((numpy_helper.to_array(t) for t in saved.graph.initializer if t.dims), key=lambda a: a.tobytes())
    wanted = sorted(weights.values(), key=lambda a: a.tobytes())
    assert len(stored) == len(wanted)
    for a, b in zip(stored, wanted):
        np.testing.assert_array_equal(a, b)


def test_a_constant_the_caller_gives_is_still_copied(tmp_path):
    """Only webml's own mapping of a model file is used in place: the spec's copy-on-constant() holds for
    every array a caller passes, read-only or not."""
    data = np.arange(storage.SHARED_THRESHOLD, dtype=np.float32)
    data.flags.writeable = False
    context = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
    builder = webml.MLGraphBuilder(context)
    k = builder.constant({"dataType": "float32", "shape": [data.size]}, data)
    x = builder.input("x", {"dataType": "float32", "shape": [data.size]})
    graph = builder.build({"y": builder.add(x, k)})
    (kept,) = [a for a in graph.ir.constants.values() if a.size == data.size]
    assert not np.shares_memory(kept, data)
