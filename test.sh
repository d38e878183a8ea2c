#!/usr/bin/env bash
# Create or reuse .venv, install requirements, check lint, format and types, run the test suite.
# Extra arguments go to pytest. The checks cover cockatoo_ml/ and the top-level scripts (pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")"

source scripts/venv.sh
ensure_venv
export_offline_env

# Each check names itself and the fix when it fails; pytest runs only when all pass.
check() {
  local name=$1 fix=$2
  shift 2
  echo "== $name"
  if ! "$@"; then
    echo "error: '$name' failed (see above); $fix" >&2
    exit 1
  fi
}
check "ruff check" "fix the findings, many with: .venv/bin/ruff check --fix" .venv/bin/ruff check --quiet
check "ruff format --check" "reformat with: .venv/bin/ruff format" .venv/bin/ruff format --check --quiet
check "mypy" "fix the type errors (settings in pyproject.toml, [tool.mypy])" .venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
