"""FLIP as slime's custom reward model: ``--custom-rm-path flip_reward.integrations.slime.flip_rm``, or
``flip_reward.integrations.slime.flip_group_rm`` with ``--group-rm``; options under ``flip_reward:`` in the YAML of
``--custom-config-path``.

How slime (THUDM/slime, read at 624b824a) calls it: ``slime.rollout.rm_hub.async_rm`` loads the function named by
``--custom-rm-path`` (``load_function``: the module path, a dot, the name) and awaits ``flip_rm(args, sample)`` for
each finished sample on the rollout manager's event loop, storing the float in ``sample.reward``.
``batched_async_rm`` awaits the same function with a list of samples and zips the list it returns back onto them:
for a whole group under ``--group-rm`` (slime's plugin contract names the parameter ``samples`` there:
``flip_group_rm``), and for the samples a custom generate function fans one prompt out into, so ``flip_rm`` takes a
list too. Keywords slime may add to either call are accepted and not used.

``args`` is slime's parsed namespace, where ``--custom-config-path`` sets each key of its YAML as an attribute:
``args.flip_reward``, when set, holds ``judge_model`` and FlipReward keywords over the ``FLIP_*`` environment
(``HOSTED_VLLM_API_BASE`` for the judge's URL) of the rollout manager, a Ray actor: it has the environment of the
``ray start`` or ``ray.init`` that made its cluster, and a ``ray job submit``'s ``--runtime-env-json`` ``env_vars``.

A ``Sample`` brings ``prompt`` (the templated string with ``--apply-chat-template``, the raw text of
``--input-key`` without it, or chat messages), ``label`` (the row's ``--label-key``: the instruction, which wins
when set) and ``response`` (decoded with its stop token: slime asks SGLang not to trim it); they are read as
``/slime/reward`` reads them (``flip_reward.serving.protocol.slime_item``). Besides the reward, each sample's
``metadata["flip"]`` gets the F1, the inferred instruction, the error and its type (``result_info``; slime saves
metadata with ``--save-debug-rollout-data``), and ``FLIP_SAMPLE_LOG`` traces it. Nothing raises into slime: a
failure scores 0.0 with its error there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult
from flip_reward.integrations.process_reward import config_failure, process_trace, result_info, score_sample
from flip_reward.serving.protocol import slime_item

logger = logging.getLogger("flip_reward.integrations")
OPTIONS_ARG = "flip_reward"  # the key of --custom-config-path's YAML that holds the FLIP options
METADATA_KEY = "flip"  # where each sample's result_info goes in sample.metadata


async def flip_rm(args: object, sample: Any, **_: object) -> float | list[float]:
    """The FLIP reward of one slime ``Sample`` (a list of them, as a fan-out gives it: ``flip_group_rm``)."""
    if isinstance(sample, list):
        return await flip_group_rm(args, sample)
    result = await sample_result(getattr(args, OPTIONS_ARG, None), sample)
    metadata = getattr(sample, "metadata", None)
    if isinstance(metadata, dict):
        metadata[METADATA_KEY] = result_info(result)
    return float(result.reward)


async def flip_group_rm(args: object, samples: list, **_: object) -> list:
    """The FLIP rewards of a group of slime ``Sample``s (``--group-rm``), in order, judged concurrently."""
    return list(await asyncio.gather(*(flip_rm(args, sample) for sample in samples)))


async def sample_result(options: object, sample: object) -> FlipResult:
    """The FlipResult of ``sample`` under ``options``; never raises (an unusable sample is an input failure, an
    unexpected error an internal one), and every sample is traced under ``FLIP_SAMPLE_LOG``."""
    prompt, response = getattr(sample, "prompt", None), getattr(sample, "response", None)
    try:
        if options is not None and not isinstance(options, Mapping):
            kind = type(options).__name__
            result = config_failure(TypeError(f"args.{OPTIONS_ARG} must be a mapping of FLIP options, got {kind}"))
        else:
            item = slime_item(prompt, response, getattr(sample, "label", None))
            if item.error is None:
                return await score_sample(item.prompt, item.response, options)
            result = FlipResult(error=item.error, error_type=ErrorType.INPUT)
    except Exception as error:  # noqa: BLE001  (a bug here must not stop slime's rollout)
        logger.exception("FLIP reward failed on a slime sample")
        result = FlipResult(error=f"{type(error).__name__}: {error}", error_type=ErrorType.INTERNAL)
    trace = process_trace()
    if trace is not None:
        trace.record(prompt, response, result)
    return result
