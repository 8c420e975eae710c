"""context.import_tensor (zero-copy host memory in, non-spec) and MLTensor's __dlpack__ / __array_interface__ out."""

from __future__ import annotations

import doctest
import gc
import weakref

import av
import numpy as np
import pytest

import webml
import webml.api.imports

SHARING = ["onnxruntime", "openvino"]


def _add_one(context, shape, data_type="float32"):
    b = webml.MLGraphBuilder(context)
    x = b.input("x", {"dataType": data_type, "shape": shape})
    return b.build({"y": b.add(x, b.constant(data_type, 1))})


def test_doctests():
    result = doctest.testmod(webml.api.imports, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("backend", SHARING)
def test_numpy_array_is_shared_not_copied(backend):
    context = webml.ml.create_context(backend=backend)
    source = np.arange(12, dtype=np.float32).reshape(3, 4)
    tensor = context.import_tensor(source)
    assert tensor.shares_memory and tensor.readable and tensor.writable
    assert context.data_pointer(tensor) == source.ctypes.data  # the engine's pointer is the array's
    assert context.import_copies == 0
    graph = _add_one(context, [3, 4])
    out = context.create_tensor({"dataType": "float32", "shape": [3, 4], "readable": True})
    source[1, 2] = 100  # changed after the import: the engine sees it
    context.dispatch(graph, {"x": tensor}, {"y": out})
    expected = source.astype(np.float64) + 1
    np.testing.assert_array_equal(context.read_tensor(out), expected.astype(np.float32))
    context.write_tensor(tensor, np.zeros((3, 4), np.float32))  # writes go to the source's memory
    assert not source.any()


@pytest.mark.parametrize("backend", SHARING)
def test_pyav_plane_is_shared(backend):
    context = webml.ml.create_context(backend=backend)
    frame = av.VideoFrame(64, 48, "yuv420p")
    plane = frame.planes[1]
    tensor = context.import_tensor(plane)
    assert tensor.shape == [plane.height, plane.line_size] and tensor.data_type == "uint8"
    assert context.data_pointer(tensor) == plane.buffer_ptr
    assert tensor.shares_memory and context.import_copies == 0


@pytest.mark.parametrize("backend", SHARING)
def test_imported_output_is_written_in_place(backend):
    context = webml.ml.create_context(backend=backend)
    graph = _add_one(context, [5])
    x = context.import_tensor(np.arange(5, dtype=np.float32))
    target = np.zeros(5, np.float32)
    context.dispatch(graph, {"x": x}, {"y": context.import_tensor(target)})
    np.testing.assert_array_equal(target, np.arange(1, 6, dtype=np.float32))


@pytest.mark.parametrize("backend", [*SHARING, "reference"])
def test_source_is_kept_alive(backend):
    context = webml.ml.create_context(backend=backend)

    class Buffer(bytearray):  # a weak-referenceable buffer owner
        pass

    source = Buffer(range(16))
    ref = weakref.ref(source)
    tensor = context.import_tensor(source)
    del source
    gc.collect()
    if tensor.shares_memory:
        assert ref() is not None  # the tensor holds it
    np.testing.assert_array_equal(context.read_tensor(tensor), np.arange(16, dtype=np.uint8))
    del tensor
    gc.collect()
    assert ref() is None


def test_read_only_source_gives_read_only_tensor():
    context = webml.ml.create_context(backend="onnxruntime")
    source = bytes(range(8))
    tensor = context.import_tensor(source)
    assert tensor.shares_memory and not tensor.writable and tensor.read_only_memory
    with pytest.raises(TypeError, match="not writable"):
        context.write_tensor(tensor, np.zeros(8, np.uint8))
    with pytest.raises(TypeError, match="writable=True, but the source's memory is read-only"):
        context.import_tensor(source, writable=True)
    b = webml.MLGraphBuilder(context)
    x = b.input("x", {"dataType": "uint8", "shape": [8]})
    graph = b.build({"y": b.add(x, b.constant("uint8", 1))})
    with pytest.raises(TypeError, match="output 'y' is imported read-only memory"):
        context.dispatch(graph, {"x": context.import_tensor(bytearray(8))}, {"y": tensor})
    out = context.create_tensor({"dataType": "uint8", "shape": [8], "readable": True})
    context.dispatch(graph, {"x": tensor}, {"y": out})
    np.testing.assert_array_equal(context.read_tensor(out), np.arange(1, 9, dtype=np.uint8))
    exported = np.asarray(tensor)
    assert not exported.flags.writeable


def test_copies_are_counted_where_the_backend_cannot_share():
    # openvino refuses read-only memory; the reference oracle keeps arrays of its own;
    # a non-contiguous array cannot be shared by anyone.
    ov = webml.ml.create_context(backend="openvino")
    tensor = ov.import_tensor(bytes(4))
    assert not tensor.shares_memory and ov.import_copies == 1
    ref = webml.ml.create_context(backend="reference")
    source = np.ones((2, 2), np.float32)
    tensor = ref.import_tensor(source)
    assert not tensor.shares_memory and ref.import_copies == 1
    source[:] = 5  # a copy: the tensor keeps the values it had
    np.testing.assert_array_equal(ref.read_tensor(tensor), np.ones((2, 2), np.float32))
    ort = webml.ml.create_context(backend="onnxruntime")
    strided = np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2]
    tensor = ort.import_tensor(strided)
    assert not tensor.shares_memory and ort.import_copies == 1
    np.testing.assert_array_equal(ort.read_tensor(tensor), strided)


