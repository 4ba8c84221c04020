"""``flip-reward serve`` left running under abuse: stalled connections (real sockets), a low open-file limit, a
shutdown that outlasts its timeout, a judge that is down or wrong at start. The judge is the scripted
OpenAI-compatible server (a test double, see serve_support)."""

from __future__ import annotations

import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from conftest import free_port
from serve_support import (
    ResponseScript,
    ServeProcess,
    call,
    closed_by_server,
    connect,
    log_lines,
    requests_arrived,
    scripted_judge_args,
)

from flip_reward.core.reward import FlipReward
from flip_reward.judge.client import JudgeConfig
from flip_reward.serving.probe import JudgeProbeError, served_models, vllm_endpoint
from flip_reward.serving.reward_service import RewardService
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, flip_answer

SEA = "Write a poem about the sea."
SCORE = {"items": [{"prompt": f"user: {SEA}", "response": "Waves roll in under a silver moon."}]}
ANSWERS = {"Waves roll in under a silver moon.": SEA, "STALL": Reply(content=flip_answer(SEA), delay=6.0)}
TOKEN = "s3cret"


@pytest.fixture(scope="module")
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


@contextmanager
def stalled(url: str, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that stall: every other one idle, the others stuck in the middle of a request head."""
    with ExitStack() as stack:
        sockets = []
        for number in range(count):
            sock = stack.enter_context(connect(url))
            if number % 2:
                sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(sock)
        yield sockets


# --- timeouts ----------------------------------------------------------------------------------------------------


def test_idle_dripping_and_kept_alive_connections_are_closed_but_a_slow_judge_call_is_not(judge) -> None:
    with ServeProcess(*scripted_judge_args(judge), "--header-timeout", "1", "--keepalive-timeout", "2") as service:
        idle = connect(service.url)
        dripping = connect(service.url)
        kept_alive = connect(service.url)
        kept_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept_alive.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        stop_dripping = threading.Event()

        def drip() -> None:  # one header byte every 0.2 s, for ever
            dripping.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
            while not stop_dripping.wait(0.2):
                try:
                    dripping.sendall(b"x")
                except OSError:
                    return

        dripper = threading.Thread(target=drip)
        dripper.start()
        slow = {"items": [{"prompt": f"user: {SEA}", "response": "SLOW"}]}
        judge.respond.answers["SLOW"] = Reply(content=flip_answer(SEA), delay=3.0)  # longer than both timeouts
        assert call(service.url, "/v1/score", slow)[1]["results"][0]["reward"] == 1.0
        assert [closed_by_server(sock) for sock in (idle, dripping, kept_alive)] == [True, True, True]
        stop_dripping.set()
        dripper.join()
        for sock in (idle, dripping, kept_alive):
            sock.close()
        assert "Traceback" not in service.stderr


# --- connections past the open-file limit --------------------------------------------------------------------------


def low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def scores_with_the_token(url: str) -> bool:
    status, answer = call(url, "/v1/score", SCORE, token=TOKEN)
    return (status, answer["results"][0]["reward"]) == (200, 1.0)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_stalled_connections_under_a_low_file_limit_leave_room_for_an_authenticated_request(judge) -> None:
    """300 stalled connections under a 256-descriptor limit (the cap is lowered to fit), then 100 more once the
    limit is cut to 20 more than the service has open (accepting fails): each time the request with the token gets
    in, and the log holds one line each."""
    env = {"FLIP_SERVE_TOKEN": TOKEN}
    timers = ("--header-timeout", "120", "--keepalive-timeout", "120")  # nothing closes on its own here
    with ServeProcess(*scripted_judge_args(judge), *timers, env=env, preexec_fn=low_file_limit) as service:
        pid = service.process.pid
        at_start = open_descriptors(pid)
        with stalled(service.url, 300):
            assert scores_with_the_token(service.url)
        deadline = time.monotonic() + 30
        while open_descriptors(pid) > at_start + 4 and time.monotonic() < deadline:  # the service sees them close
            time.sleep(0.1)
        limit = open_descriptors(pid) + 20  # room for 20 connections, below the cap of 60
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
        with stalled(service.url, 100):
            assert scores_with_the_token(service.url)
        returncode, stderr = service.stop()
    assert returncode == 0
    lines = log_lines(stderr)
    assert lines[:3] == [
        "flip_reward.serve: at most 60 connections at once, not 512 (--max-connections): the open-file limit "
        "(ulimit -n) is 256, and 196 descriptors are kept for the judge (--concurrency 64), a burst of new connections "
        "and the service's own",
        f"flip-reward serve: {service.url} (judge hosted_vllm/scripted at {judge.base_url}; bearer token required)",
        "flip_reward.serve: 60 connections open (--max-connections): closing the longest-waiting one without a "
        "request in progress for each new one",
    ], lines
    assert lines[3:] == [
        "flip_reward.serve: cannot accept a connection: [Errno 24] Too many open files; closing up to 100 connections "
        "without a request in progress each second to make room",
        "flip-reward serve: stopped",
    ], lines


# --- shutdown ------------------------------------------------------------------------------------------------------


def test_requests_dropped_at_the_shutdown_timeout_are_counted_in_one_line_and_exit_1(judge) -> None:
    with ServeProcess(*scripted_judge_args(judge), "--shutdown-timeout", "1") as service:
        answers: list = []

        def post() -> None:
            try:
                answers.append(call(service.url, "/v1/score", {"items": [{"prompt": "user: hi", "response": "STALL"}]}))
            except OSError as error:  # the connection is closed with no answer
                answers.append(type(error).__name__)

        client = threading.Thread(target=post)
        client.start()
        assert requests_arrived(judge, "STALL") == 1, "the stalled judge request never arrived"
        service.process.send_signal(signal.SIGTERM)
        returncode, stderr = service.wait()
        client.join(timeout=30)
    assert returncode == 1
    assert answers == ["RemoteDisconnected"]
    assert "Traceback" not in stderr
    assert log_lines(stderr)[-3:] == [
        "flip_reward.serve: stopping: finishing 1 request(s) in flight",
        "flip_reward.serve: stopping: dropped 1 request(s) still in flight after the 1s --shutdown-timeout; their "
        "clients got no answer",
        "flip-reward serve: stopped",
    ]


def test_the_default_shutdown_timeout_outlasts_a_judge_call() -> None:
    flip = FlipReward(judge_model="hosted_vllm/scripted", api_base="http://127.0.0.1:9/v1")
    assert JudgeConfig().total_deadline == 260.0  # 60 s x (3 retries + 1) + 20 s of back-off at most
    assert RewardService(flip).shutdown_timeout == 270.0
    slow = FlipReward(judge_model="hosted_vllm/scripted", api_base="http://127.0.0.1:9/v1", timeout=300, retries=1)
    assert RewardService(slow).shutdown_timeout == 630.0


# --- the judge at start --------------------------------------------------------------------------------------------


def test_a_dead_judge_at_start_is_one_warning_and_rewards_are_right_once_it_comes_up() -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    with ServeProcess("--judge", "hosted_vllm/scripted", "--api-base", base_url, "--retries", "0") as service:
        assert call(service.url, "/health")[1]["status"] == "ok"
        with ScriptedJudgeServer(ResponseScript(ANSWERS), port=port):
            status, answer = call(service.url, "/v1/score", SCORE)
            assert (status, answer["results"][0]["reward"]) == (200, 1.0)
        returncode, stderr = service.stop()
    assert returncode == 0
    assert log_lines(stderr) == [
        f"flip_reward.serve: judge hosted_vllm/scripted at {base_url}: is not reachable (<urlopen error [Errno 111] "
        "Connection refused>); serving anyway: until it answers for this model, every reward is 0.0 with its error",
        f"flip-reward serve: {service.url} (judge hosted_vllm/scripted at {base_url}; no authentication (loopback "
        "only))",
        "flip-reward serve: stopped",
    ]


def test_a_judge_serving_another_model_is_one_warning(judge) -> None:
    args = ("--judge", "hosted_vllm/Qwen/Qwen3-4B", "--api-base", judge.base_url)
    with ServeProcess(*args) as service:
        returncode, stderr = service.stop()
    assert returncode == 0
    assert log_lines(stderr)[0] == (
        f"flip_reward.serve: judge hosted_vllm/Qwen/Qwen3-4B at {judge.base_url}: serves scripted, not "
        "'Qwen/Qwen3-4B' (from hosted_vllm/Qwen/Qwen3-4B); serving anyway: until it answers for this model, every "
        "reward is 0.0 with its error"
    )


def test_the_probe_sends_credentials_in_the_url_as_basic_auth_and_shows_them_nowhere() -> None:
    port = free_port()
    with pytest.raises(JudgeProbeError) as refused:
        served_models(vllm_endpoint(f"http://user:pa55@127.0.0.1:{port}/v1"))
    assert str(refused.value) == (
        f"http://***@127.0.0.1:{port}/v1/models is not reachable (<urlopen error [Errno 111] Connection refused>)"
    )
