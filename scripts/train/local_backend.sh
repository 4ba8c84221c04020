#!/usr/bin/env bash
# The local backend of scripts/train/grpo_*.sh: `flip-reward launch local` (docs/local-training.md).
#   bash scripts/train/local_backend.sh [--dry-run] [--detect] [FLIP_REWARD_TRAIN_ARGS...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/python.sh"
exec "$PYTHON" -m flip_reward.cli launch local "$@"
