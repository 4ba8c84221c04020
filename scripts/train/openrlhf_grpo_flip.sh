#!/usr/bin/env bash
# GRPO with FLIP rewards in OpenRLHF: starts the judge and `flip-reward serve` (the reward service, loopback), then
# prints the OpenRLHF command that uses it (`--reward.remote_url http://127.0.0.1:SERVE_PORT/get_reward`; older
# OpenRLHF releases spell it `--remote_rm_url`) and keeps both running until Ctrl-C or TERM, when it stops them.
#
#   bash scripts/train/openrlhf_grpo_flip.sh [--dry-run] [OPENRLHF_ARGS...]
#   PRESET=1gpu DATASETS="data/sample_rlvr_flip.jsonl 1.0" bash scripts/train/openrlhf_grpo_flip.sh --dry-run
#
# OPENRLHF_ARGS are appended to the printed command. --dry-run prints the judge, service and trainer commands and
# exits. Datasets are RLVR rows (`flip-reward data convert`): OpenRLHF applies the policy's chat template to
# `messages` and sends `ground_truth` (the instruction) as the label. OpenRLHF's request code sends no
# Authorization header, so the service stays on loopback: run the trainer's vLLM engines on this node (or one
# service per node).
#
# Presets and knobs as scripts/train/verl_grpo_flip.sh (PRESET=1node|1gpu loads configs/verl_$PRESET.env; DATASETS,
# MODEL_NAME_OR_PATH, JUDGE_*, NUM_GPUS, TRAIN_GPUS, PROMPTS_PER_STEP, SAMPLES_PER_PROMPT, MAX_PROMPT_LENGTH,
# RESPONSE_LENGTH, LEARNING_RATE, TEMPERATURE, OUTPUT_DIR, PYTHON), plus SERVE_PORT (8080), SERVE_ARGS (extra
# `flip-reward serve` options, e.g. "--concurrency 128") and SERVE_START_TIMEOUT (120 s).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO
log() { printf 'openrlhf_grpo: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/lib/train_common.sh
source "$REPO/scripts/lib/train_common.sh"

parse_run_args "$@"

PRESET=${PRESET:-1node}
preset=$(preset_file verl "$PRESET") || exit 1
load_preset "$preset"
: "${MODEL_NAME_OR_PATH:=Qwen/Qwen3-4B}" "${DATASETS:=yikeee/rlvr_general_chat_flip 1.0}"
: "${EXP_NAME:=openrlhf_grpo_flip}" "${OUTPUT_DIR:=output/$EXP_NAME}"
: "${JUDGE_MODEL:=hosted_vllm/Qwen/Qwen3-4B}" "${JUDGE_BASE_URL:=}"
: "${JUDGE_MAX_TOKENS:=2048}" "${JUDGE_MAX_CONTEXT:=25000}" "${JUDGE_TIMEOUT:=3600}" "${JUDGE_TEMPERATURE:=1.0}"
: "${JUDGE_GPUS:=7}" "${JUDGE_PORT:=8001}" "${JUDGE_HOST:=127.0.0.1}" "${JUDGE_SERVER:=vllm}"
: "${JUDGE_SERVER_ARGS=--max-model-len $JUDGE_MAX_CONTEXT}" "${JUDGE_START_TIMEOUT:=1800}" "${JUDGE_SHARES_GPUS:=0}"
: "${NUM_GPUS:=8}" "${VLLM_TENSOR_PARALLEL_SIZE:=1}" "${VLLM_GPU_MEMORY_UTILIZATION:=0.6}"
: "${MAX_PROMPT_LENGTH:=2048}" "${RESPONSE_LENGTH:=8192}" "${PROMPTS_PER_STEP:=28}" "${SAMPLES_PER_PROMPT:=8}"
: "${LEARNING_RATE:=1e-6}" "${TEMPERATURE:=1.0}" "${SERVE_PORT:=8080}" "${SERVE_ARGS:=}" "${SERVE_START_TIMEOUT:=120}"
PYTHON=${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}}
PYTHON=${PYTHON:-python3}
export LITELLM_LOCAL_MODEL_COST_MAP=True

