"""Checks of an ONNX model from a stranger, run before anything else reads it.

ONNX's shape inference (C++) trusts its input: a node whose required input
is ``""``, an input no node defines, or an axis of ``2**31`` can crash the
process.  :func:`validate_model` therefore checks, in Python, what shape
inference and the importer rely on, and reports the first problem as an
:class:`OnnxImportError` naming the node, its operator and the problem:

* the graph: names defined before use (topological order, subgraphs see the
  outer scope), no value defined twice, no unnamed graph input;
* each node against its ONNX schema: input and output counts, ``""`` only
  for optional inputs, required attributes present, attribute types, axis
  attributes within any rank webml has; then ``onnx.checker.check_node``;
* each tensor (initializers, tensor attributes): a known element type,
  non-negative dimensions and as much data as the dimensions declare, so
  that decoding it allocates no more than the file holds.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper

from ..ops.checks import LONG_MAX
from ..ops.registry import MAX_RANK
from .errors import OnnxImportError

__all__ = ["PACKED_4BIT", "check_tensor", "node_label", "tensor_type_problem", "validate_model"]

#: Attributes that hold an axis or axes: bounded before shape inference (which overflows on 2**31).
AXIS_ATTRIBUTES = frozenset({"axis", "axes", "batch_axis", "sequence_axis", "time_axis", "new_axis"})
#: Element types whose raw data packs two values per byte.
PACKED_4BIT = frozenset(
    t for t in (getattr(TensorProto, n, None) for n in ("INT4", "UINT4", "FLOAT4E2M1")) if t is not None
)
_ATTRIBUTE_TYPE_NAMES = {v: k for k, v in AttributeProto.AttributeType.items()}


def node_label(node: onnx.NodeProto) -> str:
    """The node's name, or its first output when it has none."""
    return node.name or (node.output[0] if node.output else "")


def _node_error(node: onnx.NodeProto, problem: str) -> OnnxImportError:
    name = node_label(node)
    return OnnxImportError(
        f"webml.onnx.load: {node.op_type} node {name!r}: {problem}", [(node.op_type, name, problem)]
    )


def _error(what: str, name: str, problem: str) -> OnnxImportError:
    return OnnxImportError(f"webml.onnx.load: {what} {name!r}: {problem}", [(what, name, problem)])


def validate_model(
    model: onnx.ModelProto, decoded: dict[str, np.ndarray] | None = None, lifted: frozenset[str] = frozenset()
) -> None:
    """Raise :class:`OnnxImportError` for the first structural problem of ``model``.

    ``decoded``: filled with the arrays of the main graph's initializers whose
    raw data checking read anyway (reading a protobuf bytes field copies it),
    so that the importer does not decode them again.  ``lifted``: main-graph
    initializers whose data :func:`decode_lifted` checked and ``decoded`` holds.
    """
    if model.ir_version < 1:
        raise OnnxImportError("webml.onnx.load: the model has no ir_version (not an ONNX model)")
    opsets = {}
    for entry in model.opset_import:
        if entry.version < 1:
            raise _error("opset", entry.domain or "ai.onnx", f"version {entry.version} is invalid")
        opsets[entry.domain or "ai.onnx"] = entry.version
    if "ai.onnx" not in opsets and model.ir_version >= 3:
        opsets["ai.onnx"] = 1
    if model.graph.sparse_initializer:
        raise _error("graph", model.graph.name, "sparse initializers are not supported")
    _check_graph(model.graph, set(), opsets, model.ir_version, decoded, lifted)


def _decodes_plainly(data_type: int) -> bool:
    """Whether raw data of ``data_type`` is a NumPy array as it lies (a plain type, on a little-endian host)."""
    return data_type in _PLAIN and sys.byteorder == "little"


