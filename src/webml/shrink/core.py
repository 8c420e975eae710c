""":func:`shrink`: float16 / int8 / int4 weights for a float32 graph (see :mod:`webml.shrink`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..api.context import MLContext
from ..api.graph import MLGraph, released_constants_message
from ..errors import InvalidStateError
from ..ir import Graph
from .correct import bias_shift, input_means
from .quantize import block_shape, quantize_weight
from .rules import FLOAT16_MAX, WeightSite, float16_reason, layer_name, weight_sites
from .transform import Plan, rebuild

__all__ = ["PRECISIONS", "ShrinkError", "ShrinkResult", "shrink", "shrink_context"]

#: The precisions ``shrink(to=...)`` makes.
PRECISIONS = ("float16", "int8", "int4")
_QUANTIZED_TYPES = frozenset({"int8", "uint8", "int4", "uint4"})


class ShrinkError(ValueError):
    """A model :func:`shrink` cannot shrink (already quantized, dynamic, not float32) or a bad option."""


@dataclass
class ShrinkResult:
    """What :func:`shrink` made: the shrunk ``graph`` and what it did, layer by layer.

    ``original`` is the float32 graph it was made from (on the same context),
    ``kept_wide`` the (layer, reason) pairs kept wider than ``to`` (float32,
    or int8 under int4) and ``precisions`` each layer's precision (every
    operator for float16; every weight for int8/int4).  ``notes`` are remarks
    for the report.
    """

    graph: MLGraph
    original: MLGraph
    to: str
    kept_wide: list[tuple[str, str]] = field(default_factory=list)
    precisions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the shrunk graph as an ONNX file (:func:`webml.onnx.save`); returns the path."""
        from ..onnx import save

        return save(self.graph, path)


