"""The base every judge-backed method specialises (FlipReward and the LLM-as-a-judge baselines): it owns the judge
client and the context guard, turns a judge call into a result or a failure of the method's result type, and
gives the per-response methods their batch and sync entry points."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from flip_reward.core.context import DEFAULT_MAX_CONTEXT, Build, ContextGuard, ContextOverflow, FittedRequest
from flip_reward.core.results import ErrorType, Judgment
from flip_reward.judge.client import (
    DEFAULT_JUDGE_MODEL,
    Judge,
    JudgeConfig,
    JudgeError,
    JudgeResponse,
)
from flip_reward.judge.loops import run_sync

R = TypeVar("R", bound=Judgment)


class JudgeMethod(Generic[R]):
    """A judge, its context guard and its result type ``result_type``; ``schema`` is the JSON schema asked for with
    ``structured_output``. ``max_context_length`` and ``tokenizer`` drive the context guard; every other keyword
    is a JudgeConfig field. A subclass renders its requests with ``render``; construction fails (ValueError) when
    ``max_tokens`` leaves its prompt no room in ``max_context_length``, or the judge string cannot be called."""

    result_type: type[R]
    schema: dict

    def __init__(
        self,
        judge_model: str = DEFAULT_JUDGE_MODEL,
        api_base: str | None = None,
        *,
        max_context_length: int = DEFAULT_MAX_CONTEXT,
        tokenizer: str | None = None,
        structured_output: bool = False,
        **judge_options: object,
    ):
        schema = self.schema if structured_output else None
        self.judge = Judge(JudgeConfig(model=judge_model, api_base=api_base, response_schema=schema, **judge_options))
        self.context_guard = ContextGuard.for_judge(self.judge, max_context_length, tokenizer)
        self.context_guard.check_room(self.render("", ["", ""]), type(self).__name__)

    def render(self, context: str, responses: list[str], instruction: str = "") -> list[dict[str, str]]:
        """The method's request showing ``responses`` after the history text ``context`` (and, for a method that is
        shown it, the ``instruction``)."""
        raise NotImplementedError

    def fit(self, history: Sequence[str], responses: Sequence[str], instruction: str = "") -> FittedRequest:
        """The method's request for ``responses`` after the ``history`` turns, made to fit the judge's context by the
        context guard; ContextOverflow when even its fixed parts (instruction included) do not."""
        return self.context_guard.fit_request(self.builder(instruction), history, responses)

    def builder(self, instruction: str) -> Build:
        """``render`` with ``instruction`` fixed: what the context guard calls to build a request."""
        return lambda context, shown: self.render(context, shown, instruction)

    async def fitted(
        self, history: Sequence[str], responses: Sequence[str], instruction: str = ""
    ) -> FittedRequest | R:
        """``fit(...)``: on the event loop when the whole request surely fits, else on a worker thread (counting
        tokens, and loading the tokenizer the first time, would block the loop); the input failure when the request
        cannot fit."""
        whole = self.context_guard.whole_request(self.builder(instruction), history, responses)
        if whole is not None:
            return whole
        try:
            return await asyncio.to_thread(self.fit, history, responses, instruction)
        except ContextOverflow as error:
            return self.failure(ErrorType.INPUT, str(error))

    def failure(self, error_type: ErrorType, error: str, response: JudgeResponse | None = None) -> R:
        """A result that failed at stage ``error_type`` (one of JUDGED_FAILURES), with the answer's cost."""
        return self.result_type(error=error, error_type=error_type, **(response.usage() if response else {}))

    async def ask(self, messages: list[dict], parse: Callable[[str], object]) -> JudgeResponse | R:
        """The judge's answer with ``parsed`` set, or the failure result when the request failed."""
        try:
            return await self.judge.complete(messages, parse)
        except JudgeError as error:
            return self.failure(ErrorType.JUDGE, str(error))


class ResponseScorer(JudgeMethod[R]):
    """A method that scores each (prompt, response) on its own: ``ascore_one`` is the method, ``ascore`` and
    ``score`` run it over a batch, in input order, never raising for a bad item or a judge failure."""

    async def ascore_one(self, prompt: object, response: str) -> R:
        raise NotImplementedError

    async def ascore(self, prompts: Sequence[object], responses: Sequence[str]) -> list[R]:
        """One result per (prompt, response), in input order."""
        if len(prompts) != len(responses):
            raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
        return list(await asyncio.gather(*(self.ascore_one(p, r) for p, r in zip(prompts, responses))))

    def score(self, prompts: Sequence[object], responses: Sequence[str]) -> list[R]:
        """Synchronous ``ascore``; inside a running event loop it runs on a worker thread with its own loop."""
        return run_sync(lambda: self.ascore(prompts, responses))
