#!/usr/bin/env bash
# Check out upstream Open Instruct at the pinned commit and install it, with flip-reward, for GRPO training:
# flip_reward/launch/setup_open_instruct.py (standard library only, so any python3 >= 3.10 runs it before anything is
# installed; PYTHON overrides). --help lists the steps, OPEN_INSTRUCT_* / CUDA_GROUP / UV and the exit statuses.
#   scripts/setup_open_instruct.sh [--clone-only | --check]
set -euo pipefail
PYTHONPATH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH
exec "${PYTHON:-python3}" -m flip_reward.launch.setup_open_instruct "$@"
