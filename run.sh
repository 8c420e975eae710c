#!/usr/bin/env bash
# The main job: ./run.sh [webml arguments]; with none, runs the built-in demo.
source "$(dirname "$0")/scripts/bootstrap.sh"
exec "$VENV/bin/webml" "$@"
