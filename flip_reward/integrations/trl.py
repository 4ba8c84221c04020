"""Reward functions for TRL's ``GRPOTrainer``: FLIP, and the pointwise LLM-judge baseline, through one wrapper.

How TRL 1.16 calls a custom reward function (``GRPOTrainer._calculate_rewards``): once per generation batch, with
keyword arguments only, synchronously unless the callable's ``__call__`` is a coroutine function:

- ``prompts``: one per completion (each prompt repeated ``num_generations`` times): a list of chat messages for
  conversational data, a string for plain-text data;
- ``completions``: for conversational data a list of messages per completion, ``[{"role": "assistant", "content":
  ...}]`` (more messages with tool calls), else a string;
- ``completion_ids``: the generated token ids; every other dataset column, as a list with one value per completion;
- ``trainer_state`` (``transformers.TrainerState``), ``log_extra(column, values)`` (columns of the completions
  table) and ``log_metric(name, value)`` (a scalar averaged over the logging step, like ``kl``).

It expects one float per completion, in order (None means "not applicable": never returned here, a failed judgment
is 0.0), logs ``rewards/<__name__>/mean`` and ``/std`` itself, and names the function by ``__name__``.

Every reward goes through the one reward path (``FlipReward.ascore`` or ``PointwiseJudgeReward.ascore``). The
wrapper adds per-batch counts through ``log_metric``: ``rewards/<name>/judge_errors``, ``/parse_failures``,
``/input_errors`` and ``/seconds`` (wall time of the batch's judging).

The callables are ``async``: TRL awaits them on its own persistent event loop (a daemon thread it starts for async
reward functions), gathered with any other async reward function of the run, so the judge's HTTP clients, the
concurrency gate and the in-flight dedup live on that loop across steps and keep their keep-alive connections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from flip_reward.core.conversation import PromptError, message_text
from flip_reward.core.results import JUDGED_FAILURES, ErrorType
from flip_reward.core.reward import FlipReward
from flip_reward.data.samples import SampleWriter, trace_line
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL

logger = logging.getLogger("flip_reward")


@dataclass(frozen=True)
class RewardStats:
    """Counts over scored completions: how many, their reward sum, failures by kind, and judging wall time."""

    samples: int = 0
    reward_sum: float = 0.0
    judge_errors: int = 0
    parse_failures: int = 0
    input_errors: int = 0
    seconds: float = 0.0

    @classmethod
    def of(cls, results: Sequence[Any], seconds: float) -> RewardStats:
        kinds = [getattr(result, "error_type", None) for result in results]
        counts = {kind.counter: kinds.count(kind) for kind in JUDGED_FAILURES}
        return cls(len(results), sum(float(result.reward) for result in results), seconds=seconds, **counts)

    def __add__(self, other: RewardStats) -> RewardStats:
        return RewardStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def mean_reward(self) -> float:
        return self.reward_sum / self.samples if self.samples else 0.0

    def metrics(self) -> dict[str, float]:
        """What is logged per batch (TRL logs the reward mean and std itself)."""
        return {**{kind.counter: getattr(self, kind.counter) for kind in JUDGED_FAILURES}, "seconds": self.seconds}


def completion_text(completion: object) -> object:
    """The response text of a TRL completion: a string as is; for chat messages the content of the last assistant
    message (thinking that TRL split off into another field is not part of it). Anything else is returned unchanged
    so that the scorer reports it as an input error."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence):
        replies = [m for m in completion if isinstance(m, Mapping) and m.get("role", "assistant") == "assistant"]
        if replies:
            content = replies[-1].get("content")
            if content is None:
                return ""
            try:
                return message_text(content)
            except PromptError:
                return content
    return completion


