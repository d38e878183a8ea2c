#!/usr/bin/env bash
# One command from a fresh clone to a served moderation API, on the embedded demo corpus (demo/corpus.jsonl):
#   .venv + requirements -> prepare_data.py -> train_text.py (offline MiniLM) -> start_api.sh (Hypercorn).
# A second run reuses the environment, the prepared data and the trained model; --retrain redoes the data and
# the model. Run ./quickstart.sh --help for the options.
#
# Everything runs from main(), called on the last line, so bash has read the whole file before it acts:
# editing or updating this script while it trains cannot make the running copy execute a mix of old and new.
set -euo pipefail
cd "$(dirname "$0")"

DEMO_SOURCES=sources/demo.toml
DEMO_CORPUS=demo/corpus.jsonl
DEMO_RECIPE=recipes/demo.toml  # MiniLM, 8 epochs, learning rate 1e-4, 64 tokens

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
DATA_DIR=data/demo_processed
MODEL_DIR=data/demo_model
RETRAIN=0
SERVE=1

usage() {
  cat <<EOF
Usage: ./quickstart.sh [--retrain] [--host HOST] [--port PORT] [--no-serve] [--data-dir DIR] [--model-dir DIR]

Creates .venv, prepares the demo corpus, fine-tunes MiniLM on it and serves it with Hypercorn.

  --retrain        prepare the data and train the model again even if they exist
  --host HOST      address to listen on (env HOST; default 127.0.0.1)
  --port PORT      port to listen on (env PORT; default 8000)
  --no-serve       stop after training (the model is then in --model-dir)
  --data-dir DIR   prepared demo dataset (default data/demo_processed)
  --model-dir DIR  demo model directory (default data/demo_model)
EOF
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --retrain) RETRAIN=1 ;;
      --no-serve) SERVE=0 ;;
      --host | --port | --data-dir | --model-dir)
        [ $# -ge 2 ] || { echo "error: $1 needs a value (see ./quickstart.sh --help)" >&2; exit 2; }
        case "$1" in
          --host) HOST=$2 ;;
          --port) PORT=$2 ;;
          --data-dir) DATA_DIR=$2 ;;
          --model-dir) MODEL_DIR=$2 ;;
        esac
        shift ;;
      -h | --help) usage; exit 0 ;;
      *) echo "error: unknown option $1 (see ./quickstart.sh --help)" >&2; exit 2 ;;
    esac
    shift
  done
  if ! [[ $PORT =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    echo "error: port must be a number from 1 to 65535, got '$PORT' (--port or PORT)" >&2
    exit 2
  fi
}

# Fail now, not after minutes of training, when the address is taken or cannot be used.
check_address_free() {
  .venv/bin/python - "$HOST" "$PORT" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
except OSError as exc:
    sys.exit(f"error: cannot listen on {host}:{port} ({exc.strerror or exc}); stop what uses it or pass --port N")
PY
}

prepare_demo_data() {
  echo "[2/4] Demo dataset ($DATA_DIR)"
  # prepare_data.py renames a finished dataset into place, so cockatoo_meta.json there means a complete one; it
  # must also be newer than the corpus and its source file, or the corpus changed since.
  local meta=$DATA_DIR/cockatoo_meta.json
  if [ "$RETRAIN" = 0 ] && [ "$meta" -nt "$DEMO_CORPUS" ] && [ "$meta" -nt "$DEMO_SOURCES" ]; then
    echo "  reusing the prepared demo dataset (--retrain to prepare it again)"
    return
  fi
  rm -rf "$DATA_DIR"
  # --raw-dir: the corpus lies in demo/ of this repository, whatever COCKATOO_RAW_DIR says.
  .venv/bin/python prepare_data.py --sources "$DEMO_SOURCES" --raw-dir . --output "$DATA_DIR"
}

train_demo_model() {
  echo "[3/4] Demo model ($MODEL_DIR, recipe $DEMO_RECIPE)"
  # train_text.py renames a finished model into place, so config.json there means a complete model.
  if [ "$RETRAIN" = 0 ] && [ "$MODEL_DIR/config.json" -nt "$DATA_DIR/cockatoo_meta.json" ] \
    && [ "$MODEL_DIR/config.json" -nt "$DEMO_RECIPE" ]; then
    echo "  reusing the trained demo model (--retrain to train it again)"
    return
  fi
  local started=$SECONDS
  # The demo has no use for resuming: an interrupted run's checkpoints would only make train_text.py refuse.
  rm -rf "$MODEL_DIR.checkpoints"
  .venv/bin/python train_text.py "$DEMO_RECIPE" --data "$DATA_DIR" --output-dir "$MODEL_DIR" \
    --checkpoint-dir "$MODEL_DIR.checkpoints"
  rm -rf "$MODEL_DIR.checkpoints"  # the finished model is complete on its own
  echo "  trained the demo model in $((SECONDS - started)) s"
}

serve_demo_model() {
  local url_host
  case "$HOST" in 0.0.0.0 | :: | "") url_host=127.0.0.1 ;; *) url_host=$HOST ;; esac
  local url=http://$url_host:$PORT
  echo "[4/4] Serving the demo model on http://$HOST:$PORT (Ctrl-C stops it). Try, from another terminal:"
  cat <<EOF

curl -s $url/health
curl -s $url/predict -H 'Content-Type: application/json' -d '{"text": "Your parcel is on hold: pay the 1.99 redelivery fee at royalmail-parcel-fee.com within 24 hours"}'
curl -s $url/batch -H 'Content-Type: application/json' -d '{"texts": ["I could kill for a coffee", "I know where you live and I will hurt you tonight", "send me nudes right now", "you are a pathetic idiot and everyone hates you"]}'

EOF
  export COCKATOO_MODEL_DIR=$MODEL_DIR
  exec ./start_api.sh "$HOST" "$PORT" 1
}

main() {
  parse_args "$@"
  echo "[1/4] Python environment (.venv)"
  source scripts/venv.sh
  ensure_venv
  export_offline_env
  if [ "$SERVE" = 1 ]; then
    check_address_free
  fi
  prepare_demo_data
  train_demo_model
  if [ "$SERVE" = 0 ]; then
    echo "[4/4] Not serving (--no-serve). Serve it later with:" \
      "COCKATOO_MODEL_DIR=$MODEL_DIR ./start_api.sh $HOST $PORT"
    exit 0
  fi
  serve_demo_model
}

main "$@"
