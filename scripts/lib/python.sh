# shellcheck shell=bash
# Sourced by the thin scripts: exports PYTHON, the interpreter that runs flip-reward ($PYTHON when set, else the
# active virtualenv's python, else this checkout's .venv/bin/python, else python3), with this checkout first on
# PYTHONPATH; exits 2 with one line when flip_reward does not import there.
flip_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
if [[ -z $PYTHON && -x $flip_repo/.venv/bin/python ]]; then PYTHON=$flip_repo/.venv/bin/python; fi
export PYTHON=${PYTHON:-python3} PYTHONPATH="$flip_repo${PYTHONPATH:+:$PYTHONPATH}"
if ! flip_error=$("$PYTHON" -c "import flip_reward.cli" 2>&1); then
  echo "error: $PYTHON cannot run flip-reward (${flip_error##*$'\n'}): run \`make setup\` and activate the" \
    "project's virtualenv (. .venv/bin/activate), or set PYTHON" >&2
  exit 2
fi
