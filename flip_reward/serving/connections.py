"""The reward service's client connections: header-read, body-read and idle timeouts, a cap on open connections,
one line (not a traceback per try) when the process runs out of file descriptors, and one throttled line (not a
traceback) per kind of malformed request.

aiohttp has one idle timer (``keepalive_timeout``, counted from a connection's start or last answer to a complete
request head, an hour by default) but no header-read or body-read timeout and no connection cap, so each accepted
connection is wrapped in a ``GuardedConnection`` that passes everything to aiohttp's own protocol and keeps three
timers: a connection waiting for the first byte of a request is closed after ``keepalive_timeout`` (a new connection
too), one whose request head has started is closed unless the head is complete within ``header_timeout``, and one
whose request head is complete is closed unless its body has arrived in full within ``body_timeout``. The service
tells the connection when a request starts (``request_started``, with its body) and aiohttp when its response has
been written (``ResponseWritten``, its access-log hook); from the body's arrival until then, no timer runs (judge
calls take minutes), and the connection has a request in progress. Past ``max_connections`` open connections the
longest-waiting one with no request in progress is closed to make room (an idle or stalled connection, or one whose
body is still arriving, costs its client nothing to reopen); when every one has a request in progress, the newcomer
is answered 503 and closed. The cap is lowered at start to what the open-file limit leaves once the judge's
connections, a burst of accepted connections (a closed connection frees its descriptor only after the burst) and the
process's own files are counted, so that stalled connections cannot starve an authenticated request. If accepting
still fails for want of descriptors (something else took them), idle connections are closed to make room, once per
retry.

aiohttp answers a request it cannot parse (a bad header, ``Content-Length``, chunk size or ``Content-Encoding``, an
HTTP/2 preface, an over-long line) with a plain-text 400 before any middleware runs, and logs a traceback for each;
``MalformedRequests``, a filter on its ``aiohttp.server`` logger, turns those of a client's making into one warning
line per kind a minute at most."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import resource
import time
from collections.abc import Callable

from aiohttp import StreamReader, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

logger = logging.getLogger("flip_reward.serve")
OWN_DESCRIPTORS = 32  # the listening socket, stdio, the event loop, the disk cache, a tokenizer's files, ...
OUT_OF_DESCRIPTORS = "socket.accept() out of system resource"  # asyncio's message for EMFILE, ENFILE, ENOBUFS, ENOMEM
ACCEPT_BURST = 100  # connections accepted in one go (the listen backlog); closed ones free their descriptor after
ACCEPT_RETRY_DELAY = 1.0  # asyncio retries a failed accept after a second
LOG_INTERVAL = 60.0
SHUTDOWN_MARGIN = 10.0  # seconds past the judge's deadline that a request in flight gets to finish after SIGTERM
_REFUSAL_BODY = json.dumps({"error": "too many connections with a request in progress: retry later"}).encode()
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


class ThrottledLog:
    """A warning logged at most once per ``interval`` seconds, saying how many were left out since the last one."""

    def __init__(self, interval: float = LOG_INTERVAL):
        self.interval = interval
        self.last = -math.inf
        self.left_out = 0

    def warning(self, message: str) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            self.left_out += 1
            return
        since = f" ({self.left_out} more since the last such line)" if self.left_out else ""
        logger.warning("%s%s", message, since)
        self.last, self.left_out = now, 0


def connection_cap(requested: int, judge_connections: int) -> int:
    """``requested`` connections, lowered to what the soft open-file limit leaves after the judge's connections,
    ``ACCEPT_BURST`` and ``OWN_DESCRIPTORS`` (one warning line when lowered); ValueError when it leaves none."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    kept = judge_connections + ACCEPT_BURST + OWN_DESCRIPTORS
    if limit == resource.RLIM_INFINITY or requested + kept <= limit:
        return requested
    if limit - kept < 1:
        raise ValueError(
            f"the open-file limit (ulimit -n) of {limit} leaves no room for connections: {kept} descriptors are kept "
            f"for the judge (--concurrency {judge_connections}), a burst of {ACCEPT_BURST} new connections and the "
            f"service's own {OWN_DESCRIPTORS}; raise it, or lower --concurrency"
        )
    logger.warning(
        "at most %d connections at once, not %d (--max-connections): the open-file limit (ulimit -n) is %d, and %d "
        "descriptors are kept for the judge (--concurrency %d), a burst of new connections and the service's own",
        limit - kept,
        requested,
        limit,
        kept,
        judge_connections,
    )
    return limit - kept


