#!/usr/bin/env bash
# Start the judge's OpenAI-compatible server(s) in the background, a router in front of judges, or stop either.
#
#   scripts/serve_judge.sh MODEL [--replicas N] [--policy P] [--port P] [--host H] [--pid-file F] [--log-file F]
#                          [--timeout S] [--dry-run] [-- EXTRA_SERVER_ARGS...]
#   scripts/serve_judge.sh --route URL [URL...] [--policy P] [--port P] [--host H] [--pid-file F] [--log-file F]
#                          [--timeout S] [--dry-run]
#   scripts/serve_judge.sh --stop [PID_FILE | --port P]
#
# Serves with `vllm serve` when vLLM imports and a CUDA GPU is visible, else `transformers serve`
# (JUDGE_SERVER=vllm or JUDGE_SERVER=transformers forces one).
# --replicas N (N > 1) starts N servers of MODEL on ports P+1..P+N of 127.0.0.1 (vLLM: JUDGE_GPUS split evenly,
# e.g. 0,1,2,3 over 2 replicas is 0,1 and 2,3, with --tensor-parallel-size added) and vllm-router on H:P in front
# of them, as one unit: started and health-checked together, stopped together, and a replica that fails to start
# stops the others. --route starts only vllm-router on H:P, in front of OpenAI-compatible judges that already run
# (their base URLs, with or without the trailing /v1). vllm-router comes with `pip install "flip-reward[fleet]"`.
# Every process runs in its own session and process group, logs to a file, and its PID (= its process group) goes
# to the PID file with its start time, one line each. Once GET /health answers everywhere, the base URL
# (http://H:P/v1) is printed as the only line on stdout; messages go to stderr. Requests must name the model exactly
# as MODEL was given here (transformers serve answers 400 to any other name). --dry-run prints the commands, one per
# line, and starts nothing.
# --stop sends TERM to every process group of the PID file (without one: the default PID file of --port), KILL after
# a grace period, and removes the PID file; it does nothing (exit 0) when the PID file or the processes are gone.
# PID and log files live only in a directory of yours that nobody else can write; a PID or log file that is a
# symbolic link or another user's, a PID of 1 or less, and a PID now used by another process (its start time differs
# from the one recorded) are refused, never signalled (flip_reward/serving/pid_files.py).
#
# Defaults: --port 8000, --host 127.0.0.1, --replicas 1, --policy power_of_two (vllm-router's routing policy:
# power_of_two, round_robin, cache_aware, random, ...), --timeout 900 (seconds), --pid-file and --log-file
# DIR/serve_judge.PORT.{pid,log} with DIR=${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/flip-reward-$UID, created 0700
# (replica I logs to the log file's name with .I before .log).
# Environment: PYTHON (interpreter; default the active virtualenv's python, else python3), JUDGE_GPUS
# (CUDA_VISIBLE_DEVICES for vLLM), JUDGE_ROUTER_POLICY (default of --policy), JUDGE_ROUTER_ARGS (more
# vllm-router arguments, e.g. "--request-timeout-secs 3600"). HF_HUB_OFFLINE defaults to 1 when MODEL is a directory.
set -euo pipefail

readonly FLEET_EXTRA='pip install "flip-reward[fleet]"'
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO

