#!/usr/bin/env bash
# The README's test command: installs everything the tests need on a fresh Debian machine
# (Debian packages through apt-get when run as root, Python packages into .venv), then runs
# the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-test-deps
exec .venv/bin/python -m pytest "$@"
