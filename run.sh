#!/usr/bin/env bash
# The main job: ./run.sh [webml arguments] runs the `webml` command in the project's venv (made on first use).
# With no arguments it is `webml classify`: the top-5 ImageNet classes of a sample photo (coffee.png) with
# EfficientNet-Lite0; `./run.sh demo` builds a small network, `./run.sh --help` lists every command.
source "$(dirname "$0")/scripts/bootstrap.sh"
exec "$VENV/bin/webml" "$@"
