#!/usr/bin/env bash
# The scoring demo (make score-demo): the bundled sample scored with FLIP by a tiny random judge built and served
# locally (no download); flip_reward/launch/demos.py says what it shows. RUN_DIR (default runs/score_demo), PYTHON.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
exec "$PYTHON" -m flip_reward.launch.demos score --run-dir "${RUN_DIR:-$(dirname "${BASH_SOURCE[0]}")/../runs/score_demo}"
