#!/usr/bin/env bash
# The embedded default job (make demo): GRPO with FLIP rewards on this machine, nothing downloaded. `flip-reward train
# --preset tiny` builds a tiny random policy and judge, serves the judge, runs a few TRL GRPO steps on the bundled RLVR
# sample and writes RUN_DIR (default runs/demo; docs/local-training.md lists the outputs). The random judge's answers
# end as counted parse failures (reward 0.0): the run shows the loop, not FLIP's quality. PYTHON: the interpreter;
# variables of `flip-reward train --help` override the preset; arguments go to `flip-reward train` (e.g. --steps 4).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/python.sh"
export HF_HUB_OFFLINE=1 LITELLM_LOCAL_MODEL_COST_MAP=True
run_dir=${RUN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/runs/demo}
exec "$PYTHON" -m flip_reward.cli train --preset tiny --exp-name demo --output-dir "$run_dir" "$@"
