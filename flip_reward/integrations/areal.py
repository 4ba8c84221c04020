"""FLIP as AReaL's reward function: ``reward_fn="flip_reward.integrations.areal.flip_reward_fn"`` in the workflow
kwargs of ``areal.workflow.rlvr.RLVRWorkflow`` (or of ``flip_reward.integrations.areal_workflow.FlipRLVRWorkflow``,
which raises AReaL's reward timeout for a judge).

How AReaL 1.0.4 calls it: ``RLVRWorkflow`` wraps the function in ``areal.api.reward_api.AsyncRewardWrapper``, which
runs each call in a ``ProcessPoolExecutor`` (forked worker processes, ``(cpus // gpus) // 2`` of them by default)
under ``asyncio.wait_for`` with 15 s per try and up to 3 retries (a try that times out keeps its worker busy; after
the last the reward is 0); an exception is logged and retried, and the last one is raised into the rollout. The call
is ``flip_reward_fn(prompt, completions, prompt_ids, completion_ids, **row)``: ``prompt`` is ``tokenizer.decode`` of
the prompt tokens, the chat template's text with its special tokens; ``completions`` is the decoded completion, with
the stop token it ended on (``<|im_end|>``, ``<|eot_id|>``) and any thinking; ``row`` is the dataset row, whose
``messages`` are the chat RLVRWorkflow templated. AReaL reads only the returned float (its ``reward`` statistic).

What FLIP scores: the instruction and earlier turns from the row's ``messages`` (from the templated prompt read back,
``flip_reward.templates``, when a row has none); the response is the completion as the prompt's template reads it
(``Reading.response``: its stop tokens removed, a ``<think>`` the generation prompt opened put back, gpt-oss's
channels read), or with only the stop tokens removed when the prompt is in no known template; FlipReward then hides
the thinking from the judge. The judge and every option come from ``FLIP_*`` and ``HOSTED_VLLM_API_BASE``
(``process_reward``); each pool process builds its own FlipReward and, with ``FLIP_SAMPLE_LOG``, its own trace.
Nothing raises into AReaL: a failure is 0.0, logged as a WARNING in the pool process (AReaL has no other channel for
it; its ``getLogger`` replaces the logging root, so the line reaches the worker's stderr through Python's last-resort
handler, and AReaL's local scheduler keeps it in the worker's log) and traced.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult
from flip_reward.integrations.process_reward import process_trace, score_sample_sync
from flip_reward.judge.transport import import_http_clients
from flip_reward.templates import FamilyReader, Reading, TemplateError, response_after

logger = logging.getLogger("flip_reward.integrations.areal")
_READER = FamilyReader()
# Imported here, in AReaL's rollout process, before its reward pool forks: otherwise each worker's first reward spends
# seconds importing litellm, openai and aiohttp out of AReaL's 15 s, and the samples queued behind it time out.
import_http_clients()


@functools.lru_cache(maxsize=64)  # a group's samples share their prompt
def prompt_reading(prompt: str) -> Reading | TemplateError:
    """The templated ``prompt`` read back, or why it does not read."""
    try:
        return _READER.read(prompt)
    except TemplateError as error:
        return error


def areal_sample(prompt: object, completion: object, messages: object) -> tuple[object, object, str | None]:
    """``(chat, response, why)`` for FlipReward from what AReaL passes: ``why`` says why the sample cannot be scored
    (None when it can)."""
    if not isinstance(completion, str):
        return None, None, f"completions must be a string, got {type(completion).__name__}"
    reading = prompt_reading(prompt) if isinstance(prompt, str) else TemplateError("the prompt is not a string")
    if isinstance(reading, Reading):
        response = reading.response(prompt + completion, prompt)
    else:
        response = response_after(completion, "")
    if messages is None:
        if isinstance(reading, Reading):
            return reading.messages, response, None
        return None, response, f"the row has no 'messages' and the prompt gives no instruction: {reading}"
    if isinstance(messages, str) or not isinstance(messages, Sequence):
        return None, response, f"the row's 'messages' must be a list of chat messages, got {type(messages).__name__}"
    return messages, response, None


def flip_reward_fn(prompt: str, completions: str, prompt_ids: list[int], completion_ids: list[int], **row) -> float:
    """The FLIP reward of one AReaL sample; see the module docstring. Never raises."""
    chat, response, why = areal_sample(prompt, completions, row.get("messages"))
    result = score_sample_sync(chat, response) if why is None else FlipResult(error=why, error_type=ErrorType.INPUT)
    trace = process_trace()
    if trace is not None:
        if why is not None:
            trace.record(prompt, response, result)
        trace.flush()  # on disk before AReaL gets the reward: a pool process may exit without running its threads
    if result.error_type is not None:
        logger.warning("FLIP reward 0.0 (%s error): %s", result.error_type, result.error)
    return float(result.reward)
