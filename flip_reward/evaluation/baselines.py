"""LLM-as-a-judge baselines to compare FLIP with: pointwise 1-10 scores, pairwise A/B preferences, listwise picks.

Each baseline owns its templates (``prompts/POINTWISE_*``, ``PAIRWISE_*``, ``LISTWISE_*``), the reader of its
answer (``evaluation.verdicts``) and its result type; the judge client, the context guard and the error semantics
come from ``core.method.JudgeMethod``, exactly as for FlipReward: a bad input, a failed request or an unusable
answer is a result with ``error`` and ``error_type`` set, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flip_reward.core.conversation import PromptError, split_prompt
from flip_reward.core.method import JudgeMethod, ResponseScorer
from flip_reward.core.parsing import parse_reasoning
from flip_reward.core.results import ErrorType, Judgment
from flip_reward.core.thinking import final_answer
from flip_reward.evaluation.verdicts import (
    parse_best_index,
    parse_better_response,
    parse_score,
)
from flip_reward.judge.loops import run_sync
from flip_reward.prompts import chat_messages

_REASONING = {"REASONING": {"type": "string"}}


@dataclass(frozen=True)
class PointwiseResult(Judgment):
    """A pointwise rating: ``reward = score / 10``; on failure ``reward`` is 0.0 and ``score`` None."""

    reward: float = 0.0
    score: float | None = None


@dataclass(frozen=True)
class PairwiseResult(Judgment):
    """A pairwise preference: ``winner`` is "A" (the first response shown) or "B", None on failure."""

    winner: str | None = None


@dataclass(frozen=True)
class ListwiseResult(Judgment):
    """A listwise pick: ``index`` is the 0-based position of the best response as given, None on failure."""

    index: int | None = None


def shown_answers(responses: Sequence[object]) -> list[str]:
    """What the judge is shown of each response (see ``final_answer``); ValueError naming a bad one."""
    answers = []
    for index, response in enumerate(responses):
        if not isinstance(response, str):
            raise ValueError(f"response {index} must be a string, got {type(response).__name__}")
        answers.append(final_answer(response))
        if not answers[-1]:
            raise ValueError(f"response {index} is empty once reasoning is removed")
    return answers


class BaselineJudge(JudgeMethod):
    """The request path shared by the baselines: render the templates, fit the responses into the judge's context,
    call the judge, read the answer into a result. Subclasses name their templates, answer key, schema and result.
    """

    templates: tuple[str, str]
    answer_key: str

    def variables(self, answers: list[str]) -> dict:
        """Template variables for the responses shown to the judge."""
        raise NotImplementedError

    def verdict(self, text: str, count: int) -> dict | None:
        """Result fields read from the judge's answer about ``count`` responses, or None when it is unusable."""
        raise NotImplementedError

    def render(self, context: str, responses: list[str], instruction: str = "") -> list[dict[str, str]]:
        return chat_messages(*self.templates, context=context, instruction=instruction, **self.variables(responses))

    def judge_messages(self, history: list[str], instruction: str, answers: list[str]) -> list[dict[str, str]]:
        """The request for ``answers``, fitted to the judge's context: the oldest turns of ``history`` left out
        first, then each answer trimmed in its middle to an equal share."""
        return self.fit(history, answers, instruction).messages

    async def ajudge(self, prompt: object, responses: Sequence[object]) -> Judgment:
        """One judgment of ``responses`` to ``prompt`` (or a SplitPrompt); never raises for a bad input or a judge
        failure."""
        try:
            split = split_prompt(prompt)
        except PromptError as error:
            return self.failure(ErrorType.INPUT, f"prompt: {error}")
        history, instruction = list(split.history), split.instruction
        try:
            answers = shown_answers(responses)
        except ValueError as error:
            return self.failure(ErrorType.INPUT, str(error))
        fitted = await self.fitted(history, answers, instruction)
        if isinstance(fitted, Judgment):
            return fitted
        judged = await self.ask(fitted.messages, lambda text: self.verdict(text, len(answers)))
        if isinstance(judged, Judgment):
            return judged
        if judged.parsed is None:
            error = f"no usable {self.answer_key} in judge output: {judged.text[:200]!r}"
            return self.failure(ErrorType.PARSE, error, judged)
        return self.result_type(reasoning=parse_reasoning(judged.text), **judged.parsed, **judged.usage())


