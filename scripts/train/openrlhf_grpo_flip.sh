#!/usr/bin/env bash
# GRPO with FLIP rewards in OpenRLHF: `flip-reward launch openrlhf` (docs/other-trainers.md; --help lists every knob).
#   bash scripts/train/openrlhf_grpo_flip.sh [--dry-run] [KNOB FLAGS] [OPENRLHF_ARGS...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/python.sh"
exec "$PYTHON" -m flip_reward.cli launch openrlhf "$@"
