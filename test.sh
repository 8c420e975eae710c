#!/usr/bin/env bash
# The test suite: lint, then every test (WPT conformance and validation included).
source "$(dirname "$0")/scripts/bootstrap.sh"
cd "$ROOT"
source "$ROOT/scripts/system-packages.sh"
echo "[test] ruff check" >&2
"$VENV/bin/ruff" check src tests
echo "[test] pytest" >&2
exec "$VENV/bin/python" -m pytest -n "${PYTEST_WORKERS:-auto}" -q "$@"
