"""The ``general-flip`` verifier: FLIP rewards for upstream open-instruct's GRPO, as a plugin.

Defining ``FlipVerifier`` (a direct subclass of upstream's ``VerifierFunction``) is the whole registration:
``build_all_verifiers`` instantiates every direct subclass with ``get_config_class().from_args(args,
streaming_config)`` and keys it by name, so dataset rows with ``"dataset": "general-flip"`` are scored here.

Per call: the original instruction is the last user message of the flattened ``query`` (kept whole, multi-line
included) and the turns before it are the judge's context; when the query has no user message the row's
``ground_truth`` (``label``) is the instruction. The score is ``FlipReward``'s, the same path as the CLI. Nothing
raises into the trainer: a failure scores 0.0 and says why in ``VerificationResult.reasoning``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from open_instruct.ground_truth_utils import (
    VerificationResult,
    VerifierConfig,
    VerifierFunction,
)

from flip_reward.core.conversation import PromptError, SplitPrompt, format_turn, split_prompt, to_turns
from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult, FlipReward
from flip_reward.core.settings import FlipSettings
from flip_reward.data.samples import plugin_trace
from flip_reward.integrations.open_instruct.actor_log import ActorLog
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL
from flip_reward.judge.loops import run_sync

VERIFIER_NAME = "general-flip"


@dataclasses.dataclass
class FlipVerifierConfig(VerifierConfig):
    """Upstream's judge arguments (same names, so ``from_args`` fills them) plus the ``FLIP_*`` settings.

    ``flip`` is read from the environment when the config is built, i.e. in the trainer's driver, and is carried
    to the Ray actors inside the pickled verifier.
    """

    llm_judge_model: str = DEFAULT_JUDGE_MODEL
    llm_judge_max_tokens: int = 2048
    llm_judge_max_context_length: int = 8192
    llm_judge_temperature: float = 1.0
    llm_judge_timeout: int = 60
    seed: int | None = None
    flip: FlipSettings = dataclasses.field(default_factory=FlipSettings.from_env)

    def build_reward(self) -> FlipReward:
        """The FlipReward these settings describe (one judge URL: a server, or vllm-router in front of several)."""
        return FlipReward(
            judge_model=self.llm_judge_model,
            **self.flip.reward_options(self.llm_judge_model),
            max_context_length=self.llm_judge_max_context_length,
            timeout=float(self.llm_judge_timeout),
            temperature=self.llm_judge_temperature,
            max_tokens=self.llm_judge_max_tokens,
            seed=self.seed,
        )


def label_text(label: Any) -> str | None:
    """The instruction a ``ground_truth`` value carries: a non-empty string, or strings of a list joined by
    newlines; None for anything else."""
    if isinstance(label, str):
        return label.strip() or None
    if isinstance(label, Sequence) and label and all(isinstance(item, str) for item in label):
        return "\n".join(item.strip() for item in label if item.strip()) or None
    return None


def flip_prompt(query: Any, label: Any) -> SplitPrompt | Any:
    """The prompt to score against, split once (a SplitPrompt, which FlipReward takes as it is).

    The flattened ``query`` cannot be split back into messages without ambiguity when a message holds a line that
    starts with ``user:`` or another role. The label (``ground_truth``, which ``flip-reward data convert`` fills
    with the instruction) settles it: when the query ends with ``user: <label>``, the label is the instruction and
    the text before it is the context. Otherwise the query's last user message is the instruction, and a query
    with none takes the label after its turns. Returned unchanged when nothing works, so that ``FlipReward``
    reports the input error.
    """
    instruction = label_text(label)
    if isinstance(query, str) and instruction is not None and query.rstrip().endswith("user: " + instruction):
        before = query.rstrip()[: -len("user: " + instruction)]
        if not before or before.endswith("\n"):
            return SplitPrompt(_history(before.rstrip("\n")), instruction)
    if query is not None:
        try:
            return split_prompt(query)
        except PromptError:
            pass
    if instruction is None:
        return query if query is not None else ""
    return SplitPrompt(_history(query if isinstance(query, str) else ""), instruction)


def _history(flattened: str) -> tuple[str, ...]:
    """The history turns of a flattened prompt prefix, as the judge reads them (none for an empty one)."""
    if not flattened.strip():
        return ()
    return tuple(format_turn(turn) for turn in to_turns(flattened))


def reasoning_text(result: FlipResult) -> str:
    """What open-instruct logs for a sample: F1 and the inferred instruction, or the reason for the 0.0."""
    if result.error is not None:
        return f"FLIP error ({result.error_type}): {result.error}"
    return (
        f"FLIP f1={result.f1:.4f} precision={result.precision:.4f} recall={result.recall:.4f} | "
        f"inferred instruction: {result.inferred_instruction}"
    )


class FlipVerifier(VerifierFunction):
    """Upstream verifier ``general-flip``: score = FLIP reward of the response for the row's instruction.

    Picklable (only the config travels) and safe to await from several event loops. The FlipReward is built when
    the verifier is constructed or unpickled (in each Ray actor), so the first reward does not import the HTTP
    clients or load the tokenizer on the actor's event loop; a setup failure is reported by every call instead.
    ``__call__`` is the synchronous form of ``async_call``.
    """

    def __init__(self, verifier_config: VerifierConfig | None = None) -> None:
        if not isinstance(verifier_config, FlipVerifierConfig):
            verifier_config = FlipVerifierConfig.from_args(verifier_config)
        super().__init__(VERIFIER_NAME, weight=1.0, verifier_config=verifier_config)
        self._reward, self._setup_error = self._build_reward()
        self._log = ActorLog(self._reward.judge.endpoint.description if self._reward else "not set up")
        self._samples = plugin_trace(self.verifier_config.flip)

    @classmethod
    def get_config_class(cls) -> type:
        return FlipVerifierConfig

    def __getstate__(self) -> dict:
        return {"name": self.name, "weight": self.weight, "verifier_config": self.verifier_config}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["verifier_config"])
        self.name, self.weight = state["name"], state["weight"]

    def _build_reward(self) -> tuple[FlipReward | None, str | None]:
        """This process's FlipReward, or None and why it could not be built (e.g. a model litellm cannot resolve)."""
        try:
            return self.verifier_config.build_reward(), None
        except Exception as error:  # noqa: BLE001  (reported by every call, never raised into the trainer)
            return None, f"cannot set up the FLIP judge client: {type(error).__name__}: {error}"

    @property
    def reward(self) -> FlipReward | None:
        """The FlipReward of this process (None when it could not be set up)."""
        return self._reward

    async def async_call(
        self,
        tokenized_prediction: list[int],
        prediction: str,
        label: Any,
        query: str | None = None,
        rollout_state: dict | None = None,
    ) -> VerificationResult:
        try:
            result = await self._score(flip_prompt(query, label), prediction)
        except Exception as error:  # noqa: BLE001  (never raise into the trainer; the reason goes to reasoning)
            result = FlipResult(reward=0.0, error=f"{type(error).__name__}: {error}", error_type=ErrorType.INTERNAL)
        self._log.record(result)
        if self._samples is not None:  # the query as upstream gave it; upstream passes no step
            self._samples.record(query, prediction, result)
        return VerificationResult(score=result.reward, cost=0.0, reasoning=reasoning_text(result))

    async def _score(self, prompt: Any, response: Any) -> FlipResult:
        if self._reward is None:
            return FlipResult(reward=0.0, error=self._setup_error, error_type=ErrorType.CONFIG)
        return await self._reward.ascore_one(prompt, response)

    def __call__(
        self,
        tokenized_prediction: list[int],
        prediction: str,
        label: Any,
        query: str | None = None,
        rollout_state: dict | None = None,
    ) -> VerificationResult:
        # An event loop of its own (a worker thread when called inside a running loop), clients closed at its end.
        return run_sync(lambda: self.async_call(tokenized_prediction, prediction, label, query, rollout_state))
