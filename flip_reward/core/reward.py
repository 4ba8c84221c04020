"""FlipReward: the one path from (prompt, response) to a FLIP reward, shared by the CLI, open-instruct and TRL.

prompt --split_prompt--> (history, instruction); response --final_answer (thinking hidden from the judge),
mask_restatements (restatement guard), FLIP prompts--> judge --parse--> inferred instruction;
reward = F1(inferred, instruction). A failure of any stage gives reward 0.0 with ``error``
set and never raises to the caller, because one bad sample must not crash a training step.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from flip_reward.core.context import FittedRequest
from flip_reward.core.conversation import PromptError, SplitPrompt, split_prompt
from flip_reward.core.method import ResponseScorer
from flip_reward.core.metrics import f1_score
from flip_reward.core.parsing import parse_flip_answer
from flip_reward.core.restatement import mask_restatements
from flip_reward.core.results import ErrorType, Judgment
from flip_reward.core.thinking import final_answer
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL
from flip_reward.prompts import chat_messages
from flip_reward.text import repaired

REWARD_METRICS = ("f1", "precision", "recall")
FLIP_SCHEMA = {
    "type": "object",
    "properties": {"REASONING": {"type": "string"}, "INFERRED INSTRUCTION": {"type": "string"}},
    "required": ["REASONING", "INFERRED INSTRUCTION"],
}


EMPTY_ANSWER = "response is empty once reasoning is removed"
RESTATEMENT_ONLY = "response is empty once its restatement of the instruction is removed"
OFF_LOOP_CHARACTERS = 16_000  # answers longer than this (~4k tokens) are masked on a worker thread


@dataclass(frozen=True)
class FlipResult(Judgment):
    """One FLIP reward and how it came about (see Judgment for the error and cost fields); 0.0 on failure.

    ``restatement_masked`` is how many normalised tokens the restatement guard removed (0 when none, or when the guard
    is off); ``judged_response`` is the exact response text the judge was shown (thinking stripped, restatements
    masked, an overflowing middle trimmed), None when no request was sent (an input failure). When the request
    would overflow the judge's context, the oldest turns of the history are left out first (see ``fit_request``).
    ``replaced_surrogates`` is how many lone surrogates (half of a UTF-16 pair: an emoji cut in two) the prompt and
    response held; each was replaced by U+FFFD before anything else read them (see ``flip_reward.text``).
    """

    reward: float = 0.0
    f1: float = 0.0
    precision: float = 0.0
    recall: float = 0.0
    inferred_instruction: str | None = None
    restatement_masked: int = 0
    judged_response: str | None = None
    replaced_surrogates: int = 0


def parse_inferred(text: str) -> tuple[str, str | None] | None:
    """(inferred instruction, reasoning) of a judge answer, or None when it holds no inferred instruction."""
    inferred, reasoning = parse_flip_answer(text)
    return None if inferred is None else (inferred, reasoning)


def valid_inputs(history: list[str], instruction: str, response: str) -> tuple[list[str], str, str, int]:
    """The history turns, instruction and response as valid Unicode (``flip_reward.text.repaired``), and how many lone
    surrogates they held."""
    texts = [repaired(text) for text in (*history, instruction, response)]
    *turns, instruction, response = (text for text, _ in texts)
    return turns, instruction, response, sum(count for _, count in texts)


class FlipReward(ResponseScorer[FlipResult]):
    """Scores responses by how well a judge can infer the instruction behind them (FLIP, arXiv 2602.13551).

    ``reward_metric`` picks what becomes ``reward`` ("f1" by default; "recall" or "precision" for ablations).
    ``max_context_length`` and ``tokenizer`` drive the context guard; ``think_prefilled`` says the policy's chat
    template opens ``<think>`` itself (see ``final_answer``: thinking is always hidden from the judge).
    ``restatement_guard`` (on by default) removes the response's restatements of the instruction before the judge
    sees it (``mask_restatements``), since a judge copies a restated instruction back for F1 = 1; a response that is
    nothing but a restatement is an input failure. Every other keyword is a JudgeConfig field.

    >>> flip = FlipReward(judge_model="hosted_vllm/my-judge", api_base="http://127.0.0.1:8000/v1")
    >>> flip.judge.config.max_concurrency, flip.reward_metric
    (64, 'f1')
    """

    result_type = FlipResult
    schema = FLIP_SCHEMA

    def __init__(
        self,
        judge_model: str = DEFAULT_JUDGE_MODEL,
        api_base: str | None = None,
        *,
        reward_metric: str = "f1",
        think_prefilled: bool = False,
        restatement_guard: bool = True,
        **options: object,
    ):
        if reward_metric not in REWARD_METRICS:
            raise ValueError(f"reward_metric must be one of {REWARD_METRICS}, got {reward_metric!r}")
        super().__init__(judge_model, api_base, **options)
        self.reward_metric = reward_metric
        self.think_prefilled = think_prefilled
        self.restatement_guard = restatement_guard

    def render(self, context: str, responses: list[str], instruction: str = "") -> list[dict[str, str]]:
        """The FLIP request: the history text ``context`` and the one response; never the instruction."""
        return chat_messages("FLIP_SYSTEM", "FLIP_USER", context=context, response=responses[0])

    def judge_messages(self, history: list[str], response: str) -> list[dict[str, str]]:
        """The FLIP request for one response after the ``history`` turns (``split_prompt``), fitted to the judge's
        context: the oldest turns left out first, then the response's middle trimmed."""
        return self.flip_request(history, response).messages

    def flip_request(self, history: list[str], response: str) -> FittedRequest:
        """The fitted FLIP request for one response, with the response text it shows."""
        return self.fit(history, [response])

    async def without_restatements(self, answer: str, instruction: str) -> tuple[str, int]:
        """``mask_restatements(answer, instruction)``, on a worker thread for a long answer (about 0.6 us a token:
        a 16k-token answer would hold an open-instruct actor's event loop, which also drives vLLM, for ~10 ms)."""
        if len(answer) > OFF_LOOP_CHARACTERS:
            return await asyncio.to_thread(mask_restatements, answer, instruction)
        return mask_restatements(answer, instruction)

    async def ascore_one(self, prompt: object | SplitPrompt, response: str) -> FlipResult:
        """The reward of one response to ``prompt`` (chat messages, a flattened string, or a SplitPrompt the caller
        already has); never raises, whatever strings the prompt and response hold (lone surrogates are replaced
        first, see ``valid_inputs``)."""
        try:
            split = split_prompt(prompt)
        except PromptError as error:
            return self.failure(ErrorType.INPUT, f"prompt: {error}")
        if not isinstance(response, str):
            return self.failure(ErrorType.INPUT, f"response must be a string, got {type(response).__name__}")
        history, instruction, response, replaced = valid_inputs(list(split.history), split.instruction, response)
        noted = {"replaced_surrogates": replaced, "restatement_masked": 0}
        answer = final_answer(response, self.think_prefilled)
        if not answer:
            return replace(self.failure(ErrorType.INPUT, EMPTY_ANSWER), **noted)
        if self.restatement_guard:
            answer, noted["restatement_masked"] = await self.without_restatements(answer, instruction)
            if not answer:
                failed = self.failure(ErrorType.INPUT, RESTATEMENT_ONLY)
                return replace(failed, **noted)
        fitted = await self.fitted(history, [answer])
        if isinstance(fitted, FlipResult):
            return replace(fitted, **noted)
        seen = {**noted, "judged_response": fitted.responses[0]}
        judged = await self.ask(fitted.messages, parse_inferred)
        if isinstance(judged, FlipResult):
            return replace(judged, **seen)
        if judged.parsed is None:
            error = f"no inferred instruction in judge output: {judged.text[:200]!r}"
            return replace(self.failure(ErrorType.PARSE, error, judged), **seen)
        inferred, reasoning = judged.parsed
        scores = f1_score(inferred, instruction)
        return FlipResult(
            reward=scores[self.reward_metric],
            **scores,
            inferred_instruction=inferred,
            reasoning=reasoning,
            **seen,
            **judged.usage(),
        )
