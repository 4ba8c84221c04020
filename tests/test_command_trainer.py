"""The launch every command-line trainer's launcher shares (flip_reward.launch.command_trainer), through the real
``flip-reward launch`` command line with a stand-in trainer: a recipe written by the test (``stand_in.py`` below)
whose trainer is a Python one-liner that records its arguments, environment and inputs. The judge is the scripted
OpenAI-compatible server on loopback (a test double), reached through JUDGE_BASE_URL. The real trainers' recipes
are tested in their own files (test_slime.py, test_skyrl.py, ...)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from serve_support import ResponseScript

from flip_reward.data.mixes import select_indices
from flip_reward.serving.scripted_judge import ScriptedJudgeServer

SAMPLE = str(REPO / "data" / "sample_rlvr_flip.jsonl")
STAND_IN = """
import json, os, sys
from dataclasses import dataclass
from flip_reward.data.rlvr import to_rlvr
from flip_reward.knobs import knob
from flip_reward.launch.command_trainer import CommandTrainerSettings, TrainerRecipe
from flip_reward.launch.trainer_run import Trainer

RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "record.py")


@dataclass(frozen=True)
class StandInSettings(CommandTrainerSettings):
    stand_in_steps: int = knob("STAND_IN_STEPS", 3, "training steps", minimum=1)


def row(row, number):
    rlvr = to_rlvr(row, number, "general-flip")
    return {"prompt": rlvr["messages"], "label": rlvr["ground_truth"]}


def command(settings, files, python, extra):
    config = files.config_dir / "stand_in.yaml"
    return Trainer([python, RECORD, str(files.data), str(config), *extra], {"STAND_IN": "1"})


def files(settings, files):
    return {files.config_dir / "stand_in.yaml": f"steps: {settings.stand_in_steps}\\n"}


SETTINGS = StandInSettings
RECIPE = TrainerRecipe(
    "stand-in", os.environ.get("STAND_IN_REQUIRES") or None, "stand_in.reward", row, command, files,
    min_rows=lambda settings: settings.prompts_per_step + 1 if os.environ.get("STAND_IN_MIN_ROWS") else 0,
)
HELP = "a stand-in trainer"
DESCRIPTION = "A stand-in trainer of the tests."
"""
RECORD = """
import json, os, sys
json.dump({"argv": sys.argv[1:], "env": dict(os.environ), "rows": [json.loads(line) for line in open(sys.argv[1])],
           "config": open(sys.argv[2]).read()}, open(os.environ["RECORD_TO"], "w"))
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""
RUNNER = """
import sys
from flip_reward.cli import launch, main
launch.COMMAND_TRAINERS["stand-in"] = "stand_in"
sys.exit(main())
"""


@pytest.fixture
def launcher(tmp_path):
    """Run ``flip-reward launch stand-in ARGS`` in ``tmp_path`` with ``environ`` added; the completed process."""
    (tmp_path / "stand_in.py").write_text(STAND_IN)
    (tmp_path / "runner.py").write_text(RUNNER)
    (tmp_path / "record.py").write_text(RECORD)

    def run(*args: str, **environ: str) -> subprocess.CompletedProcess:
        env = {name: value for name, value in os.environ.items() if not name.startswith(("FLIP_", "JUDGE_"))}
        env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]), **environ)
        command = [sys.executable, "runner.py", "launch", "stand-in", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    return run


def test_a_dry_run_shows_the_judge_the_data_the_files_and_the_command_and_writes_nothing(launcher, tmp_path) -> None:
    result = launcher("--dry-run", "--datasets", f"{SAMPLE} 4 {SAMPLE} 0.5", "--num-gpus", "2", "--judge-gpus", "1",
                      "--stand-in-steps", "5", "--", "--lr", "3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    *plan, trainer = result.stdout.splitlines()
    assert plan == [
        "stand-in: 1 training GPU(s); reward stand_in.reward",
        "judge: server: env CUDA_VISIBLE_DEVICES=1 vllm serve Qwen/Qwen3-4B --host 127.0.0.1 --port 8001 "
        "--max-model-len 25000 (log: output/grpo/judge/judge.log)",
        f"data: {SAMPLE}: 24 rows -> 4 training rows",
        f"data: {SAMPLE}: 24 rows -> 12 training rows",
        f"data: -> {tmp_path}/output/grpo/data/train.jsonl",
        f"config: {tmp_path}/output/grpo/config/stand_in.yaml",
        "    steps: 5",
    ]
    assert trainer == (
        "trainer: env CUDA_VISIBLE_DEVICES=0 HOSTED_VLLM_API_BASE=http://127.0.0.1:8001/v1 "
        "FLIP_JUDGE_MODEL=hosted_vllm/Qwen/Qwen3-4B FLIP_JUDGE_TIMEOUT=3600 FLIP_JUDGE_MAX_TOKENS=2048 "
        f"FLIP_JUDGE_TEMPERATURE=1.0 FLIP_JUDGE_MAX_CONTEXT=25000 STAND_IN=1 {sys.executable} {tmp_path}/record.py "
        f"{tmp_path}/output/grpo/data/train.jsonl {tmp_path}/output/grpo/config/stand_in.yaml --lr 3"
    )
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize(
    ("args", "environ", "error"),
    [
        (("--judge-model", "openai/gpt-4o", "--judge-base-url", "http://127.0.0.1:9/v1"), {},
         "error: JUDGE_MODEL 'openai/gpt-4o': the reward in the trainer's processes reaches the judge through "
         "HOSTED_VLLM_API_BASE, so the judge must be a hosted_vllm/ model (any OpenAI-compatible server)"),
        (("--datasets", "data.jsonl"), {},
         "error: DATASETS must be 'NAME AMOUNT [NAME AMOUNT ...]', got 'data.jsonl'"),
        ((), {"STAND_IN_STEPS": "0"}, "error: STAND_IN_STEPS (environment): must be >= 1, got 0"),
        ((), {"FLIP_CONCURRENCY": "abc"}, "error: FLIP_CONCURRENCY (environment): expected an integer, got 'abc'"),
    ],
)  # fmt: skip
def test_bad_settings_exit_2_with_one_line(launcher, args, environ, error) -> None:
    result = launcher("--dry-run", *args, **environ)
    assert (result.returncode, result.stdout, result.stderr.strip()) == (2, "", error)


def test_a_mix_smaller_than_one_step_is_refused(launcher) -> None:
    """A recipe's ``min_rows`` (here: more rows than PROMPTS_PER_STEP, as ROLL asserts) refuses a mix that is too
    small before anything starts."""
    enough = launcher("--dry-run", "--datasets", f"{SAMPLE} 0.5", "--prompts-per-step", "11", STAND_IN_MIN_ROWS="1")
    assert enough.returncode == 0, enough.stderr
    result = launcher("--dry-run", "--datasets", f"{SAMPLE} 0.5", "--prompts-per-step", "12", STAND_IN_MIN_ROWS="1")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == (
        "error: DATASETS gives 12 training rows; stand-in needs at least 13 (PROMPTS_PER_STEP=12)"
    )


def test_an_invalid_row_fails_the_dry_run_naming_the_row_and_field(launcher, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}) + "\n")
    result = launcher("--dry-run", "--datasets", f"{bad} 1.0")
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr.strip()
        == f"error: DATASETS: {bad}: 1 of 1 rows invalid (row 1: field 'messages': no user message)"
    )


