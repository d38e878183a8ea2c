# Sourced (not run) by test.sh and quickstart.sh from the repository root: create or reuse .venv and install
# requirements.txt and requirements-dev.txt (tests and checks) into it, only again when either changed since the
# last successful install.
# PYTHON picks the interpreter that creates .venv (default python3).

ensure_venv() {
  local python=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    # tomllib (sources TOML files) and the package's type syntax need Python 3.11.
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      local found
      found=$("$python" -V 2>/dev/null) || found="not found"
      echo "error: Python 3.11 or newer is needed to create .venv; '$python' is $found." \
        "Install it or set PYTHON=python3.11" >&2
      return 2
    fi
    echo "creating .venv with $python"
    "$python" -m venv .venv
  fi
  local stamp=.venv/.requirements.sha1 want
  want=$(cat requirements.txt requirements-dev.txt | sha1sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing requirements.txt and requirements-dev.txt into .venv (first run: a few minutes)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
    echo "$want" > "$stamp"
  fi
}

# The Hub is optional: everything the quickstart and the tests need is on disk, so never wait on the network.
export_offline_env() {
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
}
