#!/usr/bin/env bash
# Installs p2p-telemetry into .venv with pinned versions (constraints.txt).
#   --with-test-deps  also what the tests run for real: Prometheus and promtool, Alertmanager and
#                     amtool, openssl (Debian packages, installed when run as root), and the `test`
#                     extra (pytest, rotel, ruff, mypy, uv, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
extras="libp2p"
debian=()
if [ "${1:-}" = "--with-test-deps" ]; then
  extras="libp2p,test"
  debian+=(prometheus prometheus-alertmanager openssl)
fi
# A Debian python3 makes venvs only with python3-venv.
"$PYTHON" -c "import ensurepip, venv" 2>/dev/null || debian+=(python3-venv)
missing=()
for pkg in "${debian[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "warning: Debian packages missing: ${missing[*]} (run as root to install them)" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$extras]" \
    > .venv/pip-install.log 2>&1; then
  cat .venv/pip-install.log >&2
  exit 1
fi
