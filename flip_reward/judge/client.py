"""The async judge client: bounded concurrency, retries with backoff, a deadline, a circuit breaker, dedup and cache.

One ``Judge`` serves every caller of a process (CLI, open-instruct verifier, TRL reward). It pickles (open-instruct
ships verifiers to Ray actors) and keeps its asyncio state per event loop, so it can be awaited from several loops.
``complete_many`` never raises for a failed request: it returns the ``JudgeError`` in that request's slot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

if sys.version_info >= (3, 11):
    from asyncio import timeout as deadline_after
else:  # the same context manager before Python 3.11 (installed with aiohttp there)
    from async_timeout import timeout as deadline_after

from flip_reward.judge.breaker import CircuitBreaker, JudgeUnavailableError
from flip_reward.judge.cache import DEFAULT_CACHE_SIZE, ResponseCache, request_key
from flip_reward.judge.failures import server_reason
from flip_reward.judge.loops import loop_scoped
from flip_reward.judge.transport import Endpoint, MalformedResponseError, Transport
from flip_reward.judge.urls import redact, redacted_repr
from flip_reward.text import valid_text

DEFAULT_JUDGE_MODEL = "hosted_vllm/Qwen/Qwen3-4B"
POSITIVE = ("max_concurrency", "timeout", "max_tokens", "breaker_threshold")  # JudgeConfig fields that must be > 0
NON_NEGATIVE = ("retries", "cache_size", "temperature")  # and those that must be >= 0


@dataclass(frozen=True)
class JudgeConfig:
    """Everything about how the judge is called; the defaults follow open-instruct's judge arguments.

    ``api_base`` (or the provider's environment variable) is the one URL the judge is reached at: a server, or
    vllm-router in front of several replicas (``scripts/serve_judge.sh --route`` / ``--replicas``).
    ``api_key`` is never shown (not in ``repr``, logs or errors) and travels in a pickle only when given here;
    otherwise each process reads its provider's environment variable. ``cache_size`` answers are kept in memory
    (0: none), ``cache_dir`` adds a disk cache shared between processes.
    """

    model: str = DEFAULT_JUDGE_MODEL
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    max_concurrency: int = 64
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 20.0
    deadline: float | None = None
    temperature: float = 0.0
    max_tokens: int = 2048
    seed: int | None = None
    response_schema: dict | None = None
    disable_thinking: bool = False
    extra_body: dict = field(default_factory=dict)
    cache: bool = True
    cache_dir: str | None = None
    cache_size: int = DEFAULT_CACHE_SIZE
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    use_litellm: bool | None = None

    def __repr__(self) -> str:
        return redacted_repr(self)  # api_base's credentials hidden

    def __post_init__(self) -> None:
        for name in POSITIVE:
            if getattr(self, name) <= 0:
                raise ValueError(f"JudgeConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"JudgeConfig.{name} must be >= 0, got {getattr(self, name)!r}")

    def request_params(self) -> dict:
        """The sampling parameters sent with every request (and part of the cache key)."""
        params: dict = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.seed is not None:
            params["seed"] = self.seed
        if self.response_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judgment", "schema": self.response_schema},
            }
        extra_body = dict(self.extra_body)
        if self.disable_thinking:
            extra_body["chat_template_kwargs"] = {
                **extra_body.get("chat_template_kwargs", {}),
                "enable_thinking": False,
            }
        if extra_body:
            params["extra_body"] = extra_body
        return params

    @property
    def total_deadline(self) -> float:
        """Seconds one request may take across all its attempts and back-off waits."""
        return self.deadline if self.deadline is not None else self.timeout * (self.retries + 1) + self.backoff_max


@dataclass(frozen=True)
class JudgeResponse:
    """A judge answer with its cost: latency of the call that produced it (0 when cached) and token usage.
    ``parsed`` is what the caller's ``parse`` made of the text (None: unusable, and so not cached)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    finish_reason: str | None = None
    parsed: object = None

    def usage(self) -> dict:
        """Latency, token counts and cache flag, as the result types of every method carry them."""
        return {
            "latency_s": self.latency_s,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached": self.cached,
        }


class JudgeError(RuntimeError):
    """A request that failed after its retries (or was refused by the open circuit breaker)."""


TRANSIENT_STATUS = frozenset({408, 409, 429})


def is_retryable(error: BaseException) -> bool:
    """Timeouts, dropped connections, 408, 409, 429, 5xx and malformed bodies are transient; other 4xx are not."""
    import openai

    if isinstance(error, (openai.APITimeoutError, openai.APIConnectionError, MalformedResponseError)):
        return True
    if isinstance(error, (openai.APIResponseValidationError, json.JSONDecodeError)):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status in TRANSIENT_STATUS or status >= 500)


