#!/usr/bin/env bash
# One command from a fresh clone: create the virtualenv, install the project with its dev tools,
# lint, type-check and run the whole test suite (PostgreSQL and Mosquitto must be running locally).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# the fault tests start private brokers (tests/api/test_broker_faults.py, test_mqtt_auth.py) and the
# dashboard's browser tests drive Debian's Chromium through Playwright (tests/dashboard)
missing=()
command -v mosquitto_passwd >/dev/null || missing+=(mosquitto)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -q >/dev/null || true
  apt-get install -y -q "${missing[@]}" >/dev/null || echo "warning: could not install ${missing[*]}"
fi
.venv/bin/ruff check grid models api tests bench
.venv/bin/mypy grid models api
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  exit 0
fi
exit "$rc"
