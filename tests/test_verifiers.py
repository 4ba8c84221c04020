"""verifiers (prime-rl): ``flip_reward.integrations.verifiers:flip_reward`` through verifiers 0.4.0's own code.

A run's TOML config names the reward under ``[env.taskset.task.rewards.flip]``; verifiers' own ``resolve_env_config``
narrows it, ``load_taskset`` imports the taskset plugin by its id (tests/verifiers_taskset.py) and builds its tasks
with that task config, and each task's own ``Task.score`` imports the reward and scores a rollout's ``Trace`` (built
here as a harness records one: the prompt's nodes, then the sampled reply). verifiers' own ``vf-replay`` command
also re-scores a saved run (its resolved config and ``traces.jsonl``, written by verifiers' own writers) in a process
of its own. Rollouts themselves (a harness program in a sandbox, the policy's server) are not run. The judge is the
scripted OpenAI-compatible server (a test double), reached through the FLIP_* environment as in a verifiers env
worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
import tomllib
from serve_support import REPO, FirstFails, inspected_overall, requests_for
from verifiers.v1 import AgentConfig, Task, Trace
from verifiers.v1.cli.output import write_config
from verifiers.v1.configs.cli.eval import EvalConfig
from verifiers.v1.graph import MessageNode
from verifiers.v1.trace import AgentInfo, TraceTask
from verifiers.v1.types import AssistantMessage, SystemMessage, UserMessage
from verifiers.v1.utils.loaders import load_taskset, resolve_env_config
from verifiers.v1.utils.trace_store import append_trace, read_episodes

from flip_reward.integrations import process_reward
from flip_reward.integrations.verifiers import task_messages
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, judged_response

SEA = "Write a poem about the sea."
WAVES, PEAKS, OUTAGE = "Waves roll in under a silver moon.", "Mountains rise above the clouds.", "FAIL500"
CONFIG = """
[env.taskset]
id = "verifiers_taskset"

[env.taskset.task.rewards.flip]
fn = "flip_reward.integrations.verifiers:flip_reward"
weight = 2.0
"""


@pytest.fixture
def judge(fresh_flip_reward, monkeypatch):
    """The scripted judge, named to FLIP by the environment as in a verifiers env worker, with one retry: the first
    request about every response answers HTTP 500 (a transient outage), so every reward comes after a retry."""
    answers = {
        WAVES: SEA,
        PEAKS: "Write a poem about mountains.",
        OUTAGE: Reply(content="scripted outage", status=500),
    }
    with ScriptedJudgeServer(FirstFails(answers)) as server:
        monkeypatch.setenv("FLIP_JUDGE_MODEL", "hosted_vllm/scripted")
        monkeypatch.setenv("HOSTED_VLLM_API_BASE", server.base_url)
        monkeypatch.setenv("FLIP_RETRIES", "1")
        yield server


def tasks() -> dict[str, Task]:
    """The taskset's tasks by name, loaded from the run's TOML config by verifiers' own loader."""
    config = resolve_env_config(tomllib.loads(CONFIG)["env"])
    return {task.data.name: task for task in load_taskset(config.taskset)}


def rollout(task: Task, reply: str | None) -> Trace:
    """The trace of one finished rollout of ``task``: the prompt's messages as verifiers' rollout opens them (the
    system prompt, then the prompt), then the policy's sampled ``reply`` (none: no reply)."""
    prompt, system_prompt = task.data.prompt, task.data.system_prompt
    messages = [UserMessage(content=prompt)] if isinstance(prompt, str) else list(prompt or [])
    if system_prompt is not None:
        messages.insert(0, SystemMessage(content=system_prompt))
    if reply is not None:
        messages.append(AssistantMessage(content=f"\n{reply}\n"))
    sampled = len(messages) - 1 if reply is not None else None  # the reply's node, the one the model produced
    nodes = [MessageNode(parent=index - 1 if index else None, message=message, sampled=index == sampled)
             for index, message in enumerate(messages)]  # fmt: skip
    return Trace(task=TraceTask(type=type(task).__name__, data=task.data), agent=AgentInfo(config=AgentConfig()),
                 nodes=nodes, is_completed=True, ok=True)  # fmt: skip