class _DLPackOnly:
    """An object that offers only DLPack, as a PyTorch CPU tensor does."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_dlpack_source_is_shared():
    context = webml.ml.create_context(backend="onnxruntime")
    source = np.arange(6, dtype=np.int32).reshape(2, 3)
    tensor = context.import_tensor(_DLPackOnly(source))
    assert tensor.data_type == "int32" and tensor.shape == [2, 3]
    assert context.data_pointer(tensor) == source.ctypes.data


def test_dlpack_on_a_gpu_is_refused():
    class OnGpu(_DLPackOnly):
        def __dlpack_device__(self):
            return (2, 0)  # kDLCUDA

    context = webml.ml.create_context(backend="onnxruntime")
    with pytest.raises(TypeError, match="device type 2, not in host memory"):
        context.import_tensor(OnGpu(np.zeros(3, np.float32)))


@pytest.mark.parametrize("backend", [*SHARING, "reference"])
def test_export_round_trips_without_copy(backend):
    context = webml.ml.create_context(backend=backend)
    graph = _add_one(context, [2, 3])
    out = context.create_tensor({"dataType": "float32", "shape": [2, 3], "readable": True})
    context.dispatch(graph, {"x": context.import_tensor(np.full((2, 3), 2, np.float32))}, {"y": out})
    via_interface = np.asarray(out)
    via_dlpack = np.from_dlpack(out)
    np.testing.assert_array_equal(via_interface, np.full((2, 3), 3, np.float32))
    np.testing.assert_array_equal(via_dlpack, via_interface)
    assert via_interface.ctypes.data == context.data_pointer(out) == via_dlpack.ctypes.data
    assert not via_interface.flags.writeable
    context.dispatch(graph, {"x": context.import_tensor(np.full((2, 3), 5, np.float32))}, {"y": out})
    np.testing.assert_array_equal(via_dlpack, np.full((2, 3), 6, np.float32))  # a view: the next result shows
    again = np.asarray(out)
    assert again.ctypes.data == via_interface.ctypes.data
    out.destroy()
    np.testing.assert_array_equal(via_interface, np.full((2, 3), 6, np.float32))  # memory still alive


def test_export_refusals():
    context = webml.ml.create_context(backend="onnxruntime")
    hidden = context.create_tensor({"dataType": "float32", "shape": [2]})
    with pytest.raises(TypeError, match="not readable"):
        np.asarray(hidden)
    gone = context.create_tensor({"dataType": "float32", "shape": [2], "readable": True})
    gone.destroy()
    with pytest.raises(TypeError, match="destroyed"):
        np.from_dlpack(gone)


@pytest.mark.parametrize(
    "bad, message",
    [
        (object(), "expected a NumPy array, a DLPack tensor"),
        (np.zeros(3, np.complex64), "dtype complex64 has no MLOperandDataType"),
        (np.zeros(3, ">f4"), "has no MLOperandDataType"),
        (np.zeros(3, bool), "dtype bool has no MLOperandDataType"),
    ],
)
def test_bad_sources(bad, message):
    context = webml.ml.create_context(backend="onnxruntime")
    with pytest.raises(TypeError, match=message):
        context.import_tensor(bad)
    with pytest.raises(TypeError, match="writable must be a bool"):
        context.import_tensor(np.zeros(2, np.float32), writable="yes")
