"""The inference server for Hypercorn: ``hypercorn app:app`` (or ``./start_api.sh``).

Settings come from ``COCKATOO_*`` environment variables and ``.env`` (README, "Configuration")."""

import os

# Idle OpenMP threads sleep instead of spinning. On a shared or busy CPU, spinning threads made MiniLM
# inference ~3x slower (benchmarks/bench_serve.py); must be set before torch loads. An explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from cockatoo_ml.serving.app import create_app_from_env  # noqa: E402

app = create_app_from_env()
