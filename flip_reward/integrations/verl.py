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

from collections.abc import Mapping
from typing import Any

from flip_reward.core.reward import FlipResult
from flip_reward.integrations.process_reward import result_info, score_sample

# What verl's reward managers may add to the keywords for a reward model of its own: not FlipReward options.
VERL_KEYWORDS = frozenset({"reward_router_address", "reward_model_tokenizer"})


def verl_prompt(ground_truth: object, extra_info: object) -> object:
    """The prompt FLIP scores against: the earlier turns of ``extra_info["context"]`` and the instruction."""
    context = extra_info.get("context") if isinstance(extra_info, Mapping) else None
    if hasattr(context, "tolist"):
        context = context.tolist()  # a numpy array, as parquet lists may arrive
    if not isinstance(ground_truth, str):
        return ground_truth  # FlipReward reports the input error
    return [*(context or []), {"role": "user", "content": ground_truth}]


def score_dict(result: FlipResult) -> dict[str, Any]:
    """What verl gets for one sample: ``score`` and the fields it logs (``result_info``), same keys every time."""
    return {"score": float(result.reward), **result_info(result)}


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: object,
    extra_info: dict | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """The FLIP reward of ``solution_str`` for the instruction ``ground_truth``; see the module docstring."""
    options = {key: value for key, value in reward_kwargs.items() if key not in VERL_KEYWORDS}
    return score_dict(await score_sample(verl_prompt(ground_truth, extra_info), solution_str, options))
