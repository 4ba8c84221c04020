"""FLIP as verl's custom reward function: ``reward.custom_reward_function.path=pkg://flip_reward.integrations.verl``,
``.name=compute_score``, options under ``+reward.custom_reward_function.reward_kwargs``.

How verl 0.9 calls it: each reward loop worker (a Ray actor, ``reward.num_workers`` of them) awaits an ``async``
``compute_score(data_source=, solution_str=, ground_truth=, extra_info=)`` on its own event loop, one call per
sample, all of a worker's samples gathered at once, with ``reward_kwargs`` merged in as keywords. ``solution_str``
is the response decoded without special tokens; ``ground_truth`` is the row's ``reward_model.ground_truth``, which
``flip-reward data convert --format verl`` fills with the original instruction; the earlier turns, when there are
any, are in ``extra_info["context"]``. A dict result must have ``score``; verl stacks every other key over the
batch into a numpy array (the keys of the first sample decide), so every result has the same keys, strings for
text and numbers for the rest, never None.

Options: ``judge_model`` and every FlipReward keyword; the ``FLIP_*`` environment variables
(``flip_reward.core.settings.FlipSettings``, as for the open-instruct plugin) fill whatever ``reward_kwargs`` leaves
out. One FlipReward per process and set of options, reused across calls, so a worker's samples share the judge
client's concurrency bound, dedup and cache. With ``FLIP_SAMPLE_LOG`` each process traces its samples as the
open-instruct verifier does (``PluginTrace``; ``flip-reward inspect`` reads the files).
Nothing raises into the trainer: a failure scores 0.0 with its ``error_type``.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult, FlipReward
from flip_reward.core.settings import FlipSettings, FlipSettingsError
from flip_reward.data.samples import PluginTrace, plugin_trace
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL

# What verl's reward managers may add to the keywords for a reward model of its own: not FlipReward options.
VERL_KEYWORDS = frozenset({"reward_router_address", "reward_model_tokenizer"})
logger = logging.getLogger("flip_reward.verl")
_rewards: dict[str, FlipReward] = {}  # this process's FlipRewards by their options (the explicit cache)
_lock = threading.Lock()


def reward_for(options: Mapping[str, Any]) -> FlipReward:
    """This process's FlipReward for ``options`` (``judge_model`` plus FlipReward keywords over ``FLIP_*``)."""
    key = json.dumps(dict(options), sort_keys=True, default=repr)
    with _lock:
        if key not in _rewards:
            _rewards[key] = build_reward(dict(options))
        return _rewards[key]


def build_reward(options: dict[str, Any]) -> FlipReward:
    """A FlipReward from ``reward_kwargs``: the ``FLIP_*`` settings first (``HOSTED_VLLM_API_BASE`` for the judge's
    URL), the keywords over them."""
    judge_model = options.pop("judge_model", DEFAULT_JUDGE_MODEL)
    return FlipReward(judge_model, **{**FlipSettings.from_env().reward_options(judge_model), **options})


def verl_prompt(ground_truth: object, extra_info: object) -> object:
    """The prompt FLIP scores against: the earlier turns of ``extra_info["context"]`` and the instruction."""
    context = extra_info.get("context") if isinstance(extra_info, Mapping) else None
    if hasattr(context, "tolist"):
        context = context.tolist()  # a numpy array, as parquet lists may arrive
    if not isinstance(ground_truth, str):
        return ground_truth  # FlipReward reports the input error
    return [*(context or []), {"role": "user", "content": ground_truth}]


def score_dict(result: FlipResult) -> dict[str, Any]:
    """What verl gets for one sample: ``score`` and the trace fields it logs, same keys and types every time."""
    return {
        "score": float(result.reward),
        "f1": float(result.f1),
        "inferred_instruction": result.inferred_instruction or "",
        "error_type": str(result.error_type or ""),
        "restatement_masked": int(result.restatement_masked),
    }


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: object,
    extra_info: dict | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """The FLIP reward of ``solution_str`` for the instruction ``ground_truth``; see the module docstring."""
    options = {key: value for key, value in reward_kwargs.items() if key not in VERL_KEYWORDS}
    prompt = verl_prompt(ground_truth, extra_info)
    try:
        flip = reward_for(options)
    except Exception as error:  # noqa: BLE001  (a bad option or FLIP_* value: every sample says why, nothing raises)
        logger.error("FLIP reward cannot be set up (every reward is 0.0): %s: %s", type(error).__name__, error)
        result = FlipResult(error=f"{type(error).__name__}: {error}", error_type=ErrorType.CONFIG)
    else:
        result = await flip.ascore_one(prompt, solution_str)
    trace = process_trace()
    if trace is not None:
        trace.record(prompt, solution_str, result)
    return score_dict(result)


@functools.cache
def process_trace() -> PluginTrace | None:
    """This process's ``FLIP_SAMPLE_LOG`` trace, from the environment read once (None when unset, or when the
    ``FLIP_*`` environment is invalid: every reward then says why)."""
    try:
        return plugin_trace(FlipSettings.from_env())
    except FlipSettingsError:
        return None
