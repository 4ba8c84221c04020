"""``flip-reward train``: TRL GRPO on CPU with a tiny random policy (built locally) and a judge over HTTP.

Exact reward values come from the scripted loopback judge (a test double: a real model cannot give known answers or
fail on demand); the judge the command starts and stops itself is the tiny model behind a real transformers serve.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, free_port

from flip_reward.cli import main
from flip_reward.core.metrics import f1_score
from flip_reward.knobs import declared
from flip_reward.serving.scripted_judge import Reply, flip_answer
from flip_reward.training.config import TrainSettings

OPTIONS = [item.knob for item in declared(TrainSettings)]

pytest.importorskip("trl")

INSTRUCTION = "Write a short poem about the sea"
INFERRED = "Write a poem about the ocean"
F1 = f1_score(INFERRED, INSTRUCTION)["f1"]  # 2/3: "write", "poem", "about" shared; "short", "sea" vs "ocean"
PER_STEP = 8  # 2 prompts x 4 generations


@pytest.fixture
def clean_env(monkeypatch):
    """No training variable from the outer environment; signal handlers restored after an in-process run."""
    for name in [option.env for option in OPTIONS if option.env] + ["LOCAL_PRESET", "TOTAL_EPISODES"]:
        monkeypatch.delenv(name, raising=False)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGHUP)}
    yield monkeypatch
    for number, handler in handlers.items():
        signal.signal(number, handler)


def write_rlvr(path: Path, instructions: list[str], verifier: str = "general-flip") -> Path:
    with path.open("w", encoding="utf-8") as out:
        for instruction in instructions:
            row = {
                "messages": [{"role": "user", "content": instruction}],
                "ground_truth": instruction,
                "dataset": verifier,
            }
            out.write(json.dumps(row) + "\n")
    return path


def train_args(tmp_path: Path, server, steps: int, *extra: str) -> list[str]:
    data = write_rlvr(tmp_path / "data.jsonl", [INSTRUCTION] * 3)
    return [
        "train",
        "--model",
        "tiny:1",
        "--datasets",
        f"{data} 1.0",
        "--output-dir",
        str(tmp_path / "run"),
        "--judge",
        "hosted_vllm/scripted",
        "--judge-base-url",
        server.base_url,
        "--steps",
        str(steps),
        "--prompts-per-step",
        "2",
        "--num-generations",
        "4",
        "--max-completion-length",
        "8",
        "--judge-retries",
        "0",
        "--judge-timeout",
        "5",
        "--no-save-model",
        "--seed",
        "3",
        *extra,
    ]


def read_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def successes(row: dict) -> int:
    return PER_STEP - row["judge_errors"] - row["parse_failures"] - row["input_errors"]


def test_flip_rewards_reach_the_trainer(tmp_path, clean_env, judge_server, script, capsys):
    script.default = lambda request: flip_answer(INFERRED)
    assert main(train_args(tmp_path, judge_server, 3)) == 0
    run = tmp_path / "run"
    rows = read_rows(run)
    assert [row["step"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert {"step", "reward_mean", "reward_std", "judge_errors", "parse_failures", "seconds"} <= set(row)
        assert (row["judge_errors"], row["parse_failures"]) == (0, 0)
        # the trainer's own logged reward: F1 for every judged completion, 0.0 for an empty one (input error)
        assert row["reward_mean"] == pytest.approx(F1 * successes(row) / PER_STEP)
        assert row["seconds"] > 0
    assert F1 == pytest.approx(2 / 3)
    assert (run / "reward_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert len(judge_server.requests) >= 1
    assert all(INSTRUCTION not in json.dumps(request) for request in judge_server.requests)
    out = capsys.readouterr().out
    assert "GRPO: 3 step(s)" in out and "judge errors 0 | parse failures 0" in out
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert sorted({line["step"] for line in samples}) == [1, 2, 3]  # one line per judged completion of each step
    assert len(samples) == 3 * PER_STEP
    judged = [line for line in samples if line["error_type"] is None]
    assert {(line["inferred_instruction"], line["reward"]) for line in judged} == {(INFERRED, F1)}
    assert all(line["prompt"][-1]["content"] == INSTRUCTION for line in samples)
    # the judge saw the completion with its surrounding whitespace stripped; response_chars is the completion's length
    assert all(line["response_chars"] >= len(line["response"]) > 0 for line in judged)
    assert (run / "inspect.png").read_bytes()[:4] == b"\x89PNG" and (run / "inspect.json").is_file()


def test_judge_outage_mid_run_does_not_stop_training(tmp_path, clean_env, judge_server, script, capsys):
    answered = itertools.count()
    script.default = lambda request: flip_answer(INFERRED) if next(answered) < 4 else Reply(drop=True)
    assert main(train_args(tmp_path, judge_server, 4)) == 0
    rows = read_rows(tmp_path / "run")
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    for row in rows:  # every reward is F1 for an answered request and 0.0 for a failed one
        assert row["reward_mean"] == pytest.approx(F1 * successes(row) / PER_STEP)
    assert sum(successes(row) for row in rows) == 4
    assert rows[0]["judge_errors"] > 0  # the judge went down during step 1 ...
    for row in rows[1:]:  # ... and stayed down: every later completion is a counted judge error with reward 0
        assert row["reward_mean"] == 0.0
        assert row["judge_errors"] + row["input_errors"] == PER_STEP
    assert "judge errors" in capsys.readouterr().out


def test_pointwise_baseline_through_the_same_trainer(tmp_path, clean_env, judge_server, script):
    script.default = lambda request: json.dumps({"REASONING": "Clear.", "SCORE": 7})
    assert main(train_args(tmp_path, judge_server, 2, "--reward", "pointwise")) == 0
    for row in read_rows(tmp_path / "run"):
        assert row["reward_mean"] == pytest.approx(0.7 * successes(row) / PER_STEP)
        assert "rewards/pointwise_judge_reward/mean" in row
    assert INSTRUCTION in json.dumps(judge_server.requests[0])  # the baseline judge sees the prompt


def test_unreachable_judge_url_fails_before_training(tmp_path, clean_env, capsys):
    data = write_rlvr(tmp_path / "data.jsonl", [INSTRUCTION])
    code = main(
        [
            "train",
            "--datasets",
            f"{data} 1.0",
            "--output-dir",
            str(tmp_path / "run"),
            "--judge",
            "hosted_vllm/x",
            "--judge-base-url",
            "http://127.0.0.1:9/v1",
        ]
    )
    assert code == 3
    assert "error: judge: http://127.0.0.1:9/v1/models is not reachable" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize("dry_run", [(), ("--dry-run",)], ids=["run", "dry-run"])
def test_a_judge_serving_another_model_stops_the_run_before_training(
    tmp_path, clean_env, judge_server, dry_run, capsys
):
    arguments = train_args(tmp_path, judge_server, 2)
    arguments[arguments.index("hosted_vllm/scripted")] = "hosted_vllm/Qwen/Qwen3-4B"
    assert main([*arguments, *dry_run]) == 3
    expected = (
        f"error: judge: {judge_server.base_url} serves scripted, not 'Qwen/Qwen3-4B' (from hosted_vllm/Qwen/Qwen3-4B)"
    )
    assert expected in capsys.readouterr().err
    assert judge_server.requests == [] and not (tmp_path / "run" / "metrics.jsonl").exists()


def test_dry_run_checks_a_dead_judge_url(tmp_path, clean_env, capsys):
    data = write_rlvr(tmp_path / "data.jsonl", [INSTRUCTION])
    arguments = ["train", "--datasets", f"{data} 1.0", "--judge", "hosted_vllm/x", "--judge-base-url"]
    assert main([*arguments, "http://127.0.0.1:9/v1", "--dry-run"]) == 3
    assert "error: judge: http://127.0.0.1:9/v1/models is not reachable" in capsys.readouterr().err


def test_a_run_whose_every_judgment_failed_exits_3_with_its_outputs(tmp_path, clean_env, judge_server, script, capsys):
    script.default = lambda request: Reply(status=404, content="The model `scripted` does not exist.")
    assert main(train_args(tmp_path, judge_server, 2)) == 3
    rows = read_rows(tmp_path / "run")
    assert [row["judge_errors"] + row["input_errors"] for row in rows] == [PER_STEP, PER_STEP]
    err = capsys.readouterr().err
    sent = 2 * PER_STEP - sum(row["input_errors"] for row in rows)
    assert f"error: every one of the {sent} judge requests of this run failed (judge errors above)" in err


def start_tiny_run(run: Path, *extra: str) -> subprocess.Popen:
    """``flip-reward train --preset tiny`` in a process of its own: the tiny judge behind a real transformers serve,
    started by the command, and the tiny policy, both built locally."""
    pytest.importorskip("fastapi")
    env = {key: value for key, value in os.environ.items() if key not in {o.env for o in OPTIONS}}
    env.update(HF_HUB_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    command = ["train", "--preset", "tiny", "--output-dir", str(run), "--no-save-model", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "flip_reward.cli", *command],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(process: subprocess.Popen, ready: Callable[[], bool], what: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{what} not within {seconds:.0f} s"
        time.sleep(0.05)


def interrupt(process: subprocess.Popen) -> tuple[str, str]:
    """SIGINT, as Ctrl-C sends it; the process's stdout and stderr once it has ended."""
    try:
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


