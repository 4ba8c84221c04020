"""The FLIP reward service (``flip-reward serve``): FLIP rewards over HTTP for trainers that call a reward server.

One process, one event loop, one ``FlipReward``: every trainer process that posts here shares the judge client's
concurrency bound, in-flight dedup and answer cache. Built on aiohttp. Endpoints (wire formats in ``protocol``):
``POST /get_reward`` (OpenRLHF's remote reward protocol), ``POST /slime/reward`` (slime's ``--rm-type remote_rm``),
``POST /v1/score`` (JSON API), ``GET /health`` and ``GET /metrics`` (Prometheus text, ``service_metrics``).

Safety: loopback by default; with a token every endpoint needs ``Authorization: Bearer <token>`` (the scheme in any
case, the token compared in constant time) but ``/health``, which tells callers without it only that the service is
up; a non-loopback address without a token is refused before binding (OpenRLHF's own example server binds every
interface with no authentication). Bodies and items per request are bounded (413); connections by ``connections``
(header-read, body-read and idle timeouts, a cap; a malformed request head is aiohttp's plain-text 400 and one
throttled log line, never a traceback). A client that closes its connection before its body has arrived is no
error: nothing is answered, it is counted apart and logged in one throttled line. A body that cannot be read (not
JSON, nested too deep, a content encoding it does not hold) or an ``Authorization`` header that is not UTF-8 is a
400 with a JSON error, never a 500.
A failed reward is 0.0 with its error, never a 500; while the judge's circuit breaker is open every scoring request
is answered 503 at once with the breaker's one message, so that trainer retries do not pile up on a dead judge,
but ``/slime/reward``: slime retries anything but a 2xx and then stops training, so there the breaker's message is
the sample's judge error, reward 0.0, answered 200 at once.
Reading a body (JSON, chat templates) is linear in its size; bodies over ``OFF_LOOP_BYTES`` are read in a worker
thread, so that a large one never holds up ``/health`` or the judge calls of other requests.
At start the judge is probed (``GET /models``): one warning line when it does not answer or serves another model,
and the service listens anyway (the judge may come up later). SIGTERM or SIGINT stops accepting connections, drops
the requests whose body has not arrived in full, lets those in flight finish (by default for longer than one judge
call may take), and drops those still running after ``shutdown_timeout`` with one line saying how many.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult, FlipReward
from flip_reward.json_text import parse_json
from flip_reward.judge.loops import close_clients
from flip_reward.serving.connections import (
    ACCEPT_BURST,
    SHUTDOWN_MARGIN,
    ConnectionGuard,
    MalformedRequests,
    ResponseWritten,
    ThrottledLog,
    connection_cap,
    guarded_connection,
)
from flip_reward.serving.probe import OPENAI_COMPATIBLE, JudgeProbeError, check_serves
from flip_reward.serving.protocol import (
    DEFAULT_READER,
    BadRequest,
    Item,
    TemplateReader,
    openrlhf_answer,
    openrlhf_items,
    score_answer,
    score_items,
    slime_answer,
    slime_items,
)
from flip_reward.serving.service_config import ServiceConfig
from flip_reward.serving.service_metrics import ServiceMetrics

logger = logging.getLogger("flip_reward.serve")
ENDPOINTS = ("/get_reward", "/slime/reward", "/v1/score", "/health", "/metrics")
OPEN_ENDPOINTS = frozenset({"/health"})
OFF_LOOP_BYTES = 64 * 1024
aiohttp_server_log = logging.getLogger("aiohttp.server")  # aiohttp's log of requests it could not handle


class JudgeDown(RuntimeError):
    """The judge's circuit breaker is open: scoring requests are answered 503 with this message."""


class BodyCutOff(ConnectionError):
    """The connection closed before the request's body arrived in full (the client left, or ``body_timeout``)."""


def error_response(status: int, body: dict) -> web.Response:
    return web.json_response(body, status=status)


