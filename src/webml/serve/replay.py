"""A build call's graph description replayed through MLGraphBuilder, node by node (docs/serve-protocol.md)."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import webml

from ..errors import OperationError
from ..ops import OPS
from ..ops.registry import snake_case

__all__ = ["MAX_NODES", "BuildResult", "replay"]

MAX_NODES = 200_000

#: Spec names the description may call: every operator, not input/constant/build (given by their own members).
_OPERATORS = frozenset(OPS)


class BuildResult:
    def __init__(self, graph: webml.MLGraph, operators: Counter[str], constant_bytes: int) -> None:
        self.graph = graph
        self.operators = operators
        self.constant_bytes = constant_bytes


@cache
def _parameters(op: str) -> tuple[tuple[tuple[str, str], ...], int]:
    """(name, operand kind "one"/"list"/"") of each positional parameter of ``op``'s method, and their count."""
    method = getattr(webml.MLGraphBuilder, snake_case(op))
    out = []
    for p in list(inspect.signature(method).parameters.values())[1:]:
        if p.kind is p.KEYWORD_ONLY:
            continue
        annotation = str(p.annotation)
        kind = "list" if annotation.startswith("list[MLOperand") else "one" if "MLOperand" in annotation else ""
        out.append((p.name, kind))
    return tuple(out), len(out)


def _int_id(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"{where}: an operand id must be an integer, got {type(value).__name__}")
    try:
        return int(value)
    except ValueError:
        raise TypeError(f"{where}: an operand id must be an integer, got {value!r}") from None


def _check_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be an object, got {type(value).__name__}")
    return value


def replay(
    context: webml.MLContext,
    description: Any,
    payload: memoryview,
    constant_tensor: Callable[[int], webml.MLTensor],
) -> BuildResult:
    """Build the described graph with a builder of ``context``; ``constant_tensor(id)`` gives a constant tensor."""
    desc = _check_dict(description, "build: graph")
    operands = {_int_id(k, "build: graph.operands"): v for k, v in _check_dict(desc.get("operands", {}),
                                                                                 "build: graph.operands").items()}
    nodes = desc.get("nodes", [])
    if not isinstance(nodes, list):
        raise TypeError("build: graph.nodes must be a list")
    if len(nodes) > MAX_NODES:
        raise TypeError(f"build: graph has {len(nodes)} nodes, more than {MAX_NODES}")
    builder = webml.MLGraphBuilder(context)
    env: dict[int, webml.MLOperand] = {}

    def operand(oid: Any, where: str) -> webml.MLOperand:
        key = _int_id(oid, where)
        if key not in env:
            raise TypeError(f"{where}: operand {key} is not defined before its use")
        return env[key]

    def descriptor(oid: int, where: str) -> Mapping[str, Any]:
        if oid not in operands:
            raise TypeError(f"{where}: operand {oid} is missing from graph.operands")
        return _check_dict(operands[oid], f"{where}: graph.operands[{oid}]")

    for name, oid in _check_dict(desc.get("inputs", {}), "build: graph.inputs").items():
        key = _int_id(oid, f"build: input {name!r}")
        env[key] = builder.input(name, descriptor(key, f"build: input {name!r}"))
    constant_bytes = 0
    for oid, spec in _check_dict(desc.get("constants", {}), "build: graph.constants").items():
        key = _int_id(oid, "build: graph.constants")
        where = f"build: constant {key}"
        spec = _check_dict(spec, where)
        if "tensor" in spec:
            env[key] = builder.constant(constant_tensor(_int_id(spec["tensor"], where)))
            continue
        offset, length = spec.get("offset"), spec.get("length")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, length)):
            raise TypeError(f"{where}: offset and length must be non-negative integers")
        if offset + length > len(payload):
            raise TypeError(f"{where}: bytes {offset}..{offset + length} run past the payload of {len(payload)}")
        constant_bytes += length
        if constant_bytes > len(payload):  # each constant is a copy: ranges reused would multiply the memory
            raise TypeError(f"build: the constants' lengths add up to more than the payload of {len(payload)} bytes")
        env[key] = builder.constant(descriptor(key, where), payload[offset : offset + length])

    operators: Counter[str] = Counter()
    for index, node in enumerate(nodes):
        node = _check_dict(node, f"build: node {index}")
        op = node.get("op")
        if op not in _OPERATORS:
            raise TypeError(f"build: node {index}: {op!r} is not an MLGraphBuilder operator")
        label = node.get("label", "")
        where = f"build: node {index} ({op}{f' {label!r}' if label else ''})"
        args = node.get("args", [])
        options = _check_dict(node.get("options", {}), f"{where}: options")
        outputs = node.get("outputs", [])
        if not isinstance(args, list) or not isinstance(outputs, list) or not isinstance(label, str):
            raise TypeError(f"{where}: args and outputs must be lists, label a string")
        params, positional = _parameters(op)
        if len(args) > positional:
            raise TypeError(f"{where}: {len(args)} arguments, {op} takes at most {positional} before its options")
        resolved: list[Any] = []
        for (pname, kind), value in zip(params, args):
            if kind == "list":
                if not isinstance(value, list):
                    raise TypeError(f"{where}: {pname} must be a list of operand ids")
                resolved.append([operand(v, f"{where}: {pname}") for v in value])
            elif kind == "one" and value is not None:
                resolved.append(operand(value, f"{where}: {pname}"))
            else:
                resolved.append(value)
        method = getattr(builder, snake_case(op))
        opts = {k: _resolve_option(v, operand, f"{where}: options.{k}") for k, v in options.items()}
        if label:
            opts["label"] = label
        if len(resolved) == positional:
            result = method(*resolved, opts)
        else:  # optional positional arguments left out: the options by keyword
            result = method(*resolved, **{snake_case(k): v for k, v in opts.items()})
        got = result if isinstance(result, (list, tuple)) else [result]
        if len(got) != len(outputs):
            raise OperationError(f"{where}: the builder made {len(got)} outputs, the client {len(outputs)}")
        for out_id, made in zip(outputs, got):
            key = _int_id(out_id, f"{where}: outputs")
            want = descriptor(key, where)
            if want.get("dataType") != made.data_type or list(want.get("shape", ())) != list(made.shape):
                raise OperationError(
                    f"{where}: output {key} is {made.data_type} {list(made.shape)} here, "
                    f"{want.get('dataType')} {want.get('shape')} in the client (the two rule sets disagree)"
                )
            env[key] = made
        operators[op] += 1
    named = {name: operand(oid, f"build: output {name!r}") for name, oid in
             _check_dict(desc.get("outputs", {}), "build: graph.outputs").items()}
    return BuildResult(builder.build(named), operators, constant_bytes)


def _resolve_option(value: Any, operand: Callable[[Any, str], webml.MLOperand], where: str) -> Any:
    if isinstance(value, dict) and set(value) == {"operand"}:
        return operand(value["operand"], where)
    if isinstance(value, list):
        return [_resolve_option(v, operand, where) for v in value]
    return value
