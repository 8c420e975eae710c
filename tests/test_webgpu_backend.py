"""The webgpu backend's own contract: tensors are GPU buffers, dispatches stay on the GPU, every data
type's storage round-trips, and it reports exactly what its kernels run (lavapipe on CI machines)."""

from __future__ import annotations

import numpy as np
import pytest
import wgpu

import webml
from webml import dtypes
from webml.backends.webgpu import KERNELS
from webml.backends.webgpu.runtime import GpuTensor
from webml.backends.webgpu.shaders import seen

TYPES = ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8", "int4", "uint4")


@pytest.fixture(scope="module")
def context():
    return webml.ml.create_context(backend="webgpu")


def _values(data_type, shape, seed=0, bound=2**40):
    rng = np.random.default_rng(seed)
    if dtypes.is_float(data_type):
        return rng.standard_normal(shape).astype(dtypes.numpy_dtype(data_type))
    lo, hi = dtypes.int_bounds(data_type)
    return rng.integers(max(lo, -bound), min(hi, bound), size=shape, endpoint=True).astype(
        dtypes.numpy_dtype(data_type)
    )


@pytest.mark.parametrize("data_type", TYPES)
def test_tensors_round_trip_every_data_type(context, data_type):
    """write_tensor / read_tensor keep every bit, whatever the packing (odd sizes included)."""
    for shape in ((), (1,), (3,), (5, 7)):
        desc = {"dataType": data_type, "shape": list(shape), "readable": True, "writable": True}
        tensor = context.create_tensor(desc)
        values = _values(data_type, shape)
        context.write_tensor(tensor, values)
        np.testing.assert_array_equal(context.read_tensor(tensor), values)


def test_a_tensor_is_a_gpu_buffer(context):
    tensor = context.create_tensor({"dataType": "float16", "shape": [3], "readable": True})
    handle = webml.api.tensor.backend_handle(tensor)
    assert isinstance(handle, GpuTensor) and isinstance(handle.buffer, wgpu.GPUBuffer)
    assert handle.buffer.size == 8  # three float16 elements, two per word


def test_chained_dispatches_stay_on_the_gpu(context):
    b = webml.MLGraphBuilder(context)
    x = b.input("x", {"dataType": "float32", "shape": [4]})
    g = b.build(
        {"y": b.mul(b.add(x, x), b.constant({"dataType": "float32", "shape": [4]}, np.full(4, 0.5, np.float32)))}
    )
    t = [
        context.create_tensor({"dataType": "float32", "shape": [4], "readable": True, "writable": True}) for _ in "abc"
    ]
    context.write_tensor(t[0], np.arange(4, dtype=np.float32))
    context.dispatch(g, {"x": t[0]}, {"y": t[1]})
    context.dispatch(g, {"x": t[1]}, {"y": t[2]})  # reads what the first dispatch wrote, on the GPU
    np.testing.assert_array_equal(context.read_tensor(t[2]), np.arange(4, dtype=np.float32))


def test_create_context_takes_the_users_gpu_device():
    adapter = wgpu.gpu.request_adapter_sync()
    device = adapter.request_device_sync()
    context = webml.ml.create_context(device)
    assert context.backend == "webgpu"
    b = webml.MLGraphBuilder(context)
    x = b.input("x", {"dataType": "int32", "shape": [3]})
    g = b.build({"y": b.sub(x, b.constant({"dataType": "int32", "shape": [1]}, np.array([1], np.int32)))})
    np.testing.assert_array_equal(context.compute(g, {"x": np.array([1, 2, 3], np.int32)})["y"], [0, 1, 2])
    with pytest.raises(TypeError, match="webgpu backend"):
        webml.ml.create_context(device, backend="onnxruntime")
    with pytest.raises(TypeError, match="gpu_device must be a wgpu.GPUDevice"):
        webml.ml.create_context(backend="webgpu", gpu_device="cuda:0")


def test_support_limits_are_the_kernels(context):
    """op_support_limits() lists exactly the operators with a webgpu kernel; the builder refuses the rest."""
    limits = context.op_support_limits()
    for name in webml.ops.OPS:
        types = limits[name]["output" if "output" in limits[name] else next(iter(limits[name]))]["dataTypes"]
        assert bool(types) == (name in KERNELS), name


