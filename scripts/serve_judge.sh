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
# PYTHON: the interpreter (lib/python.sh: $PYTHON, the active virtualenv's, this checkout's .venv, else python3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
action=serve args=()
for ((i = 1; i <= $#; i++)); do
  arg=${!i}
  case $arg in
    --stop | --route) action=${arg#--} ;;
    --) args+=("${@:i}"); break ;;
    *) args+=("$arg") ;;
  esac
done
exec "$PYTHON" -m flip_reward.cli judge --script "$0" "$action" ${args[@]+"${args[@]}"}
