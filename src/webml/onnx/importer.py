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

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..api.builder import MLGraphBuilder, is_produced
from ..api.context import MLContext
from ..api.graph import MLGraph
from ..api.operand import MLOperand

__all__ = ["OnnxImportError", "UnsupportedModelError", "load", "read_model", "unsupported_operators"]


class OnnxImportError(ValueError):
    """An ONNX model webml cannot import; ``.unsupported`` lists (op_type, node name, reason)."""

    def __init__(self, message: str, unsupported: Sequence[tuple[str, str, str]] = ()) -> None:
        self.unsupported = list(unsupported)
        if self.unsupported:
            lines = "\n".join(f"  {op} {name!r}: {reason}" for op, name, reason in self.unsupported)
            message = f"{message}\n{lines}"
        super().__init__(message)


#: Another name for :class:`OnnxImportError`.
UnsupportedModelError = OnnxImportError

#: ONNX element types -> webml data types (bool is carried as uint8).
WEBML_TYPES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.FLOAT16: "float16",
    TensorProto.INT32: "int32",
    TensorProto.UINT32: "uint32",
    TensorProto.INT64: "int64",
    TensorProto.UINT64: "uint64",
    TensorProto.INT8: "int8",
    TensorProto.UINT8: "uint8",
    TensorProto.BOOL: "uint8",
    TensorProto.INT4: "int4",
    TensorProto.UINT4: "uint4",
}

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


def type_name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else str(elem_type)


# -- reading -------------------------------------------------------------------------


