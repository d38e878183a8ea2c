"""The inference server for Hypercorn: ``hypercorn app:app`` (or ``./start_api.sh``).

Settings come from ``COCKATOO_*`` environment variables and ``.env`` (docs/configuration.md)."""

from cockatoo_ml.settings import set_default_environ

# Must be set before torch loads; an explicit value in the environment wins.
set_default_environ(
    # Idle OpenMP threads sleep instead of spinning. On a shared or busy CPU, spinning threads made MiniLM
    # inference ~3x slower (benchmarks/bench_serve.py).
    OMP_WAIT_POLICY="PASSIVE",
    # oneDNN caches compiled kernels per input shape (1024 by default); texts of every length make many shapes,
    # and a smaller cache kept ~70 MB off the server's peak memory with MiniLM.
    ONEDNN_PRIMITIVE_CACHE_CAPACITY="64",
)

from cockatoo_ml.serving.app import create_app_from_env  # noqa: E402

app = create_app_from_env()
