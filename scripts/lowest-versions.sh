#!/usr/bin/env bash
# Every lower bound in pyproject.toml must be true: installs p2p-telemetry into a fresh .venv-lowest
# with each direct dependency at the lowest version it declares (uv's --resolution lowest-direct;
# what those need, at their newest) and runs the smoke test there, the one the pinned suite runs too.
# Needs .venv from scripts/setup.sh --with-test-deps (it brings uv).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
[ -x "$uv" ] || { echo "lowest-versions: $uv missing; run scripts/setup.sh --with-test-deps first" >&2; exit 1; }
rm -rf .venv-lowest
"$uv" venv --quiet --python "${PYTHON:-python3}" .venv-lowest
"$uv" pip install --quiet --python .venv-lowest/bin/python --resolution lowest-direct . "pytest>=8"
echo "lowest versions: $("$uv" pip freeze --python .venv-lowest/bin/python \
  | grep -iE '^(opentelemetry-(api|sdk|exporter-[a-z-]+)|prometheus-client|psutil|pyyaml|anyio|pytest)==' | tr '\n' ' ')"
cd tests  # so that the import is the installed package, not src/
exec ../.venv-lowest/bin/python -m pytest -q -p no:cacheprovider --rootdir=.. -c ../pyproject.toml test_smoke.py
