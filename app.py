"""The inference server for Hypercorn: ``hypercorn app:app`` (or ``./start_api.sh``).

Settings come from ``COCKATOO_*`` environment variables and ``.env`` (README, "Configuration")."""

from cockatoo_ml.serving.app import create_app_from_env

app = create_app_from_env()
