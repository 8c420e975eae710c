"""Lowering the graph IR to one ONNX model.

One lowering per operator, registered with :func:`lowering` in the family
module of the same name as in :mod:`webml.ops`.  A lowering receives the
:class:`Lowerer` and an :class:`Op` (the node with ONNX value names) and
emits ONNX nodes.  It states the data types it handles (``types``): the
backend reports exactly those in ``op_support_limits()`` and the builder
refuses the rest, so nothing unsupported reaches ONNX Runtime.

Value representation: every operand is an ONNX value of the same element
type, except int4/uint4, which are carried as int8/uint8 holding the same
values (ONNX Runtime's CPU kernels and its Python API barely know 4-bit
types); lowerings that care (quantization, cast) saturate to 4-bit ranges.

Large constants are not serialized into the protobuf: those that live in
shared-memory files (:mod:`webml.storage`) become external-data tensors
that ONNX Runtime maps, the others are handed over as OrtValues.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ... import dtypes
from ...ir import Graph, Node, OperandDesc
from ...ops import FAMILIES
from ...storage import SHARED_THRESHOLD, file_location

__all__ = ["LOWERINGS", "OPSET", "Lowered", "Lowerer", "Op", "lower", "lowering", "onnx_type", "storage_dtype"]

#: The default-domain opset of the models webml writes.
OPSET = 21

_ONNX_TYPES = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
    "int32": TensorProto.INT32,
    "uint32": TensorProto.UINT32,
    "int64": TensorProto.INT64,
    "uint64": TensorProto.UINT64,
    "int8": TensorProto.INT8,
    "uint8": TensorProto.UINT8,
    "int4": TensorProto.INT8,  # carried as int8, see the module docstring
    "uint4": TensorProto.UINT8,
    "bool": TensorProto.BOOL,
}


def onnx_type(data_type: str) -> int:
    """The ONNX element type that carries a webml data type."""
    return _ONNX_TYPES[data_type]


def storage_dtype(data_type: str) -> np.dtype:
    """The NumPy dtype of the ONNX value carrying ``data_type`` (int8/uint8 for the 4-bit types)."""
    if data_type == "int4":
        return np.dtype(np.int8)
    if data_type == "uint4":
        return np.dtype(np.uint8)
    return dtypes.numpy_dtype(data_type)


@dataclass(frozen=True)
class Lowering:
    name: str
    fn: Callable[..., None]
    types: tuple[str, ...]  # of the operator's first operand argument
    argument_types: Mapping[str, tuple[str, ...]]  # of other arguments (spec names), where narrower


LOWERINGS: dict[str, Lowering] = {}


def lowering(*names: str, types: Iterable[str], **argument_types: Iterable[str]):
    """Register the lowering of operators ``names``.

    ``types`` are the data types of the operator's first operand argument
    that the lowering handles; keyword arguments narrow other arguments
    (spec names, e.g. ``output=("float32",)`` for cast).  These are what the
    backend supports; the builder refuses the rest.
    """
    supported = tuple(types)
    others = {k: tuple(v) for k, v in argument_types.items()}

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        for name in names:
            if name in LOWERINGS:
                raise RuntimeError(f"onnxruntime lowering for {name} registered twice")
            LOWERINGS[name] = Lowering(name, fn, supported, others)
        return fn

    return register


@dataclass
class Op:
    """A node as its lowering sees it: ONNX value names and descriptors."""

    node: Node
    inputs: list[str | None]
    outputs: list[str]
    in_descs: list[OperandDesc | None]
    out_descs: list[OperandDesc]

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self.node.attrs

    @property
    def input(self) -> str:
        """The first input's name."""
        assert self.inputs[0] is not None
        return self.inputs[0]

    @property
    def output(self) -> str:
        return self.outputs[0]

    @property
    def in_type(self) -> str:
        desc = self.in_descs[0]
        assert desc is not None
        return desc.data_type

    @property
    def out_type(self) -> str:
        return self.out_descs[0].data_type


@dataclass
class Lowered:
    """The result of lowering a graph."""

    model: onnx.ModelProto
    input_names: dict[str, str]  # webml input name -> ONNX graph input name
    output_names: dict[str, str]  # webml output name -> ONNX graph output name
    external_files: dict[str, str] = field(default_factory=dict)  # initializer -> absolute path
    ortvalue_initializers: dict[str, np.ndarray] = field(default_factory=dict)  # initializer -> array


_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/\-]*")


