# shellcheck shell=bash
# Sourced by the training scripts (scripts/train/grpo_common.sh, verl_grpo_flip.sh, openrlhf_grpo_flip.sh): what
# they share to read knobs and to serve a judge for a run. The sourcing script defines log and die.
#
#   usage                         the running script's header comment (its --help)
#   parse_run_args ARGS...        dry_run (--dry-run) and passthrough (the rest); --help prints usage and exits
#   is_true VALUE                 1/true/yes/on (any case)
#   select_train_gpus JUDGE_HERE  train_gpus: TRAIN_GPUS, or the node's GPUs minus a judge started here
#   quoted WORDS...               the words shell-quoted on one line (for printed commands)
#   redacted TEXT...              TEXT with the user-info of every URL in it hidden (http://***@host/v1), to print
#   load_preset FILE              KEY=value lines of FILE for every KEY not already set in the environment
#   preset_file PREFIX NAME       the preset NAME (configs/PREFIX_NAME.env, or a path), or die naming the choices
#   start_run_judge MODEL HOST PORT RUN_DIR TIMEOUT [SERVER_ARGS...]
#                                 serve MODEL with scripts/serve_judge.sh (pid/log in RUN_DIR); prints its base URL
#   stop_run_judge RUN_DIR        stop a judge started by start_run_judge (nothing when none runs)

# The comment block at the top of the script that was run, as its --help.
usage() { sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[-1]}"; }

# Sets dry_run (1 with --dry-run) and passthrough (every other argument); -h/--help prints usage and exits.
# shellcheck disable=SC2034  # dry_run and passthrough are this function's output
parse_run_args() {
  local arg
  dry_run=0 passthrough=()
  for arg in "$@"; do
    case $arg in
      --dry-run) dry_run=1 ;;
      -h | --help) usage; exit 0 ;;
      *) passthrough+=("$arg") ;;
    esac
  done
}

is_true() { [[ ${1,,} =~ ^(1|true|yes|on)$ ]]; }

# select_train_gpus JUDGE_HERE: sets train_gpus to TRAIN_GPUS (comma-separated) when given, else GPUs
# 0..NUM_GPUS-1 without the judge's JUDGE_GPUS when the judge is started here (JUDGE_HERE=1) and does not share them
# (JUDGE_SHARES_GPUS).
# shellcheck disable=SC2034  # train_gpus is this function's output
select_train_gpus() {
  local judge_here=$1 gpu
  train_gpus=()
  if [[ -n ${TRAIN_GPUS:-} ]]; then
    IFS=, read -r -a train_gpus <<<"$TRAIN_GPUS"
    return 0
  fi
  for ((gpu = 0; gpu < NUM_GPUS; gpu++)); do
    if ((judge_here)) && ! is_true "$JUDGE_SHARES_GPUS" && [[ ,$JUDGE_GPUS, == *",$gpu,"* ]]; then continue; fi
    train_gpus+=("$gpu")
  done
}
quoted() { local out; printf -v out '%q ' "$@"; printf '%s\n' "${out% }"; }

# "$*" as flip_reward.judge.urls.redact_url shows it (one Python start, ~0.1 s; the text goes through stdin, not
# the process arguments others can see): credentials in a judge URL never reach a log. Its pattern (everything up to
# a URL's last "@") needs a lookahead that sed -E does not have.
redacted() {
  "$PYTHON" -c 'import sys; from flip_reward.judge.urls import redact_url; sys.stdout.write(redact_url(sys.stdin.read()))' \
    <<<"$*"
}

load_preset() {
  local file=$1 line key value number=0
  while IFS= read -r line || [[ -n $line ]]; do
    number=$((number + 1))
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "$file:$number: expected KEY=value, got: $line"
    key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    if [[ -z ${!key+set} ]]; then
      printf -v "$key" '%s' "$value"
      export "${key?}"
    fi
  done <"$file"
}

preset_file() {
  local prefix=$1 name=$2 repo file available=""
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  if [[ -f $name ]]; then echo "$name" && return 0; fi
  [[ -f $repo/configs/${prefix}_$name.env ]] && echo "$repo/configs/${prefix}_$name.env" && return 0
  for file in "$repo"/configs/"${prefix}"_*.env; do file=${file##*/"${prefix}"_} && available+="${file%.env} "; done
  die "no preset '$name' (configs/${prefix}_$name.env); available: $available"
}

# shellcheck disable=SC2034  # judge_cmd is this function's output
judge_command() {
  local model=$1 host=$2 port=$3 run_dir=$4 timeout=$5 repo
  shift 5
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  judge_cmd=(bash "$repo/scripts/serve_judge.sh" "${model#hosted_vllm/}" --host "$host" --port "$port"
    --pid-file "$run_dir/judge.pid" --log-file "$run_dir/judge.log" --timeout "$timeout" -- "$@")
}

start_run_judge() {
  judge_command "$@"
  mkdir -p "$4"
  "${judge_cmd[@]}"
}

stop_run_judge() {
  [[ -f $1/judge.pid ]] || return 0
  bash "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/serve_judge.sh" --stop "$1/judge.pid"
}
