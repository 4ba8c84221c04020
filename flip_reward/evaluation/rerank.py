"""Best-of-N selection: score N responses to one prompt with FLIP or a pointwise judge, or let a listwise judge pick
one, and name the best. Rows are ``{"prompt": str | messages, "responses": [str, ...]}``.

Scores: the reward of each response (None where its judgment failed) for flip and pointwise; 1.0 for the pick and
0.0 for the others for listwise. The listwise judge sees the responses in the seeded order eval uses
(``listwise_order``, keyed by the prompt), so that its position bias does not always pick the first one; its pick is
mapped back to the response's index. ``best_index`` is the highest score, the lowest index among equal ones; it is
None, with ``error`` saying why, when no response could be scored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from flip_reward.core.reward import FlipReward
from flip_reward.data.loading import RowError, check_prompt, field_value, object_row
from flip_reward.evaluation.baselines import ListwiseJudge, PointwiseJudgeReward
from flip_reward.evaluation.evaluate import listwise_order, ticking
from flip_reward.judge.loops import run_sync

RERANK_METHODS = {"flip": FlipReward, "pointwise": PointwiseJudgeReward, "listwise": ListwiseJudge}


@dataclass(frozen=True)
class RerankResult:
    """The scores of N responses, the index of the best (None when none could be scored, with ``error``), the
    error of each failed judgment, and the judge tokens spent."""

    scores: tuple[float | None, ...]
    best_index: int | None
    error: str | None = None
    errors: tuple[str, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def best_index(scores: Sequence[float | None]) -> int | None:
    """Index of the highest score, the lowest one among equal scores; None when every score is None.

    >>> best_index([0.5, None, 0.9, 0.9]), best_index([None, None])
    (2, None)
    """
    scored = [(score, index) for index, score in enumerate(scores) if score is not None]
    return max(scored, key=lambda pair: (pair[0], -pair[1]))[1] if scored else None


def rerank_input(row: object, number: int) -> tuple[str | list, list[str]]:
    """``(prompt, responses)`` of a row, or RowError naming the row and the field at fault."""
    row = object_row(row, number)
    check_prompt(field_value(row, "prompt", number), number)
    responses = field_value(row, "responses", number)
    if not isinstance(responses, (list, tuple)) or not responses:
        raise RowError(number, "responses", f"must be a non-empty list of strings, got {type(responses).__name__}")
    for index, response in enumerate(responses):
        if not isinstance(response, str):
            raise RowError(number, "responses", f"item {index} must be a string, got {type(response).__name__}")
    return row["prompt"], list(responses)


def prompt_key(prompt: object) -> str:
    """A prompt as text, the key of its listwise shuffle (so the order does not depend on the row's position)."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)


class BestOfN:
    """Best-of-N selection with ``method`` "flip", "pointwise" or "listwise"; ``shuffle_seed`` seeds the listwise
    shuffle; judge keywords as for FlipReward.

    >>> BestOfN("flip", judge_model="hosted_vllm/my-judge", api_base="http://127.0.0.1:8000/v1").method
    'flip'
    """

    def __init__(self, method: str = "flip", *, shuffle_seed: int = 0, **judge_options: object):
        if method not in RERANK_METHODS:
            raise ValueError(f"method must be one of {', '.join(RERANK_METHODS)}, got {method!r}")
        self.method = method
        self.shuffle_seed = shuffle_seed
        self.scorer = RERANK_METHODS[method](**judge_options)

    def planned_calls(self, responses: Sequence[str]) -> int:
        return 1 if self.method == "listwise" else len(responses)

    async def arerank(
        self, prompt: object, responses: Sequence[str], progress: Callable[[int], object] | None = None
    ) -> RerankResult:
        """Score or pick among ``responses``; never raises for a bad input or a judge failure."""
        if self.method == "listwise":
            order = listwise_order(self.shuffle_seed, prompt_key(prompt), len(responses))
            judgments = [await ticking(self.scorer.apick(prompt, [responses[i] for i in order]), progress)]
            index = None if judgments[0].index is None else order[judgments[0].index]
            scores = [None if index is None else float(i == index) for i in range(len(responses))]
            labels = ["pick"]
        else:
            judgments = await asyncio.gather(
                *(ticking(self.scorer.ascore_one(prompt, response), progress) for response in responses)
            )
            scores = [judgment.reward if judgment.error is None else None for judgment in judgments]
            labels = [f"response {index}" for index in range(len(responses))]
        errors = tuple(f"{label}: {j.error}" for label, j in zip(labels, judgments) if j.error is not None)
        best = best_index(scores)
        error = None if best is not None else (errors[0] if errors else "no responses")
        return RerankResult(
            tuple(scores),
            best,
            error,
            errors,
            sum(j.prompt_tokens for j in judgments),
            sum(j.completion_tokens for j in judgments),
        )

    def rerank(self, prompt: object, responses: Sequence[str]) -> RerankResult:
        """Synchronous ``arerank``."""
        return run_sync(lambda: self.arerank(prompt, responses))
