"""Compiled graphs and tensors of the webgpu backend: GPU buffers, one submit per dispatch.

Compiling runs every node's kernel once (:mod:`.kernels`), which gives the graph's list of
dispatches with their parameters; the parameters of all of them go into one uniform buffer
written once (each dispatch its own aligned slice: nothing is rewritten while a submission
may read it), and every bind group is made then too.  A dispatch is then one command
encoder: the inputs copied into the graph's input buffers (on the GPU for MLTensors, from
the host for ``compute()``), one compute pass of every dispatch in order, the outputs
copied out, one submit.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ... import dtypes
from ...ir import Graph, OperandDesc
from ..base import CompiledGraph
from .codecs import codec
from .device import Gpu
from .kernels import KERNELS, Emitter
from .program import Slot
from .shaders import pipeline

__all__ = ["GpuTensor", "WebGpuGraph", "exported_buffer", "read_buffer", "revoke_export", "write_buffer"]


def _usage() -> Any:
    import wgpu

    return wgpu.BufferUsage


def buffer_bytes(desc: OperandDesc) -> int:
    return 4 * codec(desc.data_type).buffer_words(desc.element_count)


def new_buffer(gpu: Gpu, desc: OperandDesc, label: str = "") -> Any:
    u = _usage()
    return gpu.device.create_buffer(size=buffer_bytes(desc), usage=u.STORAGE | u.COPY_SRC | u.COPY_DST, label=label)


def _host_bytes(desc: OperandDesc, array: np.ndarray) -> bytes:
    raw = dtypes.to_bytes(desc.data_type, np.asarray(array).reshape(desc.shape))
    return raw + b"\0" * (buffer_bytes(desc) - len(raw))


def write_buffer(gpu: Gpu, buffer: Any, desc: OperandDesc, array: np.ndarray) -> None:
    """Copy a host array into ``buffer`` (the only host-to-GPU transfer)."""
    with gpu.lock:
        gpu.device.queue.write_buffer(buffer, 0, _host_bytes(desc, array))


def read_buffer(gpu: Gpu, buffer: Any, desc: OperandDesc) -> np.ndarray:
    """A host copy of ``buffer`` (the only GPU-to-host transfer)."""
    with gpu.lock:
        raw = gpu.device.queue.read_buffer(buffer, 0, buffer_bytes(desc))
    return dtypes.from_bytes(desc.data_type, bytes(raw), desc.shape)


class GpuTensor:
    """An MLTensor of this backend: a GPU buffer of the tensor's packed bytes."""

    __slots__ = ("buffer", "desc", "exported")

    def __init__(self, buffer: Any, desc: OperandDesc) -> None:
        self.buffer = buffer
        self.desc = desc
        self.exported: Any = None  # the GPUBuffer object rented out by export_to_gpu, if any


