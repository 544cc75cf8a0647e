#!/usr/bin/env bash
# The README's test command. Installs everything the tests need on a fresh Debian machine (Debian
# packages through apt-get when run as root, Python packages into .venv), then runs each step:
#   ruff check src tests
#   mypy --strict (its settings in pyproject.toml)
#   pytest: the whole suite (extra arguments go to pytest)
#   the smoke test at the lowest versions pyproject.toml declares (scripts/lowest-versions.sh)
# Every step runs even if one before it failed; the command fails if any did.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-test-deps || exit 1

failed=()
step() {
  local name=$1 started=$SECONDS
  shift
  echo "=== $name"
  if "$@"; then
    echo "=== $name: ok ($((SECONDS - started)) s)"
  else
    echo "=== $name: FAILED ($((SECONDS - started)) s)"
    failed+=("$name")
  fi
}

step "ruff" .venv/bin/ruff check src tests
step "mypy --strict" .venv/bin/mypy
step "pytest" .venv/bin/python -m pytest "$@"
step "lowest versions" bash scripts/lowest-versions.sh

if [ ${#failed[@]} -gt 0 ]; then
  echo "=== failed: ${failed[*]}"
  exit 1
fi
echo "=== every step passed"
