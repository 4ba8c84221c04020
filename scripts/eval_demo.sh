#!/usr/bin/env bash
# The evaluation demo (make eval-demo): FLIP and the LLM-as-a-judge baselines on the bundled RewardBench-2-shaped
# sample, then best-of-N on the rerank sample, judged by a tiny random judge built and served locally (no download);
# flip_reward/launch/demos.py says what it shows. RUN_DIR (default runs/eval-demo), PYTHON.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
exec "$PYTHON" -m flip_reward.launch.demos eval --run-dir "${RUN_DIR:-$(dirname "${BASH_SOURCE[0]}")/../runs/eval-demo}"
