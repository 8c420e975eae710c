"""The ONNX importer: an ONNX model rebuilt with :class:`~webml.MLGraphBuilder`.

``load(model, context)`` reads the model, fixes its dynamic dimensions,
checks every node against what the importer supports (reporting all
problems at once, before anything is built), then walks the graph in
order.  Each value is either

* a *static* value, a NumPy array known at import time: initializers,
  ``Constant`` nodes, ``Shape``/``Size`` of operands (every MLOperand has a
  static shape), and every node whose inputs are all static, which is
  folded with ONNX's own reference implementation (``onnx.reference``); or
* an :class:`~webml.MLOperand` built by the op's importer
  (:mod:`webml.onnx.importers`).

Static values become ``builder.constant(...)`` only where an operand needs
them, so the shape arithmetic of exported models (Shape -> Gather -> Concat
-> Reshape) leaves static arguments for Reshape, Expand, Tile, Slice, Pad
and Resize.

Types webml lacks: ``bool`` tensors are ``uint8`` (0 or 1), as WebNN's
logical operators produce; ``float64`` constants become ``float32`` (with a
warning); other types (float64 operands, int16, strings, ...) are refused.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import TensorProto, helper, numpy_helper

from .. import dtypes
from ..api.builder import MLGraphBuilder, is_produced
from ..api.context import MLContext
from ..api.graph import MLGraph
from ..api.operand import MLOperand
from ..errors import DOMException
from ..files import RefusedFileError, open_regular_file
from ..storage import map_file
from .common import WEBML_TYPES, prod, type_name
from .errors import OnnxImportError
from .importers import HANDLERS
from .validate import PACKED_4BIT, decode_lifted, tensor_type_problem, validate_model
from .wire import lift

if TYPE_CHECKING:
    from .session import DynamicGraph

__all__ = ["OnnxImportError", "UnsupportedModelError", "load", "read_model", "unsupported_operators"]


#: Another name for :class:`OnnxImportError`.
UnsupportedModelError = OnnxImportError

#: Ops whose output is static whatever their input (webml shapes are static).
SHAPE_OPS = frozenset({"Shape", "Size"})
#: Ops that are never folded (they carry subgraphs or randomness).
NO_FOLD = frozenset(
    {
        "If",
        "Loop",
        "Scan",
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
    }
)
#: Ops that prepare weights (an int8 weight's Cast or DequantizeLinear and scaling, a transpose ...):
#: on a large initializer, and for a backend that folds constants, they are built as graph operations
#: rather than computed at import time (see Analysis).
WEIGHT_OPS = frozenset(
    {
        "Add",
        "Cast",
        "Concat",
        "DequantizeLinear",
        "Div",
        "Flatten",
        "Identity",
        "Mul",
        "Neg",
        "Reshape",
        "Squeeze",
        "Sub",
        "Transpose",
        "Unsqueeze",
    }
)


# -- reading -------------------------------------------------------------------------


def read_model(
    path_or_model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    base_dir: str | os.PathLike[str] | None = None,
    *,
    decoded: dict[str, np.ndarray] | None = None,
    in_place: bool = False,
) -> onnx.ModelProto:
    """A checked ONNX ModelProto from a path, serialized bytes or a ModelProto.

    The large weights of ``bytes`` are read where they lie (``decoded`` gets arrays over them), as a
    file's are; those of a read-only memoryview too with ``in_place`` (its memory must not change while
    the arrays are used: webml.protected's decrypted model); other buffers are copied first.

    External data is read from ``base_dir``: by default the model's folder
    for a path; bytes and ModelProtos have none, so their external data is
    refused unless ``base_dir`` is given.  Every external-data file must lie
    inside ``base_dir`` (symlinks resolved) and hold what the tensor
    declares.  The model is checked by :func:`webml.onnx.validate.validate_model`
    (which fills ``decoded`` with initializers' arrays it has read).  A problem
    raises :class:`OnnxImportError` (``TypeError`` for a wrong type).
    """
    if base_dir is not None and not isinstance(base_dir, (str, os.PathLike)):
        raise TypeError(f"webml.onnx.load: base_dir must be a path, got {type(base_dir).__name__}")
    raw_data: dict[int, memoryview] = {}
    if isinstance(path_or_model, onnx.ModelProto):
        model, what = path_or_model, "the ModelProto"
    elif isinstance(path_or_model, bytes) or (
        in_place and isinstance(path_or_model, memoryview) and path_or_model.readonly and path_or_model.c_contiguous
    ):
        # Memory nobody changes: the large weights are read where they lie, as a file's are (no protobuf copy).
        what = "the bytes"
        model, raw_data = _parse_view(memoryview(path_or_model).cast("B"), what)
    elif isinstance(path_or_model, (bytearray, memoryview)):
        model, what = _parse(bytes(path_or_model), "the bytes"), "the bytes"
    elif isinstance(path_or_model, (str, os.PathLike)):
        path = Path(path_or_model)
        what = repr(str(path))
        try:
            with open_regular_file(path) as f:  # a FIFO named model.onnx would block a plain read
                model, raw_data = _parse_file(f, what)
        except FileNotFoundError:
            raise OnnxImportError(f"webml.onnx.load: no such file: {what}") from None
        except RefusedFileError as exc:
            raise OnnxImportError(f"webml.onnx.load: {what} {exc.reason}") from None
        except OSError as exc:
            raise OnnxImportError(f"webml.onnx.load: {what} cannot be read ({exc.strerror or exc})") from None
        base_dir = path.parent if base_dir is None else base_dir
    else:
        raise TypeError(
            f"webml.onnx.load: expected a path, bytes or an onnx.ModelProto, got {type(path_or_model).__name__}"
        )
    _check_parsed(model, what)
    lifted = _decode_lifted(model, raw_data, decoded)
    external = list(_external_tensors(model.graph))
    if external:
        if base_dir is None:
            raise OnnxImportError(
                f"webml.onnx.load: {what} refers to external data, which is only read from a folder named "
                "by base_dir= (or beside a model loaded by path)"
            )
        if model is path_or_model:  # never change the caller's ModelProto
            model = onnx.ModelProto()
            model.CopyFrom(path_or_model)
            external = list(_external_tensors(model.graph))
        for tensor in external:
            _read_external(tensor, Path(base_dir), what)
    validate_model(model, decoded, lifted)
    return model


def _decode_lifted(
    model: onnx.ModelProto, raw_data: Mapping[int, memoryview], decoded: dict[str, np.ndarray] | None
) -> frozenset[str]:
    """Put the lifted initializers' arrays in ``decoded`` (their names are returned); one that does not
    decode plainly, shares its name, or has no ``decoded`` to go to gets its raw data back, to be checked
    as any other."""
    initializers = model.graph.initializer
    names = collections.Counter(t.name for t in initializers)
    lifted = set()
    for index, raw in raw_data.items():
        tensor = initializers[index] if index < len(initializers) else None
        if tensor is None:  # the parse disagrees with the scan: not expected; nothing to attach it to
            continue
        array = decode_lifted(tensor, raw) if decoded is not None and names[tensor.name] == 1 else None
        if array is None:
            tensor.raw_data = bytes(raw)
            raw.release()
        else:
            # An array over the file's mapping (webml.storage.FileMapping): the graph's constants use it in
            # place, and a DynamicGraph keeps it for later shapes (page cache, not a private copy).  As with
            # OpenVINO's and llama.cpp's mapped model files, the file must not be truncated or rewritten in
            # place while a graph still reads it.
            array.flags.writeable = False  # nobody writes the mapping: its pages stay the file's
            decoded[tensor.name] = array  # type: ignore[index]
            lifted.add(tensor.name)
    return frozenset(lifted)


@dataclass(frozen=True)
class CheckedModel:
    """A ModelProto :func:`read_model` has read and checked, so that a DynamicGraph does not check it again;
    ``decoded``: initializers' arrays its check read (see :func:`without_decoded_data`)."""

    proto: onnx.ModelProto
    decoded: dict[str, np.ndarray] = field(default_factory=dict)


def without_decoded_data(model: onnx.ModelProto, decoded: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """A copy of ``model`` without the raw data of its large initializers that ``decoded`` holds as
    arrays, so that a model kept for later imports (a DynamicGraph's) holds its weights once (a
    protobuf message frees nothing of itself until all of it goes: hence a copy, not a cleared field).
    Imports of the copy must be given ``decoded``; shape inference reads no large initializer's data."""
    dropped = {t.name for t in model.graph.initializer if t.name in decoded and prod(t.dims) > _SMALL_INPUT}
    if not dropped:
        return model
    copy = onnx.ModelProto()
    _copy_fields(model, copy, "graph")
    _copy_fields(model.graph, copy.graph, "initializer")
    for init in model.graph.initializer:
        target = copy.graph.initializer.add()
        if init.name in dropped:
            _copy_fields(init, target, "raw_data")
        else:
            target.CopyFrom(init)
    return copy


def _parse_file(f: BinaryIO, what: str) -> tuple[onnx.ModelProto, dict[int, memoryview]]:
    """Parse an open model file straight from its pages (a private mapping nobody writes), which saves reading a
    copy of the whole file first; its large initializers' raw data is lifted out before parsing
    (:mod:`webml.onnx.wire`) and given back as views of the mapping, by initializer index (the mapping
    lives until they are released; without them it is unmapped at once: protobuf copies what it keeps)."""
    if os.fstat(f.fileno()).st_size == 0:
        return _parse(b"", what), {}
    try:
        mapping = map_file(f.fileno(), locatable=True)
    except (OSError, ValueError):  # a file system that cannot map files
        return _parse(f.read(), what), {}
    view = memoryview(mapping)
    lifted = lift(view)
    if lifted is None:
        try:
            return _parse(view, what), {}
        finally:
            view.release()
            mapping.close()
    return _parse(lifted.model, what), {i: view[o : o + n] for i, (o, n) in lifted.data.items()}


def _parse_view(view: memoryview, what: str) -> tuple[onnx.ModelProto, dict[int, memoryview]]:
    """Parse serialized bytes that nobody changes, their large initializers' raw data lifted out first
    (:mod:`webml.onnx.wire`) and given back as views of ``view``, by initializer index."""
    lifted = lift(view)
    if lifted is None:
        return _parse(view, what), {}
    return _parse(lifted.model, what), {i: view[o : o + n] for i, (o, n) in lifted.data.items()}


def _parse(data: bytes | memoryview, what: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError, or a RuntimeError of its C++ parser
        raise OnnxImportError(f"webml.onnx.load: {what} is not an ONNX model ({exc})") from None
    return model


def _check_parsed(model: onnx.ModelProto, what: str) -> None:
    if model.ir_version < 1 or not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise OnnxImportError(f"webml.onnx.load: {what} is not an ONNX model (no ir_version or no graph)")


def _external_tensors(graph: onnx.GraphProto):
    """The tensors of ``graph`` (its subgraphs included) whose data lies in external files."""
    tensors = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
            tensors.extend(attr.tensors)
            for sub in [attr.g] if attr.HasField("g") else []:
                yield from _external_tensors(sub)
            for sub in attr.graphs:
                yield from _external_tensors(sub)
    yield from (t for t in tensors if t.data_location == TensorProto.EXTERNAL)


def _read_external(tensor: onnx.TensorProto, base_dir: Path, what: str) -> None:
    """Fill ``tensor`` from its external file, which must lie inside ``base_dir`` and hold its data."""

    def refuse(problem: str) -> OnnxImportError:
        return OnnxImportError(f"webml.onnx.load: the external data of tensor {tensor.name!r} in {what}: {problem}")

    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    if not location or os.path.isabs(location) or "\0" in location:
        raise refuse(f"the location {location!r} is not a relative file name")
    try:
        base = base_dir.resolve(strict=True)
        target = (base / location).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise refuse(f"{location!r} cannot be found in {str(base_dir)!r} ({exc})") from None
    if not target.is_relative_to(base):
        raise refuse(f"{location!r} lies outside the folder {str(base)!r}")
    if not target.is_file():
        raise refuse(f"{location!r} is not a regular file")
    problem = tensor_type_problem(tensor)
    if problem:
        raise refuse(problem)
    count = prod(tensor.dims)
    itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    need = (count + 1) // 2 if tensor.data_type in PACKED_4BIT else count * itemsize
    try:
        offset = int(entries.get("offset", 0))
        length = int(entries["length"]) if "length" in entries else need
    except ValueError:
        raise refuse("its offset or length is not an integer") from None
    size = target.stat().st_size
    if offset < 0 or length != need or offset + length > size:
        raise refuse(
            f"offset {offset} and length {length} do not fit: the tensor needs {need} bytes, {location!r} has {size}"
        )
    try:
        with open(target, "rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError as exc:
        raise refuse(f"{location!r} cannot be read ({exc.strerror or exc})") from None
    if len(data) != length:
        raise refuse(f"{location!r} changed while it was read")
    tensor.raw_data = data
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT


def default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return 1


# -- analysis --------------------------------------------------------------------------


@dataclass
class ValueInfo:
    """What shape inference knows of one value: its element type and rank (None when unknown)."""

    elem_type: int | None
    rank: int | None


def _dynamic_names(model: onnx.ModelProto) -> list[str]:
    """The names (``dim_param``) of the dynamic dimensions of ``model``'s graph inputs, in order of appearance."""
    initializers = {t.name for t in model.graph.initializer}
    names = (d.dim_param for v in model.graph.input if v.name not in initializers for d in v.type.tensor_type.shape.dim)
    return list(dict.fromkeys(n for n in names if n))


def _check_free_dimensions(model: onnx.ModelProto, free_dimensions: Mapping[str, int] | None) -> dict[str, int]:
    """``free_dimensions`` checked: each a positive int naming a dynamic dimension of the model."""
    free = dict(free_dimensions or {})
    for name, size in free.items():
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
            raise TypeError(f"webml.onnx.load: free_dimensions[{name!r}] must be a positive int")
    dynamic = _dynamic_names(model)
    unknown = [n for n in free if n not in dynamic]
    if unknown:
        known = ", ".join(map(repr, dynamic)) or "none"
        raise OnnxImportError(
            f"webml.onnx.load: free_dimensions names {', '.join(map(repr, unknown))}, which the model's inputs do "
            f"not have (their dynamic dimensions: {known})"
        )
    return {n: int(v) for n, v in free.items()}


def input_shape_sizes(shapes: object, where: str, argument: str) -> dict[str, tuple[int, ...]]:
    """``shapes`` (input name -> shape) with each shape a tuple of sizes (ints >= 0), or a TypeError naming
    ``where``, the ``argument`` and the input (``int()`` alone would truncate 2.5 and fail on an array)."""
    if not isinstance(shapes, Mapping) or not all(isinstance(name, str) for name in shapes):
        raise TypeError(f"{where}: {argument} must be a dict of input name -> shape, got {shapes!r}")
    sizes = {}
    for name, shape in shapes.items():
        dims = tuple(shape) if isinstance(shape, Sequence) and not isinstance(shape, str) else None
        if dims is None or not all(
            isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 0 for d in dims
        ):
            raise TypeError(f"{where}: the shape of input {name!r} must be a sequence of sizes, got {shape!r}")
        sizes[name] = tuple(int(d) for d in dims)
    return sizes


def _fix_input_dims(
    model: onnx.ModelProto,
    free_dimensions: Mapping[str, int] | None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    weights: bool = True,
) -> tuple[onnx.ModelProto, bool]:
    """``model`` with its inputs' dynamic dimensions fixed (a copy, or ``model`` itself when none changes),
    and whether some are left dynamic.

    ``free_dimensions`` fixes dimensions by name; ``input_shapes`` gives whole
    input shapes (as the arrays of a call do), which settle every other
    dimension.  Without ``input_shapes`` a dimension may stay dynamic; with
    them every one must be settled and agree with the model.  Problems raise
    :class:`OnnxImportError`.  Without ``weights`` a copy leaves out the graph's initializers (the
    caller keeps ``model``'s), which spares copying the weights for each shape a DynamicGraph builds.
    """
    free = _check_free_dimensions(model, free_dimensions)
    # The inputs are fixed on copies of theirs: the model (its weights) is copied only if one changes.
    graph_inputs = [onnx.ValueInfoProto() for _ in model.graph.input]
    for copy, value in zip(graph_inputs, model.graph.input):
        copy.CopyFrom(value)
    initializers = {t.name for t in model.graph.initializer}
    declared = {v.name for v in graph_inputs if v.name not in initializers}
    shapes = input_shape_sizes(input_shapes or {}, "webml.onnx.load", "input_shapes")
    if shapes.keys() - declared:
        unknown = ", ".join(map(repr, sorted(shapes.keys() - declared)))
        raise OnnxImportError(
            f"webml.onnx.load: input_shapes names {unknown}, which the model does not take "
            f"(its inputs: {', '.join(map(repr, sorted(declared)))})"
        )
    problems: list[tuple[str, str, str]] = []
    dynamic = False
    settled: dict[str, tuple[int, str]] = {}  # dim_param -> (size, the first input whose array gives it)
    for value in graph_inputs:
        for dim, size in zip(value.type.tensor_type.shape.dim, shapes.get(value.name, ())):
            if dim.dim_param and not dim.HasField("dim_value"):
                settled.setdefault(dim.dim_param, (size, value.name))
    for value in graph_inputs:
        if value.name not in declared or not value.type.HasField("tensor_type"):
            continue
        tensor_type = value.type.tensor_type
        shape = shapes.get(value.name)
        if not tensor_type.HasField("shape"):
            if shape is None:
                dynamic = True
                if input_shapes is not None:
                    problems.append(("graph input", value.name, "its shape is unknown: give the input"))
                continue
            tensor_type.shape.dim.extend(onnx.TensorShapeProto.Dimension() for _ in shape)
        dims = tensor_type.shape.dim
        if shape is not None and len(shape) != len(dims):
            problems.append(("graph input", value.name, f"has rank {len(dims)}, the array's shape is {list(shape)}"))
            continue
        for index, dim in enumerate(dims):
            given = None if shape is None else shape[index]
            problem = _fix_dim(dim, index, given, free, settled, input_shapes is not None)
            if problem == "dynamic":
                dynamic = True
            elif problem:
                problems.append(("graph input", value.name, problem))
    if problems:
        raise OnnxImportError("webml.onnx.load: the input shapes do not fit the model", problems)
    if list(model.graph.input) == graph_inputs:
        return model, dynamic
    model_copy = onnx.ModelProto()
    if weights:
        model_copy.CopyFrom(model)
    else:
        _copy_fields(model, model_copy, "graph")
        _copy_fields(model.graph, model_copy.graph, "initializer")
    del model_copy.graph.input[:]
    model_copy.graph.input.extend(graph_inputs)
    return model_copy, dynamic


def _copy_fields(source: Any, target: Any, skip: str) -> None:
    """Copy every field of the message ``source`` that is set, but ``skip``, into the empty ``target``.

    By the descriptor, not ``ListFields()``: that reads every value, and reading a bytes field
    (a tensor's raw data) copies it.
    """
    for descriptor in source.DESCRIPTOR.fields:
        name = descriptor.name
        if name == skip:
            continue
        if descriptor.is_repeated:
            values = getattr(source, name)
            if len(values):
                getattr(target, name).extend(values)
        elif source.HasField(name):
            value = getattr(source, name)
            if isinstance(value, Message):
                getattr(target, name).CopyFrom(value)
            else:
                setattr(target, name, value)


def _fix_dim(
    dim: onnx.TensorShapeProto.Dimension,
    index: int,
    given: int | None,
    free: Mapping[str, int],
    settled: Mapping[str, tuple[int, str]],
    must_settle: bool,
) -> str | None:
    """Fix one input dimension in place: None when done, "dynamic" when left so, else the problem."""
    if dim.HasField("dim_value") and dim.dim_value == 0:
        return f"dimension {index} is 0 (webml has no empty tensors)"
    if dim.HasField("dim_value") and dim.dim_value > 0:
        if given is not None and given != dim.dim_value:
            return f"dimension {index} is {dim.dim_value} in the model, {given} in the array"
        return None
    name = dim.dim_param
    size = free.get(name) if name else None
    if size is not None and given is not None and given != size:
        return f"dimension {index} ({name!r}) is {size} by free_dimensions, {given} in the array"
    if size is None and name in settled and given is not None and given != settled[name][0]:
        first, where = settled[name]
        return f"dimension {index} ({name!r}) is {given}, but input {where!r} gave {name!r} = {first}"
    if size is None:
        size = given if given is not None else settled.get(name, (None, ""))[0]
    if size is None:
        if not must_settle:
            return "dynamic"
        if not name:
            return f"dimension {index} is unknown: give the input (its shape settles it)"
        return (
            f"dimension {index} ({name!r}) is dynamic: give the input (its shape settles it) "
            f"or free_dimensions={{{name!r}: ...}}"
        )
    if size < 1:
        return f"dimension {index} is {size} in the array (webml has no empty tensors)"
    dim.Clear()
    dim.dim_value = size
    return None


def _without_large_initializers(model: onnx.ModelProto, initializers: Sequence[onnx.TensorProto]) -> onnx.ModelProto:
    """``model`` for shape inference: initializers above :data:`_SMALL_INPUT` elements become typed graph inputs.

    Inference reads the values only of shape-like inputs (a Reshape's shape, Slice's starts ...), which have
    at most one element per dimension; the weights need just their type and shape, and leaving out their
    data spares serializing and parsing the whole model again (most of the time of a load).  Initializers
    already declared as graph inputs (IR version < 4) stay, so that inference sees what it saw before.
    ``initializers`` are the model's (they may be kept apart from it, see :func:`_fix_input_dims`).
    """
    graph = model.graph
    declared = {v.name for v in graph.input}
    large = [t for t in initializers if prod(t.dims) > _SMALL_INPUT and t.name not in declared]
    if not large and initializers is graph.initializer:
        return model
    # Only what inference reads: the opsets, model-local functions and the graph's values and nodes.
    stripped = onnx.ModelProto(ir_version=model.ir_version)
    stripped.opset_import.extend(model.opset_import)
    stripped.functions.extend(model.functions)
    names = {t.name for t in large}
    target = stripped.graph
    target.name = graph.name
    target.node.extend(graph.node)
    target.input.extend(graph.input)
    target.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in large)
    target.output.extend(graph.output)
    target.value_info.extend(graph.value_info)
    target.initializer.extend(t for t in initializers if t.name not in names)
    return stripped


def _infer(model: onnx.ModelProto, initializers: Sequence[onnx.TensorProto]) -> dict[str, ValueInfo]:
    """Element types and ranks of the graph's values, from onnx shape inference (best effort)."""
    proto = _without_large_initializers(model, initializers)
    try:
        # No data propagation: it computes values in C++ without any size bound.
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=False)
    except Exception:
        inferred = proto
    infos: dict[str, ValueInfo] = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if not value.type.HasField("tensor_type"):
            continue
        t = value.type.tensor_type
        elem = t.elem_type or None
        rank = len(t.shape.dim) if t.HasField("shape") else None
        infos[value.name] = ValueInfo(elem, rank)
    for init in graph.initializer:
        infos[init.name] = ValueInfo(init.data_type, len(init.dims))
    return infos


class Analysis:
    """Which values are static, and the problems of a model, without building anything.

    A node whose inputs are all static is computed at import time (folded), except, with
    ``leave_weights``, a :data:`WEIGHT_OPS` node on a large initializer: that is built as a graph
    operation (``deferred`` names them), for a backend whose engine folds it once when it compiles
    (``MLContext.folds_constants``).  Its engine does it in native code, and gets the weights as the
    file has them (int8 rather than float32: a quarter of the bytes to copy and hold); Python's
    onnx.reference took most of an int8 model's load.  Use :func:`analyse`, which folds after all
    where leaving a node would refuse the model.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        initializers: Sequence[onnx.TensorProto] | None = None,
        decoded: Mapping[str, np.ndarray] | None = None,
        *,
        leave_weights: bool = False,
    ) -> None:
        """``initializers``: the model's, when :func:`_fix_input_dims` kept them apart (by default its graph's);
        ``decoded``: arrays of initializers already decoded (:func:`read_model`)."""
        self.model = model
        self.decoded: Mapping[str, np.ndarray] = decoded or {}
        self.opset = default_opset(model)
        graph = model.graph
        self.initializers = graph.initializer if initializers is None else initializers
        self.infos = _infer(model, self.initializers)
        self.static: set[str] = {t.name for t in self.initializers} | {""}
        self._initializers = {t.name: t for t in self.initializers}
        self._constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.output}
        self.problems: list[tuple[str, str, str]] = []
        #: The first outputs of the nodes left to the engine (leave_weights).
        self.deferred: set[str] = set()
        large = {t.name for t in self.initializers if prod(t.dims) > _SMALL_INPUT} if leave_weights else set()
        for entry in model.opset_import:
            if entry.domain not in ("", "ai.onnx"):
                used = any(n.domain == entry.domain for n in graph.node)
                if used:
                    self.problems.append(("opset", entry.domain, "operators of this domain are not supported"))
        if self.opset < 7:
            self.problems.append(("opset", "ai.onnx", f"opset {self.opset} is older than 7, the oldest supported"))
        for value in graph.input:
            if value.name in self.static:
                continue
            self._check_io_type(value, "graph input")
        for node in graph.node:
            name = node.name or (node.output[0] if node.output else "")
            inputs = list(node.input)
            if node.op_type == "Constant" or (
                node.op_type not in NO_FOLD
                and node.domain in ("", "ai.onnx")
                and onnx.defs.has(node.op_type)  # an unknown operator is reported, not folded
                and inputs
                and (node.op_type in SHAPE_OPS or all(i in self.static for i in inputs))
                and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
            ):
                if not (node.op_type in WEIGHT_OPS and node.output and any(i in large for i in inputs)):
                    self.static.update(node.output)
                    continue
                self.deferred.add(node.output[0])
            if node.domain not in ("", "ai.onnx"):
                self.problems.append((node.op_type, name, f"operators of domain {node.domain!r} are not supported"))
                continue
            handler = HANDLERS.get(node.op_type)
            if handler is None:
                self.problems.append((node.op_type, name, "operator not supported"))
                continue
            attrs = attributes(node, self.opset)
            reason = handler.check(node, attrs, self) if handler.check else None
            if reason:
                self.problems.append((node.op_type, name, reason))
                continue
            for index in handler.static_inputs(node, self.opset):
                if index < len(inputs) and inputs[index] not in self.static:
                    self.problems.append(
                        (
                            node.op_type,
                            name,
                            f"input {index} ({inputs[index]!r}) must be computable at import time "
                            "(an initializer, a Constant or a function of static values and shapes)",
                        )
                    )
            for output in node.output:
                info = self.infos.get(output)
                if output and info and info.elem_type and info.elem_type not in WEBML_TYPES:
                    if node.op_type in handler.float64_ok:
                        continue
                    self.problems.append(
                        (node.op_type, name, f"output {output!r} is {type_name(info.elem_type)}, a type webml lacks")
                    )
        for value in graph.output:
            self._check_io_type(value, "graph output")

    def _check_io_type(self, value: onnx.ValueInfoProto, what: str) -> None:
        if value.type.WhichOneof("value") is None and what == "graph output":
            return  # an output without a declared type: the node that makes it decides
        if not value.type.HasField("tensor_type"):
            self.problems.append((what, value.name, "only tensors are supported (not sequences, maps or optionals)"))
            return
        elem = value.type.tensor_type.elem_type
        if elem not in WEBML_TYPES:
            self.problems.append((what, value.name, f"its type {type_name(elem)} is not a webml data type"))

    def constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or Constant node (None for anything else)."""
        if name in self.decoded:
            return self.decoded[name]
        if name in self._initializers:
            return numpy_helper.to_array(self._initializers[name])
        node = self._constants.get(name)
        if node is not None:
            try:
                return constant_value(attributes(node, self.opset), OnnxImportError)
            except OnnxImportError:
                return None
        return None

    def rank(self, name: str) -> int | None:
        info = self.infos.get(name)
        return info.rank if info else None

    def elem_type(self, name: str) -> int | None:
        info = self.infos.get(name)
        return info.elem_type if info else None

    def is_static(self, name: str) -> bool:
        return name in self.static


def analyse(
    model: onnx.ModelProto,
    initializers: Sequence[onnx.TensorProto] | None,
    decoded: Mapping[str, np.ndarray] | None,
    context: MLContext,
) -> Analysis:
    """The :class:`Analysis` an import into ``context`` follows: weights left to a backend that folds
    constants, unless building a node rather than folding it refuses the model (a type or operator
    the builder lacks, a value a later node needs at import time), when it folds them all as before."""
    if not context.folds_constants:
        return Analysis(model, initializers, decoded)
    analysis = Analysis(model, initializers, decoded, leave_weights=True)
    if analysis.problems and analysis.deferred:
        return Analysis(model, initializers, decoded)
    return analysis


def attributes(node: onnx.NodeProto, opset: int) -> dict[str, Any]:
    """The node's attributes as Python values (tensors as NumPy arrays), with the defaults of its ONNX schema
    in ``opset`` for those it leaves out.

    An attribute whose schema has no default stays absent: a required one (validation refused the node
    without it), or one whose absence means something (ConvTranspose's ``output_shape``, Conv's ``pads``,
    Squeeze's ``axes`` before opset 13 ...), so that importers can still test its presence."""
    result = {name: _attribute_value(default) for name, default in _schema_defaults(node.op_type, opset, node.domain)}
    result.update((a.name, _attribute_value(a)) for a in node.attribute)
    return result


@functools.lru_cache(maxsize=1024)
def _schema_defaults(op_type: str, opset: int, domain: str) -> tuple[tuple[str, onnx.AttributeProto], ...]:
    """(name, default) of each attribute of ``op_type``'s schema in ``opset`` that has a default."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, "" if domain == "ai.onnx" else domain)
    except onnx.defs.SchemaError:
        return ()  # an operator unknown in this opset: validation or the analysis reports it
    return tuple(
        (name, attr.default_value)
        for name, attr in schema.attributes.items()
        if attr.default_value.type != onnx.AttributeProto.UNDEFINED
    )


def _attribute_value(a: onnx.AttributeProto) -> Any:
    """An attribute as a Python value: tensors as NumPy arrays, strings decoded, subgraphs as they are."""
    if a.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(a.t)
    if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return a
    value = helper.get_attribute_value(a)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def unsupported_operators(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    free_dimensions: Mapping[str, int] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> list[tuple[str, str, str]]:
    """Everything in ``model`` the importer cannot build: (op_type or "graph input", node name, reason).

    An empty list means :func:`load` will build every node (the builder may
    still refuse a data type its backend lacks).  Dynamic dimensions are no
    problem (the inputs of a call settle them); an input dimension of size 0
    is reported.  ``base_dir`` is as for :func:`read_model`.  A malformed
    model, or a ``free_dimensions`` name the model lacks, raises :class:`OnnxImportError`.
    """
    return problems_of(read_model(model, base_dir), free_dimensions)


def problems_of(proto: onnx.ModelProto, free_dimensions: Mapping[str, int] | None = None) -> list[tuple[str, str, str]]:
    """:func:`unsupported_operators` of a model :func:`read_model` has given (so not read and checked again)."""
    try:
        proto, _ = _fix_input_dims(proto, free_dimensions)
        dims = []
    except OnnxImportError as exc:
        if not exc.unsupported:
            raise
        dims = exc.unsupported
    return dims + Analysis(proto).problems


# -- building ----------------------------------------------------------------------------


class Importer:
    """The state of one import: the builder, and every ONNX value as a NumPy array or MLOperand."""

    def __init__(
        self,
        model: onnx.ModelProto,
        context: MLContext,
        analysis: Analysis,
        builder: MLGraphBuilder | None = None,
        bound: Mapping[str, MLOperand] | None = None,
        *,
        protected: bool = False,
        constants_from: memoryview | None = None,
    ) -> None:
        self.model = model
        self.context = context
        self.analysis = analysis
        self.opset = analysis.opset
        if builder is None:
            builder = MLGraphBuilder(context, protected=protected, constants_from=constants_from)
        self.builder = builder
        #: Graph inputs given as operands of the builder (add_to_builder), not declared as inputs.
        self.bound = dict(bound or {})
        self.env: dict[str, np.ndarray | MLOperand] = {}
        self._materialized: dict[int, MLOperand] = {}
        self._kept: list[np.ndarray] = []  # keeps the ids of the arrays in _materialized unique
        self.node: onnx.NodeProto | None = None
        weights = sum(_declared_bytes(t) for t in analysis.initializers)
        #: Bytes one folded value may have, and all of them together: a small multiple of the weights.
        self.fold_limit = FOLD_LIMIT + weights
        self.fold_budget = 4 * FOLD_LIMIT + 2 * weights
        self._fold_cache: dict[bytes, list[np.ndarray | None]] = {}
        self.max_bytes = _max_tensor_bytes(context)

    # -- values

    def error(self, message: str) -> OnnxImportError:
        node = self.node
        if node is None:
            return OnnxImportError(f"webml.onnx.load: {message}")
        name = node.name or (node.output[0] if node.output else "")
        return OnnxImportError(
            f"webml.onnx.load: {node.op_type} node {name!r}: {message}", [(node.op_type, name, message)]
        )

    def check_size(self, shape: Sequence[int], itemsize: int, what: str = "the output") -> None:
        """Refuse a shape whose tensor exceeds the backend's maxTensorByteLength (before allocating it)."""
        if any(int(d) < 0 for d in shape):
            raise self.error(f"{what} has a negative dimension: {list(shape)}")
        if prod(shape) * itemsize > self.max_bytes:
            raise self.error(f"{what} of shape {list(shape)} needs more than the maximum {self.max_bytes} bytes")

    def fold(self, node: onnx.NodeProto, values: Sequence[np.ndarray | None]) -> list[np.ndarray]:
        """``node`` computed on static inputs, once its outputs are known to fit the fold limits."""
        results = fold(node, values, self.model, self.fold_limit, self._fold_cache)
        self.fold_budget -= sum(r.nbytes for r in results if r is not None)
        if self.fold_budget < 0:
            raise self.error("the static values computed at import time exceed a small multiple of the model's size")
        return results

    def has(self, node: onnx.NodeProto, index: int) -> bool:
        return index < len(node.input) and node.input[index] != ""

    def value(self, name: str) -> np.ndarray | MLOperand:
        try:
            return self.env[name]
        except KeyError:
            raise self.error(f"value {name!r} is not defined before its use") from None

    def static(self, node: onnx.NodeProto, index: int, default: Any = None) -> np.ndarray | None:
        """Input ``index`` as a NumPy array (``default`` when absent); it must be static."""
        if not self.has(node, index):
            return default
        value = self.value(node.input[index])
        if isinstance(value, MLOperand):
            raise self.error(f"input {index} ({node.input[index]!r}) must be computable at import time")
        return value

    def operand(self, node: onnx.NodeProto, index: int) -> MLOperand | None:
        """Input ``index`` as an MLOperand (None when absent); static values become constants."""
        if not self.has(node, index):
            return None
        return self.as_operand(self.value(node.input[index]))

    def shape(self, value: np.ndarray | MLOperand) -> tuple[int, ...]:
        return tuple(value.shape)

    def input_shape(self, node: onnx.NodeProto, index: int) -> tuple[int, ...]:
        return tuple(self.value(node.input[index]).shape)

    def as_operand(self, value: np.ndarray | MLOperand) -> MLOperand:
        if isinstance(value, MLOperand):
            return value
        cached = self._materialized.get(id(value))
        if cached is not None:
            return cached
        array = to_webml_array(value, self.error)
        if array.size == 0:
            raise self.error(f"a constant of shape {list(array.shape)} is empty; webml has no empty tensors")
        data_type = str(array.dtype)
        operand = self.builder.constant({"dataType": data_type, "shape": list(array.shape)}, array)
        self._materialized[id(value)] = operand
        self._kept.append(value)
        return operand

    def constant(self, array: Any, data_type: str) -> MLOperand:
        """A new constant operand of ``data_type`` holding ``array``."""
        a = np.asarray(array, dtype=dtypes.numpy_dtype(data_type))
        return self.builder.constant({"dataType": data_type, "shape": list(a.shape)}, a)

    def scalar(self, value: float, like: MLOperand, shape: Sequence[int] | None = None) -> MLOperand:
        """A constant of ``like``'s data type (rank 0, or ``shape``)."""
        array = np.full(tuple(shape or ()), value, dtype=dtypes.numpy_dtype(like.data_type))
        return self.builder.constant({"dataType": like.data_type, "shape": list(array.shape)}, array)

    # -- the walk

    def run(self) -> MLGraph:
        return self.builder.build(self.outputs())

    def outputs(self) -> dict[str, MLOperand]:
        """Walk the model; its outputs as operands of the builder (not built yet)."""
        graph = self.model.graph
        decoded = self.analysis.decoded  # initializers' arrays the model's check read (webml.onnx.validate)
        for init in self.analysis.initializers:
            array = decoded.get(init.name)
            self.env[init.name] = numpy_helper.to_array(init) if array is None else array
        for value in graph.input:
            if value.name in self.env:
                continue
            t = value.type.tensor_type
            data_type = WEBML_TYPES[t.elem_type]
            shape = [d.dim_value for d in t.shape.dim]
            if value.name in self.bound:
                given = self.bound[value.name]
                if given.data_type != data_type or list(given.shape) != shape:
                    raise OnnxImportError(
                        f"webml.onnx.add_to_builder: input {value.name!r} is {data_type} {shape} in the model, "
                        f"the operand given is {given.data_type} {list(given.shape)}"
                    )
                self.env[value.name] = given
                continue
            try:
                self.env[value.name] = self.builder.input(value.name, {"dataType": data_type, "shape": shape})
            except (TypeError, DOMException) as exc:
                raise OnnxImportError(f"webml.onnx.load: graph input {value.name!r}: {exc}") from exc
        for node in graph.node:
            self.node = node
            try:
                outputs = self._node(node)
            except (OnnxImportError, MemoryError, RecursionError):
                raise
            except (TypeError, ValueError, DOMException) as exc:  # the builder's or NumPy's refusal
                raise self.error(str(exc)) from exc
            except Exception as exc:  # an importer bug: still one clear error (the fuzz test counts these)
                raise self.error(f"cannot be imported ({type(exc).__name__}: {exc})") from exc
            for name, out in zip(node.output, outputs):
                if name and out is not None:
                    self.env[name] = out
        self.node = None
        result: dict[str, MLOperand] = {}
        for value in graph.output:
            out = self.value(value.name)
            operand = self.as_operand(out)
            if not isinstance(out, MLOperand) or _is_input_or_constant(self.builder, operand):
                operand = self.builder.identity(operand)
            result[value.name] = operand
        return result

    def _node(self, node: onnx.NodeProto) -> list[Any]:
        if node.op_type == "Constant":
            return [constant_value(attributes(node, self.opset), self.error)]
        if node.op_type in SHAPE_OPS:
            return HANDLERS[node.op_type].build(self, node, attributes(node, self.opset))
        if (
            node.op_type not in NO_FOLD
            and all(i == "" or isinstance(self.env.get(i), np.ndarray) for i in node.input)
            and node.input
            and not (node.output and node.output[0] in self.analysis.deferred)
        ):
            try:
                return self.fold(node, [self.env[i] if i else None for i in node.input])
            except NoReferenceKernel:
                if node.op_type not in HANDLERS:
                    raise self.error("cannot be computed at import time (onnx.reference lacks it here)") from None
        handler = HANDLERS[node.op_type]
        outputs = handler.build(self, node, attributes(node, self.opset))
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


#: maxTensorByteLength of each live context: a context's backend, so its limits, never change, and
#: op_support_limits() lists every operator's limits (a few ms, once per context rather than per load).
_MAX_BYTES: weakref.WeakKeyDictionary[MLContext, int] = weakref.WeakKeyDictionary()


def _max_tensor_bytes(context: MLContext) -> int:
    limit = _MAX_BYTES.get(context)
    if limit is None:
        limit = _MAX_BYTES[context] = int(context.op_support_limits()["maxTensorByteLength"])
    return limit


def _is_input_or_constant(builder: MLGraphBuilder, operand: MLOperand) -> bool:
    return not is_produced(builder, operand)


def to_webml_array(value: np.ndarray, error: Any = None) -> np.ndarray:
    """A static value in a webml dtype: bool -> uint8, float64 -> float32 (with a warning)."""
    array = np.asarray(value)
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype == np.float64:
        warnings.warn(
            "webml.onnx.load: a float64 constant was converted to float32 (webml has no float64)", stacklevel=4
        )
        return array.astype(np.float32)
    if str(array.dtype) not in _webml_dtype_names():
        message = f"a constant of type {array.dtype} has no webml data type"
        raise (error(message) if error else OnnxImportError(message))
    return array


@functools.cache
def _webml_dtype_names() -> frozenset[str]:
    return frozenset(str(t.dtype) for t in dtypes.DATA_TYPES.values())


def constant_value(attrs: Mapping[str, Any], error: Any) -> np.ndarray:
    """The value of a Constant node."""
    if "value" in attrs:
        return np.asarray(attrs["value"])
    if "value_float" in attrs:
        return np.array(attrs["value_float"], np.float32)
    if "value_floats" in attrs:
        return np.array(attrs["value_floats"], np.float32)
    if "value_int" in attrs:
        return np.array(attrs["value_int"], np.int64)
    if "value_ints" in attrs:
        return np.array(attrs["value_ints"], np.int64)
    raise error("only value, value_float(s) and value_int(s) are supported (not sparse or string values)")


#: The most bytes one folded value may have beyond the model's weights (see Importer.fold_limit).
FOLD_LIMIT = 2**26
#: Ops whose output shape comes from their input values: refused when shape inference cannot bound it.
VALUE_SHAPED = frozenset(
    {"ConstantOfShape", "Expand", "Tile", "Range", "OneHot", "Resize", "Upsample", "Pad", "CenterCropPad", "Col2Im"}
)
#: Static inputs up to this many elements are given to shape inference as values (they are shapes).
_SMALL_INPUT = 4096


def _itemsize(elem_type: int) -> int:
    """Bytes per element of an ONNX type (8, a pointer, for strings and unknown types)."""
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except (KeyError, ValueError, TypeError):
        return 8


def _declared_bytes(tensor: onnx.TensorProto) -> int:
    return prod(tensor.dims) * _itemsize(tensor.data_type)


def _fold_model(node: onnx.NodeProto, values: Sequence[np.ndarray | None], model: onnx.ModelProto, small: bool):
    """A one-node model of ``node``; with ``small``, its small inputs are initializers (for shape inference)."""
    names = [f"in{i}" if v is not None else "" for i, v in enumerate(values)]
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = copy.doc_string = ""  # so that the same computation makes the same model (fold's cache)
    del copy.input[:]
    copy.input.extend(names)
    out_names = [f"out{i}" if o else "" for i, o in enumerate(node.output)]
    del copy.output[:]
    copy.output.extend(out_names)
    inputs, initializers = [], []
    for n, v in zip(names, values):
        if not n:
            continue
        array = np.asarray(v)
        if small and array.size <= _SMALL_INPUT:
            initializers.append(numpy_helper.from_array(array, n))
        else:
            inputs.append(helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape))
    outputs = [helper.make_empty_tensor_value_info(n) for n in out_names if n]
    graph = helper.make_graph([copy], "fold", inputs, outputs, initializers)
    opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")] or [helper.make_opsetid("", 21)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=model.ir_version or 8), names, out_names