class RewardService:
    """FLIP rewards over HTTP for ``flip``; see the module docstring for the endpoints and their guarantees."""

    def __init__(self, flip: FlipReward, config: ServiceConfig | None = None, reader: TemplateReader = DEFAULT_READER):
        self.flip = flip
        self.config = config or ServiceConfig()
        self.reader = reader
        self.handling: dict[asyncio.Task, web.Request] = {}
        self.metrics = ServiceMetrics(in_flight=lambda: len(self.in_progress()))
        self.cut_off_log = ThrottledLog()

    def in_progress(self) -> list[asyncio.Task]:
        """The requests being handled whose body has arrived in full (those still reading theirs are not waited
        for at shutdown)."""
        return [task for task, request in self.handling.items() if request.content.is_eof()]

    @property
    def shutdown_timeout(self) -> float:
        """Seconds the requests in flight get after SIGTERM: as configured, else one judge call and a margin."""
        if self.config.shutdown_timeout is not None:
            return self.config.shutdown_timeout
        return self.flip.judge.config.total_deadline + SHUTDOWN_MARGIN

    def app(self) -> web.Application:
        """The aiohttp application (bodies past ``max_body_bytes`` are refused by aiohttp while reading)."""
        app = web.Application(
            client_max_size=self.config.max_body_bytes, middlewares=[self._count, self._errors, self._authenticate]
        )
        read_openrlhf = functools.partial(openrlhf_items, reader=self.reader)
        app.router.add_post("/get_reward", self._scoring(read_openrlhf, lambda _, results: openrlhf_answer(results)))
        read_slime = functools.partial(slime_items, reader=self.reader)
        app.router.add_post(
            "/slime/reward", self._scoring(lambda body, _: read_slime(body), slime_answer, refuse=False)
        )
        app.router.add_post("/v1/score", self._scoring(score_items, score_answer))
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def score(self, items: Sequence[Item], refuse: bool = True) -> list[FlipResult]:
        """One result per item, in order; with ``refuse``, JudgeDown when the breaker is open (before anything is
        sent, or because every item that reached the judge failed while it opened), else each item's judge error."""
        breaker = self.flip.judge.breaker
        refusal = breaker.refusal()
        if refusal is not None and refuse:
            raise JudgeDown(refusal)
        results = await asyncio.gather(*(self._score_one(item) for item in items))
        self.metrics.record_results(results)
        if not refuse:
            return results
        judged = [result for result in results if result.error_type != ErrorType.INPUT]
        if judged and all(result.error_type == ErrorType.JUDGE for result in judged):
            refusal = breaker.refusal()
            if refusal is not None:
                raise JudgeDown(refusal)
        return results

    async def _score_one(self, item: Item) -> FlipResult:
        if item.error is not None:
            return FlipResult(reward=0.0, error=item.error, error_type=ErrorType.INPUT)
        return await self.flip.ascore_one(item.prompt, item.response)

    def _scoring(
        self,
        read: Callable[[object, int], list[Item]],
        answer: Callable[[list[Item], list[FlipResult]], dict],
        refuse: bool = True,
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        def items_of(raw: bytes) -> list[Item]:
            return read(body_json(raw), self.config.max_items)

        async def handle(request: web.Request) -> web.Response:
            raw = await self._body(request)
            items = await asyncio.to_thread(items_of, raw) if len(raw) > OFF_LOOP_BYTES else items_of(raw)
            return web.json_response(answer(items, await self.score(items, refuse)))

        return handle

    async def _body(self, request: web.Request) -> bytes:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge as error:
            raise BadRequest(f"the body is over {self.config.max_body_bytes} bytes", status=413) from error
        except web.RequestPayloadError as error:  # e.g. a Content-Encoding the body does not hold
            request.content.feed_eof()  # else aiohttp reads the broken body again after the answer, and logs it
            reason = getattr(error.__cause__, "message", None) or str(error)
            raise BadRequest(f"the body cannot be read: {reason}") from error
        except OSError as error:  # aiohttp's ConnectionResetError("Connection lost"), or the socket's own error
            raise BodyCutOff(str(error)) from error

    async def _health(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"status": "ok"})
        judge = self.flip.judge
        return web.json_response(
            {"status": "ok", "judge": judge.endpoint.description, "judge_available": judge.breaker.refusal() is None}
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def judge_warning(self) -> str | None:
        """Why the judge looks unusable (it does not answer ``GET /models``, or serves another model), or None; only
        an OpenAI-compatible judge with a base URL is probed."""
        endpoint = self.flip.judge.endpoint
        if endpoint.api_base is None or endpoint.provider not in OPENAI_COMPATIBLE:
            return None
        try:
            check_serves(endpoint)
        except JudgeProbeError as error:
            return (
                f"judge {endpoint.description}: {error.reason}; serving anyway: until it answers for this model, "
                "every reward is 0.0 with its error"
            )
        return None

    @web.middleware
    async def _count(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        """Requests being handled (their tasks, for the shutdown), the connection told that a request and its body
        started, a count and latency per endpoint and status for every answer, and bodies cut off (no answer: counted
        apart, one throttled line)."""
        endpoint = request.path if request.path in ENDPOINTS else "other"
        started = time.perf_counter()
        task = asyncio.current_task()
        self.handling[task] = request
        connection = guarded_connection(request)
        if connection is not None:
            connection.request_started(request.content)
        status: int | None = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        except BodyCutOff as error:
            status = None
            self.metrics.bodies_cut_off.inc()
            self.cut_off_log.warning(
                f"a connection closed before its request body arrived in full (the client left, or it was closed at "
                f"--body-timeout or for room under --max-connections): {error}; nothing answered"
            )
            return web.Response(status=400)  # never sent: the connection is closed
        except asyncio.CancelledError:  # dropped at shutdown: no answer
            status = None
            raise
        finally:
            self.handling.pop(task, None)
            if status is not None:
                self.metrics.record_request(endpoint, status, time.perf_counter() - started)

    def _authorized(self, request: web.Request) -> bool:
        """Whether ``request`` carries the token (always, without one): ``Bearer`` in any case (RFC 7235), then the
        token, compared in constant time; BadRequest for a header that is not UTF-8."""
        token = self.config.token
        if token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
        try:
            given_bytes = given.strip().encode()
        except UnicodeEncodeError:  # aiohttp reads header bytes that are not UTF-8 as lone surrogates
            raise BadRequest("the Authorization header is not UTF-8", field="Authorization") from None
        return scheme.lower() == "bearer" and hmac.compare_digest(given_bytes, token.encode())

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path in OPEN_ENDPOINTS or self._authorized(request):
            return await handler(request)
        response = error_response(401, {"error": "missing or wrong token: send 'Authorization: Bearer <token>'"})
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        """Bad bodies and headers as 400/413 naming the item and field, an open breaker as 503, anything else as a
        JSON 500."""
        try:
            return await handler(request)
        except BadRequest as error:
            response = error_response(error.status, error.body())
            response.force_close()  # what is left of a body that cannot be read is not read
            return response
        except JudgeDown as error:
            return error_response(503, {"error": str(error)})
        except (web.HTTPException, BodyCutOff):
            raise
        except Exception as error:  # a bug here must still answer JSON, and leave a traceback in the log
            logger.exception("internal error on %s", request.path)
            return error_response(500, {"error": f"internal error: {type(error).__name__}: {error}"})

    async def finish_in_flight(self) -> int:
        """Cancel the requests whose body has not arrived in full, wait up to ``shutdown_timeout`` for the others,
        then cancel those left (their clients get no answer) and return how many there were."""
        unread = set(self.handling).difference(self.in_progress())
        for task in unread:
            task.cancel()
        await asyncio.gather(*unread, return_exceptions=True)
        if self.handling:
            logger.info("stopping: finishing %d request(s) in flight", len(self.handling))
            await asyncio.wait(set(self.handling), timeout=self.shutdown_timeout)
        dropped = set(self.handling)
        for task in dropped:
            task.cancel()
        await asyncio.gather(*dropped, return_exceptions=True)
        if dropped:
            logger.warning(
                "stopping: dropped %d request(s) still in flight after the %gs --shutdown-timeout; their clients got "
                "no answer",
                len(dropped),
                self.shutdown_timeout,
            )
        return len(dropped)


def body_json(raw: bytes) -> object:
    """A request body as JSON; BadRequest when it is not (or is nested too deep to read)."""
    try:
        return parse_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise BadRequest(f"the body is not JSON: {error}") from error


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (``host``, ``port``); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(service: RewardService, announce: Callable[[str], None]) -> int:
    """Serve until SIGTERM or SIGINT, then stop accepting, let the requests in flight finish (up to the service's
    ``shutdown_timeout``), close the judge clients and return how many requests were dropped. ``announce`` gets the
    base URL once the socket listens and the judge has been probed (one warning line when it looks unusable)."""
    config = service.config
    cap = connection_cap(config.max_connections, service.flip.judge.config.max_concurrency)
    guard = ConnectionGuard(config.header_timeout, config.body_timeout, config.keepalive_timeout, cap)
    runner = web.AppRunner(
        service.app(), access_log=logger, access_log_class=ResponseWritten, shutdown_timeout=service.shutdown_timeout
    )
    loop = asyncio.get_running_loop()
    malformed = MalformedRequests()
    aiohttp_server_log.addFilter(malformed)
    try:  # from here on: the filter comes off aiohttp's logger however serving ends, a failed bind included
        await runner.setup()
        loop.set_exception_handler(guard.loop_error)
        sock = listening_socket(config.host, config.port)
        server = await loop.create_server(guard.protocol_factory(runner.server), sock=sock, backlog=ACCEPT_BURST)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        warning = await asyncio.to_thread(service.judge_warning)
        if warning is not None:
            logger.warning("%s", warning)
        announce(base_url(sock))
        await stop.wait()
        server.close()
        runner.server.pre_shutdown()  # idle connections close now, the others once their request is answered
        dropped = await service.finish_in_flight()
        await runner.cleanup()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        aiohttp_server_log.removeFilter(malformed)
        await close_clients()
    return dropped
