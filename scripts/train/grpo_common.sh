#!/usr/bin/env bash
# Shared body of scripts/train/grpo_flip.sh and scripts/train/grpo_llmjudge.sh: GRPO with upstream open-instruct's
# grpo_fast.py (run unchanged through flip_reward.integrations.open_instruct.launch) and rewards from a judge LLM.
# The two scripts differ only in the default dataset mix and hence the verifier (general-flip / general-quality).
#
#   scripts/train/grpo_flip.sh [--dry-run] [GRPO_FAST_ARGS...]
#
# Every GRPO_FAST_ARG is passed to grpo_fast.py after the script's own flags (later flags win). --dry-run prints
# the resolved judge and trainer commands, checks local datasets (flip-reward data check), the judge (when
# JUDGE_BASE_URL is set) and the flags (against an open-instruct checkout when there is one), and exits; it needs
# neither GPUs nor open-instruct.
#
# When JUDGE_BASE_URL is unset the judge is started here (scripts/serve_judge.sh: vllm serve on JUDGE_GPUS;
# JUDGE_REPLICAS=N: N servers splitting JUDGE_GPUS behind vllm-router), the trainer starts once it is healthy, and
# the judge is stopped when the script ends: on success, on failure, on Ctrl-C or TERM (the trainer gets SIGINT
# first, TERM and KILL after grace periods). When JUDGE_BASE_URL lists several judges, vllm-router is started in
# front of them the same way (scripts/serve_judge.sh --route). Either way the trainer sees one URL, the router's.
#
# Backend: BACKEND=open-instruct (upstream grpo_fast.py, CUDA GPUs), local (TRL GRPO on this machine, through
# scripts/train/local_backend.sh and `flip-reward train`), or auto (default: open-instruct when it is importable and
# CUDA GPUs are present, else local; the choice is announced in one line).
#
# Presets: PRESET=1node (default), 1gpu or multinode loads configs/grpo_$PRESET.env (or PRESET=path/to/file.env).
# Precedence: environment > preset > the defaults below. Knobs (environment variables):
#   MODEL_NAME_OR_PATH  policy (allenai/Olmo-3-7B-Think-DPO)     CHAT_TEMPLATE  open-instruct chat template (olmo_thinker)
#   DATASETS            mix for --dataset_mixer_list: "NAME AMOUNT [NAME AMOUNT...]", names are hub datasets or
#                       local .jsonl/.parquet files in the RLVR schema     DATASET_SPLITS (train)
#   LOCAL_EVALS         eval mix, "NAME COUNT ..." or "none"; unset: LOCAL_EVAL_COUNT (16) prompts of the first
#                       dataset, held out of training when it is a local file   LOCAL_EVAL_SPLITS (train)
#   EXP_NAME, OUTPUT_DIR (output/$EXP_NAME), SEED (1), WITH_TRACKING (0; 1 adds --with_tracking), WANDB_PROJECT
#   JUDGE_MODEL         litellm model string (hosted_vllm/Qwen/Qwen3-4B)
#   JUDGE_BASE_URL      an already running judge; several, comma-separated: vllm-router on JUDGE_HOST:JUDGE_PORT in
#                       front of them (both verifiers use every one); unset: start the judge here
#   JUDGE_REPLICAS (1; N: N judge servers on JUDGE_PORT+1.. behind vllm-router on JUDGE_PORT, JUDGE_GPUS split
#   evenly), JUDGE_ROUTER_POLICY (power_of_two; vllm-router's --policy), JUDGE_ROUTER_ARGS (more vllm-router
#   arguments; "--request-timeout-secs $JUDGE_TIMEOUT")
#   JUDGE_MAX_TOKENS (2048), JUDGE_MAX_CONTEXT (25000), JUDGE_TIMEOUT (3600), JUDGE_TEMPERATURE (1.0)
#   JUDGE_GPUS (7), JUDGE_PORT (8001), JUDGE_HOST (127.0.0.1; 0.0.0.0 serves other nodes, advertised as
#   JUDGE_ADVERTISE_HOST or this host's first address; with a router, the router listens there, replicas on
#   127.0.0.1), JUDGE_SERVER (vllm), JUDGE_SERVER_ARGS
#   ("--max-model-len $JUDGE_MAX_CONTEXT"), JUDGE_START_TIMEOUT (1800 s), JUDGE_SHARES_GPUS (0; 1: trainer uses
#   the judge's GPUs too)
#   NUM_NODES (1), NUM_GPUS (8 per node), TRAIN_GPUS (CUDA_VISIBLE_DEVICES of a single-node trainer: the node's GPUs
#   minus the judge's), NUM_LEARNERS_PER_NODE and VLLM_NUM_ENGINES (half of the training GPUs each, learners
#   rounded up), VLLM_TENSOR_PARALLEL_SIZE (1), VLLM_GPU_MEMORY_UTILIZATION (0.9), VLLM_ENFORCE_EAGER (0),
#   VLLM_SYNC_BACKEND (nccl), SINGLE_GPU_MODE (0), DEEPSPEED_STAGE (3), DEEPSPEED_ZPG (learners on a node),
#   GRADIENT_CHECKPOINTING (1)
#   MAX_PROMPT_LENGTH (2048), RESPONSE_LENGTH (16384), PACK_LENGTH (their sum), PROMPTS_PER_STEP (24),
#   SAMPLES_PER_PROMPT (8), LEARNING_RATE (1e-6), LR_SCHEDULER (constant), BETA (0.0), KL_ESTIMATOR (2),
#   CLIP_HIGHER (0.272), TRUNCATED_IS_CAP (2.0), ASYNC_STEPS (1), TEMPERATURE (1.0), STOP_STRINGS (</answer>),
#   TOTAL_EPISODES (96000), LOCAL_EVAL_EVERY (25), SAVE_FREQ (50), BACKEND_TIMEOUT (grpo_fast's, minutes: the judge
#   timeout + 60, at least 120; must exceed JUDGE_TIMEOUT)
#   PYTHON (interpreter; the active virtualenv's, else python3), LAUNCHER (the trainer command; default
#   "$PYTHON -m flip_reward.integrations.open_instruct.launch"), RAY_ADDRESS (an existing Ray cluster)
#   FLIP_* variables configure the FLIP verifier (docs/open-instruct.md); FLIP_THINK_PREFILLED
#   defaults to 1 for chat templates whose generation prompt opens <think> (olmo_thinker, tulu_thinker, ...).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO
readonly TRAINER_INT_GRACE_S=${TRAINER_INT_GRACE_S:-30} TRAINER_TERM_GRACE_S=${TRAINER_TERM_GRACE_S:-15}