log() { printf 'serve_judge: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
option_value() { (($# >= 2)) || die "$1 needs a value"; echo "$2"; }
usage() { sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"; }
quoted() { local out; printf -v out '%q ' "$@"; printf '%s\n' "${out% }"; }

# Prints the path of executable $1 next to $PYTHON (so the venv's wins), else on PATH; a dry run settles for the
# bare name. $2 says how to install it.
find_exe() {
  local python_bin
  python_bin=$(command -v "$PYTHON") || die "python interpreter not found: $PYTHON"
  if [[ -x "$(dirname "$python_bin")/$1" ]]; then
    echo "$(dirname "$python_bin")/$1"
  elif command -v "$1"; then
    :
  elif ((dry_run)); then
    echo "$1"
  else
    die "'$1' is neither next to $python_bin nor on PATH${2:+: $2}"
  fi
}

use_vllm() {
  case ${JUDGE_SERVER:-auto} in
    vllm) return 0 ;;
    transformers) return 1 ;;
    auto) ;;
    *) die "JUDGE_SERVER must be auto, vllm or transformers, got '$JUDGE_SERVER'" ;;
  esac
  nvidia-smi -L 2>/dev/null | grep -q '^GPU' && "$PYTHON" -c 'import vllm' 2>/dev/null
}

# Exit status 0 when something accepts TCP connections on host $1, port $2.
port_open() {
  "$PYTHON" - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

healthy() {
  "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" \
    2>/dev/null
}

# The PID files' checks, records and stops, in Python (this checkout's flip_reward, standard library only).
pid_files() { PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m flip_reward.serving.pid_files "$@"; }

# Stops every process group of PID file $1 that is still the one started (the router first), removes the file.
stop_server() { pid_files stop "$1" || exit 1; }

# Fails the start: shows the failing process's log tail, stops everything started, and exits non-zero.
fail_start() {
  log "error: $1"
  if [[ -n ${2:-} ]]; then
    log "last lines of $2:"
    tail -n 30 -- "$2" >&2 || true
  fi
  stop_server "$pid_file"
  exit 1
}

# Runs "$@" in the background in its own session and process group, logging to $1 ... after shifting it off.
# Not a process group leader, so setsid execs in place: launched_pid is the PID and PGID; it goes to the PID file
# at once, so an interrupted start never leaves a process nobody can stop.
launch() {
  local log_to=$1
  shift
  log "starting: $* (log: $log_to)"
  setsid nohup "$@" >"$log_to" 2>&1 </dev/null &
  launched_pid=$!
  pid_files record "$pid_file" "$launched_pid" || {
    kill -TERM -- "-$launched_pid" 2>/dev/null || true
    fail_start "could not record PID $launched_pid in $pid_file"
  }
}

# Polls GET /health of every started process until all answer, one dies, or the timeout passes.
# Arguments: NAME PID HEALTH_URL LOG_FILE, repeated.
wait_healthy() {
  local deadline=$((SECONDS + timeout_s)) pending=("$@") left i
  while ((${#pending[@]})); do
    left=()
    for ((i = 0; i < ${#pending[@]}; i += 4)); do
      if healthy "${pending[i + 2]}"; then continue; fi
      kill -0 "${pending[i + 1]}" 2>/dev/null ||
        fail_start "the ${pending[i]} (PID ${pending[i + 1]}) exited before it was healthy" "${pending[i + 3]}"
      left+=("${pending[@]:i:4}")
    done
    pending=(${left[@]+"${left[@]}"})
    ((${#pending[@]})) || break
    ((SECONDS < deadline)) || fail_start "the ${pending[0]} was not healthy after ${timeout_s}s" "${pending[3]}"
    sleep 1
  done
}

# The base URL of a judge as vllm-router wants it (scheme://host:port[/path], no trailing / or /v1). A URL with
# user-info is refused at once (exit 2) without being shown: vllm-router can send no credentials to a worker, so it
# would never become healthy, and the URL would be printed and visible in its process arguments.
worker_url() {
  local url=$1
  if [[ $url == *@* ]]; then
    log "error: --route: a judge URL holds credentials (user:password@), which vllm-router cannot send:" \
      "give the replicas' URLs without them (see docs/judge-servers.md)"
    exit 2
  fi
  [[ $url =~ ^https?://[^/[:space:]]+(/[^[:space:]]*)?$ ]] || die "--route: '$url' is not an http(s) URL"
  url=${url%/}
  url=${url%/v1}
  echo "${url%/}"
}

# Sets cmd to the vllm-router command in front of worker URLs "$@".
router_command() {
  local -a router_args
  local use_policy=$policy
  read -r -a router_args <<<"${JUDGE_ROUTER_ARGS:-}"
  if (($# == 1)) && [[ $policy == power_of_two ]]; then
    use_policy=round_robin # vllm-router refuses power_of_two over one worker
    log "one judge behind the router: policy round_robin (power_of_two needs two or more)"
  fi
  cmd=("$(find_exe vllm-router "install it with $FLEET_EXTRA")" --host "$host" --port "$port" --worker-urls "$@"
    --policy "$use_policy" --worker-startup-timeout-secs "$timeout_s" --worker-startup-check-interval 1
    --log-level warning ${router_args[@]+"${router_args[@]}"})
}

# Sets cmd to the judge server command for one server on $1:$2 with GPUs $3 (vLLM only; may be empty).
server_command() {
  local bind=$1 server_port=$2 gpus=$3
  if use_vllm; then
    cmd=(env)
    [[ -n $gpus ]] && cmd+=(CUDA_VISIBLE_DEVICES="$gpus")
    cmd+=("$(find_exe vllm)" serve "$model")
    local -a split
    IFS=, read -r -a split <<<"$gpus"
    if ((${#split[@]} > 1)) && [[ " ${extra_args[*]} " != *" --tensor-parallel-size "* && " ${extra_args[*]} " != *" -tp "* ]]; then
      cmd+=(--tensor-parallel-size "${#split[@]}")
    fi
  else
    cmd=("$(find_exe transformers)" serve "$model")
  fi
  cmd+=(--host "$bind" --port "$server_port" ${extra_args[@]+"${extra_args[@]}"})
}

# Prints the GPU list of replica $1 (0-based) of $replicas: JUDGE_GPUS cut into equal consecutive parts.
replica_gpus() {
  local -a gpus
  [[ -n ${JUDGE_GPUS:-} ]] || return 0
  IFS=, read -r -a gpus <<<"$JUDGE_GPUS"
  local each=$((${#gpus[@]} / replicas))
  (IFS=,; echo "${gpus[*]:$(($1 * each)):each}")
}

check_replica_gpus() {
  ((replicas > 1)) && use_vllm || return 0
  [[ -n ${JUDGE_GPUS:-} ]] || die "--replicas $replicas with vLLM: set JUDGE_GPUS (e.g. 0,1,2,3) to split over them"
  [[ $JUDGE_GPUS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "JUDGE_GPUS must be GPU ids like 7 or 6,7, got '$JUDGE_GPUS'"
  local -a gpus
  IFS=, read -r -a gpus <<<"$JUDGE_GPUS"
  ((${#gpus[@]} % replicas == 0)) ||
    die "JUDGE_GPUS ($JUDGE_GPUS: ${#gpus[@]} GPUs) does not split evenly over $replicas replicas"
}

replica_log() { echo "${log_file%.log}.$1.log"; }

# Starts MODEL: one server on H:P, or $replicas servers on 127.0.0.1:P+1.. and the router on H:P.
start_judges() {
  local i server_port gpus bind=$host
  local -a workers=() waits=()
  if ((replicas == 1)); then
    server_command "$host" "$port" "${JUDGE_GPUS:-}"
    launch "$log_file" "${cmd[@]}"
    wait_healthy server "$launched_pid" "http://$client_host:$port/health" "$log_file"
    return
  fi
  bind=127.0.0.1
  for ((i = 0; i < replicas; i++)); do
    server_port=$((port + 1 + i))
    gpus=$(replica_gpus "$i")
    server_command "$bind" "$server_port" "$gpus"
    launch "$(replica_log $((i + 1)))" "${cmd[@]}"
    waits+=("replica $((i + 1))" "$launched_pid" "http://$bind:$server_port/health" "$(replica_log $((i + 1)))")
    workers+=("http://$bind:$server_port")
  done
  wait_healthy "${waits[@]}"
  start_router "${workers[@]}"
}

start_router() {
  router_command "$@"
  launch "$log_file" "${cmd[@]}"
  wait_healthy router "$launched_pid" "http://$client_host:$port/health" "$log_file"
}

# --dry-run: the commands a start would run, one per line, prefixed "server:", "replica I:" or "router:".
print_commands() {
  local i
  if ((${#route_urls[@]})); then
    router_command "${route_urls[@]}"
    echo "router: $(quoted "${cmd[@]}")"
  elif ((replicas == 1)); then
    server_command "$host" "$port" "${JUDGE_GPUS:-}"
    echo "server: $(quoted "${cmd[@]}")"
  else
    local -a workers=()
    for ((i = 0; i < replicas; i++)); do
      server_command 127.0.0.1 $((port + 1 + i)) "$(replica_gpus "$i")"
      echo "replica $((i + 1)): $(quoted "${cmd[@]}")"
      workers+=("http://127.0.0.1:$((port + 1 + i))")
    done
    router_command "${workers[@]}"
    echo "router: $(quoted "${cmd[@]}")"
  fi
}

# Checks the PID and log files (creating an empty PID file; refused: exit 1) and that the ports are free.
check_free() {
  local used i
  local -a logs=("$log_file")
  for ((i = 1; i <= replicas && replicas > 1; i++)); do logs+=("$(replica_log "$i")"); done
  pid_files prepare "$pid_file" "${logs[@]}" || exit 1
  for used in "$port" ${replica_ports[@]+"${replica_ports[@]}"}; do
    if port_open "$client_host" "$used"; then die "port $used on $client_host is already in use"; fi
  done
}

start() {
  if [[ -d "$model" ]]; then export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"; fi
  export LITELLM_LOCAL_MODEL_COST_MAP=True
  trap 'fail_start "interrupted"' INT TERM
  local started=$SECONDS
  if ((${#route_urls[@]})); then start_router "${route_urls[@]}"; else start_judges; fi
  log "healthy after $((SECONDS - started))s (stop it with: $0 --stop $pid_file)"
  echo "http://$client_host:$port/v1"
}

model="" port=8000 host=127.0.0.1 timeout_s=900 pid_file="" log_file="" extra_args=() route_urls=() replicas=1
dry_run=0 policy=${JUDGE_ROUTER_POLICY:-power_of_two} stop=0
PYTHON=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
PYTHON=${PYTHON:-python3}

while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --stop)
      stop=1
      if (($# >= 2)) && [[ $2 != -* ]]; then pid_file=$2; shift; fi
      shift
      ;;
    --route)
      shift
      while (($#)) && [[ $1 != -* ]]; do route_urls+=("$(worker_url "$1")"); shift; done
      ((${#route_urls[@]})) || die "--route needs one or more judge URLs"
      ;;
    --replicas) replicas=$(option_value "$@"); shift 2 ;;
    --policy) policy=$(option_value "$@"); shift 2 ;;
    --port) port=$(option_value "$@"); shift 2 ;;
    --host) host=$(option_value "$@"); shift 2 ;;
    --pid-file) pid_file=$(option_value "$@"); shift 2 ;;
    --log-file) log_file=$(option_value "$@"); shift 2 ;;
    --timeout) timeout_s=$(option_value "$@"); shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --) shift; extra_args=("$@"); break ;;
    -*) die "unknown option $1 (server arguments go after --)" ;;
    *) [[ -z "$model" ]] || die "one MODEL only, got '$model' and '$1'"; model=$1; shift ;;
  esac
done

private_dir=${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/flip-reward-$UID
if ((stop)); then
  [[ -z $model && ${#route_urls[@]} == 0 ]] || die "usage: $0 --stop [PID_FILE | --port P]"
  [[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$port'"
  stop_server "${pid_file:-$private_dir/serve_judge.$port.pid}"
  exit 0
fi
if ((${#route_urls[@]})); then
  [[ -z "$model" && $replicas == 1 && ${#extra_args[@]} == 0 ]] ||
    die "--route starts only a router: no MODEL, --replicas or server arguments (router arguments: JUDGE_ROUTER_ARGS)"
  [[ $(printf '%s\n' "${route_urls[@]}" | sort | uniq -d) == "" ]] || die "--route lists a judge twice"
else
  [[ -n "$model" ]] || { usage >&2; exit 2; }
fi
[[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number, got '$port'"
[[ "$timeout_s" =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds, got '$timeout_s'"
[[ "$replicas" =~ ^[1-9][0-9]*$ ]] || die "--replicas must be a whole number >= 1, got '$replicas'"
[[ "$policy" =~ ^[a-z_]+$ ]] || die "--policy must be a vllm-router policy name like power_of_two, got '$policy'"
if [[ "$model" =~ ^(/|\./|\.\./) && ! -d "$model" ]]; then
  die "model directory $model does not exist"
fi
check_replica_gpus
case $host in 0.0.0.0 | :: | "") client_host=127.0.0.1 ;; *) client_host=$host ;; esac
pid_file=${pid_file:-$private_dir/serve_judge.$port.pid}
log_file=${log_file:-$private_dir/serve_judge.$port.log}
replica_ports=()
((replicas > 1)) && for ((i = 1; i <= replicas; i++)); do replica_ports+=($((port + i))); done

if ((dry_run)); then print_commands; exit 0; fi
check_free
start
