"""The launcher (plugin imported, then grpo_fast.py run as __main__), FLIP_* settings, and the grpo_fast flag reader.

The launcher tests run against a stand-in checkout (tests/open_instruct_support.py: the documented verifier contract
plus a grpo_fast.py that reports what it was given), because upstream's grpo_fast.py needs CUDA, vLLM and DeepSpeed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from open_instruct_support import NO_CHECKOUT, REPO, upstream_checkout, write_standin_checkout

from flip_reward.core.settings import ENV_VARS, FlipSettings, FlipSettingsError
from flip_reward.launch.grpo_flags import grpo_fast_fields, unknown_flags


def launch(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FLIP_") and key not in ("OPEN_INSTRUCT_DIR", "PYTHONPATH")
    }
    environment.update(env, HF_HUB_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True")
    return subprocess.run(
        [sys.executable, "-m", "flip_reward.integrations.open_instruct.launch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=120,
        check=False,
    )


def test_launcher_registers_the_plugin_then_runs_grpo_fast_as_main(tmp_path: Path) -> None:
    checkout = write_standin_checkout(tmp_path / "checkout")
    result = launch(
        ["--dataset_mixer_list", "data/x.jsonl", "1.0", "--seed", "3"],
        tmp_path,
        OPEN_INSTRUCT_DIR=str(checkout),
        FLIP_DISABLE_THINKING="1",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["main"] == "__main__"
    assert report["argv"][0].endswith("open_instruct/grpo_fast.py")
    assert report["argv"][1:] == ["--dataset_mixer_list", "data/x.jsonl", "1.0", "--seed", "3"]
    assert report["verifiers"] == ["exact_match", "general-flip"]
    assert report["pythonpath"].split(os.pathsep)[0] == str(checkout)  # forwarded to Ray workers by grpo_fast
    assert "verifier 'general-flip' registered" in result.stderr and "disable_thinking=True" in result.stderr


def test_launcher_says_how_to_get_upstream_when_it_is_missing(tmp_path: Path) -> None:
    result = launch(["--help"], tmp_path)
    assert result.returncode != 0
    assert "open_instruct is not importable" in result.stderr
    assert "scripts/setup_open_instruct.sh" in result.stderr


def test_launcher_rejects_a_bad_flip_setting_before_training(tmp_path: Path) -> None:
    checkout = write_standin_checkout(tmp_path / "checkout")
    result = launch([], tmp_path, OPEN_INSTRUCT_DIR=str(checkout), FLIP_RETRIES="-1")
    assert result.returncode != 0
    assert "FLIP_RETRIES (environment): must be >= 0, got -1" in result.stderr


def test_settings_parse_every_variable() -> None:
    settings = FlipSettings.from_env(
        {
            "FLIP_DISABLE_THINKING": "yes",
            "FLIP_STRUCTURED_OUTPUT": "TRUE",
            "FLIP_THINK_PREFILLED": "on",
            "FLIP_CONCURRENCY": "16",
            "FLIP_RETRIES": "0",
            "FLIP_CACHE": "0",
            "FLIP_CACHE_DIR": "/tmp/c",
            "FLIP_TOKENIZER": "/models/qwen",
            "FLIP_REWARD_METRIC": "recall",
            "FLIP_RESTATEMENT_GUARD": "0",
            "FLIP_SAMPLE_LOG": "/tmp/traces/samples.jsonl",
            "FLIP_SAMPLE_EVERY": "10",
            "FLIP_SAMPLE_LOG_MAX_MB": "64",
            "HOSTED_VLLM_API_BASE": "http://h/v1",
        }
    )
    assert settings == FlipSettings(
        hosted_vllm_api_base="http://h/v1",
        disable_thinking=True,
        structured_output=True,
        think_prefilled=True,
        concurrency=16,
        retries=0,
        cache=False,
        cache_dir="/tmp/c",
        tokenizer="/models/qwen",
        reward_metric="recall",
        restatement_guard=False,
        sample_log="/tmp/traces/samples.jsonl",
        sample_every=10,
        sample_log_max_mb=64,
    )
    assert FlipSettings.from_env({}) == FlipSettings()
    assert settings.api_base("hosted_vllm/Qwen/Qwen3-4B") == "http://h/v1"
    assert settings.api_base("openai/gpt-4o") is None  # litellm resolves other providers itself


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FLIP_DISABLE_THINKING", "maybe"),
        ("FLIP_CONCURRENCY", "0"),
        ("FLIP_RETRIES", "x"),
        ("FLIP_REWARD_METRIC", "bleu"),
        ("FLIP_RESTATEMENT_GUARD", "sometimes"),
        ("FLIP_SAMPLE_EVERY", "0"),
        ("FLIP_SAMPLE_LOG_MAX_MB", "-5"),
        ("FLIP_ROUTING_STRATEGY", "least-busy"),  # removed: several judges sit behind vllm-router
        ("FLIP_JUDGE_API_BASES", "http://a/v1,http://b/v1"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(FlipSettingsError, match=name):
        FlipSettings.from_env({name: value})


@pytest.mark.parametrize("page", ["docs/open-instruct.md", "docs/knobs.md"])
def test_docs_document_every_flip_variable(page: str) -> None:
    text = (REPO / page).read_text(encoding="utf-8")
    for name in ENV_VARS:
        assert f"`{name}`" in text, f"{page} does not document {name}"


def test_unknown_flags() -> None:
    fields = {"seed", "load_ref_policy", "dataset_mixer_list"}
    arguments = [
        "--seed",
        "1",
        "--no_load_ref_policy",
        "--dataset-mixer-list",
        "a",
        "1.0",
        "--seed=2",
        "--max_token_length",
        "10",
        "-v",
        "--bogus=3",
    ]
    assert unknown_flags(arguments, fields) == ["--max_token_length", "--bogus"]


def test_grpo_fast_fields_of_the_stand_in_and_of_upstream(tmp_path: Path) -> None:
    stand_in = write_standin_checkout(tmp_path / "checkout")
    with pytest.raises(ValueError, match="ArgumentParserPlus"):
        grpo_fast_fields(stand_in)
    checkout = upstream_checkout()
    if checkout is None:
        pytest.skip(NO_CHECKOUT)
    fields = grpo_fast_fields(checkout)
    # one field from each argument dataclass of grpo_fast.py, and from GRPOExperimentConfig's bases
    assert {
        "beta",
        "exp_name",
        "learning_rate",
        "with_tracking",
        "output_dir",
        "chat_template_name",
        "gradient_checkpointing",
        "dataset_mixer_list",
        "llm_judge_model",
        "vllm_num_engines",
        "tools",
    } <= fields
    assert "max_token_length" not in fields  # used by some of upstream's older scripts, gone at the pin


def test_a_judge_unreachable_past_the_bound_stops_the_run_with_one_message(tmp_path: Path) -> None:
    """The stand-in trainer stalls (as upstream does when every reward is 0.0); the launcher's watchdog ends it."""
    checkout = write_standin_checkout(tmp_path / "checkout")
    dead = "http://127.0.0.1:9/v1"
    result = launch(
        [],
        tmp_path,
        OPEN_INSTRUCT_DIR=str(checkout),
        HOSTED_VLLM_API_BASE=dead,
        FLIP_MAX_OUTAGE_S="1",
        STANDIN_STALL_S="60",
    )
    assert result.returncode == 3
    lines = [line for line in result.stderr.splitlines() if line.startswith("flip-reward watchdog: ")]
    assert lines[0].startswith(f"flip-reward watchdog: judge {dead} is unreachable ({dead}/models is not reachable")
    assert lines[-1].startswith(
        f"flip-reward watchdog: error: the FLIP judge at {dead} has been unreachable for 1 s (FLIP_MAX_OUTAGE_S; last:"
    )
    assert len(lines) == 2


