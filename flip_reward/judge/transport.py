"""How a judge request reaches the server: litellm for any provider, and a lean OpenAI-compatible path.

Model strings are litellm's (``hosted_vllm/Qwen/Qwen3-4B``, ``openai/gpt-4o-mini``, ``anthropic/...``) and litellm
resolves provider, base URL and key (``HOSTED_VLLM_API_BASE`` included). ``litellm.acompletion`` spends ~2.5 ms of
CPU per call on cost tracking and logging, which caps a Ray actor at a few hundred rewards/s, so for endpoints that
speak the OpenAI protocol (vLLM, transformers serve, OpenAI) the request goes through ``openai.AsyncOpenAI`` with the
litellm-resolved settings over aiohttp (``openai.DefaultAioHttpClient``, about 1.5x less client CPU than httpx);
every other provider goes through ``litellm.acompletion``. Both raise the same exception classes (litellm's subclass
openai's).

OpenAI clients are created lazily and shared per (event loop, base URL, key, timeout) through ``loops``: a discarded
Judge never strands an open client whose sockets the next one would trip over, and nothing of them is pickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from flip_reward.judge.loops import loop_scoped

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

OPENAI_COMPATIBLE_PROVIDERS = frozenset({"hosted_vllm", "openai"})


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
    """A litellm model string resolved to provider, model name, base URL and key."""

    model: str
    provider: str
    provider_model: str
    api_base: str | None
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def resolve(cls, model: str, api_base: str | None = None, api_key: str | None = None) -> Endpoint:
        """Provider, model name, base URL and key of ``model`` as litellm resolves them, offline. ValueError, before
        any request, for a model string with no provider litellm knows, and for a ``hosted_vllm/`` judge with no
        base URL (litellm would send it to a public API host)."""
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
        return cls(model, provider, provider_model, api_base, api_key or resolved_key)

    @property
    def description(self) -> str:
        return f"{self.model} at {self.api_base}" if self.api_base else self.model


def server_reason(error: BaseException) -> str:
    """What went wrong, in the server's own words where it gave any: ``HTTP <status>: <message>`` for an HTTP error
    (the body's ``error.message``, ``message`` or ``detail``, else its text: openai's message drops bodies it does
    not know, such as FastAPI's ``{"detail": "Not Found"}``), else the error's own message."""
    import openai

    if not isinstance(error, openai.APIStatusError):
        return str(error)
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        body = inner.get("message") or inner.get("detail") or json.dumps(body)
    if not isinstance(body, str) or not body.strip():
        body = getattr(error.response, "text", "") or error.message
    return f"HTTP {error.status_code}: {str(body).strip()}"


def completion_from(response: object) -> Completion:
    """Text and usage of a chat completion object, or MalformedResponseError when it has no message text.

    A message with no text that the judge ended on purpose (``finish_reason`` "stop", or "length": it ran out of
    tokens, e.g. while thinking behind a reasoning parser) is an answer, just an unusable one: it comes back as ""
    and becomes a parse failure rather than a retried error, since asking again at once would mostly repeat it.
    """
    try:
        choice = response.choices[0]
        text = choice.message.content
    except (AttributeError, IndexError, TypeError) as error:
        raise MalformedResponseError(f"no choices[0].message in judge response: {str(response)[:200]}") from error
    finish_reason = getattr(choice, "finish_reason", None)
    if text is None and finish_reason in ("stop", "length"):
        text = ""
    if not isinstance(text, str):
        raise MalformedResponseError(f"judge response has no text content: {str(response)[:200]}")
    usage = getattr(response, "usage", None)
    return Completion(
        text,
        getattr(usage, "prompt_tokens", 0) or 0,
        getattr(usage, "completion_tokens", 0) or 0,
        finish_reason if isinstance(finish_reason, str) else None,
    )


# Named by the innermost causes, because HTTP layers relabel: the aiohttp transport reports a server that hung up as
# ConnectTimeout, so only the socket-level reasons below mean "nobody is there".
_CONNECT_ERROR_TYPES = frozenset(
    {"ClientConnectorError", "ClientConnectorDNSError", "ConnectionTimeoutError", "ConnectionRefusedError", "gaierror"}
)
_CONNECT_ERROR_TEXTS = (
    "cannot connect to host",
    "connection refused",
    "name or service not known",
    "all connection attempts failed",
)


# What vllm-router answers when no replica behind it could take a request (vllm-router 0.1.17, measured): 500
# "Request failed: error sending request for url (...)" while its per-replica breakers are still closed, then 503 "No
# available workers (all circuits open or unhealthy)". One dead replica among live ones gets neither: the router
# retries the request on another.
_NO_REPLICA_STATUS = frozenset({500, 503})
_NO_REPLICA_TEXTS = ("no available workers", "no workers are currently available", "error sending request for url")


def no_replica_answered(error: BaseException) -> bool:
    """Whether ``error`` is a router's answer that no judge replica behind it could be reached."""
    import openai

    if not isinstance(error, openai.APIStatusError) or error.status_code not in _NO_REPLICA_STATUS:
        return False
    return any(marker in router_text(error).lower() for marker in _NO_REPLICA_TEXTS)


def router_text(error: BaseException) -> str:
    """The body of an HTTP error answer (openai keeps only "Error code: N" as the message of a plain-text body)."""
    response = getattr(error, "response", None)
    return getattr(response, "text", "") or str(error)


def import_http_clients() -> None:
    """Import litellm, openai and aiohttp now (seconds of CPU), so that the first request of a process, on the event
    loop of a training actor, does not stall it."""
    import litellm  # noqa: F401
    import openai

    openai.DefaultAioHttpClient  # noqa: B018 - resolving it imports aiohttp


def error_chain(error: BaseException, limit: int = 8) -> list[BaseException]:
    """``error`` and its causes (explicit or implicit), outermost first."""
    chain = [error]
    while len(chain) < limit and (chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)
    return chain


def is_unreachable(error: BaseException) -> bool:
    """Failures that mean nobody is there (what the circuit breaker counts): the connection itself failed (refused,
    unresolvable, connect timeout; litellm reports these as 500s saying so), a proxy answered 502 for a dead
    backend, or vllm-router answered that none of its replicas could be reached. A read timeout or a dropped answer
    is not: a busy judge is slow, not down."""
    import openai

    if isinstance(error, openai.APIStatusError) and error.status_code == 502:
        return True
    if getattr(error, "judge_unreachable", False):
        return True
    if not isinstance(error, openai.OpenAIError):
        return False
    chain = error_chain(error)
    return any(
        type(link).__name__ in _CONNECT_ERROR_TYPES
        or any(text in str(link).lower() for text in _CONNECT_ERROR_TEXTS)
        or no_replica_answered(link)
        for link in chain
    )


class Transport:
    """Sends one chat request with no retries (the Judge owns retries); one instance serves every event loop."""

    def __init__(self, endpoint: Endpoint, timeout: float, use_litellm: bool | None = None):
        self.endpoint = endpoint
        self.timeout = timeout
        self.use_litellm = endpoint.provider not in OPENAI_COMPATIBLE_PROVIDERS if use_litellm is None else use_litellm
        import_http_clients()

    def _client(self):
        api_key = self.endpoint.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"

        def create():
            import openai

            return openai.AsyncOpenAI(
                base_url=self.endpoint.api_base,
                api_key=api_key,
                timeout=self.timeout,
                max_retries=0,
                http_client=openai.DefaultAioHttpClient(),
            )

        return loop_scoped(("openai", self.endpoint.api_base, api_key, self.timeout), create)

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
            return await self._send(messages, params)
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

    async def _send(self, messages: list[dict], params: dict) -> Completion:
        if self.use_litellm:
            return await self._send_litellm(messages, params)
        extra_body = params.get("extra_body")
        request = {key: value for key, value in params.items() if key != "extra_body"}
        response = await self._client().chat.completions.create(
            model=self.endpoint.provider_model, messages=messages, extra_body=extra_body, **request
        )
        return completion_from(response)

    async def _send_litellm(self, messages: list[dict], params: dict) -> Completion:
        import litellm

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
        return completion_from(response)