def _fold_problem(
    node: onnx.NodeProto,
    values: Sequence[np.ndarray | None],
    model: onnx.ModelProto,
    limit: int,
    proto: onnx.ModelProto | None = None,
):
    """Why folding ``node`` would make a value larger than ``limit`` bytes (from shape inference), or None;
    ``proto`` is its :func:`_fold_model` with ``small``, if made already."""
    if node.op_type == "Range" and len(values) == 3 and all(v is not None and np.size(v) == 1 for v in values):
        start, end, delta = (float(np.asarray(v).reshape(-1)[0]) for v in values)
        count = (end - start) / delta if delta else math.inf
        if not math.isfinite(count):
            return f"Range({start}, {end}, {delta}) has no finite length"
        if max(0, math.ceil(count)) * np.asarray(values[0]).itemsize > limit:
            return f"Range({start}, {end}, {delta}) has {math.ceil(count)} values, more than the limit of {limit} bytes"
        return None
    if proto is None:
        proto, _, _ = _fold_model(node, values, model, small=True)
    try:
        # Strict: onnx.reference trusts its inputs, so a node they do not fit is refused before it runs.
        inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True, data_prop=False)
    except onnx.shape_inference.InferenceError as exc:
        return f"its static inputs do not fit the operator ({str(exc).splitlines()[0][:300]})"
    except Exception:
        inferred = proto
    for out in inferred.graph.output:
        t = out.type.tensor_type
        known = t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim)
        if not known:
            if node.op_type in VALUE_SHAPED:
                return "the size of its output cannot be bounded before computing it"
            continue
        dims = [d.dim_value for d in t.shape.dim]
        if any(d < 0 for d in dims):
            return f"its output shape {dims} has a negative dimension"
        itemsize = _itemsize(t.elem_type)
        if prod(dims) * itemsize > limit:
            return f"its output of shape {dims} needs {prod(dims) * itemsize} bytes, more than the limit {limit}"
    return None