def shrink(
    model: Any,
    to: str = "float16",
    *,
    context: MLContext | None = None,
    keep_io: str = "float32",
    block_size: int = 32,
    symmetric: bool = True,
    keep_embeddings: bool = False,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    calibration: Any = None,
    max_drop: float | None = None,
    correct_bias: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> ShrinkResult:
    """``model`` with float16, int8 (per output channel) or int4 (block-wise) weights.

    ``model`` is an MLGraph that kept its constants, or an ONNX model (path,
    bytes or ModelProto; ``input_shapes`` fixes its dynamic input dimensions
    as :func:`webml.onnx.load`'s).  The new graph is built on ``context``
    (default: :func:`shrink_context`).  Raises :class:`ShrinkError` for a model
    that is already quantized (or already float16 for ``to="float16"``).

    int8 / int4 round each block's weights so that their sum is kept
    (:mod:`webml.shrink.quantize`).  With ``calibration`` (inputs as
    :func:`webml.shrink.report` takes them), the mean shift that quantizing
    causes in each layer is measured and taken back through its bias
    (:mod:`webml.shrink.correct`; ``correct_bias=False`` to skip), and
    ``max_drop`` widens weights one rung at a time (int4, int8, float16,
    float32), the most sensitive per element first, until the outputs' drop
    on the calibration inputs is at most ``max_drop``
    (:mod:`webml.shrink.search`; ``progress(done, total, what)`` hears of its
    measurements, which take a while).
    """
    _check_options(to, keep_io, block_size, max_drop)
    if context is None:
        context = shrink_context()
    original = _float32_graph(model, context, input_shapes)
    ir = original.ir
    _check_not_shrunk(ir, to)
    plan = Plan()
    result = ShrinkResult(original, original, to)
    if to == "float16":
        _plan_float16(ir, plan, result, keep_io)
    else:
        layers = _plan_quantized(ir, plan, result, to, block_size, symmetric, keep_embeddings)
        if max_drop is not None and calibration is None:
            raise ShrinkError("shrink: max_drop needs calibration inputs (calibration=, the CLI's --calibration)")
        if calibration is not None:
            from .report import calibration_feeds

            feeds, _ = calibration_feeds(calibration, original)
            if correct_bias:
                layers.correct_biases(context, feeds, result)
            if max_drop is not None:
                result.graph = _search(layers, context, result, feeds, max_drop, progress)
                return result
    result.graph = rebuild(ir, context, plan)
    return result


@dataclass
class _Layers:
    """The quantizable weights of a plan and how each is made at a given precision (with its bias
    correction where ``means`` has the layer's input means)."""

    ir: Graph
    plan: Plan
    sites: dict[int, WeightSite]
    block_size: int
    symmetric: bool
    means: dict[int, np.ndarray] = field(default_factory=dict)
    precisions: dict[int, str] = field(default_factory=dict)

    def precision(self, index: int) -> str:
        return self.precisions[index]

    def size(self, index: int) -> int:
        return int(np.asarray(self.ir.constants[self.sites[index].operand]).size)

    def set(self, index: int, precision: str) -> str:
        """Make weight ``index`` ``precision`` (float32 where float16 would overflow); returns which."""
        site, plan = self.sites[index], self.plan
        plan.without(index)
        if precision == "float16" and np.abs(np.asarray(self.ir.constants[site.operand])).max() > FLOAT16_MAX:
            precision = "float32"
        self.precisions[index] = precision
        if precision == "float16":
            plan.half[index] = (site.param, site.operand)
        elif precision in ("int8", "int4"):
            weight = np.asarray(self.ir.constants[site.operand])
            block = self.block_size if precision == "int4" else None
            blocks = block_shape(weight.shape, site.out_axis, site.in_axis, block)
            quantized = quantize_weight(weight, precision, blocks, symmetric=self.symmetric)
            plan.weights[index] = (site.param, site.operand, quantized)
            if index in self.means:
                plan.shifts[index] = bias_shift(self.ir, index, quantized, self.means[index])
        return precision

    def correct_biases(self, context: MLContext, feeds: Sequence[Any], result: ShrinkResult) -> None:
        """Measure the layers' input means on ``feeds`` and correct every quantized layer's bias."""
        self.means = input_means(self.ir, context, self.plan.weights, feeds)
        for index, mean in self.means.items():
            self.plan.shifts[index] = bias_shift(self.ir, index, self.plan.weights[index][2], mean)
        if self.means:
            result.notes.append(
                f"bias correction: {len(self.means)} layers' mean shift measured on {len(feeds)} calibration "
                "inputs and taken back through their bias"
            )


def _search(
    layers: _Layers,
    context: MLContext,
    result: ShrinkResult,
    feeds: Sequence[Any],
    drop: float,
    progress: Callable[[int, int, str], None] | None,
) -> MLGraph:
    """The graph once :func:`.search.widen_sensitive` has widened what ``drop`` needs."""
    from .search import widen_sensitive

    ir, plan = layers.ir, layers.plan

    def record(index: int, precision: str, reason: str) -> None:
        name = plan.labels.get(index) or layer_name(ir.nodes[index], index)
        result.precisions[name] = precision
        result.kept_wide[:] = [(n, r) for n, r in result.kept_wide if n != name] + [(name, reason)]

    reached, graph = widen_sensitive(ir, context, plan, layers, result.original, feeds, float(drop), record, progress)
    result.notes.append(f"max_drop {drop}: the outputs' drop on {len(feeds)} calibration inputs is {reached:.4f}")
    return graph


def _check_options(to: str, keep_io: str, block_size: int, max_drop: float | None) -> None:
    if to not in PRECISIONS:
        raise ShrinkError(f"shrink: to must be one of {', '.join(PRECISIONS)}, got {to!r}")
    if keep_io not in ("float32", "float16"):
        raise ShrinkError(f"shrink: keep_io must be 'float32' or 'float16', got {keep_io!r}")
    if keep_io == "float16" and to != "float16":
        raise ShrinkError(f"shrink: keep_io='float16' needs to='float16' (to={to!r} keeps float32 activations)")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ShrinkError(f"shrink: block_size must be a positive integer, got {block_size!r}")
    if max_drop is not None:
        if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or not 0 <= max_drop <= 1:
            raise ShrinkError(f"shrink: max_drop must be a number from 0 to 1, got {max_drop!r}")
        if to == "float16":
            raise ShrinkError("shrink: max_drop chooses among int8/int4 weights; it needs to='int8' or 'int4'")


def shrink_context(backend: str | None = None) -> MLContext:
    """A ``keep_constants`` context of ``backend`` (default: the default backend): the float32 graph's
    weights stay readable, as the transform needs."""
    from ..api import ml

    return ml.create_context(backend=backend, keep_constants=True)


def _float32_graph(model: Any, context: MLContext, input_shapes: Mapping[str, Sequence[int]] | None) -> MLGraph:
    if isinstance(model, MLGraph):
        if not model.keeps_constants:
            raise InvalidStateError(released_constants_message("shrink"))
        if input_shapes:
            raise ShrinkError("shrink: input_shapes is for ONNX models (an MLGraph's shapes are fixed)")
        return model
    from ..onnx import DynamicGraph, load, read_model

    proto = read_model(model)
    _check_onnx_not_quantized(proto)
    graph = load(proto, context, input_shapes=input_shapes)
    if isinstance(graph, DynamicGraph):
        dims = {i.name: i.shape for i in graph.inputs}
        raise ShrinkError(
            f"shrink: the model has dynamic input dimensions {dims}; fix them with input_shapes "
            "(the CLI's --input-shape NAME=1,128)"
        )
    return graph


#: ONNX operators of quantized models (webml folds a DequantizeLinear of constant weights at import,
#: so the IR alone would not show them).
_ONNX_QUANTIZED = frozenset(
    {"DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger",
     "QLinearMatMul", "QLinearConv", "MatMulNBits"}
)


def _check_onnx_not_quantized(proto: Any) -> None:
    """Refuse an ONNX model that is already quantized, naming what shows it."""
    ops = sorted({n.op_type for n in proto.graph.node} & _ONNX_QUANTIZED)
    if ops:
        raise ShrinkError(f"shrink: the model is already quantized (it has {', '.join(ops)}); shrink a float32 model")


def _check_not_shrunk(ir: Graph, to: str) -> None:
    """Refuse a model already quantized (or already float16 for float16), in one message."""
    ops = {n.op for n in ir.nodes} & {"dequantizeLinear", "quantizeLinear"}
    narrow = sorted({ir.operands[o].data_type for o in ir.constants} & _QUANTIZED_TYPES)
    weights = [o for o in ir.constants if ir.operands[o].rank >= 2]
    quantized_weights = [o for o in weights if ir.operands[o].data_type in _QUANTIZED_TYPES]
    if ops or quantized_weights:
        what = f"it has {', '.join(sorted(ops))}" if ops else f"it has {', '.join(narrow)} weights"
        raise ShrinkError(f"shrink: the model is already quantized ({what}); shrink a float32 model")
    types = {ir.operands[o].data_type for o in weights}
    if "float32" not in types and "float16" in types:
        raise ShrinkError(
            f"shrink: the model is already float16 (its weights are float16); to={to!r} needs a float32 model"
        )


def _plan_float16(ir: Graph, plan: Plan, result: ShrinkResult, keep_io: str) -> None:
    plan.narrow, plan.io_type = "float16", keep_io
    for index, node in enumerate(ir.nodes):
        name = layer_name(node, index)
        reason = float16_reason(ir, node)
        if reason:
            plan.wide.add(index)
            result.kept_wide.append((name, reason))
        result.precisions[name] = "float32" if reason else "float16"


def _plan_quantized(
    ir: Graph, plan: Plan, result: ShrinkResult, to: str, block_size: int, symmetric: bool, keep_embeddings: bool
) -> _Layers:
    layers = _Layers(ir, plan, {}, block_size, symmetric)
    for site, kind, reason in weight_sites(ir, to, keep_embeddings):
        name = layer_name(ir.nodes[site.index], site.index)
        result.precisions[name] = kind
        if kind != to:
            result.kept_wide.append((name, reason))
        if kind != "float32":
            layers.sites[site.index] = site
            layers.set(site.index, kind)
            plan.labels[site.index] = name
    return layers
