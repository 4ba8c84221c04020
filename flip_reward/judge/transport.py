"""How a judge request reaches the server: a lean aiohttp POST for OpenAI-compatible endpoints, litellm for the rest.

Model strings are litellm's (``hosted_vllm/Qwen/Qwen3-4B``, ``openai/gpt-4o-mini``, ``anthropic/...``) and litellm
resolves provider, base URL and key (``HOSTED_VLLM_API_BASE`` included). ``litellm.acompletion`` spends ~2.5 ms of
CPU per call on cost tracking and logging, and ``openai.AsyncOpenAI`` ~1 ms on request building and response
validation, which would cap a Ray actor at a few hundred rewards/s; so for endpoints that speak the OpenAI protocol
(vLLM, transformers serve, OpenAI) the request is one aiohttp POST of the JSON body with the litellm-resolved
settings, and every other provider goes through ``litellm.acompletion``. Both raise the ``openai`` exception classes
(litellm's subclass them; the aiohttp path builds them as the openai SDK does), which the Judge's retry policy and
circuit breaker classify.

A base URL with user-info (``http://user:pass@host/v1``) is split: the URL without it is the one requests go to
and errors name, and the credentials travel as HTTP basic auth only (``urls``). Only the aiohttp path can send them:
litellm (1.110) always sends ``Authorization: Bearer <key>`` for these providers and refuses user-info with a header,
so a litellm judge with such a URL is refused at construction.

aiohttp sessions are created lazily and shared per (event loop, URL, headers, timeout) through ``loops``: a discarded
Judge never strands an open session whose sockets the next one would trip over, and nothing of them is pickled.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flip_reward.judge.failures import (
    error_chain,
    http_models,
    http_request,
    is_unreachable,
    no_replica_answered,
    router_text,
    status_error,
)
from flip_reward.judge.loops import loop_scoped
from flip_reward.judge.urls import BasicCredentials, redact_url, require_http_scheme, split_credentials
from flip_reward.text import valid_text

if TYPE_CHECKING:
    import aiohttp

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

OPENAI_COMPATIBLE_PROVIDERS = frozenset({"hosted_vllm", "openai"})
DEFAULT_OPENAI_BASE = "https://api.openai.com/v1"  # the openai SDK's, when neither api_base nor OPENAI_BASE_URL is set
MAX_CONNECTIONS = 1000  # per event loop and server, the openai SDK's default; each Judge's gate bounds its own share


class MalformedResponseError(RuntimeError):
    """The server answered 200 but the body is not a usable chat completion (retried like a 5xx)."""


@dataclass(frozen=True)
class Completion:
    """The judge's text and token usage for one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None


def quiet_litellm() -> object:
    """litellm, with its debug prints to stdout (a "Provider List" banner, "Give Feedback / Get Help") off: this
    package reports every failure itself, in one line."""
    import litellm

    litellm.suppress_debug_info = True
    return litellm


@dataclass(frozen=True)
class Endpoint:
    """A litellm model string resolved to provider, model name, base URL and key. ``api_base`` has no user-info:
    the URL's credentials are in ``credentials`` and ``shown_base`` is the URL as shown (``redact_url``)."""

    model: str
    provider: str
    provider_model: str
    api_base: str | None
    api_key: str | None = field(default=None, repr=False)
    credentials: BasicCredentials | None = field(default=None, repr=False)
    shown_base: str | None = None

    @classmethod
    def resolve(cls, model: str, api_base: str | None = None, api_key: str | None = None) -> Endpoint:
        """Provider, model name, base URL and key of ``model`` as litellm resolves them, offline. ValueError, before
        any request, for a model string with no provider litellm knows, and for a ``hosted_vllm/`` judge with no
        base URL (litellm would send it to a public API host). Credentials in the base URL (given or from the
        provider's environment variable) are split off it."""
        litellm = quiet_litellm()
        try:
            provider_model, provider, resolved_key, resolved_base = litellm.get_llm_provider(
                model, api_base=api_base, api_key=api_key
            )
        except litellm.BadRequestError:
            raise ValueError(
                f"judge {model!r} names no litellm provider: prefix one, e.g. 'hosted_vllm/{model}' for a vLLM or "
                "transformers server (with its base URL), or 'openai/...', 'anthropic/...'"
            ) from None
        api_base = api_base or resolved_base
        if provider == "hosted_vllm" and not api_base:
            raise ValueError(
                f"judge {model!r} needs the base URL of its server: pass --api-base (api_base=) or set "
                "HOSTED_VLLM_API_BASE, e.g. http://127.0.0.1:8000/v1"
            )
        return cls.at(api_base, model, provider, provider_model, api_key or resolved_key)

    @classmethod
    def at(
        cls,
        api_base: str | None,
        model: str = "",
        provider: str = "hosted_vllm",
        provider_model: str = "",
        api_key: str | None = None,
    ) -> Endpoint:
        """The endpoint at ``api_base`` (its credentials split off, ``urls.split_credentials``); with the defaults,
        an OpenAI-compatible server whose model is not named, for a probe of what it serves; JudgeURLError when
        ``api_base`` is no http(s) URL or its credentials cannot be read."""
        if api_base:
            require_http_scheme(api_base)
        url, credentials = split_credentials(api_base) if api_base else (None, None)
        return cls(model, provider, provider_model, url, api_key, credentials, redact_url(api_base))

    @property
    def description(self) -> str:
        shown = self.shown_base or self.api_base
        return f"{self.model} at {shown}" if shown else self.model

    def secrets(self) -> tuple[str, ...]:
        """What must never be shown: the key and the URL's credentials in every form (``urls.redact``)."""
        return (*filter(None, [self.api_key]), *(self.credentials.secrets() if self.credentials else ()))

    def headers(self) -> dict[str, str]:
        """The headers of every request to this endpoint, probes included (``request_headers``): the URL's
        credentials as basic auth, else the key (``OPENAI_API_KEY`` or "EMPTY" when none is set) as a bearer token."""
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        return request_headers(api_key, self.credentials.header() if self.credentials else None)


