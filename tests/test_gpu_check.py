"""The prepared GPU check (scripts/gpu_check.sh, flip_reward.launch.gpu_check): run here on the CPU end to end (the
same tiny models, transformers serve and TRL steps it runs on CUDA), and refused with exit 2 where no GPU is visible."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("trl")


def run_check(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), *arguments], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_without_a_gpu_the_cuda_check_exits_2(tmp_path):
    result = run_check("--output-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "gpu_check: error: no CUDA GPU visible (torch.cuda.is_available() is False)\n"
    assert not (tmp_path / "run").exists()


def test_the_check_runs_end_to_end_and_prints_step_and_judging_times(tmp_path):
    result = run_check("--device", "cpu", "--steps", "2", "--output-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for step, line in enumerate(lines[:2], start=1):
        assert re.fullmatch(rf"gpu_check: step {step}: \d+\.\d\ds, \d+\.\d\ds judging, reward 0\.0", line), line
    assert re.fullmatch(r"gpu_check: median: \d+\.\d\ds per step, \d+\.\d\ds judging per step \(2 steps\)", lines[2])