class PointwiseJudgeReward(BaselineJudge, ResponseScorer):
    """LLM-as-a-judge reward: the judge rates (prompt, response) from 1 to 10 and ``reward = score / 10`` (the
    baseline of the FLIP authors' GRPO runs). Same shape as FlipReward: ``score``/``ascore`` give one
    PointwiseResult per pair in input order; a failure is ``reward=0.0`` with ``error`` set.

    >>> PointwiseJudgeReward("hosted_vllm/my-judge", "http://127.0.0.1:8000/v1").judge.config.max_concurrency
    64
    """

    templates = ("POINTWISE_SYSTEM", "POINTWISE_USER")
    answer_key = "SCORE"
    schema = {
        "type": "object",
        "properties": {**_REASONING, "SCORE": {"type": "integer", "minimum": 1, "maximum": 10}},
        "required": ["REASONING", "SCORE"],
    }
    result_type = PointwiseResult

    def variables(self, answers: list[str]) -> dict:
        return {"response": answers[0]}

    def verdict(self, text: str, count: int) -> dict | None:
        score = parse_score(text)
        return None if score is None else {"score": score, "reward": score / 10}

    async def ascore_one(self, prompt: object, response: str) -> PointwiseResult:
        return await self.ajudge(prompt, [response])


class PairwiseJudge(BaselineJudge):
    """The judge says which of two responses to a prompt is better: ``acompare(prompt, a, b)`` gives a
    PairwiseResult whose ``winner`` is "A" or "B" (None on failure). Swap a and b to control position bias."""

    templates = ("PAIRWISE_SYSTEM", "PAIRWISE_USER")
    answer_key = "BETTER_RESPONSE"
    schema = {
        "type": "object",
        "properties": {**_REASONING, "BETTER_RESPONSE": {"type": "string", "enum": ["A", "B"]}},
        "required": ["REASONING", "BETTER_RESPONSE"],
    }
    result_type = PairwiseResult

    def variables(self, answers: list[str]) -> dict:
        return {"response_a": answers[0], "response_b": answers[1]}

    def verdict(self, text: str, count: int) -> dict | None:
        winner = parse_better_response(text)
        return None if winner is None else {"winner": winner}

    async def acompare(self, prompt: object, a: str, b: str) -> PairwiseResult:
        return await self.ajudge(prompt, [a, b])

    def compare(self, prompt: object, a: str, b: str) -> PairwiseResult:
        """Synchronous ``acompare``."""
        return run_sync(lambda: self.acompare(prompt, a, b))


class ListwiseJudge(BaselineJudge):
    """The judge picks the best of N responses shown together: ``apick(prompt, responses)`` gives a ListwiseResult
    whose ``index`` is 0-based in the order given (None on failure). Shuffle first to control position bias."""

    templates = ("LISTWISE_SYSTEM", "LISTWISE_USER")
    answer_key = "BEST_RESPONSE_INDEX"
    schema = {
        "type": "object",
        "properties": {**_REASONING, "BEST_RESPONSE_INDEX": {"type": "integer", "minimum": 0}},
        "required": ["REASONING", "BEST_RESPONSE_INDEX"],
    }
    result_type = ListwiseResult

    def variables(self, answers: list[str]) -> dict:
        return {"responses": answers}

    def verdict(self, text: str, count: int) -> dict | None:
        index = parse_best_index(text, count)
        return None if index is None else {"index": index}

    async def apick(self, prompt: object, responses: Sequence[str]) -> ListwiseResult:
        if not responses:
            return ListwiseResult(error="no responses to pick from", error_type=ErrorType.INPUT)
        return await self.ajudge(prompt, responses)

    def pick(self, prompt: object, responses: Sequence[str]) -> ListwiseResult:
        """Synchronous ``apick``."""
        return run_sync(lambda: self.apick(prompt, responses))
