"""The WPT conformance cases, per file and backend, against the one expectations list."""

from __future__ import annotations

import json

import pytest

from webml.backends import BACKENDS
from webml.conformance import expectations, report, wpt
from webml.conformance.data import conformance_files, listed_files, wpt_dir

FILES = conformance_files()


def test_the_whole_suite_is_vendored():
    cases = sum(len(wpt.load(p)["cases"]) for p in FILES)
    # 95 files (1,838 cases) of the 2025-03-31 snapshot with eight refreshed, and 7 supplement files (127).
    assert len(FILES) == 102
    assert cases == 1965
    assert {p.stem for p in FILES} >= {"is_nan", "is_infinite", "round_even", "l2Pool2d"}
    pooling = wpt.load(wpt_dir() / "conformance" / "pooling.json")["cases"]
    assert len(pooling) == 32 and not any("l2Pool2d" in c["operatorNames"] for c in pooling)


SECTIONS = [("conformance", "conformance"), ("supplement", "conformance_supplement")]


@pytest.mark.parametrize(("section", "folder"), SECTIONS)
def test_the_index_lists_exactly_the_vendored_files(section, folder):
    """The harness reads what index.json lists: no vendored file left out, none missing, counts as indexed."""
    listed = listed_files(section)
    on_disk = sorted((wpt_dir() / folder).glob("*.json"))
    assert listed == on_disk
    index = json.loads((wpt_dir() / "index.json").read_text(encoding="utf-8"))
    counts = {e["json"]: e["cases"] for e in index[section]["files"] if e["json"]}
    assert {p.name: len(wpt.load(p)["cases"]) for p in listed} == counts
    assert sum(counts.values()) == index[section]["totalCases"]


def test_every_case_checks_something():
    """Every case compares at least one output, so a case without an error is a real pass."""
    empty = [f"{p.stem}::{c['name']}" for p in FILES for c in wpt.load(p)["cases"] if not c["graph"]["expectedOutputs"]]
    assert not empty


def test_listed_failures_exist():
    """Every CONFORMANCE_FAILURES entry names a real case (no stale entries)."""
    keys = {f"{p.stem}::{c['name']}" for p in FILES for c in wpt.load(p)["cases"]}
    for backend, table in expectations.CONFORMANCE_FAILURES.items():
        stale = sorted(set(table) - keys)
        assert not stale, f"CONFORMANCE_FAILURES[{backend!r}] lists unknown cases: {stale}"


def test_only_subgraph_cases_are_expected_to_fail():
    """Today only two subgraph.json cases are wrong by the spec or by their data (see expectations.py);
    openvino adds OpenVINO's own differences, under 1% of the cases."""
    everywhere = ["subgraph::batchNormalization options.axis=0 + gelu", "subgraph::quantized conv2d"]
    cases = sum(len(wpt.load(p)["cases"]) for p in FILES)
    for backend in BACKENDS:
        table = expectations.CONFORMANCE_FAILURES[backend]
        if backend in ("openvino", "webgpu"):
            assert set(everywhere) <= table.keys() and len(table) <= 0.01 * cases
        else:
            assert sorted(table) == everywhere


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_conformance_file(path, backend):
    outcomes = report.judge("conformance", backend, wpt.run_file(path, backend))
    assert outcomes, f"{path.name} has no cases"
    wrong = [f"{o.status} {o.key}: {o.reason or o.expected_reason}" for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)
