"""Conformance tooling: the vendored Web Platform Tests for WebNN, run against any backend.

* :mod:`.data` finds and decodes the vendored JSON (``third_party/wpt-webnn``);
* :mod:`.wpt` runs the conformance cases with WPT's tolerance rules;
* :mod:`.validation` replays the traced validation tests;
* :mod:`.expectations` is the one explicit list of expected failures;
* :mod:`.report` writes ``docs/conformance.md``;
* ``python -m webml.conformance`` runs it all and prints ``N passed, M failed``.
"""