def test_a_run_writes_the_rows_and_files_and_the_trainer_reaches_the_judge_through_its_environment(
    launcher, tmp_path
) -> None:
    record = tmp_path / "record.json"
    with ScriptedJudgeServer(ResponseScript()) as judge:
        result = launcher("--datasets", f"{SAMPLE} 2", "--num-gpus", "1", "--judge-model", "hosted_vllm/scripted",
                          "--judge-base-url", judge.base_url, "--judge-timeout", "30", "--", "--lr", "3",
                          RECORD_TO=str(record))  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    output = tmp_path / "output" / "grpo"
    assert seen["argv"] == [f"{output}/data/train.jsonl", f"{output}/config/stand_in.yaml", "--lr", "3"]
    assert {name: seen["env"][name] for name in ("CUDA_VISIBLE_DEVICES", "HOSTED_VLLM_API_BASE", "FLIP_JUDGE_MODEL",
                                                 "FLIP_JUDGE_TIMEOUT", "STAND_IN")} == {
        "CUDA_VISIBLE_DEVICES": "0", "HOSTED_VLLM_API_BASE": judge.base_url,
        "FLIP_JUDGE_MODEL": "hosted_vllm/scripted", "FLIP_JUDGE_TIMEOUT": "30", "STAND_IN": "1",
    }  # fmt: skip
    rows = [json.loads(line) for line in Path(SAMPLE).read_text().splitlines()]
    assert seen["rows"] == [
        {"prompt": rows[index]["messages"], "label": rows[index]["messages"][-1]["content"].strip()}
        for index in select_indices(24, 2)  # two rows of 24: open-instruct's seeded sample
    ]
    assert seen["config"] == "steps: 3\n"
    assert result.stderr.splitlines()[:4] == [
        f"stand-in: data: {SAMPLE}: 24 rows -> 2 training rows",
        f"stand-in: data: {output}/data/train.jsonl",
        f"stand-in: config: {output}/config/stand_in.yaml",
        f"stand-in: judge: ok, {judge.base_url} serves scripted",
    ]


def test_the_trainers_failure_is_the_launchers_exit_status_and_a_missing_trainer_is_refused(launcher, tmp_path) -> None:
    with ScriptedJudgeServer(ResponseScript()) as judge:
        common = ("--datasets", f"{SAMPLE} 2", "--num-gpus", "1", "--judge-model", "hosted_vllm/scripted",
                  "--judge-base-url", judge.base_url)  # fmt: skip
        failed = launcher(*common, RECORD_TO=str(tmp_path / "record.json"), EXIT_WITH="7")
        missing = launcher(*common, STAND_IN_REQUIRES="no_such_trainer")
    assert failed.returncode == 7
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"stand-in: error: no_such_trainer is not importable by {sys.executable} (install it; --dry-run shows the "
        "command)"
    )
