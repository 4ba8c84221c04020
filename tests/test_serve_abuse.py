"""``flip-reward serve`` against clients that misbehave at the HTTP level, over real sockets: malformed request heads,
bodies that never arrive or are cut off, a slow reader. The judge is the scripted OpenAI-compatible server (a test
double, see serve_support)."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack

import pytest
from conftest import REPO
from serve_support import (
    ResponseScript,
    ServeProcess,
    call,
    closed_by_server,
    connect,
    log_lines,
    metric,
    scripted_judge_args,
)

from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, flip_answer

SEA = "Write a poem about the sea."
SCORE = {"items": [{"prompt": f"user: {SEA}", "response": "Waves roll in under a silver moon."}]}
ANSWERS = {"Waves roll in under a silver moon.": SEA, "SLOW": Reply(content=flip_answer(SEA), delay=3.0)}
CUT_OFF = (
    "flip_reward.serve: a connection closed before its request body arrived in full (the client left, or it was "
    "closed at --body-timeout or for room under --max-connections): Connection lost; nothing answered"
)
STALLED_HEAD = (
    b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
    b"Expect: 100-continue\r\n\r\n"
)


@pytest.fixture(scope="module")
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


def answer_to(url: str, request: bytes) -> bytes:
    """Everything the service sends back on a fresh connection for ``request`` until it closes the connection."""
    with connect(url) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def stalled_body(url: str) -> socket.socket:
    """A connection whose request is being handled (the service said ``100 Continue``) and whose body stops after
    one byte of 100,000."""
    sock = connect(url)
    sock.sendall(STALLED_HEAD)
    assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
    sock.sendall(b"{")
    return sock


def metrics_when(url: str, name: str, expected: float) -> str:
    """The service's metrics once sample ``name`` reads ``expected`` (the service sees closed connections a moment
    after the client closes them), or after 30 s."""
    deadline = time.monotonic() + 30
    while True:
        text = call(url, "/metrics")[1]
        if metric(text, name) == expected or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


MALFORMED = {
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}": (
        "Can not decode content-encoding: brotli (br). Please install `Brotli`"
    ),
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Encoding: zstd\r\nContent-Length: 2\r\n\r\n{}": (
        "Can not decode content-encoding: zstandard (zstd). Please install `backports.zstd`"
    ),
    b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n": (
        "Invalid header token:\n\n  b'Bad Header: 1'\n       ^"
    ),
    b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n": (
        "Invalid character in Content-Length:\n\n  b'Content-Length: abc'\n                    ^"
    ),
    b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}": (
        "Transfer-Encoding can't be present with Content-Length:\n\n  b'Transfer-Encoding: chunked'\n"
        "                      ^"
    ),
    b"POST /v1/score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n": (
        "Invalid character in chunk size:\n\n  b'zz'\n    ^"
    ),
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": "Pause on PRI/Upgrade:\n\n  b''\n    ^",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n": (
        "Got more than 8190 bytes when reading: b'" + "a" * 100 + "...'."
    ),
}


def test_malformed_requests_are_a_400_each_and_one_line_per_kind_never_a_traceback(judge) -> None:
    """aiohttp answers requests it cannot parse itself (plain text, before any middleware); a gzip body that is not
    gzip on ``GET /health`` (which does not read bodies) fails when aiohttp drains it after the answer."""
    junk_gzip = b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\njunk"
    with ServeProcess(*scripted_judge_args(judge)) as service:
        for _ in range(20):
            for request, reason in MALFORMED.items():
                answer = answer_to(service.url, request)
                head, _, text = answer.partition(b"\r\n\r\n")
                assert head.splitlines()[:2] == [
                    b"HTTP/1.0 400 Bad Request",
                    b"Content-Type: text/plain; charset=utf-8",
                ]
                assert text.decode() == reason
            assert answer_to(service.url, junk_gzip).startswith(b"HTTP/1.1 200 OK\r\n")
        assert call(service.url, "/v1/score", SCORE)[1]["results"][0]["reward"] == 1.0
        returncode, stderr = service.stop()
    assert returncode == 0
    assert "Traceback" not in stderr
    assert log_lines(stderr)[1:] == [
        "flip_reward.serve: Error handling request from 127.0.0.1: ContentEncodingError: Can not decode "
        "content-encoding",
        "flip_reward.serve: Error handling request from 127.0.0.1: BadHttpMessage: Invalid header token",
        "flip_reward.serve: Error handling request from 127.0.0.1: LineTooLong: Got more than 8190 bytes when reading",
        "flip_reward.serve: Unhandled exception: RequestPayloadError: Can not decode content-encoding",
        "flip-reward serve: stopped",
    ]


def test_stalled_bodies_do_not_count_as_in_progress_for_the_cap_nor_hold_up_the_shutdown(judge) -> None:
    """Five requests whose body stops after one byte, under a cap of 3: each newcomer closes the oldest of them,
    the request that arrives whole is scored, and SIGTERM does not wait for the two left (nor the 120 s
    --shutdown-timeout: the service has exited when ``wait`` returns, well within its 30 s)."""
    timers = ("--body-timeout", "120", "--keepalive-timeout", "120", "--shutdown-timeout", "120")
    with ServeProcess(*scripted_judge_args(judge), *timers, "--max-connections", "3") as service, ExitStack() as stack:
        stalled = [stack.enter_context(stalled_body(service.url)) for _ in range(5)]
        status, answer = call(service.url, "/v1/score", SCORE)
        assert (status, answer["results"][0]["reward"]) == (200, 1.0)
        assert [closed_by_server(sock) for sock in stalled[:3]] == [True, True, True]
        text = metrics_when(service.url, "flip_serve_bodies_cut_off_total", 3.0)
        assert metric(text, "flip_serve_bodies_cut_off_total") == 3.0
        assert metric(text, 'flip_serve_requests_total{endpoint="/v1/score",status="200"}') == 1.0
        assert 'status="500"' not in text
        service.process.terminate()
        returncode, stderr = service.wait(timeout=30)
        assert [closed_by_server(sock) for sock in stalled[3:]] == [True, True]
    assert returncode == 0
    assert "Traceback" not in stderr
    assert log_lines(stderr)[1:] == [
        "flip_reward.serve: 3 connections open (--max-connections): closing the longest-waiting one without a "
        "request in progress for each new one",
        CUT_OFF,
        "flip-reward serve: stopped",
    ]


def test_a_body_must_arrive_in_full_within_the_body_timeout_but_a_slow_judge_call_is_not_cut(judge) -> None:
    with ServeProcess(*scripted_judge_args(judge), "--body-timeout", "1", "--keepalive-timeout", "30") as service:
        stalled = stalled_body(service.url)
        dripping = connect(service.url)
        dripping.sendall(STALLED_HEAD)
        assert dripping.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        stop_dripping = threading.Event()

        def drip() -> None:  # one body byte every 0.2 s, for ever
            while not stop_dripping.wait(0.2):
                try:
                    dripping.sendall(b" ")
                except OSError:
                    return

        dripper = threading.Thread(target=drip)
        dripper.start()
        slow = {"items": [{"prompt": f"user: {SEA}", "response": "SLOW"}]}  # the judge answers in 3 s
        assert call(service.url, "/v1/score", slow)[1]["results"][0]["reward"] == 1.0
        assert [closed_by_server(sock) for sock in (stalled, dripping)] == [True, True]
        stop_dripping.set()
        dripper.join()
        stalled.close()
        dripping.close()
        text = metrics_when(service.url, "flip_serve_bodies_cut_off_total", 2.0)
        assert metric(text, "flip_serve_bodies_cut_off_total") == 2.0
        returncode, stderr = service.stop()
    assert returncode == 0
    assert "Traceback" not in stderr
    assert log_lines(stderr)[1:] == [CUT_OFF, "flip-reward serve: stopped"]


def test_clients_that_drop_mid_body_are_counted_apart_in_one_line_not_as_500s(judge) -> None:
    with ServeProcess(*scripted_judge_args(judge)) as service:
        for _ in range(200):
            stalled_body(service.url).close()
        text = metrics_when(service.url, "flip_serve_bodies_cut_off_total", 200.0)
        assert metric(text, "flip_serve_bodies_cut_off_total") == 200.0
        assert 'endpoint="/v1/score"' not in text  # none answered: no status, no latency
        returncode, stderr = service.stop()
    assert returncode == 0
    assert "Traceback" not in stderr
    assert log_lines(stderr)[1:] == [CUT_OFF, "flip-reward serve: stopped"]


def test_a_slow_reader_gets_its_whole_answer_the_idle_timer_starts_once_it_is_written(judge) -> None:
    """A 6 MB answer to a client with a small receive buffer that waits 3 s before reading: the service's writes
    stall for longer than --keepalive-timeout, which must not cut the answer."""
    items = [{"prompt": "", "response": ""}] * 15_000  # each answered with its input error, no judge call
    body = json.dumps({"items": items}).encode()
    with ServeProcess(*scripted_judge_args(judge), "--keepalive-timeout", "1", "--max-items", "15000") as service:
        with connect(service.url, receive_buffer=4096) as sock:
            head = (
                f"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            )
            sock.sendall(head.encode() + b"\r\n\r\n" + body)
            time.sleep(3)
            answer = b""
            while chunk := sock.recv(1 << 20):
                answer += chunk
                if answer.endswith(b"}]}"):
                    break
        head, _, text = answer.partition(b"\r\n\r\n")
        assert head.splitlines()[0] == b"HTTP/1.1 200 OK"
        results = json.loads(text)["results"]
        assert len(results) == 15_000
        assert results[-1]["error"] == "prompt: the last user message is empty"
        returncode, stderr = service.stop()
    assert returncode == 0
    assert log_lines(stderr)[1:] == ["flip-reward serve: stopped"]


def test_the_help_of_max_connections_says_what_the_reference_says() -> None:
    """``flip-reward serve --help`` (a real process) names the same connections docs/reference.md does."""
    completed = subprocess.run([sys.executable, "-m", "flip_reward.cli", "serve", "--help"], capture_output=True,
                               text=True, timeout=60, check=False)  # fmt: skip
    shown = " ".join(completed.stdout.split())
    start = shown.index("--max-connections MAX_CONNECTIONS connections")
    assert shown[start : shown.index(" --reward-metric", start)] == (
        "--max-connections MAX_CONNECTIONS connections open at once, lowered to fit the open-file limit; past it the "
        "one that has waited longest without a request in progress (idle, mid-head or body still arriving) is closed, "
        "else the new one gets a 503 (default: 512)"
    )
    reference = (REPO / "docs" / "reference.md").read_text()
    assert "(idle, in the middle of a request head, or with its body still arriving) is closed for each new one; " \
        "when all have a request in progress, the new one gets a 503" in reference  # fmt: skip


def test_a_failed_bind_leaves_no_filter_on_aiohttps_logger() -> None:
    """serve() on a port another socket listens on: the bind fails (EADDRINUSE), and aiohttp.server's logger is as
    it was (the filter that folds malformed requests into one line each is off again)."""
    import asyncio
    import logging

    from flip_reward import FlipReward
    from flip_reward.serving.reward_service import RewardService, ServiceConfig, serve

    aiohttp_log = logging.getLogger("aiohttp.server")
    before = list(aiohttp_log.filters)
    flip = FlipReward(judge_model="hosted_vllm/scripted", api_base="http://127.0.0.1:9/v1")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = RewardService(flip, ServiceConfig(port=taken.getsockname()[1]))
        with pytest.raises(OSError) as failed:
            asyncio.run(serve(service, lambda url: None))
    assert failed.value.errno == errno.EADDRINUSE
    assert aiohttp_log.filters == before
