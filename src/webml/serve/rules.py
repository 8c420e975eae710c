"""The operator rules that are data, exported as JSON for the JavaScript client (``js/src/rules.json``).

The JS client validates builder calls synchronously, as the spec says; what it
needs that Python holds as data comes from here, so the two cannot drift:
every operator's arguments in IDL order (operands and their kinds, the other
positional arguments, the options dictionary's members with their defaults),
the data-type and rank limits of :data:`webml.ops.OPS`, the data types with
their bit widths, and the constants of the shape rules (maximum rank, tensor
count, the integer ranges of WebIDL).  Only the shape logic is code on both
sides (``js/src/shapes.js`` ports ``webml/ops/*.py``).

``python -m webml.serve.rules`` rewrites the file; ``--check`` exits 1 when it is stale.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from .. import dtypes
from ..api.spelling import camel_case
from ..ops import OPS, checks, conv, normalization, pool, quantize, recurrent, reduce, resample, shape
from ..ops.registry import MAX_RANK, OpDef

__all__ = ["RULES_JSON", "export", "main", "render"]

#: Where the JS client reads the rules (the repository's js/ package).
RULES_JSON = Path(__file__).resolve().parents[3] / "js" / "src" / "rules.json"


def _default(value: Any) -> Any:
    """An options default as JSON (tuples as lists; None: the member is absent by default)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _operator(opdef: OpDef) -> dict[str, Any]:
    assert opdef.signature is not None
    operands = {o.param: o for o in opdef.operands}
    arguments, options = [], []
    for p in list(opdef.signature.parameters.values())[1:]:
        name = camel_case(p.name)
        entry: dict[str, Any] = {"name": name}
        operand = operands.get(p.name)
        if operand is not None:
            entry["operand"] = operand.kind
            entry["limit"] = operand.name
        if p.kind is p.KEYWORD_ONLY:
            entry["default"] = None if p.default is p.empty else _default(p.default)
            options.append(entry)
        else:
            arguments.append(entry)
    return {
        "family": opdef.family,
        "arguments": arguments,
        "options": options,
        "limits": {arg: lim.as_dict() for arg, lim in opdef.limits.items()},
        "outputs": [arg for arg in opdef.limits if arg.startswith("output")],
    }


def export() -> dict[str, Any]:
    """Everything the JS client reads, as one JSON-able dict."""
    return {
        "generatedBy": "python -m webml.serve.rules (from webml.ops.OPS); do not edit",
        "maxRank": MAX_RANK,
        "maxTensorCount": shape.MAX_TENSOR_COUNT,
        "uint32Max": checks.UINT32_MAX,
        "longMax": checks.LONG_MAX,
        "dataTypes": {
            name: {"bits": t.bits, "kind": t.kind, "typedArray": t.typed_array} for name, t in dtypes.DATA_TYPES.items()
        },
        "typeGroups": {
            "all": list(checks.ALL_TYPES),
            "spec": list(checks.SPEC_TYPES),
            "floats": list(checks.FLOATS),
            "ints": list(checks.INTS),
        },
        "enums": {
            "inputLayout": list(conv.INPUT_LAYOUTS),
            "conv2dFilterLayout": list(conv.CONV2D_FILTER_LAYOUTS),
            "convTranspose2dFilterLayout": list(conv.CONV_TRANSPOSE2D_FILTER_LAYOUTS),
            "roundingType": list(pool.ROUNDING_TYPES),
            "paddingMode": list(shape.PADDING_MODES),
            "interpolationMode": list(resample.MODES),
            "recurrentActivation": list(recurrent.ACTIVATIONS),
            "recurrentDirection": list(recurrent.DIRECTIONS),
            "gruWeightLayout": list(recurrent.GRU_LAYOUTS),
            "lstmWeightLayout": list(recurrent.LSTM_LAYOUTS),
            "argOutputDataType": list(reduce.ARG_OUTPUT_TYPES),
            "normalizationLayout": list(normalization.LAYOUTS),
            "quantizedTypes": list(quantize.QUANTIZED_TYPES),
        },
        "recurrent": {
            "gruActivations": list(recurrent.GRU_ACTIVATIONS),
            "lstmActivations": list(recurrent.LSTM_ACTIVATIONS),
            "gruGates": recurrent.GRU_GATES,
            "lstmGates": recurrent.LSTM_GATES,
            "peepholeGates": len(recurrent.PEEPHOLE_GATES),
        },
        "operators": {name: _operator(opdef) for name, opdef in sorted(OPS.items())},
    }


def render() -> str:
    return json.dumps(export(), indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webml.serve.rules", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if js/src/rules.json is not current")
    parser.add_argument("--output", type=Path, default=RULES_JSON)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m webml.serve.rules", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
