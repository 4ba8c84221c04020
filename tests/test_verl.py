"""verl: ``flip_reward.integrations.verl.compute_score`` through verl's own reward loop (verl 0.9 from PyPI, on CPU),
``flip-reward data convert --format verl``, and the command of ``flip-reward launch verl`` against verl's config.

verl's config is composed by Hydra from verl's own ``ppo_trainer.yaml`` with the overrides the launcher renders; its
``RewardLoopWorker`` (the body of the Ray actor verl starts per reward worker) is built in-process, loads the reward
function from that config and scores a ``DataProto`` of tokenized samples with the tiny model's tokenizer. Training
itself (vLLM rollouts, FSDP) needs GPUs and is not run. The judge is the scripted server (a test double).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serve_support import ResponseScript, inspected_overall, requests_for

from flip_reward.integrations import process_reward
from flip_reward.integrations import verl as flip_verl
from flip_reward.launch.run_judge import run_judge
from flip_reward.launch.verl import VerlSettings, verl_data, verl_trainer
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer

verl = pytest.importorskip("verl", reason="verl is not installed (make setup installs it with the 'verl' extra)")

SEA = "Write a poem about the sea."
ANSWERS = {
    "Waves roll in under a silver moon.": SEA,
    "Mountains rise above the clouds.": "Write a poem about mountains.",
    "FAIL500": Reply(content="scripted outage", status=500),
}
RESULT_KEYS = ["score", "f1", "inferred_instruction", "error", "error_type", "restatement_masked"]


@pytest.fixture
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_rewards(fresh_flip_reward):
    """Each test builds its own FlipRewards, from an environment without FLIP_* settings."""


def judge_kwargs(judge) -> dict:
    return {"judge_model": "hosted_vllm/scripted", "api_base": judge.base_url, "retries": 0}


def trainer(**environ: str):
    """The launcher's verl command for settings ``environ`` (flip_reward.launch.verl, as `launch verl` builds it)."""
    settings = VerlSettings.from_sources({}, environ)
    judge = run_judge(settings, Path("judge"), sys.executable, dry_run=True)
    return verl_trainer(settings, verl_data(settings), judge.url, "python")


def overrides(**environ: str) -> list[str]:
    """The Hydra overrides of the launcher's verl command (after ``-m verl.trainer.main_ppo``)."""
    command = trainer(**environ).command
    return command[command.index("verl.trainer.main_ppo") + 1 :]


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

    outage = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    assert asyncio.run(scores()) == [
        {"score": 1.0, "f1": 1.0, "inferred_instruction": SEA, "error": "", "error_type": "", "restatement_masked": 0},
        {"score": 0.75, "f1": 0.75, "inferred_instruction": "Write a poem about mountains.", "error": "",
         "error_type": "", "restatement_masked": 0},
        {"score": 0.0, "f1": 0.0, "inferred_instruction": "", "error": outage, "error_type": "judge",
         "restatement_masked": 0},
        {"score": 0.0, "f1": 0.0, "inferred_instruction": "", "error": "response is empty once reasoning is removed",
         "error_type": "input", "restatement_masked": 0},
    ]  # fmt: skip


def test_one_flip_reward_per_process_and_options_and_the_flip_environment(judge, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_REWARD_METRIC", "precision")
    monkeypatch.setenv("FLIP_CONCURRENCY", "7")
    kwargs = judge_kwargs(judge)
    first = process_reward.reward_for(kwargs)
    assert process_reward.reward_for(dict(kwargs)) is first
    assert process_reward.reward_for({**kwargs, "timeout": 5.0}) is not first
    assert first.reward_metric == "precision" and first.judge.config.max_concurrency == 7
    assert process_reward.reward_for({**kwargs, "max_concurrency": 3}).judge.config.max_concurrency == 3
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)
    from_env = process_reward.reward_for({"judge_model": "hosted_vllm/scripted"})
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
    assert bad == {
        "score": 0.0, "f1": 0.0, "inferred_instruction": "", "error_type": "config", "restatement_masked": 0,
        "error": "ValueError: reward_metric must be one of ('f1', 'precision', 'recall'), got 'x'",
    }  # fmt: skip


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
    process_reward.process_trace().flush()
    [trace] = (tmp_path / "traces").iterdir()
    assert trace.name == f"samples.pid{os.getpid()}.jsonl"
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [(line["sample"], line["step"], line["error_type"]) for line in lines] == [
        (1, None, None),
        (2, None, "judge"),
        (3, None, "config"),
        (4, None, "input"),
    ]
    overall = inspected_overall(trace, tmp_path / "report")
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


def test_verl_reward_loop_scores_through_compute_score_with_the_launchers_overrides(judge, tiny_model_dir) -> None:
    import numpy as np
    from verl.experimental.reward_loop import RewardLoopWorker
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    settings = {"PRESET": "1gpu", "JUDGE_BASE_URL": judge.base_url, "JUDGE_MODEL": "hosted_vllm/scripted"}
    assert trainer(**settings).env == {"CUDA_VISIBLE_DEVICES": "0"}  # the URL is in verl's config
    reward = [o for o in overrides(**settings) if o.lstrip("+").startswith("reward.")]
    reward += [
        f"actor_rollout_ref.model.path={tiny_model_dir}",
        "+reward.custom_reward_function.reward_kwargs.retries=0",
    ]
    config = verl_config(reward)

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


# --- data and the launcher ------------------------------------------------------------------------------------------


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


def test_the_launchers_command_composes_against_verls_own_config() -> None:
    default = overrides(OUTPUT_DIR="run")
    assert "+reward.custom_reward_function.reward_kwargs.api_base=http://127.0.0.1:8001/v1" in default
    config = verl_config(default)  # Hydra rejects any key verl does not have
    assert config.algorithm.adv_estimator == "grpo" and config.actor_rollout_ref.actor.use_kl_loss is False
    assert config.actor_rollout_ref.rollout.n == 8 and config.trainer.n_gpus_per_node == 7
    assert config.actor_rollout_ref.actor.optim.lr == 1e-6
    assert list(config.data.train_files) == ["run/data/train_0.parquet"]
    assert list(config.data.val_files) == ["run/data/val.parquet"]
    one_gpu = verl_config(overrides(PRESET="1gpu", BETA="0.01"))
    assert one_gpu.trainer.n_gpus_per_node == 1 and one_gpu.actor_rollout_ref.rollout.gpu_memory_utilization == 0.3
    assert one_gpu.actor_rollout_ref.actor.use_kl_loss is True and one_gpu.actor_rollout_ref.actor.kl_loss_coef == 0.01