def decode_lifted(tensor: onnx.TensorProto, raw: memoryview) -> np.ndarray | None:
    """``tensor``'s array over ``raw``, its raw data lifted out of the file (:mod:`webml.onnx.wire`), if it
    decodes as the validator would (a plain type, as many bytes as its dimensions declare); else None."""
    if tensor_type_problem(tensor) or not _decodes_plainly(tensor.data_type):
        return None
    dtype = helper.tensor_dtype_to_np_dtype(tensor.data_type)
    if math.prod(tensor.dims) * dtype.itemsize != len(raw):
        return None
    return np.frombuffer(raw, dtype=dtype).reshape(tuple(tensor.dims))


def _check_graph(
    graph: onnx.GraphProto,
    outer: set[str],
    opsets: dict[str, int],
    ir_version: int,
    decoded: dict[str, np.ndarray] | None = None,
    lifted: frozenset[str] = frozenset(),
) -> None:
    defined = set(outer)
    for init in graph.initializer:
        if not init.name:
            raise _error("initializer", "", "it has no name")
        if init.name in lifted:
            defined.add(init.name)
            continue
        raw = check_tensor(init, f"initializer {init.name!r}")
        if decoded is not None and raw is not None and _decodes_plainly(init.data_type):
            dtype = helper.tensor_dtype_to_np_dtype(init.data_type)
            decoded[init.name] = np.frombuffer(raw, dtype=dtype).reshape(tuple(init.dims))
        defined.add(init.name)
    seen_inputs = set()
    for value in graph.input:
        if not value.name:
            raise _error("graph input", "", "it has no name")
        if value.name in seen_inputs:
            raise _error("graph input", value.name, "the name is given to two graph inputs")
        seen_inputs.add(value.name)
        _check_value_type(value, "graph input")
        defined.add(value.name)
    produced: set[str] = set()
    initializers = {i.name for i in graph.initializer}
    for node in graph.node:
        _check_node(node, defined, opsets, ir_version)
        for output in node.output:
            if not output:
                continue
            if output in produced or output in seen_inputs or output in initializers:
                raise _node_error(node, f"output {output!r} is already defined (each value is defined once)")
            produced.add(output)
            defined.add(output)
    for value in [*graph.output, *graph.value_info]:
        _check_value_type(value, "graph output" if value in graph.output else "value_info")
    for value in graph.output:
        if not value.name or value.name not in defined:
            raise _error("graph output", value.name, "no node, initializer or graph input defines it")


def _check_value_type(value: onnx.ValueInfoProto, what: str) -> None:
    if value.type.HasField("tensor_type"):
        t = value.type.tensor_type
        if t.elem_type not in TensorProto.DataType.values():
            raise _error(what, value.name, f"its element type {t.elem_type} is not an ONNX type")
        for index, dim in enumerate(t.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value < 0:
                raise _error(what, value.name, f"dimension {index} is negative ({dim.dim_value})")


def _check_node(node: onnx.NodeProto, defined: set[str], opsets: dict[str, int], ir_version: int) -> None:
    if not node.op_type:
        raise _node_error(node, "the node has no operator type")
    for index, name in enumerate(node.input):
        if name and name not in defined:
            raise _node_error(node, f"input {index} ({name!r}) is not defined before the node (or not at all)")
    names = [a.name for a in node.attribute]
    if len(set(names)) != len(names):
        raise _node_error(node, "an attribute is given twice")
    for attr in node.attribute:
        _check_attribute(node, attr, defined, opsets, ir_version)
    domain = node.domain or "ai.onnx"
    if domain not in opsets:
        raise _node_error(node, f"its domain {domain!r} is not in the model's opset_import")
    schema = _schema(node.op_type, opsets[domain], domain)
    if schema is None:
        if domain == "ai.onnx" and onnx.defs.has(node.op_type):
            raise _node_error(node, f"{node.op_type} does not exist in opset {opsets[domain]}") from None
        return  # an unknown operator: shape inference skips it, the importer reports it
    _check_against_schema(node, schema)
    _check_output_count(node)
    if any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute):
        return  # check_node checks subgraphs without the outer scope; _check_attribute did them
    try:
        onnx.checker.check_node(node, _checker_context(ir_version, tuple(sorted(opsets.items()))))
    except Exception as exc:  # onnx's ValidationError; its first line says what
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _node_error(node, f"the node does not match the ONNX schema of {node.op_type}: {first}") from None


