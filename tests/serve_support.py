"""A real ``flip-reward serve`` process on loopback for the tests, and a small HTTP client for it.

The judge behind it is the scripted OpenAI-compatible server (flip_reward.serving.scripted_judge, a test double):
``ResponseScript`` answers by the response the judge is asked about, so that concurrent requests get known
answers whatever order they arrive in, and faults are injected per response.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from flip_reward.serving.scripted_judge import Reply, flip_answer, judged_response

REPO = Path(__file__).resolve().parents[1]


class ResponseScript:
    """Judge answers keyed by the response shown to the judge: a string is the inferred instruction, a Reply is
    sent as is; unknown responses get ``Something else entirely.``."""

    def __init__(self, answers: dict[str, str | Reply] | None = None):
        self.answers = dict(answers or {})

    def __call__(self, request: dict) -> Reply | str:
        answer = self.answers.get(judged_response(request), "Something else entirely.")
        return answer if isinstance(answer, Reply) else flip_answer(answer)


class FirstFails(ResponseScript):
    """A ResponseScript whose first ``failures`` requests about each response answer HTTP 500 (a transient judge
    outage): a client that retries gets the scripted answer, one that does not gets the error."""

    def __init__(self, answers: dict[str, str | Reply] | None = None, failures: int = 1):
        super().__init__(answers)
        self.failures = failures
        self.seen: dict[str, int] = {}

    def __call__(self, request: dict) -> Reply | str:
        response = judged_response(request)
        self.seen[response] = self.seen.get(response, 0) + 1
        if self.seen[response] <= self.failures:
            return Reply(content="scripted transient outage", status=500)
        return super().__call__(request)


def requests_for(judge: object, response: str) -> int:
    """How many requests the scripted ``judge`` received about ``response``."""
    return sum(judged_response(request) == response for request in judge.requests)


def requests_arrived(judge: object, response: str, timeout: float = 30.0) -> int:
    """``requests_for(judge, response)`` once the first such request has arrived, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while requests_for(judge, response) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return requests_for(judge, response)


def inspect_report(trace: Path, output_dir: Path) -> tuple[dict, list[str]]:
    """A real ``flip-reward inspect TRACE --output-dir DIR`` process (offline), which must exit 0: its inspect.json
    and its stdout lines."""
    inspected = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "inspect", str(trace), "--output-dir", str(output_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert inspected.returncode == 0, inspected.stderr
    return json.loads((output_dir / "inspect.json").read_text(encoding="utf-8")), inspected.stdout.splitlines()


def inspected_overall(trace: Path, output_dir: Path) -> dict:
    """The ``overall`` figures of ``inspect_report``: how the adapters' tests check that their FLIP_SAMPLE_LOG traces
    read."""
    return inspect_report(trace, output_dir)[0]["overall"]


def scripted_judge_args(judge: object) -> tuple[str, ...]:
    """The serve options of a service judged by the scripted ``judge``, with no retries."""
    return ("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url, "--retries", "0")


class ServeProcess:
    """``flip-reward serve ARGS`` in a subprocess; ``url`` is the base URL it printed once listening; ``preexec_fn``
    runs in the child before it starts (e.g. to lower its open-file limit); ``prefix`` comes before the command (e.g.
    ``setpriv`` to run it as another user)."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        start_timeout: float = 90.0,
        preexec_fn: Callable[[], None] | None = None,
        prefix: tuple[str, ...] = (),
    ):
        self.args = ["--port", "0", *args] if "--port" not in args else list(args)
        self.env = {**os.environ, **(env or {})}
        self.start_timeout = start_timeout
        self.preexec_fn = preexec_fn
        self.prefix = prefix
        self.url = ""

    def __enter__(self) -> ServeProcess:
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "flip_reward.cli", "serve", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=REPO,
            preexec_fn=self.preexec_fn,
        )
        self._stderr: list[str] = []
        self._drain = threading.Thread(target=lambda: self._stderr.extend(self.process.stderr), daemon=True)
        self._drain.start()
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.process.stdout.readline()), daemon=True).start()
        try:
            self.url = lines.get(timeout=self.start_timeout).strip()
        except queue.Empty:
            self.url = ""
        if not self.url:
            returncode, stderr = self.stop()
            raise AssertionError(f"flip-reward serve did not start (exit status {returncode}): {stderr}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.returncode is None:
            self.stop()

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def stop(self, timeout: float = 60.0) -> tuple[int, str]:
        """SIGTERM (unless it has exited), then ``wait``."""
        self.process.terminate()
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> tuple[int, str]:
        """The exit status once it has exited, and everything it wrote on stderr."""
        self.process.wait(timeout=timeout)
        self._drain.join(timeout=10)
        self.process.stdout.close()
        return self.process.returncode, self.stderr


def call(
    url: str,
    path: str,
    body: object = None,
    token: str | None = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple:
    """``(status, parsed JSON or text)`` of a POST (with ``body`` or ``raw``) or, with neither, a GET; ``headers`` are
    added (a str header is sent as Latin-1, so that any byte can be sent)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def log_lines(stderr: str) -> list[str]:
    """The lines of a service's stderr, the logging timestamp (``YYYY-MM-DD HH:MM:SS,mmm ``) cut off."""
    return [re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", "", line) for line in stderr.splitlines()]


def metric(text: str, name: str) -> float:
    """The value of the sample line ``name`` (with its labels, exactly as exposed) in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} in:\n{text}")


def connect(url: str, receive_buffer: int | None = None) -> socket.socket:
    """A raw socket to the service at ``url`` (30 s timeout), with receive buffer ``receive_buffer`` when given."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.socket()
    sock.settimeout(30)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((host, int(port)))
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) before the 30 s socket timeout, reading what it sends."""
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True