class NoReferenceKernel(Exception):
    """onnx.reference has no kernel for the node's operator in the model's opset (DequantizeLinear
    before opset 19, say): the importer builds the node instead of folding it."""


def fold(
    node: onnx.NodeProto,
    values: Sequence[np.ndarray | None],
    model: onnx.ModelProto,
    limit: int = FOLD_LIMIT,
    cache: dict[bytes, list[np.ndarray | None]] | None = None,
) -> list[np.ndarray]:
    """Compute ``node`` on static inputs with ONNX's reference implementation.

    Shape inference first bounds the outputs: one larger than ``limit`` bytes is refused before anything
    is computed.  With ``cache``, a node whose inputs are all small is computed once per operator,
    attributes and input values (a transformer repeats its shape arithmetic in every layer)."""
    # Imported here, not at the top: onnx.reference loads every reference kernel (about half a second), which a
    # model without static nodes to fold never needs.
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.op_run import RuntimeTypeError

    name = node.name or (node.output[0] if node.output else "")

    def refuse(problem: str) -> OnnxImportError:
        return OnnxImportError(
            f"webml.onnx.load: {node.op_type} node {name!r}: {problem}", [(node.op_type, name, problem)]
        )

    key = None
    small = None
    if cache is not None and all(v is None or np.size(v) <= _SMALL_INPUT for v in values):
        small, _, _ = _fold_model(node, values, model, small=True)
        key = small.SerializeToString()  # every input is in it, as an initializer
        if key in cache:
            return [None if r is None else r.copy() for r in cache[key]]
    problem = _fold_problem(node, values, model, limit, small)
    if problem:
        raise refuse(f"cannot be computed at import time: {problem}")
    proto, names, out_names = _fold_model(node, values, model, small=False)
    try:
        session = ReferenceEvaluator(proto)
    except RuntimeError as exc:  # its message is the only sign of a kernel it lacks for this opset
        if "No implementation" in str(exc):
            raise NoReferenceKernel(str(exc)) from None
        raise refuse(f"its static inputs cannot be computed (RuntimeError: {str(exc)[:200]})") from None
    try:
        results = session.run(None, {n: np.asarray(v) for n, v in zip(names, values) if n})
    except MemoryError:
        raise
    except RuntimeTypeError as exc:  # onnx.reference's own check of the inputs' types: the model is wrong
        raise refuse(f"its static inputs have the wrong types: {exc}") from None
    except Exception as exc:
        # Only onnx.reference runs here, on a node that passed validation: what it cannot compute (an index
        # out of range in the static data, say) is the model's fault, said in its words.
        raise refuse(f"its static inputs cannot be computed ({type(exc).__name__}: {str(exc)[:200]})") from None
    if len(results) < sum(1 for o in out_names if o):
        raise refuse(f"folding gave {len(results)} output(s), fewer than the node names")
    it = iter(results)
    outputs = [np.asarray(next(it)) if o else None for o in out_names]
    for out in outputs:
        if out is not None and out.nbytes > limit:
            raise refuse(f"its folded output of shape {list(out.shape)} exceeds the limit of {limit} bytes")
    if key is not None:
        cache[key] = [None if r is None else r.copy() for r in outputs]
    return outputs


