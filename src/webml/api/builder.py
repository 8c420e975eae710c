"""MLGraphBuilder: inputs, constants, build, and one method per operator.

The operator methods are generated from :data:`webml.ops.OPS`: each runs the
checks every operator shares (the builder can build, every operand belongs
to this builder, the argument's data type and rank are supported), then the
operator's rule from its family module.  A call that raises leaves the
builder exactly as it was.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import dtypes
from ..errors import InvalidStateError, op_message
from ..ir import Graph, Node, OperandDesc, Value, ancestors
from ..ops import OPS, OpDef
from ..ops.registry import OPTIONAL, REQUIRED, SEQUENCE, Call
from .buffers import to_array
from .descriptors import check_dimensions, parse_operand_descriptor
from .graph import MLGraph
from .operand import MLOperand, operand_value
from .spelling import PythonSpelling, add_javascript_names, merge_options, options_members, unexpected_keyword
from .tensor import MLTensor, checked_tensor

if TYPE_CHECKING:
    from .context import MLContext


class MLGraphBuilder(PythonSpelling):
    """Builds one computational graph for a context.

    >>> import webml
    >>> context = webml.ml.create_context(backend="reference")
    >>> builder = webml.MLGraphBuilder(context)
    >>> x = builder.input("x", {"dataType": "float32", "shape": [2]})
    >>> y = builder.add(x, builder.constant("float32", 1.5), label="plus")
    >>> graph = builder.build({"y": y})
    >>> context.compute(graph, {"x": [1.0, 2.0]})["y"]
    array([2.5, 3.5], dtype=float32)
    """

    def __init__(
        self, context: MLContext, *, protected: bool = False, constants_from: memoryview | None = None
    ) -> None:
        """``protected`` (non-spec): the graph holds a protected model's weights
        (:mod:`webml.protected`): its constants stay in anonymous memory, never
        in files, and the built MLGraph never gives them back.  ``constants_from``
        (non-spec, protected graphs only): a read-only memoryview over memory that
        nobody changes while the graph lives; constants given as read-only arrays
        inside it are used in place rather than copied (the spec's copy protects a
        caller's buffer; webml.protected's decrypted model is nobody else's)."""
        from .context import MLContext

        if not isinstance(context, MLContext):
            raise TypeError(f"MLGraphBuilder: context must be an MLContext, got {type(context).__name__}")
        context.check_not_lost("MLGraphBuilder")
        self._context = context
        self._has_built = False
        self._descs: dict[int, OperandDesc] = {}
        self._nodes: list[Node] = []
        self._producer: dict[int, int] = {}  # operand id -> index in _nodes
        self._inputs: dict[str, int] = {}
        self._constants: dict[int, np.ndarray] = {}
        self._constant_tensors: dict[int, MLTensor] = {}
        self._constant_files: dict[int, str] = {}  # constant id -> the file of webml.storage that holds it
        if not isinstance(protected, bool):
            raise TypeError(f"MLGraphBuilder: protected must be a bool, got {type(protected).__name__}")
        if constants_from is not None and not (
            protected and isinstance(constants_from, memoryview) and constants_from.readonly
        ):
            raise TypeError("MLGraphBuilder: constants_from must be a read-only memoryview, for a protected graph")
        self._protected = protected
        self._store = context.constant_store(in_memory=protected, lender=constants_from)
        self._next_id = 0

    @property
    def context(self) -> MLContext:
        """The context the builder builds for (non-spec: for code that adds to a builder, e.g. webml.onnx)."""
        return self._context

    # -- state ---------------------------------------------------------------

    def _check_can_build(self, where: str) -> None:
        if self._has_built:
            raise InvalidStateError(f"{where}: the builder has already built a graph")
        self._context.check_not_lost(where)

    def _new_value(self, desc: OperandDesc) -> Value:
        value = Value(self._next_id, desc)
        self._descs[value.id] = desc
        self._next_id += 1
        return value

    def _emit(self, op: str, inputs: tuple, descs: list[OperandDesc], attrs: Any, label: str) -> list[Value]:
        limit = self._context.max_tensor_byte_length
        for d in descs:
            if d.byte_length > limit:
                raise TypeError(
                    op_message(op, label, f"the output {d} needs {d.byte_length} bytes, more than the maximum {limit}")
                )
        values = [self._new_value(d) for d in descs]
        self._nodes.append(Node(op, inputs, tuple(v.id for v in values), attrs, label))
        for v in values:
            self._producer[v.id] = len(self._nodes) - 1
        return values

    def _node_of(self, oid: int) -> Node | None:
        index = self._producer.get(oid)
        return None if index is None else self._nodes[index]

    def _rollback(self, n_nodes: int, next_id: int) -> None:
        """Forget nodes and operands added since (n_nodes, next_id): a failed call changes nothing."""
        for node in self._nodes[n_nodes:]:
            for o in node.outputs:
                self._producer.pop(o, None)
        del self._nodes[n_nodes:]
        for oid in range(next_id, self._next_id):
            self._descs.pop(oid, None)
        self._next_id = next_id

    def _operand(self, value: Any, where: str, what: str) -> Value:
        return operand_value(value, self, where, what)

    # -- inputs and constants --------------------------------------------------

    def input(self, name: str, descriptor: Mapping[str, Any]) -> MLOperand:
        """A named graph input: ``builder.input("x", {"dataType": "float32", "shape": [2, 3]})``."""
        self._check_can_build("input")
        if not isinstance(name, str):
            raise TypeError(f"input: name must be a string, got {type(name).__name__}")
        if not name:
            raise TypeError("input: name must not be empty")
        if name in self._inputs:
            raise TypeError(f"input: an input named {name!r} already exists")
        where = f"input {name!r}"
        desc = parse_operand_descriptor(descriptor, where)
        check_dimensions(desc, where, self._context.max_tensor_byte_length)
        self._check_io_type("input", desc, where)
        value = self._new_value(desc)
        self._inputs[name] = value.id
        return MLOperand(self, value, name)

    def constant(self, *args: Any) -> MLOperand:
        """A graph constant, from one of three forms (as in the spec):

        * ``constant(descriptor, buffer)``: a NumPy array of the descriptor's
          dtype or raw bytes, copied now;
        * ``constant(data_type, number)``: a scalar, cast to the data type;
        * ``constant(tensor)``: a constant MLTensor of this context.
        """
        if len(args) == 1:
            return self._constant_tensor(args[0])
        if len(args) != 2:
            raise TypeError(f"constant: takes 1 or 2 arguments, got {len(args)}")
        if isinstance(args[0], str):
            return self._constant_scalar(*args)
        return self._constant_buffer(*args)

    def _add_constant(self, desc: OperandDesc, array: np.ndarray) -> MLOperand:
        """Keep a copy of ``array`` (the spec's copy-on-constant), made once, read-only."""
        value = self._new_value(desc)
        self._constants[value.id], path = self._store.copy(array)
        if path is not None:
            self._constant_files[value.id] = path
        return MLOperand(self, value)

    def _constant_buffer(self, descriptor: Any, buffer: Any) -> MLOperand:
        self._check_can_build("constant")
        desc = parse_operand_descriptor(descriptor, "constant")
        check_dimensions(desc, "constant", self._context.max_tensor_byte_length)
        self._check_io_type("constant", desc, "constant")
        return self._add_constant(desc, to_array(buffer, desc, "constant", copy=False))

    def _constant_scalar(self, data_type: str, value: Any) -> MLOperand:
        self._check_can_build("constant")
        if data_type not in dtypes.DATA_TYPES:
            raise TypeError(f"constant: '{data_type}' is not a valid MLOperandDataType")
        if isinstance(value, (np.integer, np.floating)):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"constant: value must be a number, got {type(value).__name__}")
        desc = OperandDesc(data_type, ())
        self._check_io_type("constant", desc, "constant")
        cast = dtypes.cast_number(value, data_type)
        return self._add_constant(desc, np.array(cast, dtype=dtypes.numpy_dtype(data_type)))

    def _constant_tensor(self, tensor: Any) -> MLOperand:
        checked_tensor(tensor, self._context, "constant")
        if not tensor.constant:
            raise TypeError("constant: the tensor is not a constant tensor")
        self._check_can_build("constant")
        value = self._new_value(tensor.descriptor)
        self._constant_tensors[value.id] = tensor
        return MLOperand(self, value)

    def _check_io_type(self, kind: str, desc: OperandDesc, where: str) -> None:
        if not self._context.supports(kind, kind, desc.data_type, desc.rank):
            raise TypeError(
                f"{where}: {desc.data_type} of rank {desc.rank} is not supported by the {self._context.backend} backend"
            )

    # -- build ---------------------------------------------------------------

    def build(self, outputs: Mapping[str, MLOperand]) -> MLGraph:
        """Compile the graph up to ``outputs`` (a dict of name -> MLOperand); once per builder."""
        self._check_can_build("build")
        if not isinstance(outputs, Mapping):
            raise TypeError(f"build: outputs must be a dict of name -> MLOperand, got {type(outputs).__name__}")
        if not outputs:
            raise TypeError("build: outputs must not be empty")
        out_ids: dict[str, int] = {}
        for name, operand in outputs.items():
            if not isinstance(name, str) or not name:
                raise TypeError("build: output names must be non-empty strings")
            value = self._operand(operand, "build", f"output {name!r}")
            if value.id in self._constants or value.id in self._constant_tensors or value.id in self._inputs.values():
                raise TypeError(f"build: output {name!r} is an input or a constant; use identity() to output it")
            out_ids[name] = value.id
        needed = ancestors(out_ids.values(), self._node_of)
        node_indices = sorted({self._producer[o] for o in needed if o in self._producer})
        nodes = tuple(self._nodes[i] for i in node_indices)
        constants = {o: a for o, a in self._constants.items() if o in needed}
        for oid, tensor in self._constant_tensors.items():
            if oid in needed:
                constants[oid] = self._context.constant_tensor_data(tensor, "build")
        operand_ids = set(needed)
        for n in nodes:
            operand_ids.update(n.outputs)
        ir = Graph(
            operands={o: self._descs[o] for o in sorted(operand_ids)},
            inputs={n: i for n, i in self._inputs.items() if i in needed},
            constants=constants,
            nodes=nodes,
            outputs=out_ids,
            constant_files={o: path for o, path in self._constant_files.items() if o in needed},
            protected=self._protected,
        )
        self._has_built = True
        try:
            return self._context.compile_graph(ir, "build")
        finally:
            # The backend has mapped what it needs; the arrays stay valid without the files.
            # A built builder builds nothing more: drop its arrays, so that the graph (or,
            # once it released them, the backend alone) decides how long the weights live.
            self._constants.clear()
            self._store.release_files()


