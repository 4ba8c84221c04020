"""verl: ``flip_reward.integrations.verl.compute_score`` through verl's own reward loop (verl 0.9 from PyPI, on CPU),
``flip-reward data convert --format verl``, and scripts/train/verl_grpo_flip.sh --dry-run against verl's config.

verl's config is composed by Hydra from verl's own ``ppo_trainer.yaml`` with the overrides the script prints; its
``RewardLoopWorker`` (the body of the Ray actor verl starts per reward worker) is built in-process, loads the reward
function from that config and scores a ``DataProto`` of tokenized samples with the tiny model's tokenizer. Training
itself (vLLM rollouts, FSDP) needs GPUs and is not run. The judge is the scripted server (a test double).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from serve_support import ResponseScript, requests_for

from flip_reward.integrations import verl as flip_verl
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer

verl = pytest.importorskip("verl", reason="verl is not installed (make setup installs it with the 'verl' extra)")

SEA = "Write a poem about the sea."
ANSWERS = {
    "Waves roll in under a silver moon.": SEA,
    "Mountains rise above the clouds.": "Write a poem about mountains.",
    "FAIL500": Reply(content="scripted outage", status=500),
}
SCRIPT = REPO / "scripts" / "train" / "verl_grpo_flip.sh"
RESULT_KEYS = ["score", "f1", "inferred_instruction", "error_type", "restatement_masked"]


@pytest.fixture
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_rewards(monkeypatch):
    """Each test builds its own FlipRewards, from an environment without FLIP_* settings."""
    for name in [name for name in os.environ if name.startswith("FLIP_") or name == "HOSTED_VLLM_API_BASE"]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(flip_verl, "_rewards", {})
    flip_verl.process_trace.cache_clear()  # the FLIP_SAMPLE_LOG trace is read once per process
    yield
    flip_verl.process_trace.cache_clear()


def judge_kwargs(judge) -> dict:
    return {"judge_model": "hosted_vllm/scripted", "api_base": judge.base_url, "retries": 0}


def dry_run(**env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("FLIP_", "JUDGE_"))}
    environment.update(PYTHON=sys.executable, HF_HUB_OFFLINE="1", **env)
    return subprocess.run(
        ["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True, cwd=REPO, env=environment, timeout=300
    )


def trainer_overrides(output: str) -> list[str]:
    """The Hydra overrides of the ``trainer:`` line of a dry run (after ``-m verl.trainer.main_ppo``)."""
    words = shlex.split(next(line for line in output.splitlines() if line.startswith("trainer: "))[len("trainer: ") :])
    return words[words.index("verl.trainer.main_ppo") + 1 :]


def trainer_env(output: str) -> list[str]:
    """The ``VAR=value`` words of the ``trainer:`` line of a dry run (between ``env`` and the interpreter)."""
    words = shlex.split(next(line for line in output.splitlines() if line.startswith("trainer: "))[len("trainer: ") :])
    return words[1 : words.index("-m") - 1]


def verl_config(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return compose("ppo_trainer", overrides=overrides)


# --- the reward function on its own --------------------------------------------------------------------------------


def test_compute_score_returns_score_and_trace_fields_with_the_same_keys_and_types(judge) -> None:
    async def scores():
        kwargs = judge_kwargs(judge)
        return await asyncio.gather(
            flip_verl.compute_score("general-flip", "Waves roll in under a silver moon.", SEA, {}, **kwargs),
            flip_verl.compute_score("general-flip", "Mountains rise above the clouds.", SEA, None, **kwargs),
            flip_verl.compute_score("general-flip", "FAIL500", SEA, None, **kwargs),
            flip_verl.compute_score("general-flip", "", SEA, None, **kwargs),
        )

    assert asyncio.run(scores()) == [
        {"score": 1.0, "f1": 1.0, "inferred_instruction": SEA, "error_type": "", "restatement_masked": 0},
        {"score": 0.75, "f1": 0.75, "inferred_instruction": "Write a poem about mountains.", "error_type": "",
         "restatement_masked": 0},
        {"score": 0.0, "f1": 0.0, "inferred_instruction": "", "error_type": "judge", "restatement_masked": 0},
        {"score": 0.0, "f1": 0.0, "inferred_instruction": "", "error_type": "input", "restatement_masked": 0},
    ]  # fmt: skip


def test_one_flip_reward_per_process_and_options_and_the_flip_environment(judge, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_REWARD_METRIC", "precision")
    monkeypatch.setenv("FLIP_CONCURRENCY", "7")
    kwargs = judge_kwargs(judge)
    first = flip_verl.reward_for(kwargs)
    assert flip_verl.reward_for(dict(kwargs)) is first
    assert flip_verl.reward_for({**kwargs, "timeout": 5.0}) is not first
    assert first.reward_metric == "precision" and first.judge.config.max_concurrency == 7
    assert flip_verl.reward_for({**kwargs, "max_concurrency": 3}).judge.config.max_concurrency == 3
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)
    from_env = flip_verl.reward_for({"judge_model": "hosted_vllm/scripted"})
    assert from_env.judge.config.api_base == judge.base_url


def test_earlier_turns_come_from_extra_info_and_a_bad_option_is_a_config_error(judge) -> None:
    context = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
    result = asyncio.run(
        flip_verl.compute_score(
            "general-flip", "Waves roll in under a silver moon.", SEA, {"context": context}, **judge_kwargs(judge)
        )
    )
    assert result["score"] == 1.0
    assert "assistant: Hello! How can I help?" in judge.requests[-1]["messages"][-1]["content"]
    bad = asyncio.run(flip_verl.compute_score("general-flip", "x", SEA, None, **judge_kwargs(judge), reward_metric="x"))
    assert bad == {"score": 0.0, "f1": 0.0, "inferred_instruction": "", "error_type": "config", "restatement_masked": 0}


def test_samples_are_traced_and_flip_reward_inspect_reads_the_trace(judge, monkeypatch, tmp_path) -> None:
    """FLIP_SAMPLE_LOG: every sample, failures included (a judge error, a config error, an input error whose prompt
    holds no instruction), lands in this process's trace, which a real flip-reward inspect reads and counts."""
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))

    async def scores():
        kwargs = judge_kwargs(judge)
        return [
            await flip_verl.compute_score("general-flip", "Waves roll in under a silver moon.", SEA, {}, **kwargs),
            await flip_verl.compute_score("general-flip", "FAIL500", SEA, None, **kwargs),
            await flip_verl.compute_score("general-flip", "x", SEA, None, **kwargs, reward_metric="x"),
            await flip_verl.compute_score("general-flip", "Waves", None, None, **kwargs),
        ]

    assert [score["error_type"] for score in asyncio.run(scores())] == ["", "judge", "config", "input"]
    flip_verl.process_trace().flush()
    [trace] = (tmp_path / "traces").iterdir()
    assert trace.name == f"samples.pid{os.getpid()}.jsonl"
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [(line["sample"], line["step"], line["error_type"]) for line in lines] == [
        (1, None, None),
        (2, None, "judge"),
        (3, None, "config"),
        (4, None, "input"),
    ]
    inspected = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "inspect", str(trace), "--output-dir", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert inspected.returncode == 0, inspected.stderr
    overall = json.loads((tmp_path / "report" / "inspect.json").read_text(encoding="utf-8"))["overall"]
    rates = ("judge_error_rate", "config_error_rate", "input_error_rate", "parse_failure_rate", "internal_error_rate")
    assert (overall["completions"], overall["mean_reward"], *(overall[rate] for rate in rates)) == (
        4, 0.25, 0.25, 0.25, 0.25, 0.0, 0.0
    )  # fmt: skip


