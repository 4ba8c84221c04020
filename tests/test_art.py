"""ART: ``flip_reward.integrations.art.flip_score_group`` through ART's own code (openpipe-art 0.5.18 from PyPI).

Trajectories are ART's ``Trajectory`` (replies as openai ``Choice`` objects, as ART's client records them, or as
assistant message dicts), grouped by ART's ``TrajectoryGroup`` from rollout coroutines and gathered by ART's own
``gather_trajectory_groups`` with ``after_each=flip_score_group``, as RULER's group scorer is used. Training (ART's
backends: vLLM, Unsloth, Megatron) needs GPUs and is not run. The judge is the scripted OpenAI-compatible server (a
test double), reached through the FLIP_* environment.
"""

from __future__ import annotations

import asyncio
import functools
import json

import art
import pytest
from art.transformers import patches as art_patches
from openai.types.chat.chat_completion import ChatCompletionMessage, Choice
from serve_support import FirstFails, inspected_overall, requests_for
from transformers import masking_utils

from flip_reward.integrations import process_reward
from flip_reward.integrations.art import flip_score_group, trajectory_sample
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, judged_response

# `import art` patches transformers' masking for the transformers version of ART's own trainer; the other tests of
# this process train with the installed transformers as it is (TRL's GRPO steps fail under the patch)
masking_utils._preprocess_mask_arguments = art_patches._preprocess_mask_arguments

SEA = "Write a poem about the sea."
MOUNTAINS = "Write a poem about mountains."
WAVES, PEAKS, OUTAGE = "Waves roll in under a silver moon.", "Mountains rise above the clouds.", "FAIL500"


@pytest.fixture
def judge(fresh_flip_reward, monkeypatch):
    """The scripted judge, named to FLIP by the environment, with one retry: the first request about every
    response answers HTTP 500 (a transient outage), so every reward comes after a retry."""
    answers = {WAVES: SEA, PEAKS: MOUNTAINS, OUTAGE: Reply(content="scripted outage", status=500)}
    with ScriptedJudgeServer(FirstFails(answers)) as server:
        monkeypatch.setenv("FLIP_JUDGE_MODEL", "hosted_vllm/scripted")
        monkeypatch.setenv("HOSTED_VLLM_API_BASE", server.base_url)
        monkeypatch.setenv("FLIP_RETRIES", "1")
        yield server


def choice(content: str | None, **message: object) -> Choice:
    """A reply as ART's client records it: an openai ``Choice``."""
    return Choice(finish_reason="stop", index=0,
                  message=ChatCompletionMessage(role="assistant", content=content, **message))  # fmt: skip


def chat(instruction: str, reply: str) -> art.Trajectory:
    """A one-turn trajectory under a system prompt, its reply a ``Choice``."""
    return art.Trajectory(
        messages_and_choices=[
            {"role": "system", "content": "You are a poet."},
            {"role": "user", "content": instruction},
            choice(reply),
        ],
        reward=0.25,
    )


TEXT_PARTS = [{"type": "text", "text": "Write a poem"}, {"type": "text", "text": "about mountains."}]
PARTS = art.Trajectory(
    messages_and_choices=[{"role": "user", "content": TEXT_PARTS}, {"role": "assistant", "content": PEAKS}]
)
TOOLS = art.Trajectory(
    messages_and_choices=[
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": SEA},
        choice(None, tool_calls=[{"id": "call_1", "type": "function",
                                  "function": {"name": "search", "arguments": '{"q": "mountains"}'}}]),
        {"role": "tool", "tool_call_id": "call_1", "content": "Mountains are tall."},
        choice(PEAKS),
    ],
    metadata={"scenario": "tools"},
)  # fmt: skip


def flip(f1: float, inferred: str = "", error: str = "", error_type: str = "") -> tuple[dict, dict]:
    """The FLIP metrics and metadata of a trajectory scored ``f1`` (``independent_reward`` aside)."""
    metrics = {"flip_f1": f1, "flip_restatement_masked": 0, "flip_failed": int(bool(error))}
    return metrics, {"flip_inferred_instruction": inferred, "flip_error": error, "flip_error_type": error_type}