def completion_from(body: object) -> Completion:
    """Text and usage of a chat completion body (the decoded JSON), or MalformedResponseError when it has no
    message text.

    A message with no text that the judge ended on purpose (``finish_reason`` "stop", or "length": it ran out of
    tokens, e.g. while thinking behind a reasoning parser) is an answer, just an unusable one: it comes back as ""
    and becomes a parse failure rather than a retried error, since asking again at once would mostly repeat it.
    The text is made valid Unicode (``flip_reward.text``): a body may escape a lone surrogate (``"\\ud83d"``).
    """
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError) as error:
        raise MalformedResponseError(f"no choices[0].message in judge response: {str(body)[:200]}") from error
    finish_reason = choice.get("finish_reason")
    if text is None and finish_reason in ("stop", "length"):
        text = ""
    if not isinstance(text, str):
        raise MalformedResponseError(f"judge response has no text content: {str(body)[:200]}")
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Completion(
        valid_text(text),
        usage.get("prompt_tokens") or 0,
        usage.get("completion_tokens") or 0,
        finish_reason if isinstance(finish_reason, str) else None,
    )


def request_body(model: str, messages: list[dict], params: dict) -> bytes:
    """The JSON body of an OpenAI chat completion request; ``extra_body`` is merged at the top level, as the
    openai SDK does."""
    body = {"model": model, "messages": messages}
    for key, value in params.items():
        if key == "extra_body":
            body.update(value)
        else:
            body[key] = value
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def request_headers(api_key: str, authorization: str | None = None) -> dict[str, str]:
    """The headers of every request: JSON, the bearer key (or ``authorization``: the basic auth of a URL with
    credentials, which takes the one Authorization header) and, as the openai SDK sends them, the organisation and
    project from ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID`` when set."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": authorization or f"Bearer {api_key}",
    }
    for header, variable in (("OpenAI-Organization", "OPENAI_ORG_ID"), ("OpenAI-Project", "OPENAI_PROJECT_ID")):
        if os.environ.get(variable):
            headers[header] = os.environ[variable]
    return headers


def import_http_clients() -> None:
    """Import litellm, openai and aiohttp now (seconds of CPU), so that the first request of a process, on the event
    loop of a training actor, does not stall it."""
    import aiohttp  # noqa: F401
    import litellm  # noqa: F401
    import openai  # noqa: F401

    http_models()


class LitellmLoopClients:
    """The async HTTP clients litellm cached for the running event loop (their cache keys end in the loop's token),
    closed with the loop's other clients (``loops.close_clients``). Left open, they would be disposed of by
    ``__del__`` at interpreter exit, which imports modules there: a hang when a thread died holding the import lock."""

    def __init__(self) -> None:
        from litellm.caching.evicted_client_closer import running_loop_token

        self.key_suffix = f"-{running_loop_token()}"

    async def close(self) -> None:
        import litellm

        cached = litellm.in_memory_llm_clients_cache.cache_dict
        for key in [key for key in cached if key.endswith(self.key_suffix)]:
            close = getattr(cached[key], "aclose", None) or getattr(cached[key], "close", None)
            if inspect.iscoroutinefunction(close):
                await close()


class Transport:
    """Sends one chat request with no retries (the Judge owns retries); one instance serves every event loop.

    OpenAI-compatible endpoints get a plain aiohttp POST of the JSON body (one ``aiohttp.ClientSession`` per event
    loop and server, through ``loops``), raising the ``openai`` exception classes the retry policy and the breaker
    classify; other providers go through ``litellm.acompletion``.
    """

    def __init__(self, endpoint: Endpoint, timeout: float, use_litellm: bool | None = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.use_litellm = endpoint.provider not in OPENAI_COMPATIBLE_PROVIDERS if use_litellm is None else use_litellm
        if self.use_litellm and endpoint.credentials:
            raise ValueError(
                f"judge {endpoint.description}: credentials in the base URL go as HTTP basic auth, which only the "
                "OpenAI-compatible transport sends (litellm always sends its own Authorization header): use a "
                "hosted_vllm/ or openai/ judge without use_litellm, or a URL without credentials"
            )
        base = endpoint.api_base or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE
        self.url = base.rstrip("/") + "/chat/completions"
        import_http_clients()

    def _session(self) -> aiohttp.ClientSession:
        import aiohttp

        headers = self.endpoint.headers()

        def create() -> aiohttp.ClientSession:
            limit = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
            period = self.timeout
            timeout = aiohttp.ClientTimeout(total=None, connect=period, sock_connect=period, sock_read=period)
            return aiohttp.ClientSession(connector=limit, headers=headers, timeout=timeout, raise_for_status=False)

        return loop_scoped(("aiohttp", self.url, tuple(headers.items()), self.timeout), create)

    @staticmethod
    def is_unreachable(error: BaseException) -> bool:
        """Whether ``error`` means the judge is not there at all (see ``is_unreachable``)."""
        return is_unreachable(error)

    async def send(self, messages: list[dict], params: dict) -> Completion:
        """One completion; a connection that could not be made raises ``openai.APIConnectionError`` (never a
        timeout: HTTP layers report a refused connection as a connect timeout), and a router none of whose replicas
        could answer raises one too, caused by the router's answer."""
        import openai

        try:
            if self.use_litellm:
                return await self._send_litellm(messages, params)
            return await self._post(request_body(self.endpoint.provider_model, messages, params))
        except openai.APIStatusError as error:
            if not no_replica_answered(error):
                raise
            answer = " ".join(router_text(error).split())[:200]
            raise openai.APIConnectionError(
                message=f"no judge replica behind the router at {self.endpoint.api_base} could answer "
                f"(HTTP {error.status_code}: {answer})",
                request=error.request,
            ) from error
        except openai.APITimeoutError as error:
            if not is_unreachable(error):
                raise
            message = f"cannot connect to {self.endpoint.api_base}"
            refused = openai.APIConnectionError(message=message, request=error.request)
            refused.judge_unreachable = True  # its cause is the innermost error, which may not say so itself
            raise refused from error_chain(error)[-1]

    async def _post(self, body: bytes) -> Completion:
        """POST ``body`` to the chat completions URL; HTTP and socket failures become ``openai`` errors."""
        import aiohttp
        import openai

        try:
            async with self._session().post(self.url, data=body) as response:
                raw = await response.read()
                status = response.status
                headers = response.headers
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            message = f"cannot connect to {self.endpoint.api_base or self.url}"
            refused = openai.APIConnectionError(message=message, request=http_request(self.url))
            refused.judge_unreachable = True  # its cause is the innermost error, which may not say so itself
            raise refused from error_chain(error)[-1]
        except asyncio.TimeoutError as error:
            raise openai.APITimeoutError(request=http_request(self.url)) from error
        except (aiohttp.ClientError, OSError) as error:
            message = f"Connection error: {type(error).__name__}: {error}"
            raise openai.APIConnectionError(message=message, request=http_request(self.url)) from error
        if not 200 <= status < 300:
            raise status_error(self.url, status, headers, raw)
        try:
            answer = json.loads(raw)
        except ValueError as error:
            raise MalformedResponseError(f"judge response is not JSON: {raw[:200]!r}") from error
        return completion_from(answer)

    async def _send_litellm(self, messages: list[dict], params: dict) -> Completion:
        import litellm

        loop_scoped("litellm clients", LitellmLoopClients)
        response = await litellm.acompletion(
            model=self.endpoint.model,
            messages=messages,
            api_base=self.endpoint.api_base,
            api_key=self.endpoint.api_key,
            timeout=self.timeout,
            num_retries=0,
            max_retries=0,
            **params,
        )
        return completion_from(response.model_dump())
