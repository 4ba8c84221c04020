"""The TRL reward functions (flip_reward.integrations.trl), called the way TRL 1.16's GRPOTrainer calls them, against
the scripted loopback judge (a test double with known answers and faults)."""

from __future__ import annotations

import asyncio
import json
import pickle

import pytest
from conftest import FAST_RETRIES

from flip_reward.core.metrics import f1_score
from flip_reward.integrations.trl import (
    JudgeRewardFunction,
    RewardStats,
    completion_text,
    flip_reward_function,
    pointwise_reward_function,
)
from flip_reward.serving.scripted_judge import Reply, flip_answer, judged_response

INSTRUCTION = "Write a short poem about the sea"
RESPONSES = ["Write a short poem about the sea", "Tell me a joke", "a poem about the sea, please"]
EXPECTED = [f1_score(response, INSTRUCTION)["f1"] for response in RESPONSES]


def echo_judge(request: dict) -> str:
    """The judge 'infers' the response's own text, so each reward is F1(response, instruction): known exactly."""
    return flip_answer(judged_response(request))


def make_reward(server, **options) -> JudgeRewardFunction:
    """The guard is off by default here: RESPONSES[0] restates the instruction so that the echo judge gives a reward
    of exactly 1.0 (the guard would mask it: tests/test_restatement.py and test_guard_reaches_trl cover that)."""
    options = {**FAST_RETRIES, "retries": 0, "restatement_guard": False, **options}
    return flip_reward_function("hosted_vllm/judge", server.base_url, **options)


def call(reward, **arguments) -> list[float]:
    """Await the async reward function on a loop of its own (TRL awaits it on its daemon loop)."""
    return asyncio.run(reward(**arguments))


def trl_call(reward, prompts, completions, **extra):
    """Call ``reward`` with the keyword arguments GRPOTrainer._calculate_rewards passes."""
    metrics, extras = {}, {}
    rewards = call(
        reward,
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2]] * len(prompts),
        dataset=["general-flip"] * len(prompts),
        trainer_state=object(),
        log_metric=lambda name, value: metrics.setdefault(name, value),
        log_extra=lambda column, values: extras.setdefault(column, values),
        **extra,
    )
    return rewards, metrics, extras


def test_expected_values_are_distinct():
    assert EXPECTED[0] == 1.0 and EXPECTED[1] == 0.0 and 0.0 < EXPECTED[2] < 1.0


def test_conversational_rewards_in_order_with_metrics(judge_server, script):
    script.default = echo_judge
    reward = make_reward(judge_server)
    prompts = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": INSTRUCTION}]] * 3
    completions = [[{"role": "assistant", "content": response}] for response in RESPONSES]
    rewards, metrics, extras = trl_call(reward, prompts, completions)
    assert rewards == EXPECTED
    assert all(type(value) is float for value in rewards)
    assert metrics["rewards/flip_reward/judge_errors"] == 0
    assert metrics["rewards/flip_reward/parse_failures"] == 0
    assert metrics["rewards/flip_reward/input_errors"] == 0
    assert metrics["rewards/flip_reward/seconds"] >= 0
    assert extras == {"flip_reward/error_type": ["", "", ""], "flip_reward/inferred_instruction": RESPONSES}
    assert reward.__name__ == "flip_reward"


def test_plain_text_prompts_and_completions(judge_server, script):
    script.default = echo_judge
    reward = make_reward(judge_server)
    rewards = call(reward, prompts=[INSTRUCTION] * 3, completions=RESPONSES)  # no log callbacks: plain call works too
    assert rewards == EXPECTED
    assert reward.last_batch == RewardStats(3, sum(EXPECTED), seconds=reward.last_batch.seconds)


def test_failures_are_zero_and_counted(judge_server, script):
    script.default = echo_judge
    script.queue = [Reply(status=400), "no json at all"]  # a judge error (not retried), then a parse failure
    reward = make_reward(judge_server)
    prompts = [INSTRUCTION] * 3
    completions = [
        [{"role": "assistant", "content": "alpha"}],
        [{"role": "assistant", "content": "beta"}],
        [{"role": "assistant", "content": "<think>only thinking</think>"}],
    ]
    rewards, metrics, extras = trl_call(reward, prompts, completions)
    assert rewards == [0.0, 0.0, 0.0]
    assert sorted(extras["flip_reward/error_type"]) == ["input", "judge", "parse"]
    assert (
        metrics["rewards/flip_reward/judge_errors"],
        metrics["rewards/flip_reward/parse_failures"],
        metrics["rewards/flip_reward/input_errors"],
    ) == (1, 1, 1)
    assert reward.totals.samples == 3 and reward.totals.judge_errors == 1


