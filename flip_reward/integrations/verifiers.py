"""FLIP as a verifiers (prime-rl) reward: ``fn = "flip_reward.integrations.verifiers:flip_reward"`` under a task
config's ``rewards`` (TOML ``[env.taskset.task.rewards.flip]``).

How verifiers 0.4.0 calls it (its v1 API, ``verifiers.v1``): ``Task.score(trace)`` imports the ``fn`` of each entry
of ``TaskConfig.rewards`` (``load_plugged_fn``), names it by its entry, and awaits every reward of a task at once,
passing by parameter name the task's data (``task``: a ``TaskData``) and the rollout's ``Trace`` (``trace``); it
records the float under the entry's name and weight in ``trace.rewards``. The prompt the policy saw is
``task.prompt`` (a string, or messages whose content is a string or text and image parts) after
``task.system_prompt``; when ``task.prompt`` is None the user opened the conversation (verifiers' ``user-sim`` env
scores the task with its prompt nulled) and the prompt is the trace's own conversation before its last assistant
message. The reply is ``trace.last_reply``. verifiers gives a reward no options, so the judge comes
from the ``FLIP_*`` environment and ``HOSTED_VLLM_API_BASE`` (``process_reward``); one FlipReward per process, so
the rollouts of an env worker share the judge client's concurrency bound, dedup and cache.

Per-sample data goes where verifiers keeps it for each rollout: ``trace.info["flip"]`` holds ``result_info`` (the
F1, the inferred instruction, the error and its type, the masked restatement tokens), written to ``traces.jsonl``
with the trace. Nothing raises into ``Task.score``: a failure scores 0.0 with its error there. With
``FLIP_SAMPLE_LOG`` each process traces its samples for ``flip-reward inspect``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verifiers.v1.types import content_text

from flip_reward.integrations.process_reward import result_info, score_sample

INFO_KEY = "flip"  # the trace.info entry of this reward's per-sample data


def flat(messages: Sequence[Any]) -> list[dict[str, str]]:
    """verifiers messages as FLIP reads them: their roles, their content as verifiers' own ``content_text`` flattens
    it (text parts joined, images dropped; an assistant's absent content is "")."""
    return [{"role": message.role, "content": content_text(message.content)} for message in messages]


def task_messages(task: Any) -> list[dict[str, str]]:
    """The chat the policy answered, as FLIP reads it: ``task.system_prompt`` first when set, then ``task.prompt``
    (a string is the user's message; messages as ``flat`` reads them). An absent prompt gives no user message."""
    prompt = task.prompt
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else flat(prompt or [])
    if task.system_prompt is not None:
        messages.insert(0, {"role": "system", "content": task.system_prompt})
    return messages


def conversation_before_reply(trace: Any) -> list[dict[str, str]]:
    """The messages of the trace's final branch before its last assistant message: what the policy answered when
    the user opened the conversation (its system prompt included, as the policy saw it)."""
    messages = list(trace.messages)
    replies = [index for index, message in enumerate(messages) if message.role == "assistant"]
    return flat(messages[: replies[-1]] if replies else messages)


async def flip_reward(task: Any, trace: Any) -> float:
    """The FLIP reward of ``trace.last_reply`` for the last user message of ``task``'s prompt (of the trace's
    conversation when the task has none); see the module docstring."""
    prompt = task_messages(task) if task.prompt is not None else conversation_before_reply(trace)
    result = await score_sample(prompt, trace.last_reply)
    trace.info[INFO_KEY] = result_info(result)
    return float(result.reward)
