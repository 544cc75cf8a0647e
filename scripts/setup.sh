#!/usr/bin/env bash
# Installs p2p-telemetry into .venv with pinned versions (constraints.txt).
#   --with-test-deps  also Prometheus, Alertmanager (Debian) and the test extras (pytest, rotel, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="libp2p"
if [ "${1:-}" = "--with-test-deps" ]; then
  extras="libp2p,test"
  missing=""
  for pkg in prometheus prometheus-alertmanager; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -q
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    else
      echo "warning: Debian packages missing:$missing (run as root to install them)" >&2
    fi
  fi
fi
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$extras]" \
    > .venv/pip-install.log 2>&1; then
  cat .venv/pip-install.log >&2
  exit 1
fi
