"""The mutation fuzz test of the ONNX importer (webml.onnx.fuzz): no crash, hang, internal error or blow-up.

A few hundred seeded cases here; more with ``WEBML_FUZZ_CASES=3000`` (or
``python -m webml.onnx.fuzz --cases 3000 --seed 1``).  Each case runs in a
worker process with an address-space limit, so a crash is counted.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from webml.onnx import fuzz

FIXTURE = Path(__file__).parent / "fixtures" / "bert_tiny.onnx"


def test_mutated_models_are_refused_cleanly():
    count = int(os.environ.get("WEBML_FUZZ_CASES", "300"))
    seed = int(os.environ.get("WEBML_FUZZ_SEED", "1"))
    cases = fuzz.make_cases(fuzz.seed_models(), count, seed, [FIXTURE.read_bytes()])
    results = fuzz.run_cases(cases, workers=2, timeout=60)
    counts = Counter(r.outcome for r in results)
    assert len(results) == count
    bad = [f"case {r.index} [{cases[r.index][0]}]: {r.outcome}: {r.detail}" for r in results if r.outcome in fuzz.BAD]
    assert not bad, "\n".join(bad)
    # The mutations leave some models importable: the fuzzer reaches compute too.
    assert counts["computed"] > 0 and counts["refused"] > 0, counts


def test_the_runner_classifies_outcomes():
    from onnx import TensorProto, helper

    def x_like(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [2])

    x = x_like("x")
    good = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [x_like("y")]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    cases = [("good", good.SerializeToString()), ("garbage", b"\x08")]
    results = fuzz.run_cases(cases, workers=1, timeout=30)
    assert [r.outcome for r in results] == ["computed", "refused"]
