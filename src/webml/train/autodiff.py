"""Reverse-mode automatic differentiation over a graph being built.

``grad(builder, loss, params)`` walks the operations recorded by ``builder``
from ``loss`` back to ``params`` and emits the gradient computation as more
WebNN operations in the same builder, so a training step is one MLGraph that
runs on every backend.  Each operator's gradient rule is registered beside
its definition in ``webml.ops.<family>`` with ``@gradient("name")``; an
operator either has a rule or is declared with ``not_differentiable``.

A rule receives a :class:`GradCall`, the node's operands as keyword
arguments of their Python names and its attributes as keyword arguments, and
returns the cotangents of its operands by name (absent or ``None`` where none
flows, e.g. indices), built with ``g.b`` (the builder)::

    @gradient("mul")
    def _mul(g, a, b):
        return {"a": g.unbroadcast(g.b.mul(g.dout, b), a), "b": g.unbroadcast(g.b.mul(g.dout, a), b)}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..api.builder import MLGraphBuilder, operand_of, operand_value, producer, recorded_nodes
from ..api.operand import MLOperand
from ..ir import Node, ancestors
from ..ops.registry import GRADIENTS, NOT_DIFFERENTIABLE

__all__ = ["GradCall", "grad"]


class GradCall:
    """What a gradient rule sees of one node: operands, cotangents, attributes, helpers."""

    def __init__(self, builder: MLGraphBuilder, node: Node, douts: list[MLOperand | None]) -> None:
        self.b = builder
        self.node = node
        #: The node's operands by Python name (a list for a sequence operand).
        self.operands: dict[str, Any] = {
            name: [_operand(builder, i) for i in ids] if isinstance(ids, tuple) else _operand(builder, ids)
            for name, ids in node.inputs.items()
        }
        self.outputs: list[MLOperand] = [_operand(builder, o) for o in node.outputs]
        self.douts = douts

    @property
    def attrs(self) -> Mapping[str, Any]:
        return self.node.attrs

    @property
    def dout(self) -> MLOperand:
        """The cotangent of the (first) output; zeros if none flows into it."""
        d = self.douts[0]
        return d if d is not None else self.zeros_like(self.outputs[0])

    @property
    def out(self) -> MLOperand:
        return self.outputs[0]

    def zeros_like(self, x: MLOperand) -> MLOperand:
        zero = self.b.constant(x.data_type, 0)
        return self.b.expand(zero, x.shape) if x.shape else self.b.identity(zero)

    def scalar(self, value: float, like: MLOperand) -> MLOperand:
        """A scalar constant of ``like``'s data type."""
        return self.b.constant(like.data_type, value)

    def unbroadcast(self, grad: MLOperand, target: MLOperand | Sequence[int]) -> MLOperand:
        """Sum ``grad`` over the axes along which ``target``'s shape was broadcast."""
        shape = list(target.shape if isinstance(target, MLOperand) else target)
        gshape = grad.shape
        if gshape == shape:
            return grad
        lead = len(gshape) - len(shape)
        axes = list(range(lead)) + [lead + i for i, d in enumerate(shape) if d == 1 and gshape[lead + i] != 1]
        summed = self.b.reduce_sum(grad, axes=axes, keep_dimensions=False) if axes else grad
        return self.b.reshape(summed, shape)


def _operand(builder: MLGraphBuilder, oid: int) -> MLOperand:
    return operand_of(builder, oid)


