#!/usr/bin/env bash
# GRPO with FLIP rewards in verl: `flip-reward launch verl` (docs/other-trainers.md; --help lists every knob).
#   bash scripts/train/verl_grpo_flip.sh [--dry-run] [KNOB FLAGS] [HYDRA_OVERRIDES...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/python.sh"
exec "$PYTHON" -m flip_reward.cli launch verl "$@"
