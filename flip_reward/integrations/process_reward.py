"""This process's FLIP reward as every trainer adapter uses it (verl, verifiers, slime, NeMo Gym, SkyRL, ART, AReaL,
ROLL): one ``FlipReward`` per set of options, built from the ``FLIP_*`` environment (``FlipSettings``, with
``HOSTED_VLLM_API_BASE`` for the judge's URL) under the adapter's own options; the ``FLIP_SAMPLE_LOG`` trace
(``PluginTrace``); ``score_sample``, which never raises (a bad option or ``FLIP_*`` value is a config error on every
sample) and traces what it scores; and ``score_sample_sync`` for trainers that call a reward synchronously.

Why one module: an adapter is a thin translation of its trainer's shapes to ``(prompt, response)``; the judge client,
its concurrency bound, dedup and cache, the restatement guard (on by default) and the trace are the same for all.
A FlipReward's HTTP clients belong to the event loop that first awaits it, so the synchronous path runs every
judgment on one loop thread of this module's own, and a forked child (AReaL's process pool) starts afresh.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult, FlipReward
from flip_reward.core.settings import FlipSettings, FlipSettingsError
from flip_reward.data.samples import PluginTrace, plugin_trace

logger = logging.getLogger("flip_reward.integrations")
_rewards: dict[str, FlipReward] = {}  # this process's FlipRewards by their options
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None  # the loop of score_sample_sync, started on first use


def reward_for(options: Mapping[str, Any] | None = None) -> FlipReward:
    """This process's FlipReward for ``options`` (``judge_model`` plus FlipReward keywords over ``FLIP_*``); raises
    for an invalid option or ``FLIP_*`` value (``score_sample`` turns that into a config error)."""
    options = dict(options or {})
    key = json.dumps(options, sort_keys=True, default=repr)
    with _lock:
        if key not in _rewards:
            _rewards[key] = build_reward(options)
        return _rewards[key]


def build_reward(options: dict[str, Any]) -> FlipReward:
    """A FlipReward from an adapter's options over the ``FLIP_*`` settings (``FLIP_JUDGE_MODEL`` and the other
    ``FLIP_JUDGE_*`` for the judge itself, ``HOSTED_VLLM_API_BASE`` for its URL)."""
    settings = FlipSettings.from_env()
    judge_model = options.pop("judge_model", settings.judge_model)
    return FlipReward(judge_model, **{**settings.judge_options(), **settings.reward_options(judge_model), **options})


@functools.cache
def process_trace() -> PluginTrace | None:
    """This process's ``FLIP_SAMPLE_LOG`` trace, from the environment read once (None when unset, or when the
    ``FLIP_*`` environment is invalid: every reward then says why; None too, logged once, for a path that names no
    file, such as ``.``: the rewards go on untraced, as when the trace's file cannot be written)."""
    try:
        settings = FlipSettings.from_env()
    except FlipSettingsError:
        return None
    try:
        return plugin_trace(settings)
    except (OSError, ValueError) as error:
        logger.error("FLIP_SAMPLE_LOG=%r cannot be written (samples are not traced): %s", settings.sample_log, error)
        return None


def config_failure(error: Exception) -> FlipResult:
    """The result of every sample when the reward cannot be built (said once per sample, logged)."""
    logger.error("FLIP reward cannot be set up (every reward is 0.0): %s: %s", type(error).__name__, error)
    return FlipResult(error=f"{type(error).__name__}: {error}", error_type=ErrorType.CONFIG)


async def score_sample(prompt: object, response: object, options: Mapping[str, Any] | None = None) -> FlipResult:
    """The FLIP reward of ``response`` to ``prompt`` (chat messages or a string, as ``FlipReward.ascore_one`` reads
    them), traced under ``FLIP_SAMPLE_LOG``; never raises."""
    try:
        flip = reward_for(options)
    except Exception as error:  # noqa: BLE001  (a bad option or FLIP_* value: every sample says why, nothing raises)
        result = config_failure(error)
    else:
        result = await flip.ascore_one(prompt, response)
    trace = process_trace()
    if trace is not None:
        trace.record(prompt, response, result)
    return result


async def score_samples(
    samples: Sequence[tuple[object, object]], options: Mapping[str, Any] | None = None
) -> list[FlipResult]:
    """``score_sample`` for each ``(prompt, response)``, judged concurrently (the judge client bounds how many)."""
    return list(await asyncio.gather(*(score_sample(prompt, response, options) for prompt, response in samples)))


def score_sample_sync(prompt: object, response: object, options: Mapping[str, Any] | None = None) -> FlipResult:
    """``score_sample`` for a synchronous caller on any thread, one running an event loop included: the judgment
    runs on this module's loop thread and the caller waits for it."""
    return asyncio.run_coroutine_threadsafe(score_sample(prompt, response, options), judging_loop()).result()


def score_samples_sync(
    samples: Sequence[tuple[object, object]], options: Mapping[str, Any] | None = None
) -> list[FlipResult]:
    """``score_samples`` for a synchronous caller (see ``score_sample_sync``)."""
    return asyncio.run_coroutine_threadsafe(score_samples(samples, options), judging_loop()).result()


def judging_loop() -> asyncio.AbstractEventLoop:
    """This process's loop thread for synchronous callers, started on first use (a daemon: it never holds up exit)."""
    global _loop
    with _lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="flip-reward-judging", daemon=True).start()
        return _loop


def result_info(result: FlipResult) -> dict[str, Any]:
    """What an adapter reports beside the reward: the F1, the inferred instruction, and the error and its type
    (empty strings when none), the tokens the restatement guard masked. Same keys and types every time."""
    return {
        "f1": float(result.f1),
        "inferred_instruction": result.inferred_instruction or "",
        "error": result.error or "",
        "error_type": str(result.error_type or ""),
        "restatement_masked": int(result.restatement_masked),
    }


def _forget_parent() -> None:
    """In a forked child: the parent's loop thread and its FlipRewards' clients are not ours (AReaL forks workers)."""
    global _loop, _lock
    _loop, _lock = None, threading.Lock()
    _rewards.clear()
    process_trace.cache_clear()


os.register_at_fork(after_in_child=_forget_parent)