@functools.lru_cache(maxsize=1024)
def _schema(op_type: str, version: int, domain: str) -> onnx.defs.OpSchema | None:
    """The schema of ``op_type`` in ``version`` of ``domain`` (None when it has none): looked up once per model
    kind, not once per node."""
    try:
        return onnx.defs.get_schema(op_type, version, "" if domain == "ai.onnx" else domain)
    except onnx.defs.SchemaError:
        return None


@functools.lru_cache(maxsize=64)
def _checker_context(ir_version: int, opsets: tuple[tuple[str, int], ...]) -> onnx.checker.C.CheckerContext:
    """onnx's checker context for a model's IR version and opsets (check_node only reads it)."""
    context = onnx.checker.C.CheckerContext()
    context.ir_version = ir_version
    context.opset_imports = {("" if d == "ai.onnx" else d): v for d, v in opsets}
    return context


def _check_output_count(node: onnx.NodeProto) -> None:
    """Attributes that state the number of outputs must agree with it (shape inference indexes by them
    and aborts the process when they do not)."""
    if node.op_type == "Split":
        given = next((a.i for a in node.attribute if a.name == "num_outputs"), None)
        if given is not None and given != len(node.output):
            raise _node_error(node, f"num_outputs={given} but the node has {len(node.output)} outputs")


def _check_against_schema(node: onnx.NodeProto, schema: onnx.defs.OpSchema) -> None:
    op, version = node.op_type, schema.since_version
    count = len(node.input)
    if not schema.min_input <= count <= schema.max_input:
        raise _node_error(
            node, f"{count} input(s), but {op}-{version} takes {_range(schema.min_input, schema.max_input)}"
        )
    formal = list(schema.inputs)
    for index, name in enumerate(node.input):
        if name:
            continue
        param = formal[min(index, len(formal) - 1)] if formal else None
        if param is None or param.option != onnx.defs.OpSchema.FormalParameterOption.Optional:
            label = f" ({param.name})" if param is not None else ""
            raise _node_error(node, f"input {index}{label} is required but its name is empty")
    count = len(node.output)
    if not schema.min_output <= count <= schema.max_output:
        raise _node_error(
            node, f"{count} output(s), but {op}-{version} gives {_range(schema.min_output, schema.max_output)}"
        )
    given = {a.name: a for a in node.attribute}
    for name, attr_schema in schema.attributes.items():
        if attr_schema.required and name not in given:
            raise _node_error(node, f"the required attribute {name!r} is missing")
    for name, attr in given.items():
        attr_schema = schema.attributes.get(name)
        if attr_schema is None:
            continue  # check_node refuses unknown attributes with the schema's words
        if int(attr_schema.type) != int(attr.type) and attr.type != AttributeProto.UNDEFINED:
            want = str(attr_schema.type).rsplit(".", 1)[-1]
            raise _node_error(node, f"attribute {name!r} must be {want}, not {_ATTRIBUTE_TYPE_NAMES.get(attr.type)}")


def _range(low: int, high: int) -> str:
    if low == high:
        return str(low)
    return f"at least {low}" if high >= LONG_MAX else f"{low} to {high}"


#: Attributes that name an element type (Cast's ``to``, EyeLike's and the random generators' ``dtype``).
TYPE_ATTRIBUTES = frozenset({"to", "dtype", "output_dtype"})
_KNOWN_TYPES = frozenset(onnx.TensorProto.DataType.values())