def _make_method(opdef: OpDef):
    params = list(opdef.signature.parameters.values())[1:]  # drop `call`
    label_param = inspect.Parameter("label", inspect.Parameter.KEYWORD_ONLY, default="", annotation=str)
    kinds = {o.param: o.kind for o in opdef.operands}
    public_params = [p.replace(annotation=_PUBLIC_ANNOTATIONS.get(kinds.get(p.name), p.annotation)) for p in params]
    public_sig = inspect.Signature(
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *public_params, label_param]
    )
    rule_sig = opdef.signature.replace(parameters=params)
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    keywords = frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    options = sorted(p.name for p in params if p.kind is p.KEYWORD_ONLY)
    positional_names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = frozenset(p.name for p in params if p.default is p.empty)
    simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> dict[str, Any]:
        """The arguments by name, as ``Signature.bind`` gives them (a tenth of its time per call)."""
        if simple and len(args) <= positional:
            arguments = dict(zip(positional_names, args))
            if arguments.keys().isdisjoint(kwargs):
                arguments.update(kwargs)
                if required <= arguments.keys():
                    return arguments
        try:  # the unusual call, and every wrong one, with inspect's own message
            return dict(rule_sig.bind(*args, **kwargs).arguments)
        except TypeError as exc:
            raise TypeError(f"{where}: {exc}") from None

    def method(self: MLGraphBuilder, *args: Any, label: str = "", **kwargs: Any) -> Any:
        name = opdef.name
        if len(args) > positional and isinstance(args[-1], Mapping):
            # The JavaScript form: the options dict last, with the spec's keys (and its label).
            members = options_members(args[-1], [*keywords, "label"], name)
            args = args[:-1]
            kwargs = merge_options(name, members, {**kwargs, "label": label or None})
            label = kwargs.pop("label", None) or ""
        if not isinstance(label, str):
            raise TypeError(op_message(name, "", f"label must be a string, got {type(label).__name__}"))
        where = op_message(name, label, "").rstrip(": ")
        self._check_can_build(where)
        if not keywords.issuperset(kwargs):
            raise unexpected_keyword(where, min(kwargs.keys() - keywords), [*options, "label"])
        arguments = {
            pname: _convert(self, value, kinds.get(pname), where, pname)
            for pname, value in bind(args, kwargs, where).items()
        }
        _check_limits(self, opdef, arguments, where)
        mark = (len(self._nodes), self._next_id)
        try:
            result = opdef.rule(Call(name, label, self._emit), **arguments)
        except BaseException:
            self._rollback(*mark)
            raise
        return _wrap(self, result)

    method.__name__ = opdef.method
    method.__qualname__ = f"MLGraphBuilder.{opdef.method}"
    method.__doc__ = opdef.rule.__doc__
    method.__signature__ = public_sig  # type: ignore[attr-defined]
    return method