def test_watchdog_logs_each_transition_once(judge_server, capsys) -> None:
    """Against the scripted loopback judge (a test double), then a dead port, then the live judge again."""
    from flip_reward.integrations.open_instruct.watchdog import JudgeWatchdog

    watchdog = JudgeWatchdog(judge_server.base_url, max_outage_s=30)
    assert watchdog.observe(0.0) is False and capsys.readouterr().err == ""
    watchdog.base_url = "http://127.0.0.1:9/v1"
    assert [watchdog.observe(now) for now in (10.0, 20.0, 39.0, 40.0)] == [False, False, False, True]
    assert capsys.readouterr().err.count("is unreachable") == 1
    watchdog.base_url = judge_server.base_url
    assert watchdog.observe(45.0) is False
    assert capsys.readouterr().err == f"flip-reward watchdog: judge {judge_server.base_url} answers again after 35 s\n"


def test_the_watchdog_is_off_with_a_zero_bound_or_no_url(tmp_path: Path) -> None:
    checkout = write_standin_checkout(tmp_path / "checkout")
    off = launch(
        [],
        tmp_path,
        OPEN_INSTRUCT_DIR=str(checkout),
        HOSTED_VLLM_API_BASE="http://127.0.0.1:9/v1",
        FLIP_MAX_OUTAGE_S="0",
    )
    assert off.returncode == 0 and "watching the judge" not in off.stderr
    on = launch([], tmp_path, OPEN_INSTRUCT_DIR=str(checkout), HOSTED_VLLM_API_BASE="http://127.0.0.1:9/v1")
    assert on.returncode == 0 and "stops if it stays unreachable for 900 s (FLIP_MAX_OUTAGE_S)" in on.stderr
