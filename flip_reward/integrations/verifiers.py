"""FLIP as a verifiers (prime-rl) reward: ``fn = "flip_reward.integrations.verifiers:flip_reward"`` under a task
config's ``rewards`` (TOML ``[env.taskset.task.rewards.flip]``).

How verifiers 0.4.0 calls it (its v1 API, ``verifiers.v1``): ``Task.score(trace)`` imports the ``fn`` of each entry
of ``TaskConfig.rewards`` (``load_plugged_fn``), names it by its entry, and awaits every reward of a task at once,
passing by parameter name the task's data (``task``: a ``TaskData``) and the rollout's ``Trace`` (``trace``); it
records the float under the entry's name and weight in ``trace.rewards``. The prompt the policy saw is
``task.prompt`` (a string, or messages whose content is a string or text and image parts) after
``task.system_prompt``; the reply is ``trace.last_reply``. verifiers gives a reward no options, so the judge comes
from the ``FLIP_*`` environment and ``HOSTED_VLLM_API_BASE`` (``process_reward``); one FlipReward per process, so
the rollouts of an env worker share the judge client's concurrency bound, dedup and cache.

Per-sample data goes where verifiers keeps it for each rollout: ``trace.info["flip"]`` holds ``result_info`` (the
F1, the inferred instruction, the error and its type, the masked restatement tokens), written to ``traces.jsonl``
with the trace. Nothing raises into ``Task.score``: a failure scores 0.0 with its error there. With
``FLIP_SAMPLE_LOG`` each process traces its samples for ``flip-reward inspect``.
"""

from __future__ import annotations

from typing import Any

from verifiers.v1.types import content_text

from flip_reward.integrations.process_reward import result_info, score_sample

INFO_KEY = "flip"  # the trace.info entry of this reward's per-sample data


def task_messages(task: Any) -> list[dict[str, str]]:
    """The chat the policy answered, as FLIP reads it: ``task.system_prompt`` first when set, then ``task.prompt``
    (a string is the user's message; messages keep their roles, their content as verifiers' own ``content_text``
    flattens it, images dropped). An absent prompt gives no user message, which FLIP reports as an input error."""
    prompt = task.prompt
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        messages = [{"role": message.role, "content": content_text(message.content)} for message in prompt or []]
    if task.system_prompt is not None:
        messages.insert(0, {"role": "system", "content": task.system_prompt})
    return messages


async def flip_reward(task: Any, trace: Any) -> float:
    """The FLIP reward of ``trace.last_reply`` for the last user message of ``task``'s prompt; see the module
    docstring."""
    result = await score_sample(task_messages(task), trace.last_reply)
    trace.info[INFO_KEY] = result_info(result)
    return float(result.reward)
