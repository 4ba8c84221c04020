"""A judge server for the length of one job: ``scripts/serve_judge.sh`` started and stopped from Python.

The script picks ``vllm serve`` on a CUDA machine with vLLM and ``transformers serve`` otherwise, runs the server in
its own process group and prints its base URL once ``/health`` answers. ``ManagedJudgeServer`` is a context
manager: the server is stopped when the block ends, whether it ends normally, by an exception, by Ctrl-C
(KeyboardInterrupt) or by SIGTERM/SIGHUP once ``exit_on_signals`` turned those into SystemExit.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("flip_reward")
SERVE_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "serve_judge.sh"
SERVED_PREFIX = "hosted_vllm/"


class JudgeServerError(RuntimeError):
    """The judge server could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def served_model(judge_model: str) -> str:
    """What to serve for a litellm model string: ``hosted_vllm/NAME`` serves NAME (a hub name or a directory)."""
    if not judge_model.startswith(SERVED_PREFIX):
        raise JudgeServerError(
            f"cannot start a server for judge {judge_model!r}: only hosted_vllm/<model> judges are "
            "served locally; give the judge's base URL (--judge-base-url / JUDGE_BASE_URL)"
        )
    return judge_model[len(SERVED_PREFIX) :]


def exit_on_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGHUP)) -> None:
    """Turn ``signals`` into SystemExit(128 + signal) so that ``finally`` blocks and context managers run."""

    def handler(number: int, frame: object) -> None:
        raise SystemExit(128 + number)

    for number in signals:
        signal.signal(number, handler)


class ManagedJudgeServer:
    """Serves ``model`` (a hub name or a directory) with scripts/serve_judge.sh while the ``with`` block runs.

    ``run_dir`` receives ``judge.pid`` and ``judge.log``; ``server_args`` go to the server after ``--`` (a string is
    split like a shell would). ``url`` is the OpenAI-style base URL once started.
    """

    def __init__(
        self,
        model: str,
        run_dir: str | Path,
        port: int | None = None,
        server_args: str | Sequence[str] = (),
        start_timeout: int = 900,
        python: str = sys.executable,
    ):
        self.model = model
        self.run_dir = Path(run_dir)
        self.port = port or free_port()
        self.server_args = shlex.split(server_args) if isinstance(server_args, str) else list(server_args)
        self.start_timeout = start_timeout
        self.python = python
        self.pid_file = self.run_dir / "judge.pid"
        self.log_file = self.run_dir / "judge.log"
        self.url: str | None = None

    def command(self) -> list[str]:
        command = [
            "bash",
            str(SERVE_SCRIPT),
            self.model,
            "--port",
            str(self.port),
            "--pid-file",
            str(self.pid_file),
            "--log-file",
            str(self.log_file),
            "--timeout",
            str(self.start_timeout),
        ]
        return command + ["--", *self.server_args] if self.server_args else command

    def start(self) -> str:
        if not SERVE_SCRIPT.is_file():
            raise JudgeServerError(
                f"{SERVE_SCRIPT} not found (this installation has no scripts/): start a judge "
                "yourself and give its base URL (--judge-base-url / JUDGE_BASE_URL)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHON": self.python, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        try:
            started = subprocess.run(self.command(), stdout=subprocess.PIPE, text=True, env=env, check=False)
        except BaseException:  # Ctrl-C while the server loads: the script's own trap stops it; make sure
            self.stop()
            raise
        lines = started.stdout.strip().splitlines()
        if started.returncode != 0 or not lines:
            self.stop()
            raise JudgeServerError(f"the judge server for {self.model} did not start (log: {self.log_file})")
        self.url = lines[-1]
        return self.url

    def stop(self) -> None:
        """Stop the server (TERM to its process group, KILL after a grace period); nothing when it is gone. A second
        Ctrl-C does not interrupt the stopping."""
        self.url = None
        if not self.pid_file.exists():
            return
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
        try:
            subprocess.run(["bash", str(SERVE_SCRIPT), "--stop", str(self.pid_file)], check=False)
        finally:
            if in_main_thread:
                signal.signal(signal.SIGINT, previous)

    def __enter__(self) -> ManagedJudgeServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