def _check_attribute(
    node: onnx.NodeProto, attr: onnx.AttributeProto, defined: set[str], opsets: dict[str, int], ir_version: int
) -> None:
    if attr.type not in _ATTRIBUTE_TYPE_NAMES or attr.type == AttributeProto.UNDEFINED:
        if attr.ref_attr_name:
            return
        raise _node_error(node, f"attribute {attr.name!r} has no valid type ({attr.type})")
    if attr.name in AXIS_ATTRIBUTES:
        values = [attr.i] if attr.type == AttributeProto.INT else list(attr.ints)
        for v in values:
            if abs(v) > MAX_RANK:
                raise _node_error(node, f"attribute {attr.name}={v} is out of range (webml's ranks are <= {MAX_RANK})")
    if attr.name in TYPE_ATTRIBUTES and attr.type == AttributeProto.INT:
        if attr.i not in _KNOWN_TYPES or attr.i == onnx.TensorProto.UNDEFINED:
            raise _node_error(node, f"attribute {attr.name}={attr.i} is not an ONNX element type")
    if attr.type == AttributeProto.TENSOR:
        check_tensor(attr.t, f"attribute {attr.name!r}", node)
    elif attr.type == AttributeProto.TENSORS:
        for t in attr.tensors:
            check_tensor(t, f"attribute {attr.name!r}", node)
    elif attr.type == AttributeProto.SPARSE_TENSOR or attr.type == AttributeProto.SPARSE_TENSORS:
        raise _node_error(node, f"attribute {attr.name!r}: sparse tensors are not supported")
    elif attr.type == AttributeProto.GRAPH:
        _check_graph(attr.g, defined, opsets, ir_version)
    elif attr.type == AttributeProto.GRAPHS:
        for g in attr.graphs:
            _check_graph(g, defined, opsets, ir_version)


def tensor_type_problem(tensor: onnx.TensorProto) -> str | None:
    """Why ``tensor``'s element type or dimensions are invalid, or None."""
    if tensor.data_type == TensorProto.UNDEFINED or tensor.data_type not in TensorProto.DataType.values():
        return f"element type {tensor.data_type} is not an ONNX type"
    if any(d < 0 for d in tensor.dims):
        return f"negative dimension in {list(tensor.dims)}"
    if len(tensor.dims) > 64:
        return f"rank {len(tensor.dims)} is too large"
    return None


#: Element types whose raw data is the NumPy array's bytes (little-endian), as numpy_helper.to_array reads them.
_PLAIN = frozenset(
    {
        TensorProto.FLOAT,
        TensorProto.DOUBLE,
        TensorProto.FLOAT16,
        TensorProto.INT8,
        TensorProto.INT16,
        TensorProto.INT32,
        TensorProto.INT64,
        TensorProto.UINT8,
        TensorProto.UINT16,
        TensorProto.UINT32,
        TensorProto.UINT64,
        TensorProto.BOOL,
    }
)


def check_tensor(tensor: onnx.TensorProto, what: str, node: onnx.NodeProto | None = None) -> bytes | None:
    """Refuse a tensor whose type is unknown or whose data is not what its dimensions declare.

    Returns the raw data it read (None for a tensor without raw data).
    """

    def fail(problem: str) -> OnnxImportError:
        if node is not None:
            return _node_error(node, f"{what}: {problem}")
        return _error(what.split(" ")[0], tensor.name, problem)

    problem = tensor_type_problem(tensor)
    if problem:
        raise fail(problem)
    count = math.prod(tensor.dims)
    if tensor.data_location == TensorProto.EXTERNAL:
        raise fail("its external data was not loaded")
    if tensor.data_type == TensorProto.STRING:
        have = len(tensor.string_data)
        if have != count:
            raise fail(f"dimensions {list(tensor.dims)} declare {count} strings, the data holds {have}")
        return None
    raw = None
    if tensor.HasField("raw_data"):
        itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        need = (count + 1) // 2 if tensor.data_type in PACKED_4BIT else count * itemsize
        raw = tensor.raw_data
        have = len(raw)
    else:
        field = helper.tensor_dtype_to_field(tensor.data_type)
        have = len(getattr(tensor, field))
        per = 2 if tensor.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128) else 1
        need = (count + 1) // 2 if tensor.data_type in PACKED_4BIT else count * per
    if have != need:
        raise fail(f"dimensions {list(tensor.dims)} declare {count} value(s): {need} data unit(s), not {have}")
    return raw