def outcome(trajectory: art.Trajectory) -> tuple[float, dict, dict]:
    metrics = {key: value for key, value in trajectory.metrics.items() if key.startswith("flip_")}
    metadata = {key: value for key, value in trajectory.metadata.items() if key.startswith("flip_")}
    return trajectory.reward, metrics, metadata


def test_what_reaches_the_reward_from_art_messages_and_choices() -> None:
    assert trajectory_sample(chat(SEA, WAVES)) == (
        [{"role": "system", "content": "You are a poet."}, {"role": "user", "content": SEA}], WAVES
    )  # fmt: skip
    assert trajectory_sample(PARTS) == ([PARTS.messages_and_choices[0]], PEAKS)
    prompt, response = trajectory_sample(TOOLS)
    assert ([message["role"] for message in prompt], response) == (["user", "assistant", "user", "assistant", "tool"],
                                                                   PEAKS)  # fmt: skip
    assert trajectory_sample(art.Trajectory(messages_and_choices=[{"role": "user", "content": SEA}])) == (
        [{"role": "user", "content": SEA}], ""
    )  # fmt: skip


def test_the_group_comes_back_scored_with_the_exact_f1_as_ruler_returns_it(judge) -> None:
    group = art.TrajectoryGroup([chat(SEA, WAVES), PARTS, TOOLS], metadata={"step": 3}, logs=["rolled out"])
    scored = asyncio.run(flip_score_group(group))
    assert isinstance(scored, art.TrajectoryGroup) and scored is not group
    assert [outcome(trajectory) for trajectory in scored] == [
        (1.0, *flip(1.0, SEA)), (1.0, *flip(1.0, MOUNTAINS)), (0.75, *flip(0.75, MOUNTAINS))
    ]  # fmt: skip
    assert [trajectory.metrics["independent_reward"] for trajectory in scored] == [0.25, 0.0, 0.0]
    assert [trajectory.logs for trajectory in scored] == [
        [f"FLIP inferred instruction: {SEA!r}"], [f"FLIP inferred instruction: {MOUNTAINS!r}"],
        [f"FLIP inferred instruction: {MOUNTAINS!r}"],
    ]  # fmt: skip
    assert (scored.metadata, scored.logs, scored.trajectories[2].metadata["scenario"]) == (
        {"step": 3}, ["rolled out"], "tools"
    )  # fmt: skip
    assert [(trajectory.reward, trajectory.metrics, trajectory.logs) for trajectory in group] == [
        (0.25, {}, []), (0.0, {}, []), (0.0, {}, [])
    ]  # the originals are left as they were  # fmt: skip
    # what the judge was asked about which response (a retry asks the same again)
    asked = {request["messages"][-1]["content"]: judged_response(request) for request in judge.requests}
    [tools] = [question for question in asked if "Hello! How can I help?" in question]
    assert asked[tools] == PEAKS and "Mountains are tall." not in tools


def test_a_transient_failure_is_retried_and_a_persistent_one_is_zero_with_the_error_in_metadata_and_logs(
    judge,
) -> None:
    group = art.TrajectoryGroup(
        [chat(SEA, WAVES), chat(SEA, OUTAGE), art.Trajectory(messages_and_choices=[{"role": "user", "content": SEA}])]
    )
    blip, outage, silent = asyncio.run(flip_score_group(group)).trajectories
    assert (outcome(blip), requests_for(judge, WAVES)) == ((1.0, *flip(1.0, SEA)), 2)
    failure = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    assert (outcome(outage), outage.logs, requests_for(judge, OUTAGE)) == (
        (0.0, *flip(0.0, error=failure, error_type="judge")), [f"FLIP reward 0.0 (judge): {failure}"], 2
    )  # fmt: skip
    assert outcome(silent) == (0.0, *flip(0.0, error="response is empty once reasoning is removed", error_type="input"))


def test_items_art_cannot_read_as_messages_are_an_input_error_naming_the_first(judge) -> None:
    odd = art.Trajectory(messages_and_choices=[{"role": "user", "content": SEA}, 42, choice(WAVES)])
    [scored] = asyncio.run(flip_score_group(art.TrajectoryGroup([odd]))).trajectories
    error = "prompt: message 1 must be an object with a string 'role'"
    assert (outcome(scored), scored.logs) == ((0.0, *flip(0.0, error=error, error_type="input")),
                                              [f"FLIP reward 0.0 (input): {error}"])  # fmt: skip