def test_self_started_judge_is_stopped_on_ctrl_c(tmp_path):
    """SIGINT after the first step stops training and the judge the command started."""
    run = tmp_path / "run"
    process = start_tiny_run(run, "--steps", "1000")
    metrics = run / "metrics.jsonl"
    wait_for(process, lambda: metrics.exists() and metrics.read_text().strip() != "", "a training step")
    judge_group = int((run / "judge" / "judge.pid").read_text().split()[0])  # its PID, then its start time
    os.killpg(judge_group, 0)  # the judge runs
    out, err = interrupt(process)
    assert process.returncode == 130, err[-3000:]
    with pytest.raises(ProcessLookupError):
        os.killpg(judge_group, 0)
    assert not (run / "judge" / "judge.pid").exists()
    assert "interrupted" in err and "stopped after" in err
    assert "GRPO:" in out and (run / "reward_curve.png").exists()
    assert "parse failures" in out


def test_ctrl_c_while_the_first_step_is_judged_lists_only_what_was_written(tmp_path):
    """SIGINT while the first step's judge requests are in flight (the tiny judge writes up to 2000 tokens for each,
    and the command has connections open to it): no sample was traced, so the summary does not list samples.jsonl,
    and the judge calls cut short are cancelled before the command stops its judge, so that no judge failure is
    logged after that orderly stop."""
    psutil = pytest.importorskip("psutil")
    run, port = tmp_path / "run", free_port()
    process = start_tiny_run(run, "--judge-port", str(port), "--judge-max-tokens", "2000")

    def judging() -> bool:
        connections = psutil.Process(process.pid).net_connections("tcp") if (run / "metrics.jsonl").exists() else []
        return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED for c in connections)

    wait_for(process, judging, "a judge request")
    out, err = interrupt(process)
    assert process.returncode == 130, err[-3000:]
    assert f"outputs: {run / 'metrics.jsonl'}, {run / 'reward_curve.png'}\n" in out
    assert not (run / "samples.jsonl").exists()
    assert "inspect: no samples were traced" in out
    assert err.splitlines()[-1] == "train: interrupted", err[-3000:]
    assert "unreachable" not in err and "cannot connect" not in err and "requests failed" not in err, err[-3000:]


