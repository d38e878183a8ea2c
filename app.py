"""The inference server for Hypercorn: ``hypercorn app:app`` (or ``./start_api.sh``).

Settings come from ``COCKATOO_*`` environment variables and ``.env`` (README, "Configuration")."""

import os

# Idle OpenMP threads sleep instead of spinning. On a shared or busy CPU, spinning threads made MiniLM
# inference ~3x slower (benchmarks/bench_serve.py); must be set before torch loads. An explicit value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# oneDNN caches compiled kernels per input shape (1024 by default); texts of every length make many shapes,
# and a smaller cache kept ~70 MB off the server's peak memory with MiniLM.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")

from cockatoo_ml.serving.app import create_app_from_env  # noqa: E402

app = create_app_from_env()
