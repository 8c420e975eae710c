"""Lowering the graph IR to one ONNX model.

One lowering per operator, registered with :func:`lowering` in the family
module of the same name as in :mod:`webml.ops`.  A lowering receives the
:class:`Lowerer`, the node's operands as keyword arguments of their Python
names (each an :class:`Arg`: the ONNX value name, a ``str``, with its
descriptor; a list for a sequence operand; an absent optional operand is not
passed), its output(s) as ``out`` (an Arg, or a list of them) and the node's
attributes as keyword arguments; it emits ONNX nodes.  It states the data
types it handles per named argument (``@lowering("conv2d", input=FLOATS)``):
the backend reports exactly those in ``op_support_limits()`` and the builder
refuses the rest, so nothing unsupported reaches ONNX Runtime.

Value representation: every operand is an ONNX value of the same element
type, except int4/uint4, which are carried as int8/uint8 holding the same
values (ONNX Runtime's CPU kernels and its Python API barely know 4-bit
types); lowerings that care (quantization, cast) saturate to 4-bit ranges.

Where each constant's bytes go (inside the protobuf, mapped from a file,
handed over as an OrtValue) is :mod:`.weights`' decision.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ... import dtypes
from ...ir import Graph, HasDesc, Node, OperandDesc
from ...ops import FAMILIES, OPS
from ...ops.registry import register
from .weights import Weights

__all__ = [
    "LOWERINGS",
    "OPSET",
    "Arg",
    "Lowered",
    "Lowerer",
    "from_storage",
    "handles",
    "lower",
    "lowering",
    "onnx_type",
    "storage_dtype",
    "to_storage",
]

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


def to_storage(array: np.ndarray, data_type: str) -> np.ndarray:
    """A host array as the engine's value of ``data_type`` (C order; 0-D shapes kept)."""
    return np.asarray(array, dtype=storage_dtype(data_type), order="C")


def from_storage(array: np.ndarray, data_type: str) -> np.ndarray:
    """An engine's value back as a host array of ``data_type`` (the 4-bit types widened from int8/uint8)."""
    if data_type in ("int4", "uint4"):
        return array.astype(dtypes.numpy_dtype(data_type))
    return array


@dataclass(frozen=True)
class Lowering:
    name: str
    fn: Callable[..., None]
    argument_types: Mapping[str, tuple[str, ...]]  # spec argument name -> the data types handled


LOWERINGS: dict[str, Lowering] = {}


def lowering(*names: str, **argument_types: Iterable[str]):
    """Register the lowering of operators ``names``.

    Keyword arguments name the operator's arguments (spec names, outputs
    included, e.g. ``input=FLOATS`` or ``output=("float32",)``) whose data
    types the lowering handles only in part; the others take every type the
    spec allows.  These are what the backend supports; the builder refuses the rest.
    """
    supported = {k: tuple(v) for k, v in argument_types.items()}

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        for name in names:
            unknown = set(supported) - OPS[name].limits.keys()
            if unknown:
                raise RuntimeError(f"onnxruntime lowering for {name}: no argument {', '.join(sorted(unknown))}")
            register(LOWERINGS, name, Lowering(name, fn, supported), "onnxruntime lowering for")
        return fn

    return decorate


def handles(op: str, argument: str, data_type: str) -> bool:
    """Whether the lowering of ``op`` takes ``argument`` of ``data_type`` (what a backend using it supports)."""
    if op in ("input", "constant", "output"):
        return True
    found = LOWERINGS.get(op)
    return found is not None and data_type in found.argument_types.get(argument, (data_type,))


class Arg(HasDesc, str):
    """An operand or output as a lowering sees it: its ONNX value name, with its descriptor."""

    desc: OperandDesc
    id: int  # the IR operand id

    def __new__(cls, name: str, desc: OperandDesc, oid: int) -> Arg:
        arg = super().__new__(cls, name)
        arg.desc, arg.id = desc, oid
        return arg


@dataclass
class Lowered:
    """The result of lowering a graph."""

    model: onnx.ModelProto
    input_names: dict[str, str]  # webml input name -> ONNX graph input name
    output_names: dict[str, str]  # webml output name -> ONNX graph output name
    weights: Weights


_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/\-]*")


class Lowerer:
    """Accumulates the ONNX nodes and initializers of one graph."""

    def __init__(self, graph: Graph, *, embed_all: bool = False, blockwise_quantize: bool = True) -> None:
        self.graph = graph
        #: Whether the target converts ONNX's block-wise (De)QuantizeLinear (OpenVINO's frontend does not).
        self.blockwise_quantize = blockwise_quantize
        self.nodes: list[onnx.NodeProto] = []
        self.weights = Weights(embed_all=embed_all)
        #: The operator being lowered (it tells apart operators that share a lowering).
        self.op = ""
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

    def _initializer(self, array: np.ndarray, name: str, file: str | None = None) -> str:
        self._used.add(name)
        self.weights.add(name, array, file)
        return name

    def add_initializer(self, array: np.ndarray, hint: str) -> str:
        """A new initializer holding ``array`` (a lowering's own constant, e.g. a repacked weight); its name."""
        return self._initializer(array, self.fresh(hint))

    def constant_value(self, arg: Arg) -> np.ndarray | None:
        """The array of a constant operand (a lowering may read it, e.g. indices), or None."""
        return self.graph.constants.get(arg.id)

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
            if desc.data_type in ("int4", "uint4"):  # carried as int8/uint8: a converted copy, in no file
                self._initializer(array.astype(storage_dtype(desc.data_type)).reshape(desc.shape), self.name(oid))
            else:
                self._initializer(np.asarray(array).reshape(desc.shape), self.name(oid), g.constant_files.get(oid))
        for node in g.nodes:
            self._lower_node(node)
        for oid, onnx_name in aliases:
            self.emit("Identity", [self.name(oid)], onnx_name)
        self.weights.keep({i for node in self.nodes for i in node.input} | set(output_names.values()))
        graph = helper.make_graph(self.nodes, "webml", inputs, outputs, initializer=self.weights.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="webml", ir_version=10
        )
        return Lowered(model, input_names, output_names, self.weights)

    def _lower_node(self, node: Node) -> None:
        g = self.graph

        def arg(oid: int) -> Arg:
            return Arg(self.name(oid), g.operands[oid], oid)

        operands = {
            name: [arg(i) for i in ids] if isinstance(ids, tuple) else arg(ids) for name, ids in node.inputs.items()
        }
        outs = [arg(o) for o in node.outputs]
        self.op = node.op
        LOWERINGS[node.op].fn(self, **operands, out=outs[0] if len(outs) == 1 else outs, **node.attrs)


def lower(graph: Graph, *, embed_all: bool = False, blockwise_quantize: bool = True) -> Lowered:
    """Lower ``graph`` to an ONNX model (every constant serialized when ``embed_all``; block-wise
    quantizeLinear/dequantizeLinear as elementwise arithmetic unless ``blockwise_quantize``)."""
    return Lowerer(graph, embed_all=embed_all, blockwise_quantize=blockwise_quantize).lower()


for _family in FAMILIES:
    importlib.import_module(f"{__package__}.{_family}")