def is_refusal(error: BaseException) -> bool:
    """A client error (4xx other than 408, 409 and 429) from a live server: a wrong model name, a base URL without
    /v1, a bad key or request. Asking again will not heal it."""
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in TRANSIENT_STATUS


def backoff_wait(attempt: int, backoff: float, backoff_max: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): uniform in [0, min(backoff * 2 ** (attempt - 1),
    backoff_max)]."""
    return random.uniform(0, min(backoff * 2 ** (attempt - 1), backoff_max))


def valid_messages(messages: list[dict]) -> list[dict]:
    """``messages`` with each text ``content`` made valid Unicode (``flip_reward.text``); a message whose content
    already is (the usual case: one check, no copy) is kept as it is."""
    valid = []
    for message in messages:
        content = message.get("content")
        text = valid_text(content) if isinstance(content, str) else content
        valid.append(message if text is content else {**message, "content": text})
    return valid


def settle(
    in_flight: dict[str, asyncio.Future],
    key: str,
    settled: asyncio.Future,
    done: asyncio.Future | None = None,
    *,
    response: JudgeResponse | None = None,
    error: BaseException | None = None,
) -> None:
    """Give the callers waiting on request ``key`` its outcome (``response``, ``error``, or those of the task
    ``done``) and forget it as in flight."""
    if in_flight.get(key) is settled:
        del in_flight[key]
    if done is not None and done.cancelled():
        settled.cancel()
        return
    error = done.exception() if done is not None else error
    if error is not None:
        settled.set_exception(error)
        settled.exception()  # retrieved: the waiters re-raise it, and with none there is nothing to log
    else:
        settled.set_result(done.result() if done is not None else response)


class _LoopState:
    """The asyncio objects of one event loop: the concurrency gate and the requests in flight (for dedup)."""

    def __init__(self, max_concurrency: int):
        self.gate = asyncio.Semaphore(max_concurrency)
        self.in_flight: dict[str, asyncio.Future] = {}


class Judge:
    """Calls a judge model; see JudgeConfig for the knobs. Safe to pickle and to use from several event loops.

    ``last_refusal`` is the server's reason for the latest request it refused with a client error (``is_refusal``),
    None until one is; with ``breaker`` it tells a command why nothing could be judged.
    """

    def __init__(self, config: JudgeConfig | None = None, **overrides: object):
        self.config = JudgeConfig(**{**asdict(config or JudgeConfig()), **overrides})
        self.endpoint = Endpoint.resolve(self.config.model, self.config.api_base, self.config.api_key)
        self.transport = Transport(self.endpoint, self.config.timeout, self.config.use_litellm)
        self.breaker = CircuitBreaker(
            self.endpoint.description, self.config.breaker_threshold, self.config.breaker_cooldown
        )
        self.cache = ResponseCache(self.config.cache_dir, self.config.cache_size) if self.config.cache else None
        self._servers = (self.endpoint.api_base,)
        self._params = self.config.request_params()
        self._token = object()  # this judge's key in the per-loop registry
        self.last_refusal: str | None = None

    def __getstate__(self) -> dict:
        return {"config": self.config}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["config"])

    def _state(self) -> _LoopState:
        return loop_scoped(("judge", self._token), lambda: _LoopState(self.config.max_concurrency))

    async def complete_many(self, requests: Sequence[list[dict]]) -> list[JudgeResponse | JudgeError]:
        """Answers in input order; identical requests are sent once; failures come back as JudgeError values."""
        return await asyncio.gather(*(self._complete_or_error(messages) for messages in requests))

    async def _complete_or_error(self, messages: list[dict]) -> JudgeResponse | JudgeError:
        try:
            return await self.complete(messages)
        except JudgeError as error:
            return error

    async def complete(self, messages: list[dict], parse: Callable[[str], object] | None = None) -> JudgeResponse:
        """The judge's answer to ``messages``, from cache, from an identical request in flight, or from the server.

        ``parse`` turns the text into what the caller needs (None when unusable) and lands in ``parsed``. Only a
        usable answer is cached: one with text, not cut off at ``max_tokens``, and (with ``parse``) parsed. Text
        contents are made valid Unicode first (``valid_messages``), so that any string can be keyed and sent.
        """
        messages = valid_messages(messages)
        key = request_key(self._servers, self.config.model, messages, self._params)
        cached = await self.cache.aget(key) if self.cache is not None else None
        if cached is not None:
            text = cached["text"]
            return JudgeResponse(
                text,
                cached["prompt_tokens"],
                cached["completion_tokens"],
                cached=True,
                parsed=parse(text) if parse else None,
            )
        state = self._state()
        pending = state.in_flight.get(key)
        if pending is None:
            return await self._lead(key, messages, state, parse)
        return await asyncio.shield(pending)  # a waiter's cancellation is its own

    async def _lead(
        self, key: str, messages: list[dict], state: _LoopState, parse: Callable[[str], object] | None
    ) -> JudgeResponse:
        """Send the request in this caller's task (no task per request); identical requests meanwhile wait on the
        future it settles. A cancelled caller hands the request to a task of its own, so that it still answers them."""
        settled = state.in_flight[key] = asyncio.get_running_loop().create_future()
        try:
            response = await self._fetch(key, messages, state, parse)
        except asyncio.CancelledError:
            handover = asyncio.ensure_future(self._fetch(key, messages, state, parse))
            handover.add_done_callback(lambda done: settle(state.in_flight, key, settled, done))
            raise
        except BaseException as error:
            settle(state.in_flight, key, settled, error=error)
            raise
        settle(state.in_flight, key, settled, response=response)
        return response

    async def _fetch(
        self, key: str, messages: list[dict], state: _LoopState, parse: Callable[[str], object] | None
    ) -> JudgeResponse:
        async with state.gate:
            try:
                async with deadline_after(self.config.total_deadline):
                    response = await self._with_retries(messages)
            except asyncio.TimeoutError as error:
                raise JudgeError(
                    f"judge {self.endpoint.description}: no answer within the {self.config.total_deadline:g}s deadline"
                ) from error
        if parse is not None:
            response = dataclasses.replace(response, parsed=parse(response.text))
        if self.cache is not None and self._usable(response, parse):
            await self.cache.aput(
                key,
                {
                    "text": response.text,
                    "prompt_tokens": response.prompt_tokens,
                    "completion_tokens": response.completion_tokens,
                },
            )
        return response

    @staticmethod
    def _usable(response: JudgeResponse, parse: Callable[[str], object] | None) -> bool:
        """Whether an answer is worth replaying: it has text, was not cut off, and parsed when asked to."""
        if not response.text.strip() or response.finish_reason == "length":
            return False
        return parse is None or response.parsed is not None

    async def _with_retries(self, messages: list[dict]) -> JudgeResponse:
        """Up to ``retries + 1`` attempts, the transient failures (``is_retryable``) followed by a random wait of up to
        ``backoff * 2 ** (attempt - 1)`` seconds, capped at ``backoff_max`` (exponential backoff with full jitter)."""
        for attempt in itertools.count(1):
            try:
                return await self._attempt(messages)
            except JudgeUnavailableError as error:
                raise JudgeError(redact(str(error), *self.endpoint.secrets())) from error
            except Exception as error:  # every transport failure becomes one JudgeError naming the judge and cause
                if attempt > self.config.retries or not is_retryable(error):
                    raise self.failed(error) from error
            await asyncio.sleep(backoff_wait(attempt, self.config.backoff, self.config.backoff_max))

    def failed(self, error: Exception) -> JudgeError:
        """The JudgeError of a request that failed for good, in the server's words (a refusal is remembered: asking
        again will not heal it)."""
        reason = redact(server_reason(error), *self.endpoint.secrets())[:300]
        if is_refusal(error):
            self.last_refusal = reason
        return JudgeError(f"judge {self.endpoint.description} failed: {type(error).__name__}: {reason}"[:500])

    async def _attempt(self, messages: list[dict]) -> JudgeResponse:
        self.breaker.check()
        started = time.perf_counter()
        try:
            completion = await self.transport.send(messages, self._params)
        except Exception as error:
            if self.transport.is_unreachable(error):
                self.breaker.record_unreachable(error)
            else:
                self.breaker.record_success()  # the judge answered, if only with an error
            raise
        self.breaker.record_success()
        return JudgeResponse(
            completion.text,
            completion.prompt_tokens,
            completion.completion_tokens,
            latency_s=time.perf_counter() - started,
            finish_reason=completion.finish_reason,
        )


JUDGE_DEFAULTS = {item.name: item.default for item in dataclasses.fields(JudgeConfig)}  # for the commands' knobs


def judge_rule(name: str) -> dict[str, float]:
    """JudgeConfig's rule for field ``name`` as knob options (flip_reward.knobs): ``above=0`` or ``minimum=0``, so
    a command's knob refuses, naming its variable, what JudgeConfig would refuse."""
    if name in POSITIVE:
        return {"above": 0}
    return {"minimum": 0} if name in NON_NEGATIVE else {}
