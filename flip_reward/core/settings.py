"""The ``FLIP_*`` environment: the reward's options in a trainer's processes, read once per process.

Who reads it: the open-instruct verifier (upstream's ``--llm_judge_*`` arguments name the judge; only what FLIP alone
needs comes from here, parsed once in the trainer's driver and carried to the vLLM Ray actors inside the pickled
verifier config, so the actors' environment does not matter); and every adapter of ``flip_reward.integrations``
through ``process_reward`` (verl, verifiers, ART, SkyRL, AReaL, NeMo Gym, ROLL, slime), in each process that
scores. Those trainers mostly have no judge option of their own, so ``FLIP_JUDGE_*`` and ``HOSTED_VLLM_API_BASE``
name the judge there (under whatever options the trainer's configuration gives); the command-line trainers'
launchers set them in the trainer's environment from their ``JUDGE_*`` knobs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flip_reward.core.context import DEFAULT_MAX_CONTEXT
from flip_reward.core.reward import REWARD_METRICS
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL, JUDGE_DEFAULTS, judge_rule
from flip_reward.judge.urls import JudgeURLError, redacted_repr, require_http_scheme, split_credentials
from flip_reward.knobs import Knob, SettingsError, declared, resolve

logger = logging.getLogger("flip_reward")
# Variables of the client-side router that several judges now sit behind vllm-router instead of.
REMOVED_VARS = ("FLIP_JUDGE_API_BASES", "FLIP_ROUTING_STRATEGY")


class FlipSettingsError(SettingsError):
    """A ``FLIP_*`` environment variable holds a value that cannot be used; the message names it."""


def _flip(env: str, default: object, help: str, **options: Any) -> Any:
    """A FlipSettings field: a knob read from the environment only (no flag), with ``default`` as the field's
    default too (``FlipSettings()`` is the settings of an empty environment)."""
    return field(default=default, metadata={"knob": Knob(env, default, help, flag="", **options)})


def _refuse_removed(environ: Mapping[str, str]) -> None:
    for name in REMOVED_VARS:
        if environ.get(name, "").strip():
            raise FlipSettingsError(
                f"{name} is no longer read: put vllm-router in front of several judges (scripts/serve_judge.sh "
                "--route URL..., or JUDGE_BASE_URL=URL,URL in the GRPO scripts) and set HOSTED_VLLM_API_BASE to its URL"
            )


@dataclass(frozen=True)
class FlipSettings:
    """The ``FLIP_*`` options of the reward, each a knob (flip_reward.knobs; docs/knobs.md lists them);
    ``hosted_vllm_api_base`` is captured too. The judge client's defaults and rules are JudgeConfig's."""

    hosted_vllm_api_base: str | None = _flip(
        "HOSTED_VLLM_API_BASE", None, "the judge's one base URL for a `hosted_vllm/` judge (as litellm reads it)"
    )
    judge_model: str = _flip(
        "FLIP_JUDGE_MODEL",
        DEFAULT_JUDGE_MODEL,
        "litellm model string of the judge, for the adapters whose trainer has no judge option (slime, NeMo Gym, "
        "SkyRL, ART, AReaL, ROLL, verifiers; verl's `reward_kwargs` and open-instruct's `--llm_judge_model` win)",
    )
    judge_timeout: float = _flip(
        "FLIP_JUDGE_TIMEOUT",
        JUDGE_DEFAULTS["timeout"],
        "seconds per judge request try, for the same adapters (`--llm_judge_timeout` in open-instruct)",
        **judge_rule("timeout"),
    )
    judge_max_tokens: int = _flip(
        "FLIP_JUDGE_MAX_TOKENS",
        JUDGE_DEFAULTS["max_tokens"],
        "judge answer budget (tokens), for the same adapters",
        **judge_rule("max_tokens"),
    )
    judge_temperature: float = _flip(
        "FLIP_JUDGE_TEMPERATURE",
        JUDGE_DEFAULTS["temperature"],
        "judge sampling temperature, for the same adapters",
        **judge_rule("temperature"),
    )
    judge_max_context: int = _flip(
        "FLIP_JUDGE_MAX_CONTEXT",
        DEFAULT_MAX_CONTEXT,
        "judge context length (tokens) the request is fitted to, for the same adapters",
        minimum=1,
    )
    disable_thinking: bool = _flip(
        "FLIP_DISABLE_THINKING",
        JUDGE_DEFAULTS["disable_thinking"],
        "`1` sends `chat_template_kwargs: {enable_thinking: false}` (Qwen3-style judges)",
    )
    structured_output: bool = _flip(
        "FLIP_STRUCTURED_OUTPUT", False, "`1` asks the server for JSON-schema output with the two FLIP keys"
    )
    think_prefilled: bool = _flip(
        "FLIP_THINK_PREFILLED",
        False,
        "`1` when the policy's chat template opens `<think>` in the generation prompt (`olmo_thinker`): a response "
        "that never closes its thinking shows the judge nothing (the GRPO launchers default it from the template)",
    )
    concurrency: int = _flip(
        "FLIP_CONCURRENCY",
        JUDGE_DEFAULTS["max_concurrency"],
        "judge requests in flight per process that scores (an open-instruct vLLM actor, a verl reward worker, ...)",
        **judge_rule("max_concurrency"),
    )
    retries: int = _flip(
        "FLIP_RETRIES",
        JUDGE_DEFAULTS["retries"],
        "retries of a failed judge request (with backoff); `--llm_judge_timeout` is per try",
        **judge_rule("retries"),
    )
    cache: bool = _flip(
        "FLIP_CACHE", JUDGE_DEFAULTS["cache"], "`0` turns off the in-memory cache of identical judge requests"
    )
    cache_dir: str | None = _flip(
        "FLIP_CACHE_DIR",
        JUDGE_DEFAULTS["cache_dir"],
        "directory of an on-disk answer cache shared by the actors of one node; one that is a symbolic link, another "
        "user's or writable by group or others is not used (one warning; answers stay in memory)",
    )
    tokenizer: str | None = _flip(
        "FLIP_TOKENIZER", None, "local path of the judge tokenizer, for exact token counts in the context guard"
    )
    reward_metric: str = _flip(
        "FLIP_REWARD_METRIC",
        "f1",
        "which score of the inferred vs. the original instruction is the reward",
        choices=REWARD_METRICS,
    )
    restatement_guard: bool = _flip(
        "FLIP_RESTATEMENT_GUARD",
        True,
        "`0` lets the judge see spans of a response that restate the instruction (masked by default: reward hacking)",
    )
    sample_log: str | None = _flip(
        "FLIP_SAMPLE_LOG",
        None,
        "path of a per-sample trace (JSON lines); each process that scores writes `PATH` with its Ray actor id "
        "(outside Ray `pid<N>`) before the suffix",
    )
    sample_every: int = _flip(
        "FLIP_SAMPLE_EVERY", 1, "trace every N-th judged sample of a process (with `FLIP_SAMPLE_LOG`)", minimum=1
    )
    sample_log_max_mb: int = _flip(
        "FLIP_SAMPLE_LOG_MAX_MB",
        256,
        "size at which a process's trace rotates to `PATH.1` (one backup kept)",
        minimum=1,
    )
    max_outage_s: int = _flip(
        "FLIP_MAX_OUTAGE_S",
        900,
        "seconds the judge at `HOSTED_VLLM_API_BASE` may stay unreachable from the launcher before it stops the run "
        "with one line and exit status 3 (`0`: never); every reward is 0.0 meanwhile and upstream resamples all-zero "
        "groups without advancing",
        minimum=0,
    )

    def __post_init__(self) -> None:
        """``HOSTED_VLLM_API_BASE`` refused (its credentials never shown) when it is no http(s) URL or its
        credentials cannot be read (``split_credentials``)."""
        try:
            if self.hosted_vllm_api_base:
                require_http_scheme(self.hosted_vllm_api_base)
                split_credentials(self.hosted_vllm_api_base)
        except JudgeURLError as error:
            raise FlipSettingsError(f"HOSTED_VLLM_API_BASE: {error}") from None

    def __repr__(self) -> str:
        return redacted_repr(self)  # the judge URL's credentials hidden (preflight prints the settings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FlipSettings:
        """Settings from ``environ`` (default ``os.environ``); raises FlipSettingsError naming a bad variable."""
        env = os.environ if environ is None else environ
        _refuse_removed(env)
        try:
            return resolve(cls, environ=env)
        except SettingsError as error:
            raise FlipSettingsError(str(error)) from None

    def api_base(self, judge_model: str) -> str | None:
        """The judge's one base URL (a server, or vllm-router in front of several): ``HOSTED_VLLM_API_BASE`` for a
        ``hosted_vllm/`` model (as litellm would), else None (litellm's own resolution for the provider)."""
        if judge_model.startswith("hosted_vllm/") and self.hosted_vllm_api_base:
            return self.hosted_vllm_api_base
        return None

    def judge_options(self) -> dict:
        """The FlipReward keywords of the judge itself (``FLIP_JUDGE_*``), for the adapters whose trainer does not
        give them (``flip_reward.integrations.process_reward``)."""
        return {
            "timeout": self.judge_timeout,
            "max_tokens": self.judge_max_tokens,
            "temperature": self.judge_temperature,
            "max_context_length": self.judge_max_context,
        }

    def reward_options(self, judge_model: str) -> dict:
        """The FlipReward keywords these settings give for ``judge_model`` (one judge URL: a server, or vllm-router in
        front of several); the judge's sampling and timeout options come from the trainer instead. A
        ``FLIP_TOKENIZER`` that cannot be loaded is warned about once (``warn_unusable_tokenizer``), never refused: a
        training run goes on with the estimate."""
        if self.tokenizer:
            warn_unusable_tokenizer(self.tokenizer)
        return {
            "api_base": self.api_base(judge_model),
            "think_prefilled": self.think_prefilled,
            "reward_metric": self.reward_metric,
            "restatement_guard": self.restatement_guard,
            "tokenizer": self.tokenizer,
            "structured_output": self.structured_output,
            "max_concurrency": self.concurrency,
            "retries": self.retries,
            "disable_thinking": self.disable_thinking,
            "cache": self.cache,
            "cache_dir": self.cache_dir,
        }


ENV_VARS = tuple(name for item in declared(FlipSettings) for name in item.knob.names if name.startswith("FLIP_"))


@cache
def warn_unusable_tokenizer(name_or_path: str) -> None:
    """One WARNING, once per process, when the ``FLIP_TOKENIZER`` tokenizer cannot be loaded, saying why (the context
    guard then estimates tokens from characters)."""
    from flip_reward.core.context import tokenizer_unavailable

    why = tokenizer_unavailable(name_or_path)
    if why:
        logger.warning(
            "FLIP_TOKENIZER %s cannot be used: %s; the context guard estimates tokens from characters instead",
            name_or_path,
            why,
        )
