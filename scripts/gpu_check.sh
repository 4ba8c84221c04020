#!/usr/bin/env bash
# The GPU check: the local backend on CUDA (tiny policy and judge, transformers serve and TRL GRPO in bf16) for a few
# steps, printing per-step and judging times on stdout (the run's own output on stderr); nothing downloaded.
# Options: flip_reward/launch/gpu_check.py --help.
#   bash scripts/gpu_check.sh [--output-dir DIR] [--steps N]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
exec "$PYTHON" -m flip_reward.launch.gpu_check "$@"
