#!/usr/bin/env bash
# GRPO with FLIP rewards in upstream open-instruct: the judge (Qwen3-4B on vLLM) infers the instruction behind each
# response and the reward is the F1 with the real one (rows with "dataset": "general-flip").
#
#   bash scripts/train/grpo_flip.sh [--dry-run] [KNOB FLAGS] [GRPO_FAST_ARGS...] [-- GRPO_FAST_ARGS...]
#   PRESET=1gpu DATASETS="data/sample_rlvr_flip.jsonl 1.0" bash scripts/train/grpo_flip.sh --dry-run
#
# `flip-reward launch open-instruct --verifier general-flip`: knobs, presets, backends and the judge's lifecycle in
# its --help and docs/open-instruct.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/python.sh"
exec "$PYTHON" -m flip_reward.cli launch open-instruct --verifier general-flip "$@"
