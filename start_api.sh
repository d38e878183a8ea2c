#!/usr/bin/env bash
# Start the inference API with Hypercorn: ./start_api.sh [HOST] [PORT] [WORKERS]   (defaults 0.0.0.0 8000 1)
# Each worker is a process with its own copy of the model. Settings come from COCKATOO_* variables or .env
# (docs/configuration.md); COCKATOO_GRACEFUL_TIMEOUT is how long SIGTERM waits for in-flight requests,
# COCKATOO_HEADER_TIMEOUT_S how long a client has to send its request line and headers (Hypercorn's --keep-alive).
set -euo pipefail
cd "$(dirname "$0")"

HOST=${1:-0.0.0.0}
PORT=${2:-8000}
WORKERS=${3:-1}
# Each worker gives its forward passes an equal share of the cores, not all of them (oversubscribed threads
# would slow every worker down).
export COCKATOO_WORKERS="$WORKERS"
# glibc gives every thread its own malloc arena; two are plenty for one event loop + the model threads and
# keep resident memory down.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}

if [ -x .venv/bin/hypercorn ]; then
  HYPERCORN=.venv/bin/hypercorn
  PYTHON=.venv/bin/python
elif command -v hypercorn >/dev/null 2>&1; then
  HYPERCORN=hypercorn
  PYTHON=python3
else
  echo "error: hypercorn not found; run ./test.sh once (creates .venv) or pip install -r requirements.txt" >&2
  exit 2
fi

# What the app will use, .env included, from the settings layer (a malformed setting stops here, in one line).
SETTINGS=$("$PYTHON" -m cockatoo_ml.registry --get serving model_dir graceful_timeout_s header_timeout_s)
{ read -r MODEL_DIR; read -r GRACEFUL_TIMEOUT; read -r HEADER_TIMEOUT; } <<< "$SETTINGS"

echo "Starting Cockatoo ML inference API (Quart/Hypercorn) on http://$HOST:$PORT with $WORKERS worker(s)"
echo "  model: $MODEL_DIR"
echo "  GET  /health   POST /predict   POST /batch   GET /metrics   GET /docs"

ARGS=(app:app --bind "$HOST:$PORT" --graceful-timeout "$GRACEFUL_TIMEOUT" --keep-alive "$HEADER_TIMEOUT")
# One worker runs inside Hypercorn's own process (--workers 0): no extra process, and a failed start-up
# (say, no model directory) exits non-zero. exec: Hypercorn itself gets SIGTERM and shuts down gracefully.
if [ "$WORKERS" = "1" ]; then
  exec "$HYPERCORN" "${ARGS[@]}" --workers 0
fi

# Several workers: Hypercorn 0.18's supervisor exits 0 even when a worker fails to start (the failed worker's
# exit code is lost), so this script supervises it. The supervisor only ends on its own when a worker has
# stopped, which is a failure; SIGTERM/SIGINT are passed on and wait for the graceful shutdown.
"$HYPERCORN" "${ARGS[@]}" --workers "$WORKERS" &
SERVER=$!
STOPPING=0
trap 'STOPPING=1; kill -TERM "$SERVER" 2>/dev/null || true' TERM INT
STATUS=0
wait "$SERVER" || STATUS=$?
if [ "$STOPPING" = "1" ]; then  # the trapped signal ended the first wait early: now Hypercorn's own status
  STATUS=0
  wait "$SERVER" || STATUS=$?
fi
if [ "$STOPPING" = "0" ] && [ "$STATUS" = "0" ]; then
  echo "error: a Hypercorn worker stopped on its own (see the error above); the server is not running" >&2
  exit 1
fi
exit "$STATUS"
