"""The reward service's client connections: header-read and idle timeouts, a cap on open connections, and one line
(not a traceback per try) when the process runs out of file descriptors.

aiohttp has one idle timer (``keepalive_timeout``, counted from a connection's start or last answer to a complete
request head, an hour by default) but no header-read timeout and no connection cap, so each accepted connection is
wrapped in a ``GuardedConnection`` that passes everything to aiohttp's own protocol and keeps two timers: a connection
waiting for the first byte of a request is closed after ``keepalive_timeout`` (a new connection too), and one whose
request head has started is closed unless the head is complete within ``header_timeout``. The service tells the
connection when a request starts and ends (``request_started``, ``request_finished``); while one is handled, no
timer runs (judge calls take minutes). Past ``max_connections`` open connections the longest-waiting one with no
request in progress is closed to make room (an idle or stalled connection costs its client nothing to reopen); when
every one has a request in progress, the newcomer is answered 503 and closed. The cap is lowered at start to what the
open-file limit leaves once the judge's connections, a burst of accepted connections (a closed connection frees its
descriptor only after the burst) and the process's own files are counted, so that stalled connections cannot starve
an authenticated request. If accepting still fails for want of descriptors (something else took them), idle
connections are closed to make room, once per retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import resource
import time
from collections.abc import Callable

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
        self.busy = False
        self.head_started = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)
        self._await_request()
        self.guard.opened(self)

    def data_received(self, data: bytes) -> None:
        if not self.busy and not self.head_started:
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

    def request_started(self) -> None:
        """A request head is complete and being handled: no timer until it is answered."""
        self.busy = True
        self._disarm()

    def request_finished(self) -> None:
        self.busy = False
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

    def _await_request(self) -> None:
        self.head_started = False
        self._arm(self.guard.keepalive_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self.timer = asyncio.get_running_loop().call_later(seconds, self.close)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class ConnectionGuard:
    """The open connections of one service, oldest first, held to ``max_connections`` (see the module)."""

    def __init__(self, header_timeout: float, keepalive_timeout: float, max_connections: int):
        self.header_timeout = header_timeout
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
