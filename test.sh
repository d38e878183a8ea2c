#!/usr/bin/env bash
# Create or reuse .venv, install requirements, run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

source scripts/venv.sh
ensure_venv
export_offline_env
exec .venv/bin/python -m pytest "$@"
