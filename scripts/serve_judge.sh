#!/usr/bin/env bash
# Start the judge's OpenAI-compatible server(s) in the background, a router in front of judges, or stop either:
# `flip-reward judge serve|route|stop` (docs/judge-servers.md; `flip-reward judge serve --help`).
#
#   scripts/serve_judge.sh MODEL [--replicas N] [--policy P] [--port P] [--host H] [--pid-file F] [--log-file F]
#                          [--timeout S] [--dry-run] [-- EXTRA_SERVER_ARGS...]
#   scripts/serve_judge.sh --route URL [URL...] [--policy P] [--port P] [--host H] [--pid-file F] [--log-file F]
#                          [--timeout S] [--dry-run]
#   scripts/serve_judge.sh --stop [PID_FILE | --port P]
#
# PYTHON: the interpreter (default: the active virtualenv's python, else python3); this checkout's flip_reward.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
python=${python:-python3}
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
if ! error=$("$python" -c "import flip_reward.cli" 2>&1); then
  echo "serve_judge: error: $python cannot run flip-reward (${error##*$'\n'}): activate the project's virtualenv" \
    "(. .venv/bin/activate) or pip install -e . into this interpreter" >&2
  exit 2
fi
action=serve args=()
for ((i = 1; i <= $#; i++)); do
  arg=${!i}
  case $arg in
    --stop | --route) action=${arg#--} ;;
    --) args+=("${@:i}"); break ;;
    *) args+=("$arg") ;;
  esac
done
exec "$python" -m flip_reward.cli judge --script "$0" "$action" ${args[@]+"${args[@]}"}
