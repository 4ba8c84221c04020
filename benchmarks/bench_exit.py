"""Stress of how ``flip-reward score|eval|rerank`` end: many runs per path (success, a judge refusing every request
with HTTP 422, SIGINT mid-run, an output no one can create), each in a process of its own under a timeout; prints,
per command and path, the exit statuses seen, the runs that hung and those that left a thread alive at exit.

The runs are tests/exit_support.py's (the judges are the scripted test double). Before the fix of issue 17 (item
14), runs ending early hung forever at interpreter exit: a daemon thread loading the judge tokenizer died holding
the import lock while litellm's client finalizers imported modules.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_exit.py              # 50 runs per path and command
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_exit.py --runs 10 --commands score
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path[:0] = [str(Path(__file__).parents[1] / "tests")]

from exit_support import COMMANDS, PATHS, run_paths  # noqa: E402

from flip_reward.training.tiny_model import build_tiny_chat_model  # noqa: E402

ALONE = "threads at exit: ['MainThread']"


def runs_by_path(command: str, judge_dir: Path, work: Path, runs: int, batch: int) -> dict[str, list]:
    """``runs`` runs of ``command`` per path, ``batch`` per path at a time (so that a slow machine is not mistaken for
    a hang)."""
    by_path: dict[str, list] = {path: [] for path in PATHS}
    for start in range(0, runs, batch):
        for path, done in run_paths(command, judge_dir, work / str(start), min(batch, runs - start)).items():
            by_path[path] += done
    return by_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="runs per path and command (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=8, help="runs per path at once (default: %(default)s)")
    parser.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    args = parser.parse_args()
    hung_total = 0
    with tempfile.TemporaryDirectory() as work:
        judge_dir = build_tiny_chat_model(Path(work) / "judge")
        print(f"{'command':<8} {'path':<12} {'runs':>5} {'hung':>5} {'threads left':>13}  exit statuses")
        for command in args.commands:
            for path, runs in runs_by_path(command, judge_dir, Path(work) / command, args.runs, args.batch).items():
                hung = sum(run.hung for run in runs)
                threads_left = sum(not run.hung and (not run.stderr or run.stderr[-1] != ALONE) for run in runs)
                statuses = dict(Counter(run.status for run in runs if not run.hung))
                hung_total += hung
                print(f"{command:<8} {path:<12} {len(runs):>5} {hung:>5} {threads_left:>13}  {statuses}")
    print(f"hung runs: {hung_total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