class WebGpuGraph(CompiledGraph):
    def __init__(self, gpu: Gpu, graph: Graph) -> None:
        missing = sorted({n.op for n in graph.nodes} - KERNELS.keys())
        if missing:
            raise NotImplementedError(f"no webgpu kernel for {', '.join(missing)}")
        self.gpu = gpu
        self.input_descs = graph.input_descs()
        self.output_descs = graph.output_descs()
        slots = {oid: Slot(oid, desc) for oid, desc in graph.operands.items()}
        k = Emitter(gpu, max(slots, default=0) + 1)
        for node in graph.nodes:
            args = {
                name: [slots[i] for i in ids] if isinstance(ids, tuple) else slots[ids]
                for name, ids in node.inputs.items()
            }
            outs = [slots[o] for o in node.outputs]
            k.op = node.op
            KERNELS[node.op].fn(k, **args, out=outs[0] if len(outs) == 1 else outs, **node.attrs)
        slots.update(k.scratch_slots)
        used = {s for step in k.steps for s in step.bindings.values()}
        used |= set(graph.inputs.values()) | set(graph.outputs.values())
        self.buffers = {oid: new_buffer(gpu, slots[oid].desc, f"operand {oid}") for oid in sorted(used)}
        for oid, array in graph.constants.items():
            if oid in self.buffers:
                write_buffer(gpu, self.buffers[oid], slots[oid].desc, array)
        self.inputs = dict(graph.inputs)
        self.outputs = dict(graph.outputs)
        self._passes = self._bind(k)
        self._lock = threading.Lock()

    def _bind(self, k: Emitter) -> list[tuple[Any, Any, tuple[int, int]]]:
        """Pipelines, bind groups and grids of every dispatch; their parameters in one uniform buffer."""
        gpu, u = self.gpu, _usage()
        align = gpu.uniform_alignment
        offsets, total = [], 0
        for step in k.steps:
            offsets.append(total)
            total += -(-4 * len(step.params) // align) * align
        uniforms = gpu.device.create_buffer(size=max(total, align), usage=u.UNIFORM | u.COPY_DST, label="parameters")
        blob = bytearray(max(total, align))
        for step, offset in zip(k.steps, offsets):
            blob[offset : offset + 4 * len(step.params)] = np.asarray(step.params, dtype="<u4").tobytes()
        with gpu.lock:
            gpu.device.queue.write_buffer(uniforms, 0, bytes(blob))
        self._uniforms = uniforms
        passes = []
        for step, offset in zip(k.steps, offsets):
            if not step.groups[0]:
                continue  # an empty output: nothing to compute
            pipe = pipeline(gpu.device, step.name, step.source)
            entries = [{"binding": 0, "resource": {"buffer": uniforms, "offset": offset, "size": 4 * len(step.params)}}]
            entries += [{"binding": b, "resource": {"buffer": self.buffers[s]}} for b, s in step.bindings.items()]
            group = gpu.device.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=entries)
            passes.append((pipe, group, step.groups))
        return passes

    def _encode(self, copy_in: Mapping[str, Any], copy_out: Mapping[str, Any]) -> Any:
        device = self.gpu.device
        encoder = device.create_command_encoder()
        for name, buffer in copy_in.items():
            target = self.buffers[self.inputs[name]]
            encoder.copy_buffer_to_buffer(buffer, 0, target, 0, target.size)
        if self._passes:
            compute = encoder.begin_compute_pass()
            for pipe, group, (gx, gy) in self._passes:
                compute.set_pipeline(pipe)
                compute.set_bind_group(0, group)
                compute.dispatch_workgroups(gx, gy, 1)
            compute.end()
        for name, buffer in copy_out.items():
            source = self.buffers[self.outputs[name]]
            encoder.copy_buffer_to_buffer(source, 0, buffer, 0, source.size)
        return encoder.finish()

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        gpu = self.gpu
        with self._lock:
            for name, array in inputs.items():
                write_buffer(gpu, self.buffers[self.inputs[name]], self.input_descs[name], array)
            commands = self._encode({}, {})
            with gpu.lock:
                gpu.device.queue.submit([commands])
            return {
                name: read_buffer(gpu, self.buffers[oid], self.output_descs[name]) for name, oid in self.outputs.items()
            }

    def dispatch(self, inputs: Mapping[str, GpuTensor], outputs: Mapping[str, GpuTensor]) -> None:
        with self._lock:
            commands = self._encode({n: t.buffer for n, t in inputs.items()}, {n: t.buffer for n, t in outputs.items()})
            with self.gpu.lock:
                self.gpu.device.queue.submit([commands])

    def release(self) -> None:
        with self._lock:
            for buffer in self.buffers.values():
                buffer.destroy()
            self.buffers = {}
            self._passes = []


def exported_buffer(tensor: GpuTensor, on_return: Callable[[], None]) -> Any:
    """``tensor``'s own buffer as a second ``GPUBuffer`` object for the caller (no copy), whose
    ``destroy()`` returns the tensor to WebNN instead of destroying its memory."""
    buffer = tensor.buffer
    alias = object.__new__(_exported_class(type(buffer)))
    alias.__dict__.update(buffer.__dict__)  # the same native buffer: wgpu reads only these fields
    alias.__dict__.update(_source=buffer, _on_return=on_return)
    tensor.exported = alias
    return alias


@functools.cache
def _exported_class(base: type) -> type:
    class ExportedGPUBuffer(base):  # type: ignore[misc, valid-type]
        """A tensor's buffer rented to WebGPU: destroy() gives it back; the tensor keeps the memory."""

        def destroy(self) -> None:
            if self._internal is not None:
                self._internal = None  # this object is unusable from now on, as a destroyed buffer is
                self._on_return()

        def _release(self) -> None:
            self._internal = None  # the tensor's own buffer object releases the native buffer

        def __del__(self) -> None:  # nothing of its own to release or count
            self._internal = None

    return ExportedGPUBuffer


def revoke_export(tensor: GpuTensor) -> None:
    """The tensor is destroyed while rented: its exported buffer object stops pointing at the memory."""
    if tensor.exported is not None:
        tensor.exported.__dict__["_internal"] = None
        tensor.exported = None