def load(
    path_or_model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    context: MLContext,
    free_dimensions: Mapping[str, int] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    protected: bool = False,
) -> MLGraph | DynamicGraph:
    """Build the ONNX model with an MLGraphBuilder of ``context``; returns the MLGraph.

    The graph's inputs and outputs keep the model's names (an input the
    outputs do not depend on, e.g. one only read by ``Shape``, is left out of
    the graph, as the builder does).  Boolean tensors are uint8.

    Dynamic input dimensions are fixed by ``free_dimensions`` (dim_param ->
    size; a name the model lacks is an error) and by ``input_shapes`` (input
    name -> shape, as the arrays of a call give them).  A model with dynamic
    dimensions left gives a :class:`~webml.onnx.session.DynamicGraph`
    instead: call it with arrays, as an ONNX Runtime session is run, and it
    builds (and caches) one MLGraph per distinct input shape.

    Raises :class:`OnnxImportError` listing every unsupported node at once.  External data is read only from
    ``base_dir`` (by default the model's folder; bytes and ModelProtos have none), see :func:`read_model`.

    A model file's large weights are not copied: the graph uses them where the file's mapping has them
    (as ONNX Runtime and OpenVINO map external data), and the engine reads them from the page cache.  So
    the file must not be truncated or rewritten in place while a graph built from it lives; replacing it
    (a new file renamed over it, as pip and most tools do) is safe.

    ``protected``: the model comes from a protected package (:mod:`webml.protected`): the graph's
    constants stay in anonymous memory and are never given back; its dynamic dimensions must all be
    fixed here (a DynamicGraph would keep the plaintext model to build later shapes).  Given a
    read-only memoryview, a protected import uses the large weights in place, not copied: the memory
    must not change while the graph lives (webml.protected's decrypted buffer, which nobody else has).
    """
    if not isinstance(context, MLContext):
        raise TypeError(f"webml.onnx.load: context must be an MLContext, got {type(context).__name__}")
    decoded: dict[str, np.ndarray] = {}
    lender = path_or_model if protected and isinstance(path_or_model, memoryview) and path_or_model.readonly else None
    model = read_model(path_or_model, base_dir, decoded=decoded, in_place=lender is not None)
    return load_read_model(
        model,
        context,
        free_dimensions,
        input_shapes,
        private=model is not path_or_model,
        decoded=decoded,
        protected=protected,
        constants_from=lender,
    )


