#!/usr/bin/env bash
# One command from a fresh clone: create the virtualenv, install, and run the main job on the demo
# neighbourhood with the embedded default store (SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/grid demo "$@"