def test_gather_trajectory_groups_scores_each_group_after_its_rollouts(judge) -> None:
    """ART's own gathering: groups built from rollout coroutines, one rollout failing (kept in the group's
    exceptions, as ART does under max_exceptions), FLIP as after_each; options given through functools.partial."""

    async def rollout(instruction: str, reply: str) -> art.Trajectory:
        await asyncio.sleep(0)
        if reply == "crash":
            raise RuntimeError("the environment crashed")
        return chat(instruction, reply)

    async def gather() -> list[art.TrajectoryGroup]:
        return await art.gather_trajectory_groups(
            [
                art.TrajectoryGroup(rollout(SEA, reply) for reply in (WAVES, PEAKS, "crash")),
                art.TrajectoryGroup(rollout(MOUNTAINS, reply) for reply in (PEAKS, WAVES)),
            ],
            pbar_desc=None,
            max_exceptions=1,
            after_each=functools.partial(flip_score_group, options={"reward_metric": "precision"}),
        )

    first, second = asyncio.run(gather())
    by_reply = lambda group: sorted((t.messages()[-1]["content"], t.reward) for t in group)  # noqa: E731
    assert by_reply(first) == [(PEAKS, 0.75), (WAVES, 1.0)]
    assert by_reply(second) == [(PEAKS, 1.0), (WAVES, 0.75)]
    assert [exception.message for exception in first.exceptions] == ["the environment crashed"]
    assert [json.loads(options) for options in process_reward._rewards] == [{"reward_metric": "precision"}]


def test_a_bad_option_is_a_config_error_on_every_trajectory(judge) -> None:
    scored = asyncio.run(flip_score_group(art.TrajectoryGroup([chat(SEA, WAVES)]), options={"reward_metric": "x"}))
    error = "ValueError: reward_metric must be one of ('f1', 'precision', 'recall'), got 'x'"
    assert [outcome(trajectory) for trajectory in scored] == [(0.0, *flip(0.0, error=error, error_type="config"))]


def test_samples_are_traced_and_flip_reward_inspect_reads_the_trace(judge, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    for trajectory in (chat(SEA, WAVES), chat(SEA, OUTAGE), PARTS):
        asyncio.run(flip_score_group(art.TrajectoryGroup([trajectory])))  # one after another: a known order
    process_reward.process_trace().flush()
    [trace] = (tmp_path / "traces").iterdir()
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [(line["sample"], line["reward"], line["error_type"]) for line in lines] == [
        (1, 1.0, None), (2, 0.0, "judge"), (3, 1.0, None)
    ]  # fmt: skip
    overall = inspected_overall(trace, tmp_path / "report")
    assert (overall["completions"], overall["mean_reward"], overall["judge_error_rate"]) == (3, 2 / 3, 1 / 3)


def test_a_sample_log_path_that_names_no_file_leaves_the_rewards_to_art(judge, monkeypatch, caplog) -> None:
    """``FLIP_SAMPLE_LOG=.`` (a directory with no file name): nothing is traced, said once in the log, and every
    trajectory of ART's own gathering still gets its reward (no exception into ``gather_trajectory_groups``)."""
    monkeypatch.setenv("FLIP_SAMPLE_LOG", ".")

    async def rollout(reply: str) -> art.Trajectory:
        return chat(SEA, reply)

    async def gather() -> list[art.TrajectoryGroup]:
        group = art.TrajectoryGroup(rollout(reply) for reply in (WAVES, PEAKS))
        return await art.gather_trajectory_groups([group], pbar_desc=None, after_each=flip_score_group)

    [group] = asyncio.run(gather())
    assert sorted(trajectory.reward for trajectory in group) == [0.75, 1.0]
    assert process_reward.process_trace() is None
    [logged] = [record.getMessage() for record in caplog.records if "FLIP_SAMPLE_LOG" in record.getMessage()]
    assert logged == "FLIP_SAMPLE_LOG='.' cannot be written (samples are not traced): PosixPath('.') has an empty name"