class Lowerer:
    """Accumulates the ONNX nodes and initializers of one graph."""

    def __init__(self, graph: Graph, *, embed_all: bool = False) -> None:
        self.graph = graph
        self.embed_all = embed_all  # serialize every constant (webml.onnx.save)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self.external_files: dict[str, str] = {}
        self.ortvalue_initializers: dict[str, np.ndarray] = {}
        self._names: dict[int, str] = {}
        self._used: set[str] = set()
        self._counter = 0

    # -- names -----------------------------------------------------------------

    def fresh(self, hint: str = "t") -> str:
        while True:
            self._counter += 1
            name = f"{hint}_{self._counter}"
            if name not in self._used:
                self._used.add(name)
                return name

    def name(self, oid: int) -> str:
        if oid not in self._names:
            self._names[oid] = self.fresh("v")
        return self._names[oid]

    def _claim(self, preferred: str, fallback: str) -> str:
        name = preferred if _SAFE_NAME.fullmatch(preferred) and preferred not in self._used else self.fresh(fallback)
        self._used.add(name)
        return name

    # -- emitting ------------------------------------------------------------------

    def emit(
        self,
        op_type: str,
        inputs: Sequence[str | None],
        outputs: str | int | Sequence[str] = 1,
        *,
        domain: str = "",
        **attrs: Any,
    ) -> Any:
        """Add an ONNX node; ``outputs`` is a name, names, or a count of fresh names.

        Returns the output name (one output) or the list of names.  ``None``
        inputs become empty names (ONNX's absent optional input).
        """
        if isinstance(outputs, int):
            out_names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        elif isinstance(outputs, str):
            out_names = [outputs]
        else:
            out_names = list(outputs)
        attrs = {k: v for k, v in attrs.items() if v is not None}
        inputs = list(inputs)
        while inputs and inputs[-1] is None:  # trailing absent inputs are omitted, not ""
            inputs.pop()
        self.nodes.append(
            helper.make_node(
                op_type, ["" if i is None else i for i in inputs], out_names, domain=domain or None, **attrs
            )
        )
        return out_names[0] if len(out_names) == 1 else out_names

    def const(self, value: Any, data_type: str | None = None, name: str | None = None) -> str:
        """An initializer holding ``value`` (an array, or a number/list cast to ``data_type``)."""
        if isinstance(value, np.ndarray) and data_type is None:
            array = value
        else:
            dt = storage_dtype(data_type) if data_type is not None else np.asarray(value).dtype
            array = np.asarray(value, dtype=dt)
        return self._initializer(array, name or self.fresh("c"))

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 initializer (shapes, axes, pads...)."""
        return self.const(np.asarray(list(values), dtype=np.int64))

    def _initializer(self, array: np.ndarray, name: str) -> str:
        self._used.add(name)
        path = None if self.embed_all else file_location(array)
        if path is not None:
            # A shared-memory file (webml.storage): ONNX Runtime maps the same pages.
            self.initializers.append(
                _external_tensor(name, array, location=path.lstrip("/"), offset="0", length=str(array.nbytes))
            )
            self.external_files[name] = path
        elif not self.embed_all and array.nbytes >= SHARED_THRESHOLD:
            # No shared-memory file: hand the array over as an OrtValue (ONNX Runtime copies it).
            self.ortvalue_initializers[name] = np.asarray(array, order="C")
            self.initializers.append(_external_tensor(name, array, location=f"ortvalue-{name}"))
        else:
            self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def cast(self, name: str, to: str, output: str | None = None) -> str:
        """``name`` converted to the ONNX type carrying webml data type ``to``."""
        return self.emit("Cast", [name], output or 1, to=onnx_type(to))

    # -- graph -------------------------------------------------------------------------

    def lower(self) -> Lowered:
        g = self.graph
        inputs, input_names = [], {}
        for name, oid in g.inputs.items():
            onnx_name = self._claim(name, "input")
            self._names[oid] = onnx_name
            desc = g.operands[oid]
            inputs.append(helper.make_tensor_value_info(onnx_name, onnx_type(desc.data_type), desc.shape))
            input_names[name] = onnx_name
        # Graph outputs name the values that produce them, so no copy is added;
        # an operand output under two names (or a graph input) goes through Identity.
        outputs, output_names, aliases = [], {}, []
        for name, oid in g.outputs.items():
            onnx_name = self._claim(name, "output")
            if oid in self._names or oid in g.constants:
                aliases.append((oid, onnx_name))
            else:
                self._names[oid] = onnx_name
            desc = g.operands[oid]
            outputs.append(helper.make_tensor_value_info(onnx_name, onnx_type(desc.data_type), desc.shape))
            output_names[name] = onnx_name
        for oid, array in g.constants.items():
            desc = g.operands[oid]
            stored = array.astype(storage_dtype(desc.data_type)) if desc.data_type in ("int4", "uint4") else array
            self._initializer(np.asarray(stored).reshape(desc.shape), self.name(oid))
        for node in g.nodes:
            op = Op(
                node,
                [None if i is None else self.name(i) for i in node.inputs],
                [self.name(o) for o in node.outputs],
                [None if i is None else g.operands[i] for i in node.inputs],
                [g.operands[o] for o in node.outputs],
            )
            LOWERINGS[node.op].fn(self, op)
        for oid, onnx_name in aliases:
            self.emit("Identity", [self.name(oid)], onnx_name)
        # Lowerings that read a constant at lowering time (e.g. resolved indices) leave it unused.
        used = {i for node in self.nodes for i in node.input} | set(output_names.values())
        self.initializers = [t for t in self.initializers if t.name in used]
        self.external_files = {k: v for k, v in self.external_files.items() if k in used}
        self.ortvalue_initializers = {k: v for k, v in self.ortvalue_initializers.items() if k in used}
        graph = helper.make_graph(self.nodes, "webml", inputs, outputs, initializer=self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="webml", ir_version=10
        )
        return Lowered(model, input_names, output_names, self.external_files, self.ortvalue_initializers)


def _external_tensor(name: str, array: np.ndarray, **external_data: str) -> TensorProto:
    """A TensorProto of ``array``'s type and shape whose data lives outside the protobuf."""
    t = TensorProto()
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    t.dims.extend(array.shape)
    t.data_location = TensorProto.EXTERNAL
    for key, value in external_data.items():
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def lower(graph: Graph, *, embed_all: bool = False) -> Lowered:
    """Lower ``graph`` to an ONNX model (every constant serialized when ``embed_all``)."""
    return Lowerer(graph, embed_all=embed_all).lower()


for _family in FAMILIES:
    importlib.import_module(f"{__package__}.{_family}")
