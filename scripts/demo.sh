#!/usr/bin/env bash
# The README's main-job command: installs p2p-telemetry into .venv (pinned versions) and runs
# `p2p-telemetry demo`: an instrumented node and 5 peers on 127.0.0.1 with a live view, serving
# Prometheus at 127.0.0.1:9464. No server is needed. Extra arguments go to the demo
# (e.g. --duration 60, --otlp-endpoint http://127.0.0.1:4317, --alertmanager http://127.0.0.1:9093).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/p2p-telemetry demo "$@"