def read_model(path_or_model: str | os.PathLike[str] | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """An ONNX ModelProto from a path, serialized bytes or a ModelProto; external data is loaded
    relative to the path.  Anything else raises :class:`OnnxImportError` (``TypeError`` for a wrong type)."""
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    if isinstance(path_or_model, (bytes, bytearray, memoryview)):
        model = onnx.ModelProto()
        try:
            model.ParseFromString(bytes(path_or_model))
        except Exception as exc:
            raise OnnxImportError(f"webml.onnx.load: the bytes are not an ONNX model ({exc})") from None
        _check_parsed(model, "the bytes")
        return model
    if not isinstance(path_or_model, (str, os.PathLike)):
        raise TypeError(
            f"webml.onnx.load: expected a path, bytes or an onnx.ModelProto, got {type(path_or_model).__name__}"
        )
    path = Path(path_or_model)
    if not path.is_file():
        raise OnnxImportError(f"webml.onnx.load: no such file: {str(path)!r}")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:
        raise OnnxImportError(f"webml.onnx.load: {str(path)!r} is not an ONNX model ({exc})") from None
    _check_parsed(model, repr(str(path)))
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except Exception as exc:  # OSError, or onnx's ValidationError for a missing file
        raise OnnxImportError(f"webml.onnx.load: the external data of {str(path)!r} cannot be read: {exc}") from None
    return model


def _check_parsed(model: onnx.ModelProto, what: str) -> None:
    if not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise OnnxImportError(f"webml.onnx.load: {what} is not an ONNX model (no graph)")


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


def _fix_input_dims(model: onnx.ModelProto, free_dimensions: Mapping[str, int] | None) -> onnx.ModelProto:
    """A copy of ``model`` whose graph inputs have every dimension fixed; raises for an unresolved one."""
    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    initializers = {t.name for t in model_copy.graph.initializer}
    free = dict(free_dimensions or {})
    problems = []
    for value in model_copy.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            continue
        if not tensor_type.HasField("shape"):
            problems.append(("graph input", value.name, "its shape is unknown (not even its rank)"))
            continue
        for index, dim in enumerate(tensor_type.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                continue
            if dim.HasField("dim_value") and dim.dim_value == 0:
                problems.append(("graph input", value.name, f"dimension {index} is 0 (webml has no empty tensors)"))
                continue
            if dim.dim_param and dim.dim_param in free:
                size = free[dim.dim_param]
                if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
                    raise TypeError(f"webml.onnx.load: free_dimensions[{dim.dim_param!r}] must be a positive int")
                dim.Clear()
                dim.dim_value = int(size)
            elif dim.dim_param:
                problems.append(
                    (
                        "graph input",
                        value.name,
                        f"dimension {index} ({dim.dim_param!r}) is dynamic: give its size "
                        f"in free_dimensions={{{dim.dim_param!r}: ...}}",
                    )
                )
            else:
                problems.append(
                    (
                        "graph input",
                        value.name,
                        f"dimension {index} is unknown and has no name free_dimensions could fix",
                    )
                )
    if problems:
        raise OnnxImportError("webml.onnx.load: unresolved dynamic dimensions", problems)
    return model_copy


def _infer(model: onnx.ModelProto) -> dict[str, ValueInfo]:
    """Element types and ranks of the graph's values, from onnx shape inference (best effort)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        inferred = model
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
    """Which values are static, and the problems of a model, without building anything."""

    def __init__(self, model: onnx.ModelProto) -> None:
        from .importers import HANDLERS

        self.model = model
        self.opset = default_opset(model)
        self.infos = _infer(model)
        graph = model.graph
        self.static: set[str] = {t.name for t in graph.initializer} | {""}
        self._initializers = {t.name: t for t in graph.initializer}
        self._constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant" and n.output}
        self.problems: list[tuple[str, str, str]] = []
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
                and inputs
                and (node.op_type in SHAPE_OPS or all(i in self.static for i in inputs))
                and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)
            ):
                self.static.update(node.output)
                continue
            if node.domain not in ("", "ai.onnx"):
                self.problems.append((node.op_type, name, f"operators of domain {node.domain!r} are not supported"))
                continue
            handler = HANDLERS.get(node.op_type)
            if handler is None:
                self.problems.append((node.op_type, name, "operator not supported"))
                continue
            attrs = attributes(node)
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
        if name in self._initializers:
            return numpy_helper.to_array(self._initializers[name])
        node = self._constants.get(name)
        if node is not None:
            try:
                return constant_value(attributes(node), OnnxImportError)
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


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """The node's attributes as Python values (tensors as NumPy arrays)."""
    result = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            result[a.name] = numpy_helper.to_array(a.t)
        elif a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            result[a.name] = a
        else:
            value = helper.get_attribute_value(a)
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [v.decode() for v in value]
            result[a.name] = value
    return result


def unsupported_operators(
    model: str | os.PathLike[str] | bytes | onnx.ModelProto, free_dimensions: Mapping[str, int] | None = None
) -> list[tuple[str, str, str]]:
    """Everything in ``model`` the importer cannot build: (op_type or "graph input", node name, reason).

    An empty list means :func:`load` will build every node (the builder may
    still refuse a data type its backend lacks).  Dynamic dimensions not
    fixed by ``free_dimensions`` are reported too.
    """
    proto = read_model(model)
    try:
        proto = _fix_input_dims(proto, free_dimensions)
        dims = []
    except OnnxImportError as exc:
        dims = exc.unsupported
    return dims + Analysis(proto).problems


# -- building ----------------------------------------------------------------------------


class Importer:
    """The state of one import: the builder, and every ONNX value as a NumPy array or MLOperand."""

    def __init__(self, model: onnx.ModelProto, context: MLContext, analysis: Analysis) -> None:
        self.model = model
        self.context = context
        self.analysis = analysis
        self.opset = analysis.opset
        self.builder = MLGraphBuilder(context)
        self.env: dict[str, np.ndarray | MLOperand] = {}
        self._materialized: dict[int, MLOperand] = {}
        self._kept: list[np.ndarray] = []  # keeps the ids of the arrays in _materialized unique
        self.node: onnx.NodeProto | None = None

    # -- values

    def error(self, message: str) -> OnnxImportError:
        node = self.node
        if node is None:
            return OnnxImportError(f"webml.onnx.load: {message}")
        name = node.name or (node.output[0] if node.output else "")
        return OnnxImportError(
            f"webml.onnx.load: {node.op_type} node {name!r}: {message}", [(node.op_type, name, message)]
        )

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
        from .. import dtypes

        a = np.asarray(array, dtype=dtypes.numpy_dtype(data_type))
        return self.builder.constant({"dataType": data_type, "shape": list(a.shape)}, a)

    def scalar(self, value: float, like: MLOperand, shape: Sequence[int] | None = None) -> MLOperand:
        """A constant of ``like``'s data type (rank 0, or ``shape``)."""
        from .. import dtypes

        array = np.full(tuple(shape or ()), value, dtype=dtypes.numpy_dtype(like.data_type))
        return self.builder.constant({"dataType": like.data_type, "shape": list(array.shape)}, array)

    # -- the walk

    def run(self) -> MLGraph:
        graph = self.model.graph
        for init in graph.initializer:
            self.env[init.name] = numpy_helper.to_array(init)
        for value in graph.input:
            if value.name in self.env:
                continue
            t = value.type.tensor_type
            data_type = WEBML_TYPES[t.elem_type]
            shape = [d.dim_value for d in t.shape.dim]
            self.env[value.name] = self.builder.input(value.name, {"dataType": data_type, "shape": shape})
        from .importers import HANDLERS

        for node in graph.node:
            self.node = node
            try:
                outputs = self._node(node, HANDLERS)
            except OnnxImportError:
                raise
            except TypeError as exc:
                raise self.error(str(exc)) from exc
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
        return self.builder.build(result)

    def _node(self, node: onnx.NodeProto, handlers: Mapping[str, Any]) -> list[Any]:
        if node.op_type == "Constant":
            return [constant_value(attributes(node), self.error)]
        if node.op_type in SHAPE_OPS:
            return handlers[node.op_type].build(self, node, attributes(node))
        if (
            node.op_type not in NO_FOLD
            and all(i == "" or isinstance(self.env.get(i), np.ndarray) for i in node.input)
            and node.input
        ):
            return fold(node, [self.env[i] if i else None for i in node.input], self.analysis.model)
        handler = handlers[node.op_type]
        outputs = handler.build(self, node, attributes(node))
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _is_input_or_constant(builder: MLGraphBuilder, operand: MLOperand) -> bool:
    return not is_produced(builder, operand)


def to_webml_array(value: np.ndarray, error: Any = None) -> np.ndarray:
    """A static value in a webml dtype: bool -> uint8, float64 -> float32 (with a warning)."""
    from .. import dtypes

    array = np.asarray(value)
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype == np.float64:
        warnings.warn(
            "webml.onnx.load: a float64 constant was converted to float32 (webml has no float64)", stacklevel=4
        )
        return array.astype(np.float32)
    names = {str(t.dtype) for t in dtypes.DATA_TYPES.values()}
    if str(array.dtype) not in names:
        message = f"a constant of type {array.dtype} has no webml data type"
        raise (error(message) if error else OnnxImportError(message))
    return array


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


def fold(node: onnx.NodeProto, values: Sequence[np.ndarray | None], model: onnx.ModelProto) -> list[np.ndarray]:
    """Compute ``node`` on static inputs with ONNX's reference implementation."""
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if v is not None else "" for i, v in enumerate(values)]
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    del copy.input[:]
    copy.input.extend(names)
    out_names = [f"out{i}" if o else "" for i, o in enumerate(node.output)]
    del copy.output[:]
    copy.output.extend(out_names)
    inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.shape(v))
        for n, v in zip(names, values)
        if n
    ]
    outputs = [helper.make_empty_tensor_value_info(n) for n in out_names if n]
    graph = helper.make_graph([copy], "fold", inputs, outputs)
    opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")] or [helper.make_opsetid("", 21)]
    proto = helper.make_model(graph, opset_imports=opsets, ir_version=model.ir_version or 8)
    try:
        session = ReferenceEvaluator(proto)
        results = session.run(None, {n: np.asarray(v) for n, v in zip(names, values) if n})
    except Exception as exc:
        name = node.name or (node.output[0] if node.output else "")
        raise OnnxImportError(
            f"webml.onnx.load: {node.op_type} node {name!r}: folding its static inputs failed: {exc}",
            [(node.op_type, name, f"folding failed: {exc}")],
        ) from exc
    it = iter(results)
    return [np.asarray(next(it)) if o else None for o in out_names]


def load(
    path_or_model: str | os.PathLike[str] | bytes | onnx.ModelProto,
    context: MLContext,
    free_dimensions: Mapping[str, int] | None = None,
) -> MLGraph:
    """Build the ONNX model with an MLGraphBuilder of ``context``; returns the MLGraph.

    The graph's inputs and outputs keep the model's names (an input the
    outputs do not depend on, e.g. one only read by ``Shape``, is left out of
    the graph, as the builder does).  Boolean tensors are uint8.  Dynamic input
    dimensions are fixed by ``free_dimensions`` (dim_param -> size).  Raises
    :class:`OnnxImportError` listing every unsupported node at once.
    """
    if not isinstance(context, MLContext):
        raise TypeError(f"webml.onnx.load: context must be an MLContext, got {type(context).__name__}")
    model = read_model(path_or_model)
    model = _fix_input_dims(model, free_dimensions)
    analysis = Analysis(model)
    if analysis.problems:
        count = len(analysis.problems)
        raise OnnxImportError(f"webml.onnx.load: the model has {count} unsupported part(s)", analysis.problems)
    return Importer(model, context, analysis).run()


def prod(values: Sequence[int]) -> int:
    return int(math.prod(values))