for name in NUM_GPUS JUDGE_PORT SERVE_PORT MAX_PROMPT_LENGTH RESPONSE_LENGTH PROMPTS_PER_STEP SAMPLES_PER_PROMPT \
  SERVE_START_TIMEOUT; do
  [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, got '${!name}'"
done
read -r -a datasets <<<"$DATASETS"
((${#datasets[@]} >= 2 && ${#datasets[@]} % 2 == 0)) || die "DATASETS must be 'NAME AMOUNT [NAME AMOUNT ...]', got '$DATASETS'"
names=() probs=()
for ((i = 0; i < ${#datasets[@]}; i += 2)); do
  [[ ${datasets[i + 1]} =~ ^(0?\.[0-9]+|1(\.0*)?)$ ]] ||
    die "DATASETS: OpenRLHF mixes by probability: '${datasets[i + 1]}' after '${datasets[i]}' must be in (0, 1]"
  names+=("${datasets[i]}") probs+=("${datasets[i + 1]}")
done
read -r -a judge_server_args <<<"$JUDGE_SERVER_ARGS"
read -r -a serve_extra <<<"$SERVE_ARGS"
start_judge=0
[[ -z $JUDGE_BASE_URL ]] && start_judge=1
((start_judge)) && [[ $JUDGE_MODEL != hosted_vllm/* ]] && die "JUDGE_MODEL '$JUDGE_MODEL' is not hosted_vllm/...: set JUDGE_BASE_URL"

select_train_gpus "$start_judge"
n_train=${#train_gpus[@]}
((n_train > 0)) || die "no GPU left for training (NUM_GPUS=$NUM_GPUS, JUDGE_GPUS=$JUDGE_GPUS)"

run_dir=$OUTPUT_DIR/judge
judge_command "$JUDGE_MODEL" "$JUDGE_HOST" "$JUDGE_PORT" "$run_dir" "$JUDGE_START_TIMEOUT" "${judge_server_args[@]}"
judge_url=${JUDGE_BASE_URL%%,*}
((start_judge)) && judge_url=http://$JUDGE_HOST:$JUDGE_PORT/v1
serve_cmd=("$PYTHON" -m flip_reward.cli serve --judge "$JUDGE_MODEL" --api-base "$judge_url" --host 127.0.0.1
  --port "$SERVE_PORT" --max-tokens "$JUDGE_MAX_TOKENS" --max-context-length "$JUDGE_MAX_CONTEXT"
  --timeout "$JUDGE_TIMEOUT" --temperature "$JUDGE_TEMPERATURE" --shutdown-timeout "$JUDGE_TIMEOUT"
  ${serve_extra[@]+"${serve_extra[@]}"})
is_true "${FLIP_THINK_PREFILLED:-0}" && serve_cmd+=(--think-prefilled)
is_true "${FLIP_RESTATEMENT_GUARD:-1}" || serve_cmd+=(--no-restatement-guard)
vllm_engines=$(((n_train + 1) / 2))
((n_train == 1)) && vllm_engines=1
trainer_cmd=(env "CUDA_VISIBLE_DEVICES=$(IFS=,; echo "${train_gpus[*]}")" python3 -m openrlhf.cli.train_ppo_ray
  --actor.model_name_or_path "$MODEL_NAME_OR_PATH" --reward.remote_url "http://127.0.0.1:$SERVE_PORT/get_reward"
  --algo.advantage.estimator group_norm --rollout.n_samples_per_prompt "$SAMPLES_PER_PROMPT"
  --rollout.batch_size "$PROMPTS_PER_STEP" --train.batch_size "$((PROMPTS_PER_STEP * SAMPLES_PER_PROMPT))"
  --data.prompt_dataset "$(IFS=,; echo "${names[*]}")" --data.prompt_probs "$(IFS=,; echo "${probs[*]}")"
  --data.input_key messages --data.label_key ground_truth --data.apply_chat_template
  --rollout.max_new_tokens "$RESPONSE_LENGTH" --data.max_len "$((MAX_PROMPT_LENGTH + RESPONSE_LENGTH))"
  --rollout.temperature "$TEMPERATURE" --actor.adam.lr "$LEARNING_RATE" --actor.num_gpus_per_node "$n_train"
  --vllm.num_engines "$vllm_engines" --vllm.tensor_parallel_size "$VLLM_TENSOR_PARALLEL_SIZE"
  --vllm.gpu_memory_utilization "$VLLM_GPU_MEMORY_UTILIZATION" --train.colocate_all --ds.zero_stage 3
  --ckpt.output_dir "$OUTPUT_DIR/checkpoints" ${passthrough[@]+"${passthrough[@]}"})

if ((dry_run)); then
  echo "openrlhf_grpo: preset $PRESET ($preset); $n_train training GPU(s); reward service on 127.0.0.1:$SERVE_PORT"
  if ((start_judge)); then
    echo "judge: JUDGE_SERVER=$JUDGE_SERVER JUDGE_GPUS=$JUDGE_GPUS $(redacted "$(quoted "${judge_cmd[@]}")")"
  else
    echo "judge: external at $(redacted "$JUDGE_BASE_URL")"
  fi
  echo "serve: $(redacted "$(quoted "${serve_cmd[@]}")")"
  echo "trainer: $(redacted "$(quoted "${trainer_cmd[@]}")")"
  exit 0
fi

# --- a real run: the judge, the service, then wait ------------------------------------------------------------------
mkdir -p "$run_dir"
judge_started=0 serve_pid=""
# shellcheck disable=SC2329  # invoked by the traps
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $serve_pid ]]; then
    log "stopping flip-reward serve (requests in flight finish first)"
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  if ((judge_started)); then log "stopping the judge" && stop_run_judge "$run_dir" || true; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 0' INT TERM
if ((start_judge)); then
  log "starting the judge ${JUDGE_MODEL#hosted_vllm/} on GPU(s) $JUDGE_GPUS (log: $run_dir/judge.log)"
  judge_started=1
  JUDGE_SERVER=$JUDGE_SERVER JUDGE_GPUS=$JUDGE_GPUS PYTHON=$PYTHON \
    start_run_judge "$JUDGE_MODEL" "$JUDGE_HOST" "$JUDGE_PORT" "$run_dir" "$JUDGE_START_TIMEOUT" \
    "${judge_server_args[@]}" >/dev/null || die "the judge did not start (log: $run_dir/judge.log)"
fi
: >"$run_dir/serve.url"
"${serve_cmd[@]}" >"$run_dir/serve.url" 2>"$run_dir/serve.log" &
serve_pid=$!
for ((waited = 0; waited < SERVE_START_TIMEOUT * 5; waited++)); do
  [[ -s $run_dir/serve.url ]] && break
  kill -0 "$serve_pid" 2>/dev/null || die "flip-reward serve exited: $(tail -n 5 "$run_dir/serve.log")"
  sleep 0.2
done
[[ -s $run_dir/serve.url ]] || die "flip-reward serve did not start within ${SERVE_START_TIMEOUT}s ($run_dir/serve.log)"
log "reward service: $(<"$run_dir/serve.url") (log: $run_dir/serve.log); Ctrl-C stops it and the judge"
echo "trainer: $(redacted "$(quoted "${trainer_cmd[@]}")")"
wait "$serve_pid"
