"""The reward path every trainer adapter shares (flip_reward.integrations.process_reward), against the scripted judge
(flip_reward.serving.scripted_judge: a scripted OpenAI-compatible server on loopback, a test double): exact rewards
from synchronous callers on a thread pool, on a thread running an event loop and in a forked child (AReaL's process
pool); a transient judge failure retried; a persistent one and a bad setting as 0.0 with the error; the judge's
settings from the ``FLIP_JUDGE_*`` variables."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest
from serve_support import FirstFails, ResponseScript, requests_for

from flip_reward.integrations import process_reward
from flip_reward.serving.scripted_judge import ScriptedJudgeServer

SEA = "Write a poem about the sea."
WAVES, MOUNTAINS = "Waves roll in under a silver moon.", "Mountains rise above the clouds."
ANSWERS = {WAVES: SEA, MOUNTAINS: "Write a poem about mountains."}


@pytest.fixture(autouse=True)
def fresh_process(fresh_flip_reward):
    """Each test builds its own FlipRewards, from an environment without FLIP_* settings."""


@pytest.fixture
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


def options(judge, **more) -> dict:
    return {"judge_model": "hosted_vllm/scripted", "api_base": judge.base_url, **more}


def child_reward(api_base: str) -> float:
    """Run in a forked child: the reward of WAVES, synchronously."""
    return process_reward.score_sample_sync(SEA, WAVES, {"judge_model": "hosted_vllm/scripted", "api_base": api_base})


def test_sync_callers_on_a_thread_pool_and_on_an_event_loop_thread_get_exact_rewards(judge) -> None:
    samples = [(SEA, WAVES), (SEA, MOUNTAINS)] * 4
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda sample: process_reward.score_sample_sync(*sample, options(judge)), samples))
    assert [result.reward for result in results] == [1.0, 0.75] * 4

    async def from_a_running_loop() -> list[float]:
        return [result.reward for result in process_reward.score_samples_sync(samples[:2], options(judge))]

    assert asyncio.run(from_a_running_loop()) == [1.0, 0.75]


def test_a_forked_child_scores_on_a_loop_of_its_own(judge) -> None:
    assert process_reward.score_sample_sync(SEA, WAVES, options(judge)).reward == 1.0  # the parent's loop runs
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(child_reward, (judge.base_url,)).get(timeout=120)  # a guard against a hang
    assert result.reward == 1.0 and result.error is None


def test_a_transient_judge_failure_is_retried_and_a_persistent_one_is_zero_with_the_error() -> None:
    with ScriptedJudgeServer(FirstFails(ANSWERS, failures=1)) as judge:
        retried = process_reward.score_sample_sync(SEA, WAVES, options(judge))
        assert (retried.reward, retried.error, requests_for(judge, WAVES)) == (1.0, None, 2)
        failed = process_reward.score_sample_sync(SEA, MOUNTAINS, options(judge, retries=0))
    assert process_reward.result_info(failed) == {
        "f1": 0.0,
        "inferred_instruction": "",
        "error": f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted "
        "transient outage",
        "error_type": "judge",
        "restatement_masked": 0,
    }
    assert failed.reward == 0.0


def test_a_bad_setting_is_a_config_error_on_every_sample(judge, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_REWARD_METRIC", "recall@5")
    results = process_reward.score_samples_sync([(SEA, WAVES), (SEA, MOUNTAINS)], options(judge))
    assert [(result.reward, str(result.error_type)) for result in results] == [(0.0, "config")] * 2
    assert results[0].error == (
        "FlipSettingsError: FLIP_REWARD_METRIC (environment): must be one of f1, precision, recall, got 'recall@5'"
    )
    assert judge.requests == []


def test_the_judge_and_its_settings_come_from_the_flip_judge_variables(judge, monkeypatch) -> None:
    monkeypatch.setenv("FLIP_JUDGE_MODEL", "hosted_vllm/scripted")
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)
    monkeypatch.setenv("FLIP_JUDGE_MAX_TOKENS", "77")
    monkeypatch.setenv("FLIP_JUDGE_TEMPERATURE", "0.5")
    assert process_reward.score_sample_sync(SEA, MOUNTAINS).reward == 0.75
    request = judge.requests[-1]
    assert (request["model"], request["max_tokens"], request["temperature"]) == ("scripted", 77, 0.5)