log() { printf 'grpo: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/lib/train_common.sh
source "$REPO/scripts/lib/train_common.sh"

parse_run_args "$@"
[[ -n ${GRPO_VERIFIER:-} && -n ${GRPO_DEFAULT_DATASETS:-} ]] ||
  die "run scripts/train/grpo_flip.sh or scripts/train/grpo_llmjudge.sh, not grpo_common.sh directly"

# --- backend: upstream open-instruct's grpo_fast.py (CUDA GPUs) or local (TRL GRPO on this machine) ---------------
BACKEND=${BACKEND:-auto}
case $BACKEND in
  auto) BACKEND=$(bash "$REPO/scripts/train/local_backend.sh" --detect) ;; # says why, in one line on stderr
  local | open-instruct) log "backend $BACKEND (BACKEND=$BACKEND)" ;;
  *) die "BACKEND must be auto, local or open-instruct, got '$BACKEND'" ;;
esac
if [[ $BACKEND == local ]]; then exec bash "$REPO/scripts/train/local_backend.sh" "$@"; fi

PRESET=${PRESET:-1node}
preset_file=$(preset_file grpo "$PRESET") || exit 1
load_preset "$preset_file"

# --- knobs ------------------------------------------------------------------------------------------------------
: "${MODEL_NAME_OR_PATH:=allenai/Olmo-3-7B-Think-DPO}" "${CHAT_TEMPLATE=olmo_thinker}"
: "${DATASETS:=$GRPO_DEFAULT_DATASETS}" "${DATASET_SPLITS:=train}"
: "${LOCAL_EVALS:=}" "${LOCAL_EVAL_COUNT:=16}" "${LOCAL_EVAL_SPLITS:=train}"
: "${EXP_NAME:=${GRPO_DEFAULT_EXP_NAME:-grpo}}" "${SEED:=1}" "${WITH_TRACKING:=0}" "${WANDB_PROJECT:=flip-reward}"
: "${OUTPUT_DIR:=output/$EXP_NAME}"
: "${JUDGE_MODEL:=hosted_vllm/Qwen/Qwen3-4B}" "${JUDGE_BASE_URL:=}"
: "${JUDGE_MAX_TOKENS:=2048}" "${JUDGE_MAX_CONTEXT:=25000}" "${JUDGE_TIMEOUT:=3600}" "${JUDGE_TEMPERATURE:=1.0}"
: "${JUDGE_GPUS:=7}" "${JUDGE_PORT:=8001}" "${JUDGE_HOST:=127.0.0.1}" "${JUDGE_SERVER:=vllm}"
: "${JUDGE_SERVER_ARGS=--max-model-len $JUDGE_MAX_CONTEXT}" "${JUDGE_START_TIMEOUT:=1800}" "${JUDGE_SHARES_GPUS:=0}"
: "${JUDGE_REPLICAS:=1}" "${JUDGE_ROUTER_POLICY:=power_of_two}" "${JUDGE_ROUTER_ARGS=--request-timeout-secs $JUDGE_TIMEOUT}"
: "${NUM_NODES:=1}" "${NUM_GPUS:=8}" "${VLLM_TENSOR_PARALLEL_SIZE:=1}" "${VLLM_GPU_MEMORY_UTILIZATION:=0.9}"
: "${VLLM_ENFORCE_EAGER:=0}" "${VLLM_SYNC_BACKEND:=nccl}" "${SINGLE_GPU_MODE:=0}" "${DEEPSPEED_STAGE:=3}"
: "${GRADIENT_CHECKPOINTING:=1}"
: "${MAX_PROMPT_LENGTH:=2048}" "${RESPONSE_LENGTH:=16384}" "${PACK_LENGTH:=}" # default: their sum (below)
: "${PROMPTS_PER_STEP:=24}" "${SAMPLES_PER_PROMPT:=8}" "${LEARNING_RATE:=1e-6}" "${LR_SCHEDULER:=constant}"
: "${BETA:=0.0}" "${KL_ESTIMATOR:=2}" "${CLIP_HIGHER:=0.272}" "${TRUNCATED_IS_CAP:=2.0}" "${ASYNC_STEPS:=1}"
: "${TEMPERATURE:=1.0}" "${STOP_STRINGS=</answer>}" "${TOTAL_EPISODES:=96000}" "${LOCAL_EVAL_EVERY:=25}"
: "${SAVE_FREQ:=50}" "${RAY_ADDRESS:=}" "${BACKEND_TIMEOUT:=}"
PYTHON=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
PYTHON=${PYTHON:-python3}
default_launcher=0
if [[ -z ${LAUNCHER:-} ]]; then LAUNCHER="$PYTHON -m flip_reward.integrations.open_instruct.launch"; default_launcher=1; fi
if [[ -z ${FLIP_THINK_PREFILLED:-} ]]; then
  case $CHAT_TEMPLATE in
    olmo_thinker | olmo_thinker_remove_intermediate_thinking | tulu_thinker | tulu_thinker_r1_style | \
      r1_simple_chat_postpend_think*) FLIP_THINK_PREFILLED=1 ;;
    *) FLIP_THINK_PREFILLED=0 ;;
  esac