# --- settings, data mix, presets, helper script: no training ------------------------------------------------------


def test_dry_run_plan_and_precedence(tmp_path, clean_env, capsys):
    preset = tmp_path / "p.env"
    preset.write_text('# comment\nSTEPS=7\nSAMPLES_PER_PROMPT=2\nLEARNING_RATE="3e-5"\nBETA=0.5\n')
    clean_env.setenv("SAMPLES_PER_PROMPT", "6")
    clean_env.setenv("BETA", "0.25")
    assert main(["train", "--preset", str(preset), "--beta", "0.1", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "7 steps | 2 prompts x 6 generations" in err  # preset < environment
    assert "lr 3e-05 | beta 0.1" in err  # flag > environment > preset
    assert "sample_rlvr_flip.jsonl: 24 -> 24 rows" in err


def test_total_episodes_sets_the_steps(clean_env, capsys):
    clean_env.setenv("TOTAL_EPISODES", "100")
    assert main(["train", "--prompts-per-step", "3", "--num-generations", "4", "--dry-run"]) == 0
    assert "9 steps | 3 prompts x 4 generations" in capsys.readouterr().err


def test_total_episodes_from_the_environment_beats_the_presets_steps(clean_env, capsys):
    clean_env.setenv("TOTAL_EPISODES", "80")  # configs/local_tiny.env sets STEPS=8 and 2 x 4 completions a step
    assert main(["train", "--preset", "tiny", "--dry-run"]) == 0
    assert "10 steps | 2 prompts x 4 generations" in capsys.readouterr().err
    clean_env.setenv("STEPS", "3")  # STEPS beats TOTAL_EPISODES from the same source
    assert main(["train", "--preset", "tiny", "--dry-run"]) == 0
    assert "3 steps | 2 prompts x 4 generations" in capsys.readouterr().err


def test_cpu_without_a_preset_says_which_to_use(clean_env, capsys):
    assert main(["train", "--use-cpu", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "train: preset: none (built-in defaults)" in err
    assert "take about 50 s a step on a CPU; --preset tiny is the CPU smoke run (make demo)" in err
    assert main(["train", "--preset", "tiny", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "train: preset: tiny" in err and "50 s a step" not in err


@pytest.mark.parametrize(
    ("amount", "message"),
    [("0.5", "{data}: amount 0.5 of its 1 rows selects no row"), ("0", "the amount of '{data}' must be > 0, got '0'")],
)
def test_an_amount_that_selects_no_row_is_an_error(tmp_path, clean_env, capsys, amount, message):
    data = write_rlvr(tmp_path / "one_row.jsonl", [INSTRUCTION])
    assert main(["train", "--datasets", f"{data} {amount}", "--dry-run"]) == 2
    assert message.format(data=data) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        (["--per-device-batch-size", "3"], {}, "must divide the completions per step"),
        ([], {"STEPS": "ten"}, "STEPS (environment): expected an integer, got 'ten'"),
        ([], {"USE_CPU": "maybe"}, "USE_CPU (environment): expected 1/0"),
        (["--num-generations", "1"], {}, "GRPO compares completions within a group"),
        (["--preset", "nope"], {}, "no preset 'nope'"),
        (["--judge", "tiny:0", "--judge-base-url", "http://x/v1"], {}, "drop --judge-base-url"),
        (["--model", "tiny:x"], {}, "tiny:SEED with an integer seed"),
        (["--datasets", "data/sample_rlvr_flip.jsonl"], {}, "DATASETS must be 'NAME AMOUNT"),
        (["--datasets", "missing.jsonl 1.0"], {}, "missing.jsonl: input file not found"),
        (["--judge-max-tokens", "8000", "--judge-max-context", "8192"], {}, "use max_tokens <= 7472"),
    ],
)
def test_bad_settings_exit_2(clean_env, capsys, arguments, env, message):
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert main(["train", *arguments, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_invalid_rows_are_reported_by_number_and_field(tmp_path, clean_env, capsys):
    data = write_rlvr(tmp_path / "d.jsonl", [INSTRUCTION, INSTRUCTION])
    data.write_text(
        data.read_text()
        + json.dumps(
            {"messages": [{"role": "assistant", "content": "x"}], "ground_truth": "x", "dataset": "general-flip"}
        )
        + "\n"
    )
    assert main(["train", "--datasets", f"{data} 1.0", "--dry-run"]) == 2
    assert "row 3: field 'messages'" in capsys.readouterr().err


def test_mixer_follows_open_instruct():
    from flip_reward.data.mixes import DatasetError, parse_mixer, select_indices

    first, second, third = parse_mixer("a.jsonl 0.5 b.jsonl 30 c.jsonl 1")
    assert (first.target(24), second.target(24), third.target(24)) == (12, 30, 1)
    half = select_indices(24, 12)
    assert len(set(half)) == 12  # a fraction below 1: a seeded sample without replacement
    assert half == select_indices(24, 12)  # seeded (42), like open-instruct
    upsampled = select_indices(24, 30)
    assert upsampled[:24] == list(range(24)) and len(set(upsampled[24:])) == 6
    assert select_indices(24, 24) == list(range(24))
    for bad in ("a.jsonl", "a.jsonl x", "a.jsonl 0", "a.jsonl -1.0"):
        with pytest.raises(DatasetError):
            parse_mixer(bad)


def test_verifier_note_for_rows_of_another_verifier(tmp_path, clean_env, capsys):
    data = write_rlvr(tmp_path / "d.jsonl", [INSTRUCTION] * 2, verifier="general-quality")
    assert main(["train", "--datasets", f"{data} 1.0", "--dry-run"]) == 0
    assert "2 row(s) name verifier(s) general-quality (2), not general-flip" in capsys.readouterr().err


def test_step_row_sums_counts_and_keeps_other_metrics():
    from flip_reward.training.monitor import step_row

    logs = {
        "reward": 0.5,
        "reward_std": 0.1,
        "rewards/a/judge_errors": 2.0,
        "rewards/b/judge_errors": 1.0,
        "rewards/a/parse_failures": 3.0,
        "loss": 0.25,
        "note": "text",
    }
    row = step_row(4, logs, 1.23456)
    assert row == {
        "step": 4,
        "reward_mean": 0.5,
        "reward_std": 0.1,
        "judge_errors": 3,
        "parse_failures": 3,
        "input_errors": 0,
        "seconds": 1.235,
        "rewards/a/judge_errors": 2.0,
        "rewards/b/judge_errors": 1.0,
        "rewards/a/parse_failures": 3.0,
        "loss": 0.25,
    }
    assert step_row(5, {"loss": 0.1}, 1.0)["reward_mean"] is None  # a step without a generation batch


def test_reward_curve_with_no_rows(tmp_path):
    from flip_reward.training.monitor import plot_reward_curve

    assert plot_reward_curve([], tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"


def test_invalid_rows_are_named_by_their_physical_line(tmp_path, clean_env, capsys):
    data = write_rlvr(tmp_path / "d.jsonl", [INSTRUCTION])
    data.write_text(
        data.read_text() + "\n\n" + json.dumps({"messages": [], "ground_truth": "x", "dataset": "general-flip"}) + "\n"
    )
    assert main(["train", "--datasets", f"{data} 1.0", "--dry-run"]) == 2
    assert "row 4: field 'messages'" in capsys.readouterr().err