class GuardedConnection(asyncio.Protocol):
    """One client connection: aiohttp's protocol ``inner`` behind the guard's timers (see the module)."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol):
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.body: StreamReader | None = None  # of the request being handled; None while waiting for one
        self.head_started = False
        self.timer: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        """Whether a request is in progress: its body has arrived in full and it is not answered yet."""
        return self.body is not None and self.body.is_eof()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)
        self._await_request()
        self.guard.opened(self)

    def data_received(self, data: bytes) -> None:
        if self.body is None and not self.head_started:
            self.head_started = True
            self._arm(self.guard.header_timeout)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.closed(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def request_started(self, body: StreamReader) -> None:
        """A request head is complete and being handled: its ``body`` must arrive within ``body_timeout``, then no
        timer runs until it is answered."""
        self.body = body
        self.head_started = False
        if self.busy:
            self._disarm()
        else:
            self._arm(self.guard.body_timeout, self._close_unless_busy)

    def request_finished(self) -> None:
        """Its response is written: the connection waits for the next request."""
        self.body = None
        if not self.transport.is_closing():
            self._await_request()

    def close(self) -> None:
        """Drop the connection now (a client that stalls may not read what is still unsent)."""
        self._disarm()
        self.guard.closed(self)
        self.transport.abort()

    def refuse(self) -> None:
        """Answer 503 before reading anything, and close."""
        self._disarm()
        self.guard.closed(self)
        self.transport.write(REFUSAL)
        self.transport.close()

    def _close_unless_busy(self) -> None:
        if not self.busy:
            self.close()

    def _await_request(self) -> None:
        self.head_started = False
        self._arm(self.guard.keepalive_timeout)

    def _arm(self, seconds: float, expire: Callable[[], None] | None = None) -> None:
        self._disarm()
        self.timer = asyncio.get_running_loop().call_later(seconds, expire or self.close)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def guarded_connection(request: web.BaseRequest) -> GuardedConnection | None:
    """The guarded connection ``request`` came on (None once it is closed, or when it is not guarded)."""
    connection = request.transport.get_protocol() if request.transport is not None else None
    return connection if isinstance(connection, GuardedConnection) else None


class ResponseWritten(AbstractAccessLogger):
    """aiohttp's access-log hook, called once a response has been written (or writing it failed): the request's
    connection then waits for its next request. Logs nothing."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        connection = guarded_connection(request)
        if connection is not None:
            connection.request_finished()


class ConnectionGuard:
    """The open connections of one service, oldest first, held to ``max_connections`` (see the module)."""

    def __init__(self, header_timeout: float, body_timeout: float, keepalive_timeout: float, max_connections: int):
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.keepalive_timeout = keepalive_timeout
        self.max_connections = max_connections
        self.open: dict[GuardedConnection, None] = {}
        self.last_shed = -math.inf
        self.log = {"cap": ThrottledLog(), "refused": ThrottledLog(), "descriptors": ThrottledLog()}

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], GuardedConnection]:
        """The factory ``loop.create_server`` calls per accepted connection: ``inner()`` wrapped in the guard."""
        return lambda: GuardedConnection(self, inner())

    def opened(self, connection: GuardedConnection) -> None:
        self.open[connection] = None
        if len(self.open) <= self.max_connections:
            return
        oldest_waiting = next(waiting for waiting in self.open if not waiting.busy)
        if oldest_waiting is connection:
            connection.refuse()
            self.log["refused"].warning(
                f"refused a connection: all {self.max_connections} open connections have a request in progress "
                "(--max-connections)"
            )
            return
        oldest_waiting.close()
        self.log["cap"].warning(
            f"{self.max_connections} connections open (--max-connections): closing the longest-waiting one without "
            "a request in progress for each new one"
        )

    def closed(self, connection: GuardedConnection) -> None:
        self.open.pop(connection, None)

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """The event loop's exception handler: a failed accept for want of descriptors closes the longest-waiting
        connections without a request in progress (up to ``ACCEPT_BURST``, once per retry) and is one throttled line;
        anything else goes to asyncio's default handler."""
        if context.get("message") != OUT_OF_DESCRIPTORS:
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - self.last_shed >= ACCEPT_RETRY_DELAY:
            self.last_shed = now
            for connection in [waiting for waiting in self.open if not waiting.busy][:ACCEPT_BURST]:
                connection.close()
        self.log["descriptors"].warning(
            f"cannot accept a connection: {context.get('exception')}; closing up to {ACCEPT_BURST} connections "
            "without a request in progress each second to make room"
        )


class MalformedRequests(logging.Filter):
    """A filter for aiohttp's ``aiohttp.server`` logger: a record of an error of the client's making (a request that
    cannot be parsed, a body that cannot be decoded, a dropped connection) is not logged; instead one warning line per
    kind (aiohttp's message and the error's type) says what it was, at most once per ``LOG_INTERVAL``. Other records
    (a bug: its traceback) pass."""

    CLIENT_ERRORS = (HttpProcessingError, web.RequestPayloadError, ConnectionError)

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[tuple[str, str], ThrottledLog] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, self.CLIENT_ERRORS):
            return True
        kind = type(error).__name__
        line = self.lines.setdefault((str(record.msg), kind), ThrottledLog())
        line.warning(f"{record.getMessage()}: {kind}: {error_reason(error)}")
        return False


def error_reason(error: BaseException) -> str:
    """The first words of ``error``'s message (or its cause's), up to the first colon (what follows quotes the
    request)."""
    message = getattr(error, "message", None) or getattr(error.__cause__, "message", None) or str(error) or "?"
    return str(message).splitlines()[0].split(":", 1)[0][:80]