def load_read_model(
    model: onnx.ModelProto,
    context: MLContext,
    free_dimensions: Mapping[str, int] | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    *,
    private: bool = False,
    decoded: dict[str, np.ndarray] | None = None,
    protected: bool = False,
    constants_from: memoryview | None = None,
) -> MLGraph | DynamicGraph:
    """:func:`load` of a model :func:`read_model` has given (read and checked once, as DynamicGraph needs).

    ``private``: nothing else holds ``model``, so a DynamicGraph may keep it rather than a copy.
    ``decoded``: the initializers' arrays :func:`read_model` gave (not decoded again).
    """
    # The weights stay in ``model``: a copy with fixed inputs has none (but a DynamicGraph's, below).
    fixed, dynamic = _fix_input_dims(model, free_dimensions, input_shapes, weights=False)
    if dynamic and protected:
        raise OnnxImportError(
            "webml.onnx.load: a protected model's inputs must have fixed shapes; its dynamic dimensions "
            f"({', '.join(map(repr, _dynamic_names(fixed))) or 'unnamed'}) need free_dimensions= or input_shapes="
        )
    if dynamic:
        if fixed is not model:
            fixed, _ = _fix_input_dims(model, free_dimensions, input_shapes)
        from .session import DynamicGraph  # session builds on load: imported here, not at the top

        if fixed is model and not private:  # the graph keeps its own copy: the caller may change theirs
            fixed = onnx.ModelProto()
            fixed.CopyFrom(model)
        return DynamicGraph(CheckedModel(fixed, dict(decoded or {})), context)
    analysis = analyse(fixed, model.graph.initializer, decoded, context)
    if analysis.problems:
        count = len(analysis.problems)
        raise OnnxImportError(f"webml.onnx.load: the model has {count} unsupported part(s)", analysis.problems)
    return Importer(fixed, context, analysis, protected=protected, constants_from=constants_from).run()


