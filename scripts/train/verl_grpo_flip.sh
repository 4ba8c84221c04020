#!/usr/bin/env bash
# GRPO with FLIP rewards in verl: `python -m verl.trainer.main_ppo algorithm.adv_estimator=grpo` with
# flip_reward.integrations.verl.compute_score as the custom reward function (the same FlipReward path as everywhere).
#
#   bash scripts/train/verl_grpo_flip.sh [--dry-run] [HYDRA_OVERRIDES...]
#   PRESET=1gpu DATASETS="data/sample_rlvr_flip.jsonl 1.0" bash scripts/train/verl_grpo_flip.sh --dry-run
#
# Every HYDRA_OVERRIDE (e.g. trainer.total_epochs=2) goes to verl after the script's own (later ones win).
# --dry-run prints the judge, data and trainer commands and exits; it needs neither GPUs nor verl.
#
# Data: each DATASETS entry ("NAME AMOUNT ...": a local .jsonl/.parquet file or a hub dataset, chat or RLVR rows) is
# converted with `flip-reward data convert --format verl` to OUTPUT_DIR/data/train_<i>.parquet (AMOUNT 1.0: every
# row, a whole number N: the first N); the first LOCAL_EVAL_COUNT rows of the first dataset become val.parquet.
# The judge is served as for scripts/train/grpo_flip.sh (scripts/serve_judge.sh on JUDGE_GPUS, stopped when the
# script ends) unless JUDGE_BASE_URL points at a running one.
#
# Presets: PRESET=1node (default) or 1gpu loads configs/verl_$PRESET.env (or PRESET=path/to/file.env).
# Precedence: environment > preset > the defaults below. Knobs (environment variables):
#   MODEL_NAME_OR_PATH (Qwen/Qwen3-4B), DATASETS (yikeee/rlvr_general_chat_flip 1.0), DATASET_SPLITS (train),
#   LOCAL_EVAL_COUNT (16), EXP_NAME (verl_grpo_flip), OUTPUT_DIR (output/$EXP_NAME), WITH_TRACKING (0; 1: wandb),
#   WANDB_PROJECT (flip-reward), SEED (1)
#   JUDGE_MODEL (hosted_vllm/Qwen/Qwen3-4B), JUDGE_BASE_URL (unset: start one), JUDGE_MAX_TOKENS (2048),
#   JUDGE_MAX_CONTEXT (25000), JUDGE_TIMEOUT (3600), JUDGE_TEMPERATURE (1.0), JUDGE_GPUS (7), JUDGE_PORT (8001),
#   JUDGE_HOST (127.0.0.1), JUDGE_SERVER (vllm), JUDGE_SERVER_ARGS ("--max-model-len $JUDGE_MAX_CONTEXT"),
#   JUDGE_START_TIMEOUT (1800 s), JUDGE_SHARES_GPUS (0; 1: verl uses the judge's GPUs too)
#   NUM_GPUS (8), TRAIN_GPUS (the GPUs minus the judge's), VLLM_TENSOR_PARALLEL_SIZE (1),
#   VLLM_GPU_MEMORY_UTILIZATION (0.6), MAX_PROMPT_LENGTH (2048), RESPONSE_LENGTH (8192), PROMPTS_PER_STEP (28),
#   SAMPLES_PER_PROMPT (8), LEARNING_RATE (1e-6), BETA (0.0: no KL loss), TEMPERATURE (1.0), TOTAL_EPOCHS (1),
#   SAVE_FREQ (50), TEST_FREQ (25), REWARD_WORKERS (8: verl's reward loop actors)
#   PYTHON (interpreter; the active virtualenv's, else python3). FLIP_* variables configure the reward
#   (docs/open-instruct.md#settings); verl's Ray workers inherit them.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO
log() { printf 'verl_grpo: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/lib/train_common.sh
source "$REPO/scripts/lib/train_common.sh"

parse_run_args "$@"

PRESET=${PRESET:-1node}
preset=$(preset_file verl "$PRESET") || exit 1
load_preset "$preset"
: "${MODEL_NAME_OR_PATH:=Qwen/Qwen3-4B}" "${DATASETS:=yikeee/rlvr_general_chat_flip 1.0}" "${DATASET_SPLITS:=train}"
: "${LOCAL_EVAL_COUNT:=16}" "${EXP_NAME:=verl_grpo_flip}" "${WITH_TRACKING:=0}" "${WANDB_PROJECT:=flip-reward}"
: "${SEED:=1}" "${OUTPUT_DIR:=output/$EXP_NAME}"
: "${JUDGE_MODEL:=hosted_vllm/Qwen/Qwen3-4B}" "${JUDGE_BASE_URL:=}"
: "${JUDGE_MAX_TOKENS:=2048}" "${JUDGE_MAX_CONTEXT:=25000}" "${JUDGE_TIMEOUT:=3600}" "${JUDGE_TEMPERATURE:=1.0}"
: "${JUDGE_GPUS:=7}" "${JUDGE_PORT:=8001}" "${JUDGE_HOST:=127.0.0.1}" "${JUDGE_SERVER:=vllm}"
: "${JUDGE_SERVER_ARGS=--max-model-len $JUDGE_MAX_CONTEXT}" "${JUDGE_START_TIMEOUT:=1800}" "${JUDGE_SHARES_GPUS:=0}"
: "${NUM_GPUS:=8}" "${VLLM_TENSOR_PARALLEL_SIZE:=1}" "${VLLM_GPU_MEMORY_UTILIZATION:=0.6}"
: "${MAX_PROMPT_LENGTH:=2048}" "${RESPONSE_LENGTH:=8192}" "${PROMPTS_PER_STEP:=28}" "${SAMPLES_PER_PROMPT:=8}"
: "${LEARNING_RATE:=1e-6}" "${BETA:=0.0}" "${TEMPERATURE:=1.0}" "${TOTAL_EPOCHS:=1}" "${SAVE_FREQ:=50}"
: "${TEST_FREQ:=25}" "${REWARD_WORKERS:=8}"
PYTHON=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
PYTHON=${PYTHON:-python3}
export LITELLM_LOCAL_MODEL_COST_MAP=True

for name in NUM_GPUS JUDGE_PORT MAX_PROMPT_LENGTH RESPONSE_LENGTH PROMPTS_PER_STEP SAMPLES_PER_PROMPT \
  LOCAL_EVAL_COUNT VLLM_TENSOR_PARALLEL_SIZE TOTAL_EPOCHS REWARD_WORKERS; do
  [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
done
read -r -a datasets <<<"$DATASETS"
((${#datasets[@]} >= 2 && ${#datasets[@]} % 2 == 0)) || die "DATASETS must be 'NAME AMOUNT [NAME AMOUNT ...]', got '$DATASETS'"
read -r -a judge_server_args <<<"$JUDGE_SERVER_ARGS"
start_judge=0
[[ -z $JUDGE_BASE_URL ]] && start_judge=1
if ((start_judge)); then
  [[ $JUDGE_MODEL == hosted_vllm/* ]] || die "JUDGE_MODEL '$JUDGE_MODEL' is not hosted_vllm/...: set JUDGE_BASE_URL"
  [[ $JUDGE_GPUS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "JUDGE_GPUS must be GPU ids like 7 or 6,7, got '$JUDGE_GPUS'"
fi

# --- GPUs --------------------------------------------------------------------------------------------------------
select_train_gpus "$start_judge"
n_train=${#train_gpus[@]}
((n_train > 0)) || die "no GPU left for training (NUM_GPUS=$NUM_GPUS, JUDGE_GPUS=$JUDGE_GPUS)"
(((PROMPTS_PER_STEP * SAMPLES_PER_PROMPT) % n_train == 0)) ||
  die "PROMPTS_PER_STEP x SAMPLES_PER_PROMPT ($((PROMPTS_PER_STEP * SAMPLES_PER_PROMPT))) must divide by the $n_train training GPU(s)"

# --- data: flip-reward data convert --format verl -------------------------------------------------------------------
data_dir=$OUTPUT_DIR/data
convert_cmds=() train_files=()
for ((i = 0; i < ${#datasets[@]}; i += 2)); do
  name=${datasets[i]} amount=${datasets[i + 1]} limit=()
  if [[ $amount =~ ^[0-9]+$ ]] && ((amount > 1)); then
    limit=(--limit "$amount")
  elif [[ ! $amount =~ ^1(\.0*)?$ ]]; then
    die "DATASETS: amount '$amount' of '$name' must be 1.0 (every row) or a whole number of rows"
  fi
  file=$data_dir/train_$((i / 2)).parquet
  train_files+=("$file")
  convert_cmds+=("$(quoted "$PYTHON" -m flip_reward.cli data convert "$name" --split "$DATASET_SPLITS" --format verl \
    -o "$file" ${limit[@]+"${limit[@]}"})")
done
val_file=$data_dir/val.parquet
convert_cmds+=("$(quoted "$PYTHON" -m flip_reward.cli data convert "${datasets[0]}" --split "$DATASET_SPLITS" \
  --format verl -o "$val_file" --limit "$LOCAL_EVAL_COUNT")")

# --- judge ---------------------------------------------------------------------------------------------------------
run_dir=$OUTPUT_DIR/judge
judge_command "$JUDGE_MODEL" "$JUDGE_HOST" "$JUDGE_PORT" "$run_dir" "$JUDGE_START_TIMEOUT" "${judge_server_args[@]}"
judge_url=${JUDGE_BASE_URL%%,*}
((start_judge)) && judge_url=http://$JUDGE_HOST:$JUDGE_PORT/v1
# verl prints its config, command-line overrides included: a URL without credentials goes in reward_kwargs (which
# reach the reward workers even on a Ray cluster started apart); a hosted_vllm/ judge's URL with credentials goes in
# HOSTED_VLLM_API_BASE only, which the Ray workers must then have in their environment (docs/other-trainers.md).
judge_has_credentials() {  # user-info in the URL's authority, read as flip_reward.judge.urls reads it (RFC 3986)
  local rest=${1#*://} authority port
  authority=${rest%%[/?#]*}
  [[ $authority == *@* ]] && return 0
  port=${authority##*]}
  [[ $port == *:* ]] && port=${port##*:} || port=
  [[ ${rest:${#authority}} == *@* && ! $port =~ ^[0-9]*$ ]]  # an unencoded "/", "?" or "#" in a password
}
judge_kwargs=() judge_env=()
if ! judge_has_credentials "$judge_url"; then
  judge_kwargs=("+reward.custom_reward_function.reward_kwargs.api_base=$judge_url")
elif [[ $JUDGE_MODEL == hosted_vllm/* ]]; then
  judge_env=("HOSTED_VLLM_API_BASE=$judge_url")
else
  die "JUDGE_BASE_URL holds credentials, which verl would print: they need a hosted_vllm/ JUDGE_MODEL"
fi

# --- the verl command ----------------------------------------------------------------------------------------------
trainer_args() {
  local kwargs=+reward.custom_reward_function.reward_kwargs list
  list=$(IFS=,; echo "${train_files[*]}")
  verl_args=(
    algorithm.adv_estimator=grpo "algorithm.use_kl_in_reward=False"
    "data.train_files=[$list]" "data.val_files=[$val_file]" data.prompt_key=prompt
    "data.train_batch_size=$PROMPTS_PER_STEP" "data.max_prompt_length=$MAX_PROMPT_LENGTH"
    "data.max_response_length=$RESPONSE_LENGTH" data.filter_overlong_prompts=True data.truncation=error
    "actor_rollout_ref.model.path=$MODEL_NAME_OR_PATH" "actor_rollout_ref.actor.optim.lr=$LEARNING_RATE"
    "actor_rollout_ref.actor.ppo_mini_batch_size=$PROMPTS_PER_STEP"
    "actor_rollout_ref.actor.use_kl_loss=$([[ $BETA =~ ^0*\.?0*$ ]] && echo False || echo True)"
    "actor_rollout_ref.actor.kl_loss_coef=$BETA" actor_rollout_ref.model.enable_gradient_checkpointing=True
    actor_rollout_ref.rollout.name=vllm "actor_rollout_ref.rollout.n=$SAMPLES_PER_PROMPT"
    "actor_rollout_ref.rollout.temperature=$TEMPERATURE"
    "actor_rollout_ref.rollout.tensor_model_parallel_size=$VLLM_TENSOR_PARALLEL_SIZE"
    "actor_rollout_ref.rollout.gpu_memory_utilization=$VLLM_GPU_MEMORY_UTILIZATION"
    reward.custom_reward_function.path=pkg://flip_reward.integrations.verl
    reward.custom_reward_function.name=compute_score "reward.num_workers=$REWARD_WORKERS"
    "$kwargs.judge_model=$JUDGE_MODEL" ${judge_kwargs[@]+"${judge_kwargs[@]}"} "$kwargs.max_tokens=$JUDGE_MAX_TOKENS"
    "$kwargs.max_context_length=$JUDGE_MAX_CONTEXT" "$kwargs.timeout=$JUDGE_TIMEOUT"
    "$kwargs.temperature=$JUDGE_TEMPERATURE"
    "trainer.n_gpus_per_node=$n_train" trainer.nnodes=1 "trainer.total_epochs=$TOTAL_EPOCHS"
    "trainer.save_freq=$SAVE_FREQ" "trainer.test_freq=$TEST_FREQ" "trainer.project_name=$WANDB_PROJECT"
    "trainer.experiment_name=$EXP_NAME" "trainer.default_local_dir=$OUTPUT_DIR/checkpoints"
    "trainer.logger=$(is_true "$WITH_TRACKING" && echo '[console,wandb]' || echo '[console]')"
    ${passthrough[@]+"${passthrough[@]}"}
  )
  trainer_cmd=(env "CUDA_VISIBLE_DEVICES=$(IFS=,; echo "${train_gpus[*]}")" ${judge_env[@]+"${judge_env[@]}"}
    "$PYTHON" -m verl.trainer.main_ppo "${verl_args[@]}")
}
trainer_args

if ((dry_run)); then
  echo "verl_grpo: preset $PRESET ($preset); $n_train training GPU(s); reward flip_reward.integrations.verl"
  if ((start_judge)); then
    echo "judge: JUDGE_SERVER=$JUDGE_SERVER JUDGE_GPUS=$JUDGE_GPUS $(redacted "$(quoted "${judge_cmd[@]}")")"
  else
    echo "judge: external at $(redacted "$JUDGE_BASE_URL")"
  fi
  for command in "${convert_cmds[@]}"; do echo "data: $command"; done
  echo "trainer: $(redacted "$(quoted "${trainer_cmd[@]}")")"
  exit 0
fi

# --- a real run ------------------------------------------------------------------------------------------------------
"$PYTHON" -c 'import verl' 2>/dev/null || die "verl is not importable by $PYTHON (pip install verl; --dry-run shows the command)"
for command in "${convert_cmds[@]}"; do
  log "data: $command"
  eval "$command" >&2 || die "could not convert the dataset (see above)"
done
judge_started=0
# shellcheck disable=SC2329  # invoked by the trap
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if ((judge_started)); then log "stopping the judge" && stop_run_judge "$run_dir" || true; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ((start_judge)); then
  log "starting the judge ${JUDGE_MODEL#hosted_vllm/} on GPU(s) $JUDGE_GPUS (log: $run_dir/judge.log)"
  judge_started=1
  JUDGE_SERVER=$JUDGE_SERVER JUDGE_GPUS=$JUDGE_GPUS PYTHON=$PYTHON \
    start_run_judge "$JUDGE_MODEL" "$JUDGE_HOST" "$JUDGE_PORT" "$run_dir" "$JUDGE_START_TIMEOUT" \
    "${judge_server_args[@]}" >/dev/null || die "the judge did not start (log: $run_dir/judge.log)"
fi
log "trainer: $(redacted "$(quoted "${trainer_cmd[@]}")")"
"${trainer_cmd[@]}"