# --- through verl's reward loop ------------------------------------------------------------------------------------


def samples(tokenizer, rows: list[tuple[str, str, dict]]):
    """A verl DataProto of (instruction, response, extra_info) rows, tokenized and padded as verl's rollout does."""
    import numpy as np
    import torch
    from verl import DataProto

    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": row[0]}], add_generation_prompt=True)
               for row in rows]  # fmt: skip
    prompts = [p["input_ids"] if isinstance(p, dict) or hasattr(p, "keys") else p for p in prompts]
    responses = [tokenizer.encode(row[1] + "<|im_end|>", add_special_tokens=False) for row in rows]
    width_p, width_r = max(map(len, prompts)), max(map(len, responses))
    pad = tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (width_r - len(r)) for r in responses])
    mask = torch.tensor(
        [[0] * (width_p - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (width_r - len(r))
         for p, r in zip(prompts, responses)]
    )  # fmt: skip
    return DataProto.from_dict(
        tensors={"prompts": prompt_ids, "responses": response_ids, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(["general-flip"] * len(rows), dtype=object),
            "reward_model": np.array([{"style": "model", "ground_truth": row[0]} for row in rows], dtype=object),
            "extra_info": np.array([row[2] for row in rows], dtype=object),
        },
    )


def test_verl_reward_loop_scores_through_compute_score_with_the_script_overrides(judge, tiny_model_dir) -> None:
    import numpy as np
    from verl.experimental.reward_loop import RewardLoopWorker
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    completed = dry_run(PRESET="1gpu", JUDGE_BASE_URL=judge.base_url, JUDGE_MODEL="hosted_vllm/scripted")
    assert completed.returncode == 0, completed.stderr
    assert trainer_env(completed.stdout) == ["CUDA_VISIBLE_DEVICES=0"]  # the URL is in verl's config
    overrides = [o for o in trainer_overrides(completed.stdout) if o.lstrip("+").startswith("reward.")]
    overrides += [
        f"actor_rollout_ref.model.path={tiny_model_dir}",
        "+reward.custom_reward_function.reward_kwargs.retries=0",
    ]
    config = verl_config(overrides)

    async def score():
        worker = RewardLoopWorker(config)  # the body of verl's Ray reward actor, built on this loop
        data = samples(
            worker.input_tokenizer,
            [
                (SEA, "Waves roll in under a silver moon.", {}),
                (SEA, "Mountains rise above the clouds.", {"context": [{"role": "user", "content": "Hi"}]}),
                (SEA, "FAIL500", {}),
                (SEA, "Waves roll in under a silver moon.", {}),
            ],
        )
        return data, await worker.compute_score_batch(data)

    data, outputs = asyncio.run(score())
    scores = [output["reward_score"] for output in outputs]
    assert scores == [1.0, 0.75, 0.0, 1.0]
    assert requests_for(judge, "Waves roll in under a silver moon.") == 1  # one FlipReward: dedup and cache
    infos = [output["reward_extra_info"] for output in outputs]
    stacked = {key: np.array([info[key] for info in infos]) for key in infos[0]}  # as RewardLoopManager does
    assert list(stacked) == RESULT_KEYS
    assert stacked["error_type"].tolist() == ["", "", "judge", ""]
    assert stacked["f1"].dtype.kind == "f"
    rm_scores = NaiveRewardManager.assemble_rm_scores(data, scores)
    assert rm_scores.sum(dim=1).tolist() == scores  # each reward on the response's last token


# --- data and script -------------------------------------------------------------------------------------------------


def test_convert_writes_verl_parquet(tmp_path) -> None:
    import pyarrow.parquet as pq

    source = tmp_path / "chat.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": SEA}]},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                      {"role": "user", "content": "Name three primes."}]},
    ]  # fmt: skip
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "train.parquet"
    command = [
        sys.executable,
        "-m",
        "flip_reward.cli",
        "data",
        "convert",
        str(source),
        "-o",
        str(out),
        "--format",
        "verl",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == f"wrote 2 rows to {out} (verl, data_source general-flip)"
    assert pq.read_table(out).to_pylist()[1] == {
        "data_source": "general-flip",
        "prompt": rows[1]["messages"],
        "reward_model": {"style": "model", "ground_truth": "Name three primes."},
        "extra_info": {"index": 1, "context": rows[1]["messages"][:2]},
    }
    jsonl = subprocess.run([*command[:-4], "-o", str(tmp_path / "x.jsonl"), "--format", "verl"], capture_output=True,
                           text=True, check=False)  # fmt: skip
    assert jsonl.returncode == 2 and jsonl.stderr.endswith("x.jsonl: cannot write '.jsonl' files; use .parquet\n")


def test_dry_run_composes_against_verls_own_config(tmp_path) -> None:
    completed = dry_run(OUTPUT_DIR=str(tmp_path / "run"))
    assert completed.returncode == 0, completed.stderr
    overrides = trainer_overrides(completed.stdout)
    assert "algorithm.adv_estimator=grpo" in overrides
    assert "reward.custom_reward_function.path=pkg://flip_reward.integrations.verl" in overrides
    assert "+reward.custom_reward_function.reward_kwargs.judge_model=hosted_vllm/Qwen/Qwen3-4B" in overrides
    assert "+reward.custom_reward_function.reward_kwargs.api_base=http://127.0.0.1:8001/v1" in overrides
    assert [word for word in trainer_env(completed.stdout) if "HOSTED_VLLM" in word] == []
    assert completed.stdout.splitlines()[1].startswith("judge: JUDGE_SERVER=vllm JUDGE_GPUS=7 ")
    config = verl_config(overrides)  # Hydra rejects any key verl does not have
    assert config.algorithm.adv_estimator == "grpo"
    assert config.actor_rollout_ref.rollout.n == 8 and config.trainer.n_gpus_per_node == 7
    assert list(config.data.train_files) == [str(tmp_path / "run" / "data" / "train_0.parquet")]


def test_dry_run_presets_and_bad_knobs() -> None:
    one_gpu = dry_run(PRESET="1gpu")
    assert one_gpu.returncode == 0, one_gpu.stderr
    config = verl_config(trainer_overrides(one_gpu.stdout))
    assert config.trainer.n_gpus_per_node == 1 and config.actor_rollout_ref.rollout.gpu_memory_utilization == 0.3
    assert "CUDA_VISIBLE_DEVICES=0" in one_gpu.stdout
    assert "error: no preset 'nope'" in dry_run(PRESET="nope").stderr
    bad = dry_run(DATASETS="data/sample_rlvr_flip.jsonl")
    assert bad.returncode == 1 and "DATASETS must be 'NAME AMOUNT [NAME AMOUNT ...]'" in bad.stderr


def test_judge_url_credentials_never_reach_verls_command_line() -> None:
    """verl prints its config, overrides included: a URL with credentials goes in HOSTED_VLLM_API_BASE, shown
    redacted even with an unencoded "#" in the password; another provider's URL with credentials is refused; an
    "@" in a path is no credentials: that URL stays in verl's config."""
    url = "http://user:pa#s3cret@127.0.0.1:9/v1"
    completed = dry_run(PRESET="1gpu", JUDGE_BASE_URL=url, JUDGE_MODEL="hosted_vllm/scripted")
    assert completed.returncode == 0, completed.stderr
    assert not [override for override in trainer_overrides(completed.stdout) if "api_base" in override]
    assert "HOSTED_VLLM_API_BASE=http://***@127.0.0.1:9/v1" in trainer_env(completed.stdout)
    assert "s3cret" not in completed.stdout + completed.stderr
    refused = dry_run(PRESET="1gpu", JUDGE_BASE_URL="http://user:s3cret@127.0.0.1:9/v1", JUDGE_MODEL="openai/gpt-4o")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr.endswith(
        "JUDGE_BASE_URL holds credentials, which verl would print: they need a hosted_vllm/ JUDGE_MODEL\n"
    )
    in_path = dry_run(PRESET="1gpu", JUDGE_BASE_URL="http://127.0.0.1:9/v1/a@b", JUDGE_MODEL="openai/gpt-4o")
    assert in_path.returncode == 0, in_path.stderr
    assert "+reward.custom_reward_function.reward_kwargs.api_base=http://127.0.0.1:9/v1/a@b" in trainer_overrides(
        in_path.stdout
    )
