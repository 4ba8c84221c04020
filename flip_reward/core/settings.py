"""The ``FLIP_*`` environment: FLIP-only options of the trainers' reward plugins (the open-instruct verifier, the verl
reward function), read once.

Upstream's judge arguments (``--llm_judge_model``, ``--llm_judge_timeout``, ...) cover what every judge needs; what
only FLIP needs comes from the environment, is parsed once when the verifier's config is built (in the trainer's
driver process), and travels inside the config when open-instruct pickles the verifier to its vLLM Ray actors, so
the actors' environment does not matter.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from flip_reward.core.reward import REWARD_METRICS
from flip_reward.judge.urls import JudgeURLError, redacted_repr, require_http_scheme, split_credentials

logger = logging.getLogger("flip_reward")
# Variables of the client-side router that several judges now sit behind vllm-router instead of.
REMOVED_VARS = ("FLIP_JUDGE_API_BASES", "FLIP_ROUTING_STRATEGY")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

# name -> (default shown in docs, meaning); the README's table is written from this.
ENV_VARS: dict[str, tuple[str, str]] = {
    "FLIP_DISABLE_THINKING": ("`0`", "`1` sends `chat_template_kwargs: {enable_thinking: false}` (Qwen3-style judges)"),
    "FLIP_STRUCTURED_OUTPUT": ("`0`", "`1` asks the server for JSON-schema output with the two FLIP keys"),
    "FLIP_THINK_PREFILLED": (
        "`0`",
        (
            "`1` when the policy's chat template opens `<think>` in the generation prompt "
            "(`olmo_thinker`): a response that never closes its thinking shows the judge "
            "nothing"
        ),
    ),
    "FLIP_CONCURRENCY": ("`64`", "judge requests in flight per vLLM actor"),
    "FLIP_RETRIES": ("`3`", "retries of a failed judge request (with backoff); `--llm_judge_timeout` is per try"),
    "FLIP_CACHE": ("`1`", "`0` turns off the in-memory cache of identical judge requests"),
    "FLIP_CACHE_DIR": ("unset", "directory of an on-disk answer cache shared by the actors of one node"),
    "FLIP_TOKENIZER": ("unset", "local path of the judge tokenizer, for exact token counts in the context guard"),
    "FLIP_REWARD_METRIC": ("`f1`", "`f1`, `precision` or `recall` of the inferred vs. the original instruction"),
    "FLIP_RESTATEMENT_GUARD": (
        "`1`",
        "`0` lets the judge see spans of a response that restate the instruction (masked by default: reward hacking)",
    ),
    "FLIP_SAMPLE_LOG": (
        "unset",
        "path of a per-sample trace (JSON lines); each vLLM actor writes its own file, its actor id in the name",
    ),
    "FLIP_SAMPLE_EVERY": ("`1`", "trace every N-th judged sample of an actor (with `FLIP_SAMPLE_LOG`)"),
    "FLIP_SAMPLE_LOG_MAX_MB": ("`256`", "size at which an actor's trace rotates to `PATH.1` (one backup kept)"),
    "FLIP_MAX_OUTAGE_S": (
        "`900`",
        "seconds the judge may stay unreachable from the launcher before the run is stopped with one message (`0`: "
        "never); every reward is 0.0 meanwhile and upstream resamples all-zero groups without advancing",
    ),
}


class FlipSettingsError(ValueError):
    """A ``FLIP_*`` environment variable holds a value that cannot be used; the message names it."""


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise FlipSettingsError(f"{name} must be 1/0 (or true/false, yes/no, on/off), got {environ[name]!r}")


def _count(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise FlipSettingsError(f"{name} must be an integer >= {minimum}, got {environ[name]!r}")
    return value


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = environ.get(name, "").strip() or default
    if value not in choices:
        raise FlipSettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _refuse_removed(environ: Mapping[str, str]) -> None:
    for name in REMOVED_VARS:
        if environ.get(name, "").strip():
            raise FlipSettingsError(
                f"{name} is no longer read: put vllm-router in front of several judges (scripts/serve_judge.sh "
                "--route URL..., or JUDGE_BASE_URL=URL,URL in the GRPO scripts) and set HOSTED_VLLM_API_BASE to its URL"
            )


def _judge_url(environ: Mapping[str, str]) -> str | None:
    """``HOSTED_VLLM_API_BASE``, refused (its credentials never shown) when it is no http(s) URL or its credentials
    cannot be read (``split_credentials``)."""
    url = environ.get("HOSTED_VLLM_API_BASE", "").strip() or None
    try:
        if url:
            require_http_scheme(url)
            split_credentials(url)
    except JudgeURLError as error:
        raise FlipSettingsError(f"HOSTED_VLLM_API_BASE: {error}") from None
    return url


@dataclass(frozen=True)
class FlipSettings:
    """The FLIP-only options of the verifier (see ``ENV_VARS``); ``hosted_vllm_api_base`` is captured too."""

    hosted_vllm_api_base: str | None = None
    disable_thinking: bool = False
    structured_output: bool = False
    think_prefilled: bool = False
    concurrency: int = 64
    retries: int = 3
    cache: bool = True
    cache_dir: str | None = None
    tokenizer: str | None = None
    reward_metric: str = "f1"
    restatement_guard: bool = True
    sample_log: str | None = None
    sample_every: int = 1
    sample_log_max_mb: int = 256
    max_outage_s: int = 900

    def __repr__(self) -> str:
        return redacted_repr(self)  # the judge URL's credentials hidden (preflight prints the settings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FlipSettings:
        """Settings from ``environ`` (default ``os.environ``); raises FlipSettingsError naming a bad variable."""
        env = os.environ if environ is None else environ
        _refuse_removed(env)
        return cls(
            hosted_vllm_api_base=_judge_url(env),
            disable_thinking=_flag(env, "FLIP_DISABLE_THINKING", False),
            structured_output=_flag(env, "FLIP_STRUCTURED_OUTPUT", False),
            think_prefilled=_flag(env, "FLIP_THINK_PREFILLED", False),
            concurrency=_count(env, "FLIP_CONCURRENCY", 64, 1),
            retries=_count(env, "FLIP_RETRIES", 3, 0),
            cache=_flag(env, "FLIP_CACHE", True),
            cache_dir=env.get("FLIP_CACHE_DIR", "").strip() or None,
            tokenizer=env.get("FLIP_TOKENIZER", "").strip() or None,
            reward_metric=_choice(env, "FLIP_REWARD_METRIC", "f1", REWARD_METRICS),
            restatement_guard=_flag(env, "FLIP_RESTATEMENT_GUARD", True),
            sample_log=env.get("FLIP_SAMPLE_LOG", "").strip() or None,
            sample_every=_count(env, "FLIP_SAMPLE_EVERY", 1, 1),
            sample_log_max_mb=_count(env, "FLIP_SAMPLE_LOG_MAX_MB", 256, 1),
            max_outage_s=_count(env, "FLIP_MAX_OUTAGE_S", 900, 0),
        )

    def api_base(self, judge_model: str) -> str | None:
        """The judge's one base URL (a server, or vllm-router in front of several): ``HOSTED_VLLM_API_BASE`` for a
        ``hosted_vllm/`` model (as litellm would), else None (litellm's own resolution for the provider)."""
        if judge_model.startswith("hosted_vllm/") and self.hosted_vllm_api_base:
            return self.hosted_vllm_api_base
        return None

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
