"""A scripted OpenAI-compatible judge server on loopback: a test double for deterministic answers and fault injection.

It is not a judge. Tests and benchmarks use it where a real model cannot give known answers or misbehave on demand
(HTTP 500/429, slow replies, garbage bodies, dropped connections, a fixed serving capacity). Real engine paths are
tested against ``transformers serve`` with a tiny model instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

PEER_WAIT_S = 10.0  # how long a Reply with wait_for_peers waits for them at most
_REPLY_BLOCK = re.compile(r"<reply>\n(.*)\n</reply>", re.DOTALL)


@dataclass(frozen=True)
class Reply:
    """What the server does with one request: answer ``content`` after ``delay`` seconds, or inject a fault.
    ``content=None`` answers no text with ``finish_reason: "length"``, as vLLM does for a judge that used up its
    tokens while thinking; ``finish_reason`` overrides what is reported (e.g. "length" for an answer cut off).
    ``body`` is the raw body of an error ``status`` (e.g. FastAPI's ``{"detail": "Not Found"}``); without it an error
    answers OpenAI's ``{"error": {"message": content}}``. ``wait_for_peers`` holds the request until that many
    requests are in flight at once (``PEER_WAIT_S`` at most), so that a test sees a client's full concurrency
    without relying on timing."""

    content: str | None = ""
    finish_reason: str | None = None
    status: int = 200
    delay: float = 0.0
    garbage: bool = False
    drop: bool = False
    body: str | None = None
    wait_for_peers: int = 0


Responder = Callable[[dict], "Reply | str"]


def flip_answer(instruction: str, reasoning: str = "The reply suggests it.") -> str:
    """A well-formed FLIP judge answer inferring ``instruction``."""
    return json.dumps({"REASONING": reasoning, "INFERRED INSTRUCTION": instruction})


def judged_response(request: dict) -> str:
    """The response a FLIP request asks about (the text inside ``<reply>`` of the last message), or ""."""
    match = _REPLY_BLOCK.search(str(request["messages"][-1]["content"]))
    return match.group(1) if match else ""


def echo_answer(request: dict) -> str:
    """A FLIP answer inferring ``Inferred: <the judged response>``: every reward follows from its response."""
    return flip_answer(f"Inferred: {judged_response(request)}")


def completion_body(request: dict, content: str | None, finish_reason: str | None = None) -> dict:
    """An OpenAI ``chat.completion`` body answering ``content`` (None: no text, cut at ``max_tokens``), with word
    counts as token usage; ``finish_reason`` defaults to "stop" for text and "length" for none."""
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    completion_tokens = len(content.split()) if content is not None else request.get("max_tokens", 0)
    finish_reason = finish_reason or ("stop" if content is not None else "length")
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "scripted"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class ScriptedJudgeServer:
    """Serves ``/v1/chat/completions`` from a responder in a background thread; records every request body.

    ``capacity`` bounds how many requests are processed at once (others wait), modelling a judge with fixed
    throughput. ``in_flight`` is how many chat requests are being answered now, ``peak_in_flight`` the most at once.
    ``basic_auth`` ("user:password") makes every route answer 401 to a request without those credentials in its
    ``Authorization`` header, as a reverse proxy with basic auth does. Use as a context manager; ``base_url`` is the
    OpenAI-style ``http://127.0.0.1:PORT/v1``.
    """

    def __init__(
        self,
        respond: Responder,
        capacity: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        basic_auth: str | None = None,
    ):
        self.respond = respond
        self.capacity = capacity
        self.host = host
        self.port = port
        self.basic_auth = basic_auth
        self.refused_authorizations: list[str | None] = []
        self.requests: list[dict] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> ScriptedJudgeServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> None:
        self._gate = asyncio.Semaphore(self.capacity) if self.capacity else None
        self._in_flight_changed = asyncio.Condition()
        app = web.Application(middlewares=[self._check_auth] if self.basic_auth else [])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/requests", self._count)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    @web.middleware
    async def _check_auth(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        """401 unless the request carries ``basic_auth`` (the header of each refused request is recorded)."""
        expected = "Basic " + base64.b64encode(self.basic_auth.encode()).decode("ascii")
        given = request.headers.get("Authorization")
        if given != expected:
            self.refused_authorizations.append(given)
            error = {"error": {"message": "invalid credentials", "code": 401}}
            return web.json_response(error, status=401, headers={"WWW-Authenticate": 'Basic realm="judge"'})
        return await handler(request)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        await self._count_in_flight(+1)
        try:
            if self._gate is None:
                return await self._answer(request, body)
            async with self._gate:
                return await self._answer(request, body)
        finally:
            await self._count_in_flight(-1)

    async def _count_in_flight(self, change: int) -> None:
        async with self._in_flight_changed:
            self.in_flight += change
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            self._in_flight_changed.notify_all()

    async def _wait_for_peers(self, count: int) -> None:
        async with self._in_flight_changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._in_flight_changed.wait_for(lambda: self.in_flight >= count), PEER_WAIT_S)

    async def _answer(self, request: web.Request, body: dict) -> web.StreamResponse:
        reply = self.respond(body)
        if isinstance(reply, str):
            reply = Reply(content=reply)
        if reply.wait_for_peers:
            await self._wait_for_peers(reply.wait_for_peers)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            request.transport.abort()
            return web.Response(status=500)
        if reply.garbage:
            return web.Response(text="<html>upstream proxy error", content_type="application/json")
        if reply.status != 200 and reply.body is not None:
            return web.Response(status=reply.status, text=reply.body, content_type="application/json")
        if reply.status != 200:
            message = reply.content or f"scripted status {reply.status}"
            error = {"error": {"message": message, "code": reply.status}}
            return web.json_response(error, status=reply.status)
        return web.json_response(completion_body(body, reply.content, reply.finish_reason))

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    async def _count(self, request: web.Request) -> web.Response:
        """How many chat requests arrived (benchmarks read it to see how a router spread the load)."""
        return web.json_response({"chat_requests": len(self.requests)})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")


def main() -> None:
    """Serve a fixed FLIP answer (or ``echo_answer``) until interrupted (benchmarks and tests run it in a separate
    process)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--capacity", type=int, default=None, help="requests processed at once")
    parser.add_argument("--echo", action="store_true", help="infer 'Inferred: <the judged response>' (echo_answer)")
    parser.add_argument("--basic-auth", metavar="USER:PASSWORD", help="refuse requests without these credentials")
    args = parser.parse_args()
    answer = Reply(content=flip_answer("Write a short poem about the sea."), delay=args.delay)

    def respond(request: dict) -> Reply:
        return Reply(content=echo_answer(request), delay=args.delay) if args.echo else answer

    with ScriptedJudgeServer(respond, args.capacity, port=args.port, basic_auth=args.basic_auth) as server:
        print(server.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