@pytest.mark.parametrize("data_type", ["float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8"])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "max", "min", "pow"])
def test_binary_operators_match_the_reference(op, data_type):
    """Broadcast element-wise arithmetic against the float64 reference, with integer saturation
    (64-bit integers within the 32 bits they are computed in, see webgpu/codecs.py)."""
    shape_a, shape_b = (2, 1, 5), (3, 1)
    bound = 2**31 - 1 if "64" not in data_type else 2**15
    a, b = _values(data_type, shape_a, 1, bound), _values(data_type, shape_b, 2, bound)
    if data_type == "uint64" and op == "sub":
        b = np.minimum(b, a.min())  # the reference wraps uint64 below 0 (NumPy), a 32-bit compute cannot
    if not dtypes.is_float(data_type):
        if op == "pow":
            a, b = a % 7, np.abs(b % 5).astype(b.dtype)
        a, b = a.astype(a.dtype), b.astype(b.dtype)
    results = {}
    for backend in ("reference", "webgpu"):
        ctx = webml.ml.create_context(backend=backend)
        builder = webml.MLGraphBuilder(ctx)
        x = builder.input("a", {"dataType": data_type, "shape": list(shape_a)})
        y = builder.input("b", {"dataType": data_type, "shape": list(shape_b)})
        graph = builder.build({"out": getattr(builder, op)(x, y)})
        results[backend] = ctx.compute(graph, {"a": a, "b": b})["out"]
    if dtypes.is_float(data_type):
        np.testing.assert_allclose(
            results["webgpu"], results["reference"], rtol=2e-6 if data_type == "float32" else 1e-3
        )
    else:
        np.testing.assert_array_equal(results["webgpu"], results["reference"])


def test_every_compiled_kernel_is_recorded(context):
    """shaders.seen() is what the Tint check reads: every source, by kernel name."""
    names = seen()
    # A program is named for its operator or family, and a part ("softmax_max", "matmul-plain-<hash>").
    known = KERNELS.keys() | set(webml.ops.FAMILIES)
    assert names and all(name.split("-")[0].split("_")[0] in known for name in names), sorted(names)


def test_export_to_gpu_rents_the_tensors_own_buffer():
    """exportToGPU (the MLTensor explainer): the caller's WebGPU work reads and writes the tensor's memory
    with no copy; WebNN cannot use it until the caller destroys the exported buffer."""
    adapter = wgpu.gpu.request_adapter_sync()
    device = adapter.request_device_sync()
    context = webml.ml.create_context(device)
    b = webml.MLGraphBuilder(context)
    x = b.input("x", {"dataType": "float32", "shape": [4]})
    graph = b.build({"y": b.mul(x, x)})
    flags = {"dataType": "float32", "shape": [4], "readable": True, "writable": True, "exportableToGPU": True}
    t_in, t_out = context.create_tensor(flags), context.create_tensor(flags)
    assert t_in.exportable_to_gpu
    context.write_tensor(t_in, np.array([1, 2, 3, 4], np.float32))
    context.dispatch(graph, {"x": t_in}, {"y": t_out})
    buffer = context.export_to_gpu(t_out)
    assert isinstance(buffer, wgpu.GPUBuffer) and buffer.size == 16
    # The user's own shader adds 1 to every element of the rented buffer.
    shader = device.create_shader_module(
        code="@group(0) @binding(0) var<storage, read_write> t: array<f32>;\n"
        "@compute @workgroup_size(4) fn main(@builtin(global_invocation_id) g: vec3<u32>) { t[g.x] += 1.0; }"
    )
    pipe = device.create_compute_pipeline(layout="auto", compute={"module": shader, "entry_point": "main"})
    group = device.create_bind_group(
        layout=pipe.get_bind_group_layout(0), entries=[{"binding": 0, "resource": {"buffer": buffer}}]
    )
    encoder = device.create_command_encoder()
    compute = encoder.begin_compute_pass()
    compute.set_pipeline(pipe)
    compute.set_bind_group(0, group)
    compute.dispatch_workgroups(1)
    compute.end()
    device.queue.submit([encoder.finish()])
    with pytest.raises(webml.InvalidStateError, match="readTensor: the tensor is exported to WebGPU"):
        context.read_tensor(t_out)
    with pytest.raises(webml.InvalidStateError, match="dispatch: the tensor is exported"):
        context.dispatch(graph, {"x": t_in}, {"y": t_out})
    buffer.destroy()  # returns the tensor to WebNN; its memory stays
    np.testing.assert_array_equal(context.read_tensor(t_out), [2, 5, 10, 17])
    with pytest.raises(TypeError, match="not exportable"):
        context.export_to_gpu(context.create_tensor({"dataType": "float32", "shape": [1]}))
    with pytest.raises(webml.NotSupportedError, match="onnxruntime backend's tensors are not on a GPU"):
        cpu = webml.ml.create_context(backend="onnxruntime")
        cpu.export_to_gpu(cpu.create_tensor(flags))
    exported = context.export_to_gpu(t_in)
    t_in.destroy()  # destroyed while rented: the exported object no longer points at freed memory
    assert exported._internal is None
