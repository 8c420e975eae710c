"""The WPT conformance cases, per file and backend, against the one expectations list."""

from __future__ import annotations

import pytest

from webml.backends import BACKENDS
from webml.conformance import report, wpt
from webml.conformance.data import conformance_files

FILES = conformance_files()


def test_the_whole_suite_is_vendored():
    cases = sum(len(wpt.load(p)["cases"]) for p in FILES)
    assert len(FILES) == 98
    assert cases == 1861


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_conformance_file(path, backend):
    outcomes = report.judge("conformance", backend, wpt.run_file(path, backend))
    assert outcomes, f"{path.name} has no cases"
    wrong = [f"{o.status} {o.key}: {o.reason or o.expected_reason}" for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)
