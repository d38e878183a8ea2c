#!/usr/bin/env bash
# Start the inference API with Hypercorn: ./start_api.sh [HOST] [PORT] [WORKERS]   (defaults 0.0.0.0 8000 1)
# Each worker is a process with its own copy of the model. Settings come from COCKATOO_* variables or .env
# (README, "Configuration"); COCKATOO_GRACEFUL_TIMEOUT is how long SIGTERM waits for in-flight requests.
set -euo pipefail
cd "$(dirname "$0")"

HOST=${1:-0.0.0.0}
PORT=${2:-8000}
WORKERS=${3:-1}
GRACEFUL_TIMEOUT=${COCKATOO_GRACEFUL_TIMEOUT:-30}
# Each worker gives its forward passes an equal share of the cores, not all of them (oversubscribed threads
# would slow every worker down).
export COCKATOO_WORKERS="$WORKERS"
# glibc gives every thread its own malloc arena; two are plenty for one event loop + the model threads and
# keep resident memory down.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}

if [ -x .venv/bin/hypercorn ]; then
  HYPERCORN=.venv/bin/hypercorn
elif command -v hypercorn >/dev/null 2>&1; then
  HYPERCORN=hypercorn
else
  echo "error: hypercorn not found; run ./test.sh once (creates .venv) or pip install -r requirements.txt" >&2
  exit 2
fi

echo "Starting Cockatoo ML inference API (Quart/Hypercorn) on http://$HOST:$PORT with $WORKERS worker(s)"
echo "  model: ${COCKATOO_MODEL_DIR:-constellation_one_text}"
echo "  GET  /health   POST /predict   POST /batch   GET /metrics   GET /docs"

# One worker runs inside Hypercorn's own process (--workers 0): no extra process, and a failed start-up
# (say, no model directory) exits non-zero. Hypercorn's multi-worker supervisor prints the same error line
# but exits 0 (a Hypercorn 0.18 quirk), so supervise multi-worker setups by /health, not by exit code.
if [ "$WORKERS" = "1" ]; then
  WORKERS=0
fi
# exec: Hypercorn itself gets SIGTERM and shuts down gracefully.
exec "$HYPERCORN" app:app --bind "$HOST:$PORT" --workers "$WORKERS" --graceful-timeout "$GRACEFUL_TIMEOUT"
