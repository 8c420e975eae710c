#!/usr/bin/env bash
# Re-resolve requirements.lock from pyproject.toml (and scripts/install-tools.in), rebuild .venv from it
# and run the whole suite, so that an upgrade is one deliberate step whose failures show before it lands.
#   scripts/upgrade-lock.sh          every package to its newest version allowed by pyproject.toml
#   scripts/upgrade-lock.sh --keep   keep the current pins where they still fit (after adding a dependency)
# On success: review `git diff requirements.lock` and commit it.  On failure the new lock stays in place
# for inspection; `git checkout requirements.lock` goes back.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
UV_VERSION=0.13.9
TOOLS="$ROOT/.venv-tools"
if [ ! -x "$TOOLS/bin/uv" ] || [ "$("$TOOLS/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    echo "[lock] installing uv $UV_VERSION into $TOOLS" >&2
    rm -rf "$TOOLS"
    "${PYTHON:-python3}" -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --disable-pip-version-check -q "uv==$UV_VERSION"
fi
UPGRADE=(--upgrade)
case "${1:-}" in
    --keep) UPGRADE=() ;;
    "") ;;
    *) echo "usage: scripts/upgrade-lock.sh [--keep]" >&2; exit 2 ;;
esac
echo "[lock] resolving requirements.lock" >&2
# --universal: one lock for every platform and Python >= 3.11 (markers where versions differ).
"$TOOLS/bin/uv" pip compile pyproject.toml scripts/install-tools.in --extra test --extra federated --extra batch \
    --generate-hashes --universal --python-version 3.11 "${UPGRADE[@]}" \
    --custom-compile-command "scripts/upgrade-lock.sh" -o requirements.lock
git --no-pager diff --stat -- requirements.lock || true
echo "[lock] rebuilding .venv and running the suite" >&2
if ! ./test.sh; then
    echo "[lock] the suite fails with the new lock: fix the code or the bounds in pyproject.toml," >&2
    echo "[lock] or go back with: git checkout requirements.lock" >&2
    exit 1
fi
echo "[lock] the suite passes with the new lock; commit requirements.lock" >&2
