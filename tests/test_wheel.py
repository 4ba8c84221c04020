"""The package as users install it: a wheel built from this checkout, installed into a folder of its own and run
from a directory outside the checkout, finds its presets, sample data and prompts (package data), never the source
tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """flip_reward installed from a freshly built wheel into a folder of its own (its dependencies: this venv's)."""
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(build),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        cwd=build,
    )
    (wheel,) = build.glob("flip_reward-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    return target


def run_installed(installed: Path, cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(PYTHONPATH=str(installed), HF_HUB_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    for name in ("LOCAL_PRESET", "PRESET", "DATASETS", "MODEL_NAME_OR_PATH", "JUDGE_MODEL", "JUDGE_BASE_URL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", *arguments], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_the_wheel_holds_presets_sample_data_and_prompts(installed):
    package = installed / "flip_reward"
    for name in ("configs/local_tiny.env", "configs/grpo_1gpu.env", "sample_data/sample_rlvr_flip.jsonl",
                 "prompts/FLIP_USER.prompt"):  # fmt: skip
        assert (package / name).is_file(), name


def test_train_preset_tiny_dry_run_from_the_wheel(installed, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import flip_reward; print(flip_reward.__file__)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == str(installed / "flip_reward" / "__init__.py")
    result = run_installed(installed, tmp_path, "train", "--preset", "tiny", "--dry-run")
    assert result.returncode == 0, result.stderr
    sample = installed / "flip_reward" / "sample_data" / "sample_rlvr_flip.jsonl"
    assert f"train: data: {sample}: 24 -> 24 rows (amount 1.0)" in result.stderr.splitlines()
    assert "train: preset: tiny" in result.stderr.splitlines()


def test_launch_open_instruct_dry_run_from_the_wheel(installed, tmp_path):
    """The documented grpo_fast command with the FLIP verifier registered (the plugin launcher), and the 1gpu preset
    read from the package."""
    result = run_installed(installed, tmp_path, "launch", "open-instruct", "--dry-run", "--preset", "1gpu")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    preset = installed / "flip_reward" / "configs" / "grpo_1gpu.env"
    assert lines[0] == f"grpo: preset 1gpu ({preset}); verifier general-flip; 1 learner(s), 1 vLLM engine(s)"
    trainer = next(line for line in lines if line.startswith("trainer: "))
    assert f"{sys.executable} -m flip_reward.integrations.open_instruct.launch --exp_name grpo_flip " in trainer
    assert "--model_name_or_path Qwen/Qwen3-0.6B" in trainer and "--single_gpu_mode" in trainer