def grad(builder: MLGraphBuilder, loss: MLOperand, params: Sequence[MLOperand]) -> list[MLOperand]:
    """The gradients of the scalar ``loss`` with respect to each of ``params``, as operands of ``builder``.

    >>> import numpy as np, webml
    >>> from webml.train import grad
    >>> ctx = webml.ml.create_context()
    >>> b = webml.MLGraphBuilder(ctx)
    >>> w = b.input("w", {"dataType": "float32", "shape": [3]})
    >>> loss = b.reduce_sum(b.mul(w, w))   # sum(w^2)
    >>> (dw,) = grad(b, loss, [w])
    >>> g = b.build({"dw": dw})
    >>> ctx.compute(g, {"w": np.array([1, 2, 3], np.float32)})["dw"]
    array([2., 4., 6.], dtype=float32)
    """
    where = "grad"
    loss_v = operand_value(loss, builder, where, "loss")
    if loss_v.desc.element_count != 1:
        raise TypeError(f"{where}: loss must have one element, got shape {list(loss_v.shape)}")
    if loss_v.data_type not in ("float32", "float16"):
        raise TypeError(f"{where}: loss must be float32 or float16, got {loss_v.data_type}")
    param_ids = [operand_value(p, builder, where, f"params[{i}]").id for i, p in enumerate(params)]

    nodes = recorded_nodes(builder)
    # Nodes between the parameters and the loss, in order.
    needed = ancestors([loss_v.id], lambda oid: producer(builder, oid))
    depends: set[int] = set(param_ids)
    on_path: list[int] = []
    for index, node in enumerate(nodes):
        if any(o in needed for o in node.outputs) and any(i in depends for i in node.operand_ids()):
            depends.update(node.outputs)
            on_path.append(index)

    cotangent: dict[int, MLOperand] = {loss_v.id: builder.constant(loss_v.data_type, 1.0)}
    if loss_v.shape:
        cotangent[loss_v.id] = builder.reshape(cotangent[loss_v.id], list(loss_v.shape))
    for index in reversed(on_path):
        node = nodes[index]
        douts = [cotangent.get(o) for o in node.outputs]
        if all(d is None for d in douts):
            continue
        if node.op in NOT_DIFFERENTIABLE:
            if any(i in depends for i in node.operand_ids()):
                raise TypeError(
                    f"{where}: {node.op}{f' [{node.label}]' if node.label else ''} is not differentiable "
                    f"({NOT_DIFFERENTIABLE[node.op]})"
                )
            continue
        rule = GRADIENTS.get(node.op)
        if rule is None:
            raise TypeError(f"{where}: no gradient rule for {node.op}")
        for i, d in _cotangents(rule, GradCall(builder, node, douts)):
            if d is None or i not in depends:
                continue
            cotangent[i] = d if i not in cotangent else builder.add(cotangent[i], d)
    out = []
    for p, pid in zip(params, param_ids):
        g = cotangent.get(pid)
        out.append(g if g is not None else GradCall(builder, Node("identity", {}, (pid,)), [None]).zeros_like(p))
    return out


def _cotangents(rule: Any, g: GradCall) -> list[tuple[int, MLOperand | None]]:
    """(operand id, cotangent) pairs of what ``rule`` returns for the node of ``g``."""
    node = g.node
    result = rule(g, **g.operands, **node.attrs)
    # None is "no cotangent", also for an absent optional operand; anything else must name an operand.
    unknown = {name for name, d in result.items() if d is not None and name not in node.inputs}
    if unknown:
        raise AssertionError(f"the gradient rule of {node.op} returned cotangents of {sorted(unknown)}")
    pairs: list[tuple[int, MLOperand | None]] = []
    for name, d in result.items():
        if name not in node.inputs:
            continue
        ids, operands = node.inputs[name], g.operands[name]
        if isinstance(ids, tuple):
            douts = d if d is not None else [None] * len(ids)
            pairs.extend((i, _unbroadcast(g, di, o)) for i, di, o in zip(ids, douts, operands))
        else:
            pairs.append((ids, _unbroadcast(g, d, operands)))
    return pairs


def _unbroadcast(g: GradCall, cotangent: MLOperand | None, operand: MLOperand) -> MLOperand | None:
    """A cotangent of the broadcast shape, summed back to its operand's shape (the one place for it)."""
    if cotangent is None or cotangent.shape == operand.shape:
        return cotangent
    return g.unbroadcast(cotangent, operand)