fi
export FLIP_THINK_PREFILLED LITELLM_LOCAL_MODEL_COST_MAP=True JUDGE_ROUTER_POLICY JUDGE_ROUTER_ARGS

# --- validation and derived values -----------------------------------------------------------------------------
for name in NUM_NODES NUM_GPUS JUDGE_PORT MAX_PROMPT_LENGTH RESPONSE_LENGTH PROMPTS_PER_STEP SAMPLES_PER_PROMPT \
  TOTAL_EPISODES DEEPSPEED_STAGE VLLM_TENSOR_PARALLEL_SIZE JUDGE_START_TIMEOUT JUDGE_REPLICAS JUDGE_TIMEOUT \
  LOCAL_EVAL_COUNT; do
  [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
done
# grpo_fast's --backend_timeout (minutes) must outlast one judge request (JUDGE_TIMEOUT, seconds), or a slow judge
# times the trainer out; default: the judge timeout plus an hour, at least upstream's 120.
if [[ -z $BACKEND_TIMEOUT ]]; then
  BACKEND_TIMEOUT=$(((JUDGE_TIMEOUT + 59) / 60 + 60))
  ((BACKEND_TIMEOUT >= 120)) || BACKEND_TIMEOUT=120
fi
[[ $BACKEND_TIMEOUT =~ ^[0-9]+$ ]] || die "BACKEND_TIMEOUT must be a whole number of minutes, got '$BACKEND_TIMEOUT'"
((BACKEND_TIMEOUT * 60 > JUDGE_TIMEOUT)) ||
  die "BACKEND_TIMEOUT ($BACKEND_TIMEOUT min) must be above JUDGE_TIMEOUT ($JUDGE_TIMEOUT s)"
PACK_LENGTH=${PACK_LENGTH:-$((MAX_PROMPT_LENGTH + RESPONSE_LENGTH))}
[[ $PACK_LENGTH =~ ^[0-9]+$ ]] || die "PACK_LENGTH must be a whole number, got '$PACK_LENGTH'"
((PACK_LENGTH >= MAX_PROMPT_LENGTH + RESPONSE_LENGTH)) ||
  die "PACK_LENGTH ($PACK_LENGTH) must be >= MAX_PROMPT_LENGTH + RESPONSE_LENGTH ($((MAX_PROMPT_LENGTH + RESPONSE_LENGTH)))"

read -r -a datasets <<<"$DATASETS"
((${#datasets[@]} >= 2 && ${#datasets[@]} % 2 == 0)) || die "DATASETS must be 'NAME AMOUNT [NAME AMOUNT ...]', got '$DATASETS'"
for ((i = 1; i < ${#datasets[@]}; i += 2)); do
  [[ ${datasets[i]} =~ ^[0-9]*\.?[0-9]+$ ]] || die "DATASETS: '${datasets[i]}' after '${datasets[i - 1]}' is not an amount"
done
checked_datasets=$DATASETS # the mix as the user gave it (the data checks read it; a held-out split is made of it)
evals=() eval_note=""
if [[ -n $LOCAL_EVALS ]]; then
  if [[ ${LOCAL_EVALS,,} != none ]]; then
    read -r -a evals <<<"$LOCAL_EVALS"
    ((${#evals[@]} % 2 == 0)) || die "LOCAL_EVALS must be 'NAME COUNT [NAME COUNT ...]' or 'none', got '$LOCAL_EVALS'"
    for ((i = 0; i < ${#evals[@]}; i += 2)); do
      for ((j = 0; j < ${#datasets[@]}; j += 2)); do
        [[ ${evals[i]} == "${datasets[j]}" ]] &&
          eval_note="warning: LOCAL_EVALS evaluates on ${evals[i]}, which this run also trains on (DATASETS)"
      done
    done
  fi
elif [[ -e ${datasets[0]} || ${datasets[0]} == *.jsonl || ${datasets[0]} == *.parquet ]]; then
  # A local file: hold LOCAL_EVAL_COUNT of its rows (at most a tenth) out of training for the in-loop eval.
  holdout_args=(holdout "${datasets[0]}" --count "$LOCAL_EVAL_COUNT" --output-dir "$OUTPUT_DIR/data")
  ((dry_run)) && holdout_args+=(--dry-run)
  held=$("$PYTHON" -m flip_reward.integrations.open_instruct.preflight "${holdout_args[@]}") ||
    die "cannot hold eval prompts out of ${datasets[0]} (see above); set LOCAL_EVALS='NAME COUNT' or LOCAL_EVALS=none"
  read -r train_file eval_file held_count <<<"$held"
  eval_note="eval: $held_count prompts of ${datasets[0]} held out of training ($eval_file; the rest: $train_file)"
  datasets[0]=$train_file
  evals=("$eval_file" "$held_count")
else
  evals=("${datasets[0]}" "$LOCAL_EVAL_COUNT")
  eval_note="warning: the in-loop eval takes $LOCAL_EVAL_COUNT prompts of ${datasets[0]}, which this run also trains on \
(a hub dataset is not split here): set LOCAL_EVALS='EVAL_DATASET COUNT' for a separate eval set, or LOCAL_EVALS=none"
fi
read -r -a judge_server_args <<<"$JUDGE_SERVER_ARGS"
read -r -a launcher <<<"$LAUNCHER"

start_judge=0
[[ -z $JUDGE_BASE_URL ]] && start_judge=1
if ((start_judge)); then
  [[ $JUDGE_MODEL == hosted_vllm/* ]] ||
    die "JUDGE_MODEL '$JUDGE_MODEL' is not hosted_vllm/...: set JUDGE_BASE_URL, or use a hosted_vllm/ model to serve"
  [[ $JUDGE_GPUS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "JUDGE_GPUS must be GPU ids like 7 or 6,7, got '$JUDGE_GPUS'"
  IFS=, read -r -a judge_gpus <<<"$JUDGE_GPUS"
  ((JUDGE_REPLICAS >= 1 && ${#judge_gpus[@]} % JUDGE_REPLICAS == 0)) ||
    die "JUDGE_GPUS ($JUDGE_GPUS) does not split evenly over JUDGE_REPLICAS=$JUDGE_REPLICAS judge servers"
elif ((JUDGE_REPLICAS != 1)); then
  die "JUDGE_REPLICAS is for judges started here; for running judges list their URLs in JUDGE_BASE_URL"
fi

# The trainer's GPUs on a single node started here (an existing Ray cluster brings its own resources).
train_gpus=()
if ((NUM_NODES == 1)) && [[ -z $RAY_ADDRESS ]]; then
  select_train_gpus "$start_judge"
  ((${#train_gpus[@]} > 0)) || die "no GPU left for training (NUM_GPUS=$NUM_GPUS, JUDGE_GPUS=$JUDGE_GPUS)"
  n_train=${#train_gpus[@]}
  if is_true "$SINGLE_GPU_MODE"; then
    : "${NUM_LEARNERS_PER_NODE:=1}" "${VLLM_NUM_ENGINES:=1}"
  else
    ((n_train >= 2)) || die "$n_train training GPU(s): GRPO needs one for learners and one for vLLM (or PRESET=1gpu)"
    : "${NUM_LEARNERS_PER_NODE:=$(((n_train + 1) / 2))}"
    : "${VLLM_NUM_ENGINES:=$(((n_train - ${NUM_LEARNERS_PER_NODE%% *}) / VLLM_TENSOR_PARALLEL_SIZE))}"
  fi
fi
[[ -n ${NUM_LEARNERS_PER_NODE:-} && -n ${VLLM_NUM_ENGINES:-} ]] ||
  die "set NUM_LEARNERS_PER_NODE and VLLM_NUM_ENGINES for a multi-node run (PRESET=multinode sets them)"
read -r -a learners <<<"$NUM_LEARNERS_PER_NODE"
n_learners=0
for count in "${learners[@]}"; do
  [[ $count =~ ^[0-9]+$ ]] || die "NUM_LEARNERS_PER_NODE must be whole numbers (one per node), got '$NUM_LEARNERS_PER_NODE'"
  n_learners=$((n_learners + count))
done
if [[ ! $VLLM_NUM_ENGINES =~ ^[1-9][0-9]*$ ]]; then die "VLLM_NUM_ENGINES must be >= 1, got '$VLLM_NUM_ENGINES'"; fi
if ((${#train_gpus[@]} > 0)) && ! is_true "$SINGLE_GPU_MODE"; then
  needed=$((n_learners + VLLM_NUM_ENGINES * VLLM_TENSOR_PARALLEL_SIZE))
  ((needed <= ${#train_gpus[@]})) || die "$n_learners learner(s) + $VLLM_NUM_ENGINES vLLM engine(s) x TP $VLLM_TENSOR_PARALLEL_SIZE need $needed GPUs; ${#train_gpus[@]} left for training"
fi
: "${DEEPSPEED_ZPG:=${learners[0]}}"
load_ref_policy=true
[[ $BETA =~ ^0*\.?0*$ ]] && load_ref_policy=false # beta 0: no KL term, so no reference policy in memory

# Judge endpoints: both verifiers read one HOSTED_VLLM_API_BASE, so several judges get a router in front.
judge_urls=()
if [[ -n $JUDGE_BASE_URL ]]; then
  IFS=, read -r -a judge_urls <<<"${JUDGE_BASE_URL// /}"
fi
run_dir=$OUTPUT_DIR/judge
routed=0
if ((start_judge)); then
  pid_file=$run_dir/judge.pid
  judge_cmd=(bash "$REPO/scripts/serve_judge.sh" "${JUDGE_MODEL#hosted_vllm/}" --replicas "$JUDGE_REPLICAS"
    --host "$JUDGE_HOST" --port "$JUDGE_PORT" --pid-file "$pid_file" --log-file "$run_dir/judge.log"
    --timeout "$JUDGE_START_TIMEOUT" -- "${judge_server_args[@]}")
  ((JUDGE_REPLICAS > 1)) && routed=1
elif ((${#judge_urls[@]} > 1)); then
  for i in "${!judge_urls[@]}"; do # the base URLs as the checks want them (the router takes either form)
    judge_urls[i]=${judge_urls[i]%/}
    [[ ${judge_urls[i]} == */v1 ]] || judge_urls[i]+=/v1
  done
  pid_file=$run_dir/router.pid
  judge_cmd=(bash "$REPO/scripts/serve_judge.sh" --route "${judge_urls[@]}" --host "$JUDGE_HOST" --port "$JUDGE_PORT"
    --pid-file "$pid_file" --log-file "$run_dir/router.log" --timeout "$JUDGE_START_TIMEOUT")
  routed=1
fi

if ((start_judge || routed)) && ((NUM_NODES > 1)) && [[ $JUDGE_HOST != 0.0.0.0 && $JUDGE_HOST != :: ]]; then
  die "JUDGE_HOST=$JUDGE_HOST is served on this node only, but the vLLM actors of a multi-node run reach the judge over \
the network: set JUDGE_HOST=0.0.0.0 (advertised as JUDGE_ADVERTISE_HOST or this host's first address)"
fi

# --- the grpo_fast.py command ------------------------------------------------------------------------------------
grpo_args=(
  --exp_name "$EXP_NAME" --output_dir "$OUTPUT_DIR" --seed "$SEED"
  --model_name_or_path "$MODEL_NAME_OR_PATH"
)
[[ -n $CHAT_TEMPLATE ]] && grpo_args+=(--chat_template_name "$CHAT_TEMPLATE")
grpo_args+=(--dataset_mixer_list "${datasets[@]}" --dataset_mixer_list_splits "$DATASET_SPLITS")
if ((${#evals[@]})); then
  grpo_args+=(--dataset_mixer_eval_list "${evals[@]}" --dataset_mixer_eval_list_splits "$LOCAL_EVAL_SPLITS"
    --local_eval_every "$LOCAL_EVAL_EVERY")
else
  grpo_args+=(--local_eval_every -1)
fi
grpo_args+=(
  --ground_truths_key ground_truth --sft_messages_key messages
  --max_prompt_token_length "$MAX_PROMPT_LENGTH" --response_length "$RESPONSE_LENGTH" --pack_length "$PACK_LENGTH"
  --num_unique_prompts_rollout "$PROMPTS_PER_STEP" --num_samples_per_prompt_rollout "$SAMPLES_PER_PROMPT"
  --num_mini_batches 1 --num_epochs 1 --per_device_train_batch_size 1
  --learning_rate "$LEARNING_RATE" --lr_scheduler_type "$LR_SCHEDULER" --beta "$BETA"
  --load_ref_policy "$load_ref_policy" --kl_estimator "$KL_ESTIMATOR" --clip_higher "$CLIP_HIGHER"
  --rho_clamp_upper_bound "$TRUNCATED_IS_CAP" --async_steps "$ASYNC_STEPS" --temperature "$TEMPERATURE"
  --total_episodes "$TOTAL_EPISODES" --save_freq "$SAVE_FREQ"
  --apply_verifiable_reward true --non_stop_penalty false
  --mask_truncated_completions true --advantage_normalization_type standard --inflight_updates false
  --fused_optimizer false --backend_timeout "$BACKEND_TIMEOUT"
  --deepspeed_stage "$DEEPSPEED_STAGE" --deepspeed_zpg "$DEEPSPEED_ZPG" --num_learners_per_node "${learners[@]}"
  --vllm_num_engines "$VLLM_NUM_ENGINES" --vllm_tensor_parallel_size "$VLLM_TENSOR_PARALLEL_SIZE"
  --vllm_gpu_memory_utilization "$VLLM_GPU_MEMORY_UTILIZATION" --vllm_sync_backend "$VLLM_SYNC_BACKEND"
  --vllm_enable_prefix_caching
  --llm_judge_model "$JUDGE_MODEL" --llm_judge_max_tokens "$JUDGE_MAX_TOKENS"
  --llm_judge_max_context_length "$JUDGE_MAX_CONTEXT" --llm_judge_timeout "$JUDGE_TIMEOUT"
  --llm_judge_temperature "$JUDGE_TEMPERATURE"
  --push_to_hub false --try_auto_save_to_beaker false
)
[[ -n $STOP_STRINGS ]] && grpo_args+=(--stop_strings "$STOP_STRINGS")
is_true "$VLLM_ENFORCE_EAGER" && grpo_args+=(--vllm_enforce_eager)
is_true "$SINGLE_GPU_MODE" && grpo_args+=(--single_gpu_mode)
is_true "$GRADIENT_CHECKPOINTING" && grpo_args+=(--gradient_checkpointing)
is_true "$WITH_TRACKING" && grpo_args+=(--with_tracking --wandb_project "$WANDB_PROJECT")
grpo_args+=(${passthrough[@]+"${passthrough[@]}"})

# The trainer's environment (printed by --dry-run, applied before launch); FLIP_* come from the environment.
trainer_environment() {
  local name
  trainer_env=()
  ((${#train_gpus[@]})) && trainer_env+=(CUDA_VISIBLE_DEVICES="$(IFS=,; echo "${train_gpus[*]}")")
  [[ -n $RAY_ADDRESS ]] && trainer_env+=(RAY_ADDRESS="$RAY_ADDRESS")
  trainer_env+=(HOSTED_VLLM_API_BASE="$HOSTED_VLLM_API_BASE")
  for name in $(compgen -e | grep '^FLIP_' || true); do trainer_env+=("$name=${!name}"); done
}

advertised_host() {
  case $JUDGE_HOST in
    0.0.0.0 | ::) echo "${JUDGE_ADVERTISE_HOST:-$(hostname -I 2>/dev/null | awk '{print $1}')}" ;;
    *) echo "$JUDGE_HOST" ;;
  esac
}

# The URL the trainer reaches the judge (or its router) at when it is served here: on JUDGE_HOST, or, for
# 0.0.0.0, at the address the other nodes reach this one by.
served_judge_url() { echo "http://$(advertised_host):$JUDGE_PORT/v1"; }

# Exports the one judge URL both verifiers read (HOSTED_VLLM_API_BASE: litellm, upstream's LLM judge, FLIP).
export_judge_url() {
  export HOSTED_VLLM_API_BASE=$1
  trainer_environment
}

preflight() { "$PYTHON" -m flip_reward.integrations.open_instruct.preflight "$@"; }

# Options of the preflight checks: the data (the mix as the user gave it, see checked_datasets; a held-out eval file
# is made of it) and the placement (for the CPU check), as NUL-separated words.
data_options() {
  local -a options=(--verifier "$GRPO_VERIFIER" --datasets "$checked_datasets" --splits "$DATASET_SPLITS")
  [[ -n $LOCAL_EVALS && ${LOCAL_EVALS,,} != none ]] && options+=(--evals "$LOCAL_EVALS" --eval-splits "$LOCAL_EVAL_SPLITS")
  printf '%s\0' "${options[@]}"
}
placement_options() {
  local -a options=(--policy "$MODEL_NAME_OR_PATH" --learners "${learners[@]}" --engines "$VLLM_NUM_ENGINES"
    --tp "$VLLM_TENSOR_PARALLEL_SIZE")
  is_true "$SINGLE_GPU_MODE" && options+=(--single-gpu)
  printf '%s\0' "${options[@]}"
}

dry_run_report() {
  local name
  local -a checks=(--model "$JUDGE_MODEL")
  echo "grpo: preset $PRESET ($preset_file); verifier $GRPO_VERIFIER; $n_learners learner(s), $VLLM_NUM_ENGINES vLLM engine(s)"
  if ((start_judge)); then
    echo "judge: JUDGE_SERVER=$JUDGE_SERVER JUDGE_GPUS=$JUDGE_GPUS $(redacted "$(quoted "${judge_cmd[@]}")")"
  else
    echo "judge: external at $(redacted "$JUDGE_BASE_URL")"
    for name in "${judge_urls[@]}"; do checks+=(--judge "$name"); done
  fi
  if ((routed)); then
    JUDGE_SERVER=$JUDGE_SERVER JUDGE_GPUS=$JUDGE_GPUS PYTHON=$PYTHON "${judge_cmd[@]:0:2}" --dry-run "${judge_cmd[@]:2}" |
      grep '^router: ' ||
      die "no router command (see above)"
  fi
  if ((start_judge || routed)); then export_judge_url "$(served_judge_url)"; else export_judge_url "${judge_urls[0]}"; fi
  echo "trainer: $(redacted "$(quoted env "${trainer_env[@]}" "${launcher[@]}" "${grpo_args[@]}")")"
  [[ -n $eval_note ]] && echo "$eval_note"
  mapfile -d '' -t -O "${#checks[@]}" checks < <(data_options)
  mapfile -d '' -t -O "${#checks[@]}" checks < <(placement_options)
  ((start_judge)) && echo "judge: not checked (started by the script on a real run)"
  preflight dry-run "${checks[@]}" -- "${grpo_args[@]}"
}

if ((dry_run)); then
  dry_run_report && exit 0
  exit 1
fi

# --- a real run --------------------------------------------------------------------------------------------------
preflight settings >&2 || die "fix the FLIP_* variable above first"
if ((default_launcher)); then
  mapfile -d '' -t placement < <(placement_options)
  preflight env "${placement[@]}" >&2 ||
    die "this machine cannot run open-instruct's grpo_fast.py (see above); --dry-run shows the command"
fi
mapfile -d '' -t data_checks < <(data_options)
preflight data "${data_checks[@]}" >&2 || die "fix the datasets above first"
[[ -n $eval_note ]] && log "$eval_note"
mkdir -p "$run_dir"

trainer_pid="" judge_started=0

# shellcheck disable=SC2329  # the trap handlers below are invoked by traps only
# Stops the trainer's process group: SIGINT (clean shutdown), then TERM, then KILL after grace periods.
stop_trainer() {
  local signal grace
  for signal in INT TERM KILL; do
    kill -0 "$trainer_pid" 2>/dev/null || return 0
    log "sending SIG$signal to the trainer (process group $trainer_pid)"
    kill -"$signal" -- "-$trainer_pid" 2>/dev/null || true
    case $signal in INT) grace=$TRAINER_INT_GRACE_S ;; TERM) grace=$TRAINER_TERM_GRACE_S ;; *) grace=0 ;; esac
    for ((waited = 0; waited < grace * 5; waited++)); do
      kill -0 "$trainer_pid" 2>/dev/null || return 0
      sleep 0.2
    done
  done
}

# shellcheck disable=SC2329
cleanup() {
  local status=$?
  trap - EXIT
  trap '' INT TERM HUP # finish stopping the trainer and the judge
  if [[ -n $trainer_pid ]]; then stop_trainer; fi
  if ((judge_started)); then
    log "stopping the judge"
    bash "$REPO/scripts/serve_judge.sh" --stop "$pid_file" || log "warning: could not stop the judge ($pid_file)"
  fi
  exit "$status"
}

# shellcheck disable=SC2329
on_signal() {
  log "received SIG$1: stopping"
  trap - INT TERM HUP
  case $1 in INT) exit 130 ;; HUP) exit 129 ;; *) exit 143 ;; esac
}

trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

if ((!start_judge)); then
  preflight judge "${judge_urls[@]}" --model "$JUDGE_MODEL" >&2 || die "the judge is not usable (see above)"
fi
if ((start_judge || routed)); then
  if ((start_judge)); then
    log "starting the judge ${JUDGE_MODEL#hosted_vllm/} on GPU(s) $JUDGE_GPUS, $JUDGE_REPLICAS server(s) (log: $run_dir)"
  else
    log "starting vllm-router in front of $(redacted "${judge_urls[*]}") (log: $run_dir/router.log)"
  fi
  judge_started=1
  JUDGE_SERVER=$JUDGE_SERVER JUDGE_GPUS=$JUDGE_GPUS PYTHON=$PYTHON "${judge_cmd[@]}" >/dev/null ||
    die "the judge did not start (logs: $run_dir)"
  # The actors reach the judge at the advertised address, not at localhost: it must answer there, from here.
  preflight judge "$(served_judge_url)" --model "$JUDGE_MODEL" >&2 ||
    die "the judge runs but does not answer at $(served_judge_url), the address the trainer uses (JUDGE_HOST=$JUDGE_HOST; \
set JUDGE_ADVERTISE_HOST to an address of this node that the other nodes reach)"
  export_judge_url "$(served_judge_url)"
else
  export_judge_url "${judge_urls[0]}"
fi
log "judge: $(redacted "$HOSTED_VLLM_API_BASE")"
log "trainer: $(redacted "$(quoted env "${trainer_env[@]}" "${launcher[@]}" "${grpo_args[@]}")")"

# Job control gives the trainer its own process group with default signal handling, so SIGINT can be forwarded
# to it (and to the Ray processes it starts) while this script stays in charge of the judge.
set -m
env "${trainer_env[@]}" "${launcher[@]}" "${grpo_args[@]}" &
trainer_pid=$!
set +m
status=0
wait "$trainer_pid" || status=$?
trainer_pid=""
if ((status == 0)); then log "training finished"; else log "the trainer exited with status $status"; fi
exit "$status"
