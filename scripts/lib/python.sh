# shellcheck shell=bash
# Sourced by the thin scripts (training, demos, serve_judge.sh): sets PYTHON to the interpreter that runs
# `python -m flip_reward.cli`: $PYTHON, else the active virtualenv's, else this checkout's .venv (made by `make setup`
# / `make demo`), else python3; stops with one line saying how to get one when flip_reward does not import there.
PYTHON=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
if [[ -z $PYTHON ]]; then
  PYTHON=python3
  _venv=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv/bin/python
  [[ -x $_venv ]] && PYTHON=$_venv
  unset _venv
fi
if ! "$PYTHON" -c 'import flip_reward.cli' 2>/dev/null; then
  # shellcheck disable=SC2016  # the backticks are literal
  printf '%s: error: flip_reward does not import with %s: run `make setup` (then `source .venv/bin/activate`) or set PYTHON\n' \
    "${0##*/}" "$PYTHON" >&2
  exit 2
fi
