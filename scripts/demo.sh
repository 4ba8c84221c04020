#!/usr/bin/env bash
# The embedded default job (make demo): GRPO with FLIP rewards on this machine, end to end, nothing downloaded.
# `flip-reward train --preset tiny` builds a tiny random policy and a tiny random judge locally, serves the judge with
# scripts/serve_judge.sh (transformers serve on CPU, vLLM on a GPU), runs a few TRL GRPO steps on the bundled RLVR
# sample (data/sample_rlvr_flip.jsonl), stops the judge, and writes RUN_DIR/metrics.jsonl, RUN_DIR/reward_curve.png
# RUN_DIR/model, the per-sample trace RUN_DIR/samples.jsonl and its report (inspect.png, inspect.json) with a
# progress bar and a summary. The random judge writes gibberish, so its answers end as
# counted parse failures with reward 0.0: the run shows the training loop working, not FLIP's quality (configs/
# local_1gpu.env, or --judge/--judge-base-url, for real rewards).
#
# Environment: PYTHON (interpreter with flip-reward[train] installed), RUN_DIR (default runs/demo); variables of
# `flip-reward train --help` override the preset. Arguments go to `flip-reward train` (e.g. --steps 4).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
run_dir=${RUN_DIR:-$repo/runs/demo}
export HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True

exec "$python" -m flip_reward.cli train --preset tiny --exp-name demo --output-dir "$run_dir" "$@"