# The Python API's annotation of each kind of operand argument.
_PUBLIC_ANNOTATIONS = {REQUIRED: "MLOperand", OPTIONAL: "MLOperand | None", SEQUENCE: "list[MLOperand]"}


def _convert(builder: MLGraphBuilder, value: Any, kind: str | None, where: str, what: str) -> Any:
    """Operand arguments become Values of this builder; anything else there is a TypeError."""
    if kind == REQUIRED or (kind == OPTIONAL and value is not None):
        return builder._operand(value, where, what)
    if kind == SEQUENCE:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: {what} must be a sequence of MLOperand, got {type(value).__name__}")
        return [builder._operand(v, where, f"{what}[{i}]") for i, v in enumerate(value)]
    return value


def _check_limits(builder: MLGraphBuilder, opdef: OpDef, arguments: dict[str, Any], where: str) -> None:
    context = builder._context
    for operand in opdef.operands:
        value = arguments.get(operand.param)
        values = value if isinstance(value, list) else [value]
        arg, lim = operand.name, operand.limit
        for v in values:
            if not isinstance(v, Value):
                continue
            if v.data_type not in lim.data_types or not context.supports(opdef.name, arg, v.data_type, v.rank):
                raise TypeError(f"{where}: {arg} data type {v.data_type} is not supported")
            if not lim.min_rank <= v.rank <= lim.max_rank:
                raise TypeError(
                    f"{where}: {arg} rank {v.rank} is not supported (supported: {lim.min_rank} to {lim.max_rank})"
                )