class JudgeRewardFunction:
    """A TRL reward function scoring completions with a judge-based reward (``FlipReward`` or
    ``PointwiseJudgeReward``: anything with ``async ascore(prompts, responses)`` returning results with ``reward``
    and ``error_type``). Returns one float per completion in order; a failed judgment is 0.0 and is counted.

    ``totals`` accumulates RewardStats over every call in this process, ``last_batch`` holds the latest batch's.
    With ``samples`` (a SampleWriter) every judged completion is also traced there (``step`` is the optimizer step
    the completion is generated for, counted from 1 as in metrics.jsonl). Picklable (the scorer pickles by its
    config). Awaited on the caller's event loop; outside one, run it with ``asyncio.run``.

    >>> reward = flip_reward_function("hosted_vllm/my-judge", api_base="http://127.0.0.1:8000/v1")
    >>> reward.__name__, reward.totals.samples
    ('flip_reward', 0)
    """

    def __init__(self, scorer: Any, name: str = "flip_reward", samples: SampleWriter | None = None):
        if not callable(getattr(scorer, "ascore", None)):
            raise TypeError(f"scorer must have an async ascore(prompts, responses) method, got {type(scorer).__name__}")
        if not name or "/" in name:
            raise ValueError(f"name must be non-empty and contain no '/', got {name!r}")
        self.scorer = scorer
        self.__name__ = name
        self.samples = samples
        self.totals = RewardStats()
        self.last_batch = RewardStats()

    def __repr__(self) -> str:
        return f"JudgeRewardFunction({type(self.scorer).__name__}, name={self.__name__!r})"

    async def __call__(
        self,
        prompts: Sequence[object],
        completions: Sequence[object],
        completion_ids: object = None,
        log_metric: Any = None,
        log_extra: Any = None,
        **columns: object,
    ) -> list[float]:
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts but {len(completions)} completions")
        responses = [completion_text(completion) for completion in completions]
        started = time.perf_counter()
        results = await self.scorer.ascore(list(prompts), responses)
        batch = RewardStats.of(results, time.perf_counter() - started)
        self.last_batch, self.totals = batch, self.totals + batch
        self._report(batch, results, log_metric, log_extra)
        if self.samples is not None:
            step = getattr(columns.get("trainer_state"), "global_step", None)
            step = step + 1 if isinstance(step, int) else None
            for prompt, response, result in zip(prompts, responses, results):
                self.samples.put(trace_line(step, prompt, response, result))
        return [float(result.reward) for result in results]

    def _report(self, batch: RewardStats, results: Sequence[Any], log_metric: Any, log_extra: Any) -> None:
        if log_metric is not None:
            for key, value in batch.metrics().items():
                log_metric(f"rewards/{self.__name__}/{key}", value)
        if log_extra is not None:
            log_extra(f"{self.__name__}/error_type", [str(result.error_type or "") for result in results])
            inferred = [getattr(result, "inferred_instruction", None) or "" for result in results]
            if any(inferred):
                log_extra(f"{self.__name__}/inferred_instruction", inferred)
        if batch.judge_errors:
            first = next(result.error for result in results if result.error_type == ErrorType.JUDGE)
            logger.warning(
                "%s: %d of %d judge requests failed (rewards 0.0); first: %s",
                self.__name__,
                batch.judge_errors,
                batch.samples,
                first,
            )


def flip_reward_function(
    judge_model: str = DEFAULT_JUDGE_MODEL, api_base: str | None = None, *, name: str = "flip_reward", **options: object
) -> JudgeRewardFunction:
    """FLIP as a TRL reward function: reward = F1(judge's inferred instruction, last user message of the prompt).
    ``options`` are FlipReward's keywords (reward_metric, restatement_guard, max_context_length, tokenizer,
    structured_output and every JudgeConfig field)."""
    return JudgeRewardFunction(FlipReward(judge_model, api_base, **options), name)


def pointwise_reward_function(
    judge_model: str = DEFAULT_JUDGE_MODEL,
    api_base: str | None = None,
    *,
    name: str = "pointwise_judge_reward",
    **options: object,
) -> JudgeRewardFunction:
    """The LLM-as-a-judge baseline as a TRL reward function: reward = the judge's 1-10 score of (prompt, response)
    / 10. ``options`` are PointwiseJudgeReward's keywords (the same as FlipReward's but reward_metric)."""
    from flip_reward.evaluation.baselines import PointwiseJudgeReward

    return JudgeRewardFunction(PointwiseJudgeReward(judge_model, api_base, **options), name)
