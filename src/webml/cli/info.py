"""``webml info MODEL.onnx``: inputs, outputs, operator counts, and what webml does not support."""

from __future__ import annotations

import argparse
from collections import Counter

from .common import onnx_errors


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX model")


def _type(value_info) -> str:
    import onnx

    t = value_info.type.tensor_type
    known = t.elem_type and t.elem_type in onnx.TensorProto.DataType.values()
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if known else "?"
    dims = [d.dim_param or (str(d.dim_value) if d.HasField("dim_value") else "?") for d in t.shape.dim]
    return f"{dtype}[{', '.join(dims)}]"


def main(args: argparse.Namespace) -> int:
    import webml.onnx

    # The importer's reader: the same checks as webml run (validated, external data kept in its folder).
    with onnx_errors():
        model = webml.onnx.read_model(args.model)
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    print(f"{args.model}: ir_version {model.ir_version}, opset {opsets}, producer {model.producer_name or '?'}")
    print("inputs:")
    for vi in graph.input:
        if vi.name not in initializers:
            print(f"  {vi.name}: {_type(vi)}")
    print("outputs:")
    for vi in graph.output:
        print(f"  {vi.name}: {_type(vi)}")
    weights = sum(int(_numel(t)) for t in graph.initializer)
    print(f"initializers: {len(graph.initializer)} ({weights:,} values)")
    counts = Counter(n.op_type if not n.domain else f"{n.domain}.{n.op_type}" for n in graph.node)
    print(f"operators: {sum(counts.values())} nodes, {len(counts)} types")
    for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {op:28} {n}")
    with onnx_errors():
        unsupported = webml.onnx.unsupported_operators(model)
    if unsupported:
        print(f"not supported by webml: {len(unsupported)} node(s)")
        for op, node, reason in unsupported:
            print(f"  {op} (node {node or '<unnamed>'}): {reason}")
    else:
        print("every operator is supported by webml")
    return 0


def _numel(t) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n
