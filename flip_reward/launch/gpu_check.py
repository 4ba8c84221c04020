"""The GPU check: one prepared run of the local backend on CUDA, for a machine with a GPU and no network.

``python -m flip_reward.launch.gpu_check [--output-dir DIR] [--steps N] [--device cuda|cpu]`` (scripts/gpu_check.sh)
builds the tiny random policy and judge locally, serves the judge with ``transformers serve`` on the GPU in bf16,
runs TRL GRPO for a few steps in bf16 on the same GPU (``flip-reward train --preset tiny``), then prints one line per
step (wall time, judging time) and their medians. It downloads nothing; the whole run takes a few minutes.
``--device cpu`` runs the same check on a CPU (how the tests run it here).

Exit status: 0 when every step ran; 2 when no CUDA GPU is visible (``--device cuda``); otherwise the status of
``flip-reward train`` (docs/reference.md#exit-codes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from flip_reward.exit_codes import EXIT_INVALID_INPUT


def train_command(output_dir: Path, steps: int, device: str) -> tuple[list[str], dict[str, str]]:
    """The ``flip-reward train`` command of the check and the environment it adds."""
    server_args = (
        f"--device {'cuda:0' if device == 'cuda' else 'cpu'} --dtype {'bfloat16' if device == 'cuda' else 'auto'}"
    )
    command = [
        sys.executable, "-m", "flip_reward", "train", "--preset", "tiny", "--exp-name", "gpu_check",
        "--output-dir", str(output_dir), "--steps", str(steps), "--judge-server-args", server_args,
        "--use-cpu" if device == "cpu" else "--no-use-cpu", "--no-save-model",
    ]  # fmt: skip
    return command, {"JUDGE_SERVER": "transformers", "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


def timing_lines(metrics: Path) -> list[str]:
    """One line per step of ``metrics`` (metrics.jsonl: wall seconds, judging seconds) and a line of medians."""
    rows = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines, judging = [], []
    for row in rows:
        seconds = judging_seconds(row)
        judged = "no judging"
        if seconds is not None:
            judging.append(seconds)
            judged = f"{seconds:.2f}s judging"
        lines.append(f"step {row['step']}: {row['seconds']:.2f}s, {judged}, reward {row['reward_mean']}")
    if rows:
        step_median = statistics.median(row["seconds"] for row in rows)
        judge_median = f"{statistics.median(judging):.2f}s" if judging else "n/a"
        lines.append(f"median: {step_median:.2f}s per step, {judge_median} judging per step ({len(rows)} steps)")
    return lines


def judging_seconds(row: dict) -> float | None:
    """The wall time of a step's judging (``rewards/<reward function>/seconds``), None when the step judged nothing."""
    values = [value for key, value in row.items() if key.startswith("rewards/") and key.endswith("/seconds")]
    return sum(values) if values else None


def cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default="runs/gpu_check", help="where the run writes (default: runs/gpu_check)")
    parser.add_argument("--steps", type=int, default=6, help="GRPO steps (default: 6)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="where both models run")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not cuda_visible():
        print("gpu_check: error: no CUDA GPU visible (torch.cuda.is_available() is False)", file=sys.stderr)
        return EXIT_INVALID_INPUT
    output_dir = Path(args.output_dir)
    command, env = train_command(output_dir, args.steps, args.device)
    print(f"gpu_check: {' '.join(command)}", file=sys.stderr)
    status = subprocess.run(command, env={**os.environ, **env}, stdout=sys.stderr, check=False).returncode
    metrics = output_dir / "metrics.jsonl"
    if metrics.is_file():
        for line in timing_lines(metrics):
            print(f"gpu_check: {line}")
    return status


if __name__ == "__main__":
    sys.exit(main())