def test_pickle_round_trip_before_and_after_use(judge_server, script):
    script.default = echo_judge
    reward = make_reward(judge_server)
    fresh = pickle.loads(pickle.dumps(reward))
    assert fresh.__name__ == "flip_reward"
    assert call(fresh, prompts=[INSTRUCTION] * 3, completions=RESPONSES) == EXPECTED
    used = pickle.loads(pickle.dumps(fresh))  # nothing bound to an event loop is pickled
    assert call(used, prompts=[INSTRUCTION] * 3, completions=RESPONSES) == EXPECTED
    assert used.totals.samples == 6


def test_trl_awaits_it_on_its_own_loop_and_every_step_reuses_the_clients(judge_server, script):
    from trl.trainer.utils import is_async_callable, shutdown_event_loop_in_daemon, start_event_loop_in_daemon

    from flip_reward.judge import loops

    script.default = echo_judge
    reward = make_reward(judge_server)
    assert is_async_callable(reward)  # so GRPOTrainer gathers it on its daemon loop
    thread, loop, ready = start_event_loop_in_daemon(name="trl-test-loop")
    ready.wait()
    try:
        steps = [
            asyncio.run_coroutine_threadsafe(reward(prompts=[INSTRUCTION] * 3, completions=RESPONSES), loop).result(
                timeout=30
            )
            for _ in range(3)
        ]
        assert steps == [EXPECTED] * 3
        clients = [key for key in loops._registry[loop] if isinstance(key, tuple) and key[0] == "aiohttp"]
        assert len(clients) == 1  # one HTTP client served every step
        asyncio.run_coroutine_threadsafe(loops.close_clients(), loop).result(timeout=10)
        assert loop not in loops._registry
    finally:
        shutdown_event_loop_in_daemon(thread, loop)


def test_awaited_inside_the_callers_running_loop(judge_server, script):
    script.default = echo_judge
    reward = make_reward(judge_server)

    async def inside() -> list[float]:
        return await reward(prompts=[INSTRUCTION] * 3, completions=RESPONSES)

    assert asyncio.run(inside()) == EXPECTED


def test_pointwise_baseline_through_the_same_wrapper(judge_server, script):
    script.default = lambda request: json.dumps({"REASONING": "Fine.", "SCORE": 7})
    reward = pointwise_reward_function("hosted_vllm/judge", judge_server.base_url, **FAST_RETRIES)
    rewards, metrics, _ = trl_call(reward, [[{"role": "user", "content": INSTRUCTION}]] * 2, ["Waves.", "Tides."])
    assert reward.__name__ == "pointwise_judge_reward"
    assert rewards == [pytest.approx(0.7), pytest.approx(0.7)]
    assert metrics["rewards/pointwise_judge_reward/parse_failures"] == 0
    assert "Waves." in json.dumps(judge_server.requests[0])  # the pointwise judge sees the response ...
    assert INSTRUCTION in json.dumps(judge_server.requests[0])  # ... and the prompt


def test_flip_judge_never_sees_the_instruction(judge_server, script):
    script.default = echo_judge
    reward = make_reward(judge_server)
    call(
        reward,
        prompts=[[{"role": "user", "content": INSTRUCTION}]],
        completions=[[{"role": "assistant", "content": "x"}]],
    )
    assert INSTRUCTION not in json.dumps(judge_server.requests[0])


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "answer"}], "answer"),
        ({"role": "assistant", "content": "one message"}, "one message"),
        ([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "a\nb"),
        (
            [
                {"role": "assistant", "content": None, "tool_calls": [{}]},
                {"role": "tool", "content": "42"},
                {"role": "assistant", "content": "It is 42."},
            ],
            "It is 42.",
        ),
        ([{"role": "assistant", "content": None}], ""),
        (17, 17),
    ],
)
def test_completion_text(completion, text):
    assert completion_text(completion) == text


def test_bad_arguments():
    with pytest.raises(TypeError, match="ascore"):
        JudgeRewardFunction(object())
    with pytest.raises(ValueError, match="no '/'"):
        JudgeRewardFunction(flip_reward_function("hosted_vllm/j", "http://127.0.0.1:9/v1").scorer, "a/b")
    reward = flip_reward_function("hosted_vllm/j", "http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        call(reward, prompts=["a", "b"], completions=["x"])


def test_guard_reaches_trl(judge_server, script):
    """On by default in the TRL reward: the restated first response is nothing but a restatement (an input failure,
    0.0, no judge call); the others are scored exactly as without the guard."""
    script.default = echo_judge
    reward = flip_reward_function("hosted_vllm/judge", judge_server.base_url, **FAST_RETRIES, retries=0)
    rewards, _, extras = trl_call(reward, [INSTRUCTION] * 3, RESPONSES)
    assert rewards == [0.0, *EXPECTED[1:]]
    assert extras["flip_reward/error_type"] == ["input", "", ""]
    assert len(judge_server.requests) == 2
