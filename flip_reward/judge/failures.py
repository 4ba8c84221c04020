"""What a failed judge request means: the ``openai`` error an HTTP error answer becomes (built as the openai SDK
builds it, so that one retry policy reads both transports), the server's own reason for it, and whether it says that
nobody is there (what the circuit breaker counts) rather than a slow or refusing judge."""

from __future__ import annotations

import json
from collections.abc import Mapping


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


def http_models():  # noqa: ANN201 - the httpx module the installed openai types its errors with
    """The httpx module the installed openai builds its errors with (its httpx2 fork in newer releases)."""
    try:
        import httpx2 as httpx
    except ImportError:  # openai before its httpx2 fork
        import httpx
    return httpx


def http_request(url: str):  # noqa: ANN201
    """The request object an ``openai`` error carries (built only when a request fails)."""
    return http_models().Request("POST", url)


STATUS_ERRORS = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}


def status_error(url: str, status: int, headers: Mapping[str, str], raw: bytes) -> Exception:
    """The ``openai`` error for an HTTP error answer, as the openai SDK builds it: the class by status (5xx:
    InternalServerError), the message ``Error code: N - <the body's error.message>``, the body kept in
    ``response`` (``router_text`` reads it)."""
    import openai

    response = http_models().Response(status, headers=dict(headers), content=raw, request=http_request(url))
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = text or None
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    summary = f"Error code: {status}" + (f" - {message}" if isinstance(message, str) and message else "")
    name = "InternalServerError" if status >= 500 else STATUS_ERRORS.get(status, "APIStatusError")
    data = body.get("error", body) if isinstance(body, dict) else body
    return getattr(openai, name)(summary, response=response, body=data)


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
