#!/usr/bin/env bash
# The local backend of scripts/train/grpo_flip.sh and grpo_llmjudge.sh: GRPO on this machine with TRL, through
# `flip-reward train` (CPU when there is no CUDA GPU, else one GPU), for machines without open-instruct.
#
#   bash scripts/train/local_backend.sh [--dry-run] [FLIP_REWARD_TRAIN_ARGS...]   (exec'd by grpo_common.sh)
#   bash scripts/train/local_backend.sh --detect      prints the backend BACKEND=auto picks: "open-instruct" when
#                                                     open_instruct is importable and a CUDA GPU is visible, else
#                                                     "local"; a second line on stderr says why
#
# How the scripts' environment maps onto `flip-reward train`:
#   GRPO_VERIFIER       general-flip -> --reward flip; general-quality -> --reward pointwise (the LLM-judge baseline)
#   LOCAL_PRESET        configs/local_$LOCAL_PRESET.env (or a path); default 1gpu when a CUDA GPU is visible, else
#                       tiny (tiny random policy and judge built locally, bundled sample data; no download)
#   EXP_NAME            default ${GRPO_DEFAULT_EXP_NAME}_local;  OUTPUT_DIR  default output/$EXP_NAME
#   WITH_TRACKING=1     REPORT_TO=wandb (TRL logs to Weights & Biases; WANDB_PROJECT as usual)
#   MODEL_NAME_OR_PATH, DATASETS ("NAME AMOUNT ...", open-instruct's mixer syntax), DATASET_SPLITS, JUDGE_MODEL,
#   JUDGE_BASE_URL (unset: the judge is started and stopped by the trainer; several URLs: the first is used), SEED,
#   LEARNING_RATE, BETA, TEMPERATURE, SAMPLES_PER_PROMPT, PROMPTS_PER_STEP, MAX_PROMPT_LENGTH, RESPONSE_LENGTH,
#   TOTAL_EPISODES (steps = episodes / completions per step), JUDGE_MAX_TOKENS, JUDGE_MAX_CONTEXT, JUDGE_TIMEOUT,
#   JUDGE_TEMPERATURE, JUDGE_SERVER_ARGS, JUDGE_PORT, JUDGE_START_TIMEOUT, JUDGE_SERVER and the other variables of
#   `flip-reward train --help` are read from the environment by the trainer itself (same names).
#   Not used: GRPO_DEFAULT_DATASETS (DATASETS or the preset decide), PRESET (open-instruct's presets), and the
#   open-instruct-only knobs (NUM_GPUS, JUDGE_GPUS, VLLM_*, DEEPSPEED_*, CHAT_TEMPLATE, LOCAL_EVALS, ...).
# Arguments go to `flip-reward train` after the ones made here (later flags win); --dry-run prints the plan and
# checks the data without training. Arguments written for grpo_fast.py (underscores) are mapped onto their
# `flip-reward train` equivalents, said in one line (flip_reward/training/grpo_args.py); one without an equivalent
# stops the script with one line naming it. Environment: PYTHON (default the active virtualenv's python, else
# python3).
set -euo pipefail

PYTHON=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
PYTHON=${PYTHON:-python3}

log() { printf 'grpo (local): %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
has_gpu() { nvidia-smi -L 2>/dev/null | grep -q '^GPU'; }

open_instruct_importable() {
  "$PYTHON" - <<'EOF' 2>/dev/null
import importlib.util, os, sys
if os.environ.get("OPEN_INSTRUCT_DIR"):
    sys.path.insert(0, os.environ["OPEN_INSTRUCT_DIR"])
sys.exit(0 if importlib.util.find_spec("open_instruct") else 1)
EOF
}

# Prints the backend for BACKEND=auto on stdout and one line saying why on stderr.
detect() {
  local local_why=""
  if ! has_gpu; then
    local_why="no CUDA GPU visible (nvidia-smi)"
  elif ! open_instruct_importable; then
    local_why="open_instruct is not importable (scripts/setup_open_instruct.sh installs it)"
  fi
  if [[ -n $local_why ]]; then
    echo local
    printf 'grpo: backend local (TRL GRPO on this machine): %s; BACKEND=open-instruct forces grpo_fast.py\n' \
      "$local_why" >&2
  else
    echo open-instruct
    printf 'grpo: backend open-instruct (grpo_fast.py): CUDA GPU and open_instruct found; BACKEND=local runs TRL\n' >&2
  fi
}

case ${1:-} in
  --detect) detect; exit 0 ;;
  -h | --help) usage; exit 0 ;;
esac

case ${GRPO_VERIFIER:-general-flip} in
  general-flip) reward=flip ;;
  general-quality) reward=pointwise ;;
  *) die "GRPO_VERIFIER '$GRPO_VERIFIER' has no local reward (general-flip or general-quality)" ;;
esac
if [[ -z ${LOCAL_PRESET:-} ]]; then
  if has_gpu; then LOCAL_PRESET=1gpu; else LOCAL_PRESET=tiny; fi
fi
: "${EXP_NAME:=${GRPO_DEFAULT_EXP_NAME:-grpo_$reward}_local}"
: "${OUTPUT_DIR:=output/$EXP_NAME}"
if [[ -z ${REPORT_TO:-} && ${WITH_TRACKING:-0} =~ ^(1|true|yes|on)$ ]]; then export REPORT_TO=wandb; fi
export LITELLM_LOCAL_MODEL_COST_MAP=True

translated=$(mktemp)
trap 'rm -f "$translated"' EXIT
"$PYTHON" -m flip_reward.training.grpo_args "$@" >"$translated" || exit 2
mapfile -d '' -t arguments <"$translated"
command=("$PYTHON" -m flip_reward.cli train --reward "$reward" --preset "$LOCAL_PRESET" --exp-name "$EXP_NAME"
  --output-dir "$OUTPUT_DIR" ${arguments[@]+"${arguments[@]}"})
log "preset $LOCAL_PRESET, reward $reward: $(printf '%q ' "${command[@]}")"
rm -f "$translated"
trap - EXIT
exec "${command[@]}"