def add_to_builder(
    path_or_model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    builder: MLGraphBuilder,
    inputs: Mapping[str, MLOperand],
    free_dimensions: Mapping[str, int] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> dict[str, MLOperand]:
    """Add the ONNX model's operations to ``builder``, after operations already there; its outputs, by name.

    ``inputs`` maps some (or all) of the model's input names to operands of ``builder``, which
    take their place: pieces built first (frame conversion, preprocessing) feed the model, and
    the whole is one graph.  Their shapes fix the model's dynamic dimensions; the other inputs
    become inputs of the builder.  Build the graph with ``builder.build(...)``.
    """
    if not isinstance(builder, MLGraphBuilder):
        raise TypeError(f"webml.onnx.add_to_builder: builder must be an MLGraphBuilder, got {type(builder).__name__}")
    if not isinstance(inputs, Mapping) or not all(isinstance(v, MLOperand) for v in inputs.values()):
        raise TypeError("webml.onnx.add_to_builder: inputs must be a dict of model input name -> MLOperand")
    decoded: dict[str, np.ndarray] = {}
    model = read_model(path_or_model, base_dir, decoded=decoded)
    shapes = {name: list(op.shape) for name, op in inputs.items()}
    unknown = sorted(set(shapes) - {v.name for v in model.graph.input})
    if unknown:
        raise OnnxImportError(
            f"webml.onnx.add_to_builder: the model has no input named {', '.join(map(repr, unknown))}"
        )
    fixed, dynamic = _fix_input_dims(model, free_dimensions, shapes)
    if dynamic:
        raise OnnxImportError(
            f"webml.onnx.add_to_builder: dynamic dimensions {sorted(dynamic)} are left; give them in free_dimensions"
        )
    analysis = analyse(fixed, model.graph.initializer, decoded, builder.context)
    if analysis.problems:
        count = len(analysis.problems)
        raise OnnxImportError(
            f"webml.onnx.add_to_builder: the model has {count} unsupported part(s)", analysis.problems
        )
    return Importer(fixed, builder.context, analysis, builder, inputs).outputs()