def scored(pairs: list[tuple[Task, str | None]]) -> list[Trace]:
    """Each ``(task, reply)`` rollout scored by the task's own ``Task.score``, all at once as an env worker does."""
    traces = [rollout(task, reply) for task, reply in pairs]

    async def score_all() -> None:
        await asyncio.gather(*(task.score(trace) for (task, _), trace in zip(pairs, traces)))

    asyncio.run(score_all())
    return traces


def info(f1: float, inferred: str = "", error: str = "", error_type: str = "") -> dict:
    return {"f1": f1, "inferred_instruction": inferred, "error": error, "error_type": error_type,
            "restatement_masked": 0}  # fmt: skip


def test_the_task_config_plugs_flip_into_every_task_of_the_taskset() -> None:
    loaded = tasks()
    assert list(loaded) == ["string", "parts", "multi-turn", "no-prompt"]
    assert {name: [hook.__name__ for hook in task.hooks("reward")] for name, task in loaded.items()} == {
        name: ["flip"] for name in loaded
    }
    assert [hook._vf_weight for hook in loaded["string"].hooks("reward")] == [2.0]


def test_the_prompt_is_the_system_prompt_and_the_prompt_as_verifiers_holds_them() -> None:
    loaded = tasks()
    assert task_messages(loaded["string"].data) == [
        {"role": "system", "content": "You are a poet."},
        {"role": "user", "content": SEA},
    ]
    assert task_messages(loaded["parts"].data) == [{"role": "user", "content": "Write a poem\nabout mountains."}]
    assert task_messages(loaded["multi-turn"].data) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": SEA},
    ]
    assert task_messages(loaded["no-prompt"].data) == []


def test_task_score_records_the_exact_f1_weighted_and_the_per_sample_info(judge) -> None:
    loaded = tasks()
    traces = scored([(loaded["string"], WAVES), (loaded["parts"], PEAKS), (loaded["multi-turn"], PEAKS)])
    assert [(trace.rewards["flip"].score, trace.rewards["flip"].weight, trace.reward) for trace in traces] == [
        (1.0, 2.0, 2.0), (1.0, 2.0, 2.0), (0.75, 2.0, 1.5)
    ]  # fmt: skip
    assert [trace.info["flip"] for trace in traces] == [
        info(1.0, SEA), info(1.0, "Write a poem about mountains."), info(0.75, "Write a poem about mountains.")
    ]  # fmt: skip
    # what the judge was asked about which response (a retry asks the same again)
    asked = {request["messages"][-1]["content"]: judged_response(request) for request in judge.requests}
    [string] = [question for question, response in asked.items() if response == WAVES]
    assert "system: You are a poet." in string
    [multi_turn] = [question for question, response in asked.items() if "Hello! How can I help?" in question]
    assert asked[multi_turn] == PEAKS and "user: Hi" in multi_turn


def test_a_transient_judge_failure_is_retried_and_a_persistent_one_is_zero_with_the_error_in_info(judge) -> None:
    loaded = tasks()
    blip, outage, empty, no_prompt = scored(
        [(loaded["string"], WAVES), (loaded["string"], OUTAGE), (loaded["string"], None),
         (loaded["no-prompt"], WAVES)]
    )  # fmt: skip
    assert (blip.rewards["flip"].score, blip.info["flip"], requests_for(judge, WAVES)) == (1.0, info(1.0, SEA), 2)
    failure = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    assert (outage.rewards["flip"].score, outage.info["flip"], requests_for(judge, OUTAGE)) == (
        0.0, info(0.0, error=failure, error_type="judge"), 2
    )  # fmt: skip
    assert (empty.rewards["flip"].score, empty.info["flip"]) == (
        0.0, info(0.0, error="response is empty once reasoning is removed", error_type="input")
    )  # fmt: skip
    assert (no_prompt.rewards["flip"].score, no_prompt.info["flip"]) == (
        0.0, info(0.0, error="prompt: prompt has no user message", error_type="input")
    )  # fmt: skip
    assert all(trace.errors == [] for trace in (blip, outage, empty, no_prompt))  # nothing raised into Task.score


