#!/usr/bin/env bash
# Every lower bound in pyproject.toml must be true. Installs p2p-telemetry into a fresh .venv-lowest with
# each direct dependency at the lowest version it declares (uv's --resolution lowest-direct; what those
# need, at their newest) and runs there tests the pinned suite runs too, in two stages:
#   1. the package alone: the smoke test (a node exporting every group through Prometheus and a reader);
#   2. with its extras (libp2p, cli, instrument; the libp2p extra raises prometheus-client to what
#      py-libp2p needs): real py-libp2p hosts, the zero-code instrumentor, the demo's view with rich.
# Needs .venv from scripts/setup.sh --with-test-deps (it brings uv).
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
[ -x "$uv" ] || { echo "lowest-versions: $uv missing; run scripts/setup.sh --with-test-deps first" >&2; exit 1; }
python=.venv-lowest/bin/python
rm -rf .venv-lowest
"$uv" venv --quiet --python "${PYTHON:-python3}" .venv-lowest

install() {  # the project with the given extras, at the lowest versions; prints what it got
  "$uv" pip install --quiet --python "$python" --resolution lowest-direct ".$1" "pytest>=8"
  echo "lowest versions$1: $("$uv" pip freeze --python "$python" 2>/dev/null \
    | grep -iE '^(opentelemetry-(api|sdk|exporter-[a-z-]+|instrumentation|distro)|prometheus-client|psutil|pyyaml|anyio|requests|libp2p|rich|pytest)==' \
    | tr '\n' ' ')"
}
tests() {  # from tests/, so that the import is the installed package, not src/
  (cd tests && "../$python" -m pytest -q -p no:cacheprovider --rootdir=.. -c ../pyproject.toml "$@")
}

install ""
tests test_smoke.py
install "[libp2p,cli,instrument]"
tests integrations/test_libp2p.py integrations/test_libp2p_pubsub.py integrations/test_libp2p_ping_identify.py \
  integrations/test_libp2p_messages.py integrations/test_libp2p_kad.py integrations/test_instrumentor.py \
  "integration/test_demo.py::test_demo_view_fits_a_narrow_terminal"
