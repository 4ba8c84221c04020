"""AReaL's RLVR workflow with its reward pool sized for a judge: ``workflow="flip_reward.integrations.areal_workflow.
FlipRLVRWorkflow"`` in ``PPOTrainer.train``, with RLVRWorkflow's own kwargs and three of its own.

Why: AReaL 1.0.4's ``RLVRWorkflow`` builds ``AsyncRewardWrapper(reward_fn)`` with its defaults and has no option for
them: 15 s per try (counted from the submission, so time queued behind busy workers counts too), 3 retries that resubmit
the sample while the timed-out call keeps its worker busy, and ``(cpus // gpus) // 2`` worker processes, each scoring
one sample at a time (so at most that many judge requests in flight per rollout process). A FLIP reward waits for a
judge: one request may take every try of the judge client (``FLIP_JUDGE_TIMEOUT`` times ``FLIP_RETRIES`` + 1, with
back-off). This subclass builds the wrapper with ``reward_timeout_s`` (default: that judge budget and a margin,
``areal_timing.reward_budget_s``), ``reward_retries`` (default 0: the judge client retries, and flip_reward_fn never
raises) and ``reward_workers`` (default AReaL's). Everything else is RLVRWorkflow's; AReaL's controller also gives each
rollout ``rollout.request_timeout`` (``areal_timing.rollout_timeout_s``: the launcher raises it). Importing it needs
AReaL (torch, transformers); ``flip_reward.integrations.areal`` does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from areal.api.reward_api import AsyncRewardWrapper
from areal.utils.dynamic_import import import_from_string
from areal.workflow.rlvr import RLVRWorkflow

from flip_reward.integrations.areal import flip_reward_fn
from flip_reward.integrations.areal_timing import reward_budget_s


class FlipRLVRWorkflow(RLVRWorkflow):
    """``RLVRWorkflow`` scoring with ``flip_reward_fn`` (or ``reward_fn``) in a reward pool sized for a judge."""

    def __init__(
        self,
        reward_fn: Callable[..., Any] | str = flip_reward_fn,
        *,
        reward_timeout_s: float | None = None,
        reward_retries: int = 0,
        reward_workers: int | None = None,
        **kwargs: Any,
    ):
        reward_fn = import_from_string(reward_fn) if isinstance(reward_fn, str) else reward_fn
        super().__init__(reward_fn=reward_fn, **kwargs)
        timeout = reward_timeout_s if reward_timeout_s is not None else reward_budget_s()
        self.async_reward_fn = AsyncRewardWrapper(
            reward_fn, timeout_seconds=timeout, max_workers=reward_workers, max_retries=reward_retries
        )