def _wrap(builder: MLGraphBuilder, result: Any) -> Any:
    if isinstance(result, Value):
        return MLOperand(builder, result)
    if isinstance(result, (list, tuple)):
        return [_wrap(builder, r) for r in result]
    raise AssertionError(f"operator rule returned {result!r}")


for _opdef in OPS.values():
    setattr(MLGraphBuilder, _opdef.method, _make_method(_opdef))
add_javascript_names(MLGraphBuilder, {o.name: o.method for o in OPS.values()})


# -- what other layers read of a builder (non-spec) ----------------------------------------


def is_produced(builder: MLGraphBuilder, operand: MLOperand) -> bool:
    """Whether ``operand`` is an operator's output (not an input or constant) of ``builder``:
    only those may be graph outputs (wrap the others in ``identity``)."""
    return builder._operand(operand, "is_produced", "operand").id in builder._producer


def recorded_nodes(builder: MLGraphBuilder) -> tuple[Node, ...]:
    """The nodes ``builder`` has recorded so far, in the order of the calls (for autodiff)."""
    return tuple(builder._nodes)


def producer(builder: MLGraphBuilder, oid: int) -> Node | None:
    """The node of ``builder`` whose output is the operand ``oid``; None for an input or a constant."""
    return builder._node_of(oid)


def operand_of(builder: MLGraphBuilder, oid: int) -> MLOperand:
    """An MLOperand of ``builder`` for its operand ``oid`` (one that a recorded node reads or makes)."""
    desc = builder._descs.get(oid)
    if desc is None:
        raise ValueError(f"operand_of: the builder has no operand {oid}")
    return MLOperand(builder, Value(oid, desc))


def operator_methods() -> dict[str, str]:
    """Spec operator name -> Python method name, for every operator."""
    return {o.name: o.method for o in OPS.values()}


__all__ = [
    "MLGraphBuilder",
    "is_produced",
    "operand_of",
    "operand_value",
    "operator_methods",
    "producer",
    "recorded_nodes",
]
