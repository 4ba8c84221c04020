"""flip-reward: FLIP rewards (a judge infers the instruction behind a response; reward = token F1 with the real one).

The public names below load on first use, so ``import flip_reward`` touches no network and imports no HTTP client
(litellm, openai, aiohttp) or model code. Where things live: ``core`` (the reward), ``judge`` (the client),
``evaluation`` (baselines, RewardBench-2, best-of-N), ``data``, ``training`` (local GRPO), ``serving`` (judge
servers), ``cli`` and ``integrations`` (open-instruct, TRL); ``text`` makes any string valid Unicode for them.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "flip_reward.core.conversation": ("PromptError", "split_conversation"),
    "flip_reward.core.metrics": ("f1_score", "normalize_answer"),
    "flip_reward.core.parsing": ("parse_inferred_instruction",),
    "flip_reward.core.results": ("ErrorType",),
    "flip_reward.core.reward": ("FlipResult", "FlipReward"),
    "flip_reward.judge.client": ("Judge", "JudgeConfig", "JudgeError", "JudgeResponse"),
    "flip_reward.evaluation.baselines": (
        "ListwiseJudge",
        "ListwiseResult",
        "PairwiseJudge",
        "PairwiseResult",
        "PointwiseJudgeReward",
        "PointwiseResult",
    ),
    "flip_reward.evaluation.verdicts": ("parse_best_index", "parse_better_response", "parse_score"),
    "flip_reward.evaluation.rerank": ("BestOfN", "RerankResult"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Import the module that defines ``name`` on first access (PEP 562)."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'flip_reward' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
