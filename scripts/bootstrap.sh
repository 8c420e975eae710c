# Sourced by run.sh and test.sh: make .venv with exactly the versions in requirements.lock (hash-checked),
# then webml itself (editable, no dependency resolution).  The venv is made anew whenever the lock or
# pyproject.toml changed since it was made, so nothing outside the lock survives in it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
LOCK="$ROOT/requirements.lock"
STAMP="$VENV/.webml-installed"
WANT="$(cat "$LOCK" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "[setup] creating $VENV from requirements.lock" >&2
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    LOG="$VENV/install.log"
    PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
    # --require-hashes: every package, the install tools included, is the locked file byte for byte.
    if ! { "${PIP[@]}" install --require-hashes --no-deps -r "$LOCK" \
           && "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT" \
           && "${PIP[@]}" check; } >"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "[setup] installation failed (log above, also in $LOG)" >&2
        exit 1
    fi
    echo "$WANT" > "$STAMP"
fi
