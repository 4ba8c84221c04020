"""FLIP as an ART group scorer: ``await art.gather_trajectory_groups(groups, after_each=flip_score_group)``.

How ART (openpipe-art 0.5.18) calls it: ``gather_trajectory_groups`` awaits ``after_each(group)`` on each finished
``TrajectoryGroup`` and keeps what it returns (a group, a list of groups, or None to drop it), as it does for its own
RULER scorer (``art.rewards.ruler_score_group``). Like RULER, this returns a new group of copied trajectories: each
``reward`` replaced by the FLIP reward, the previous one kept in ``metrics["independent_reward"]``; the group's own
metadata, metrics, logs and exceptions are kept (ART's ``copy.copy`` of a group).

What reaches the reward: ``trajectory.messages()`` (ART's own flattening of ``messages_and_choices``, openai
``Choice`` objects as assistant messages beside plain message dicts); the reply is the last assistant message, the
instruction the last user message before it, the turns before that the context. A group's samples are judged
concurrently (``score_samples``) under one FlipReward per process and set of options, built from ``options``
(``judge_model`` and every FlipReward keyword) over the ``FLIP_*`` environment and ``HOSTED_VLLM_API_BASE``.

Per-trajectory data, same keys every time: ``metrics`` gets the numbers of ``result_info`` as ``flip_f1`` and
``flip_restatement_masked`` and ``flip_failed`` (1 for a failure: ART averages metrics, so this is the failure
rate); ``metadata`` gets its strings as ``flip_inferred_instruction``, ``flip_error``, ``flip_error_type``; and a
line in ``logs``. Nothing raises into ART: a failure scores 0.0 with its error there. With ``FLIP_SAMPLE_LOG`` each
process traces its samples for ``flip-reward inspect``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from flip_reward.core.conversation import PromptError, last_index, message_text
from flip_reward.core.reward import FlipResult
from flip_reward.integrations.process_reward import result_info, score_samples


def reply_text(content: object) -> object:
    """A reply's text (a string, or its text parts joined); any other value as it is, for FLIP to report."""
    try:
        return message_text(content)
    except PromptError:
        return content


def trajectory_sample(trajectory: Any) -> tuple[list[Any], object]:
    """``(prompt, response)`` of a trajectory: the messages before its last assistant message, and that message's
    text ("" when there is no assistant message: FLIP reports the empty response). Items that ART cannot read as
    messages are passed on as they are, for FLIP to report the first bad one."""
    try:
        messages = trajectory.messages()
    except (TypeError, ValueError):
        return list(trajectory.messages_and_choices), ""
    reply = last_index(messages, "assistant")
    if reply is None:
        return messages, ""
    return messages[:reply], reply_text(messages[reply].get("content"))


def scored_trajectory(trajectory: Any, result: FlipResult) -> Any:
    """A copy of ``trajectory`` with the FLIP reward, its numbers in ``metrics``, its strings in ``metadata`` and a
    line in ``logs`` (the original is left as it was)."""
    info = result_info(result)
    numbers = {f"flip_{key}": value for key, value in info.items() if not isinstance(value, str)}
    texts = {f"flip_{key}": value for key, value in info.items() if isinstance(value, str)}
    if result.error:
        line = f"FLIP reward 0.0 ({info['error_type']}): {result.error}"
    else:
        line = f"FLIP inferred instruction: {info['inferred_instruction']!r}"
    return trajectory.model_copy(
        update={
            "reward": float(result.reward),
            "metrics": {
                **trajectory.metrics,
                "independent_reward": trajectory.reward,
                **numbers,
                "flip_failed": int(bool(result.error)),
            },
            "metadata": {**trajectory.metadata, **texts},
            "logs": [*trajectory.logs, line],
        }
    )


async def flip_score_group(group: Any, *, options: Mapping[str, Any] | None = None) -> Any:
    """``group`` with every trajectory scored by FLIP (a new group, as RULER returns); see the module docstring."""
    results = await score_samples([trajectory_sample(trajectory) for trajectory in group.trajectories], options)
    scored = copy.copy(group)
    scored.trajectories = [scored_trajectory(trajectory, result) for trajectory, result in zip(group, results)]
    return scored
