#!/usr/bin/env bash
# The LLM-as-judge baseline for scripts/train/grpo_flip.sh: the same prompts, policy, judge model and settings,
# rewarded by upstream open-instruct's pointwise quality judge (1-10 score / 10; rows with "dataset":
# "general-quality").
#
#   bash scripts/train/grpo_llmjudge.sh [--dry-run] [KNOB FLAGS] [GRPO_FAST_ARGS...] [-- GRPO_FAST_ARGS...]
#
# `flip-reward launch open-instruct --verifier general-quality`: knobs, presets, backends and the judge's lifecycle
# in its --help and docs/open-instruct.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/python.sh"
exec "$PYTHON" -m flip_reward.cli launch open-instruct --verifier general-quality "$@"
