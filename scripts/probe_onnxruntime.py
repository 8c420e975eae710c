"""Which element types ONNX Runtime's CPU kernels accept for an operator.

    .venv/bin/python scripts/probe_onnxruntime.py Add
    .venv/bin/python scripts/probe_onnxruntime.py Cast --inputs 1 --attr to=1

Builds a one-node model per type (all inputs of that type, one output
inferred) and reports which ones a session can be created for.  A
development aid for choosing a lowering's ``types``; not used at run time.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import onnxruntime as ort
from onnx import TensorProto, helper

from webml.backends.onnxruntime.lowering import onnx_type

# The element types webml's lowering uses (int4/uint4 travel as int8/uint8), plus bool.
TYPES = {
    name: onnx_type(name) for name in ("float32", "float16", "int32", "uint32", "int64", "uint64", "int8", "uint8")
}
TYPES["bool"] = TensorProto.BOOL


def probe(op: str, inputs: int, attrs: dict, opset: int, out_type: int | None) -> dict[str, str]:
    results = {}
    for name, t in TYPES.items():
        ins = [helper.make_tensor_value_info(f"x{i}", t, [2, 3]) for i in range(inputs)]
        out = helper.make_tensor_value_info("y", out_type if out_type is not None else t, None)
        node = helper.make_node(op, [f"x{i}" for i in range(inputs)], ["y"], **attrs)
        model = helper.make_model(
            helper.make_graph([node], "probe", ins, [out]), opset_imports=[helper.make_opsetid("", opset)]
        )
        try:
            ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            results[name] = "yes"
        except Exception as exc:  # the reason is the report
            results[name] = str(exc).splitlines()[0][-90:]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("op")
    parser.add_argument("--inputs", type=int, default=2)
    parser.add_argument("--opset", type=int, default=21)
    parser.add_argument("--out-type", type=int, default=None, help="ONNX element type of the output (default: input's)")
    parser.add_argument("--attr", action="append", default=[], help="name=int attribute")
    args = parser.parse_args()
    attrs = {k: int(v) for k, v in (a.split("=", 1) for a in args.attr)}
    for name, result in probe(args.op, args.inputs, attrs, args.opset, args.out_type).items():
        print(f"{name:8} {result}")


if __name__ == "__main__":
    main()
