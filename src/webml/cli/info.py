"""``webml info MODEL.onnx``: inputs, outputs, operator counts, and what webml does not support.

The exit status says whether webml can run the model: 0 when every part is
supported, 1 when some part is not (listed).  ``--json`` prints the same as
one JSON object.

``webml info PACKAGE.webmlpkg`` shows a protected package's signed header
(publisher, dates, backends, inputs and outputs, recipients), its signature
verified, never decrypting anything; ``--trusted PUB`` also checks that the
publisher is one of those keys.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from . import CliError
from .common import onnx_errors

#: The exit status of ``info`` for a model webml cannot run.
UNSUPPORTED_STATUS = 1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the ONNX model, or a protected package (.webmlpkg)")
    p.add_argument("--json", action="store_true", help="print the description as one JSON object")
    p.add_argument("--trusted", action="append", default=None, metavar="PUB",
                   help="for a package: its publisher must be this key (repeatable)")


def _dtype(value_info) -> str:
    import onnx

    t = value_info.type.tensor_type
    known = t.elem_type and t.elem_type in onnx.TensorProto.DataType.values()
    return onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if known else "?"


def _type(value_info, shape: list[int | str | None]) -> str:
    dims = ["?" if d is None else str(d) for d in shape]
    return f"{_dtype(value_info)}[{', '.join(dims)}]"


def _io(value_info, arg) -> dict[str, Any]:
    return {"name": arg.name, "dtype": _dtype(value_info), "shape": arg.shape, "type": _type(value_info, arg.shape)}


def describe(path: str, model: Any) -> dict[str, Any]:
    """What ``info`` prints of ``model`` (read from ``path``), as a dict (the --json form)."""
    import webml.onnx

    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    counts = Counter(n.op_type if not n.domain else f"{n.domain}.{n.op_type}" for n in graph.node)
    with onnx_errors():
        unsupported = webml.onnx.unsupported_operators(model)

    inputs = [vi for vi in graph.input if vi.name not in initializers]
    return {
        "model": path,
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": model.producer_name or None,
        "inputs": [_io(vi, a) for vi, a in zip(inputs, webml.onnx.model_inputs(model))],
        "outputs": [_io(vi, a) for vi, a in zip(graph.output, webml.onnx.model_outputs(model))],
        "initializers": len(graph.initializer),
        "weights": sum(int(_numel(t)) for t in graph.initializer),
        "operators": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "unsupported": [{"operator": op, "node": node, "reason": reason} for op, node, reason in unsupported],
        "supported": not unsupported,
    }


def _is_package(path: str) -> bool:
    from ..protected.format import MAGIC

    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        # The package reader says why for a .webmlpkg name, the ONNX reader for any other.
        return path.endswith(".webmlpkg")


def package_main(args: argparse.Namespace) -> int:
    """``info`` of a protected package: the signed header, verified, never decrypted."""
    import webml.protected as wp

    try:
        info = wp.describe(args.model, trusted=args.trusted)
    except wp.ProtectedError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    publisher = info["publisher"]
    trust = "a trusted publisher" if publisher["trusted"] else "not checked against trusted keys (--trusted PUB)"
    print(f"{args.model}: protected {info['kind']} model, format version {info['format_version']}, "
          f"{info['package_bytes']:,} bytes")
    print(f"publisher: {publisher['fingerprint']} (signature valid; {trust})")
    print(f"created {info['created']}, expires {info['expires'] or 'never'}, "
          f"backends {', '.join(info['backends']) if info['backends'] else 'any'}")
    print(f"encryption: {info['cipher']} in chunks of {info['chunk_size']:,} bytes, key wrap {info['key_wrap']}")
    for what in ("inputs", "outputs"):
        print(f"{what}:")
        for io in info[what]:
            dims = ", ".join("?" if d is None else str(d) for d in io["shape"])
            print(f"  {io['name']}: {io['dtype'] or '?'}[{dims}]")
    print(f"recipients: {len(info['recipients'])}")
    for r in info["recipients"]:
        print(f"  {r['key_id']}" + (" (the publisher)" if r["publisher"] else ""))
    return 0


def main(args: argparse.Namespace) -> int:
    import webml.onnx

    if _is_package(args.model):
        return package_main(args)
    if args.trusted:
        raise CliError("--trusted is for protected packages (.webmlpkg); this is not one")

    # The importer's reader: the same checks as webml run (validated, external data kept in its folder).
    with onnx_errors():
        model = webml.onnx.read_model(args.model)
    info = describe(args.model, model)
    status = 0 if info["supported"] else UNSUPPORTED_STATUS
    if args.json:
        print(json.dumps(info, indent=2))
        return status
    opsets = ", ".join(f"{domain} {version}" for domain, version in info["opsets"].items())
    print(f"{args.model}: ir_version {info['ir_version']}, opset {opsets}, producer {info['producer'] or '?'}")
    for what in ("inputs", "outputs"):
        print(f"{what}:")
        for io in info[what]:
            print(f"  {io['name']}: {io['type']}")
    if any(isinstance(d, str) or d is None for i in info["inputs"] for d in i["shape"]):
        print("dynamic input dimensions: the inputs given settle them (or webml run --free-dim NAME=SIZE)")
    print(f"initializers: {info['initializers']} ({info['weights']:,} values)")
    counts = info["operators"]
    print(f"operators: {sum(counts.values())} nodes, {len(counts)} types")
    for op, n in counts.items():
        print(f"  {op:28} {n}")
    if info["unsupported"]:
        print(f"not supported by webml: {len(info['unsupported'])} node(s)")
        for u in info["unsupported"]:
            print(f"  {u['operator']} (node {u['node'] or '<unnamed>'}): {u['reason']}")
    else:
        print("every operator is supported by webml")
    return status


def _numel(t) -> int:
    n = 1
    for d in t.dims:
        n *= d
    return n
