#!/usr/bin/env bash
# The README's main-job command: installs p2p-telemetry into .venv (pinned versions) and runs
# a small instrumented node on loopback that serves Prometheus at 127.0.0.1:9464.
# Extra arguments go to the example (e.g. --duration 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/quickstart.py "$@"