def conversation(task: Task, turns: list[str]) -> tuple[Trace, Task]:
    """A rollout whose user opens the conversation (verifiers' ``user-sim`` env: the assistant plays the task with its
    prompt nulled, as ``UserSimEnv.run`` makes it): its trace (the task's system prompt, then user and sampled
    assistant turns by turns) and that nulled task."""
    nulled = type(task)(task.data.model_copy(update={"prompt": None}), task.config)
    messages = [SystemMessage(content=task.data.system_prompt)]
    messages += [(AssistantMessage if index % 2 else UserMessage)(content=turn) for index, turn in enumerate(turns)]
    nodes = [MessageNode(parent=index - 1 if index else None, message=message, sampled=message.role == "assistant")
             for index, message in enumerate(messages)]  # fmt: skip
    return Trace(task=TraceTask(type=type(task).__name__, data=nulled.data), agent=AgentInfo(config=AgentConfig()),
                 nodes=nodes, is_completed=True, ok=True), nulled  # fmt: skip


def test_a_conversation_the_user_opens_is_read_from_the_trace(judge) -> None:
    """``user-sim``: the task's prompt is None and the instruction is the last user turn the assistant answered."""
    trace, nulled = conversation(tasks()["string"], ["Hi, I need a poem.", "Sure: about what?", SEA, PEAKS])

    asyncio.run(nulled.score(trace))
    assert (trace.rewards["flip"].score, trace.info["flip"]) == (0.75, info(0.75, "Write a poem about mountains."))
    [question] = {request["messages"][-1]["content"] for request in judge.requests if judged_response(request) == PEAKS}
    assert question.count("system: You are a poet.") == 1 and "assistant: Sure: about what?" in question


def test_samples_are_traced_and_flip_reward_inspect_reads_the_trace(judge, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    loaded = tasks()
    for pair in [(loaded["string"], WAVES), (loaded["multi-turn"], OUTAGE), (loaded["no-prompt"], WAVES)]:
        scored([pair])  # one after another, so that the trace's order is known
    process_reward.process_trace().flush()
    [trace] = (tmp_path / "traces").iterdir()
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [(line["sample"], line["reward"], line["error_type"]) for line in lines] == [
        (1, 1.0, None), (2, 0.0, "judge"), (3, 0.0, "input")
    ]  # fmt: skip
    overall = inspected_overall(trace, tmp_path / "report")
    assert (overall["completions"], overall["judge_error_rate"], overall["input_error_rate"]) == (3, 1 / 3, 1 / 3)


def test_vf_replay_rescores_a_saved_run_with_flip(judge, tmp_path) -> None:
    """A run saved as verifiers saves one (its resolved config, its traces), re-scored by verifiers' own vf-replay
    in a process of its own, which reads the judge from the FLIP_* environment."""
    source, out = tmp_path / "run", tmp_path / "replayed"
    write_config(EvalConfig.model_validate(tomllib.loads(CONFIG)), source, "eval.json")
    loaded = tasks()
    replies = {"string": WAVES, "parts": PEAKS, "multi-turn": OUTAGE, "no-prompt": WAVES}

    async def save() -> None:
        lock = asyncio.Lock()
        for name, reply in replies.items():
            await append_trace(source, rollout(loaded[name], reply), lock, env="verifiers_taskset")

    asyncio.run(save())
    replay = subprocess.run(
        [sys.executable, "-m", "verifiers.v1.cli.replay", str(source), "--output-dir", str(out), "--rich", "false"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])},
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    traces = {trace.task.data.name: trace for episode in read_episodes(out, Trace) for trace in episode.traces}
    failure = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    assert {name: (trace.reward, trace.info["flip"]) for name, trace in traces.items()} == {
        "string": (2.0, info(1.0, SEA)),
        "parts": (2.0, info(1.0, "Write a poem about mountains.")),
        "multi-turn": (0.0, info(0.0, error=failure, error_type="judge")),
        "no-prompt": (0.0, info(0.0, error="prompt: prompt has no user message", error_type="input")),
    }
