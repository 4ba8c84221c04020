"""How long AReaL 1.0.4 waits for a FLIP reward and for a rollout, for ``FlipRLVRWorkflow`` (the reward pool's
timeout) and ``flip-reward launch areal`` (AReaL's ``rollout.request_timeout``); imports neither AReaL nor an HTTP
client, so the launcher can read it.

AReaL waits twice: its ``AsyncRewardWrapper`` for each reward (15 s by default, counted from the submission), and,
with its single controller, its ``RolloutController`` for each rollout task, a GRPO group's generations and rewards
(``rollout.request_timeout``, 3600 s by default), after which the group is dropped with one error line. A FLIP reward
may take every try of its judge request, so both must outlast that.
"""

from __future__ import annotations

from flip_reward.core.settings import FlipSettings
from flip_reward.judge.client import JudgeConfig

MARGIN_S = 30.0  # beyond the judge's own budget: the prompt's reading, the restatement guard, a busy pool process
GENERATION_S = 3600.0  # AReaL's rollout.request_timeout: what it allows a rollout without a judge


def reward_budget_s(settings: FlipSettings | None = None) -> float:
    """Seconds one FLIP reward may take: every try of its judge request under the ``FLIP_*`` settings, with the
    back-off between them, and ``MARGIN_S``."""
    settings = settings or FlipSettings.from_env()
    return JudgeConfig(timeout=settings.judge_timeout, retries=settings.retries).total_deadline + MARGIN_S


def rollout_timeout_s(reward_timeout_s: float) -> float:
    """AReaL's ``rollout.request_timeout`` for rewards that may each take ``reward_timeout_s``: AReaL's own 3600 s
    for the generations, and the rewards' (each counted from its submission, queueing included)."""
    return GENERATION_S + reward_timeout_s
