"""Judge servers and routers for the length of one job: ``scripts/serve_judge.sh`` started and stopped from Python.

The script picks ``vllm serve`` on a CUDA machine with vLLM and ``transformers serve`` otherwise, runs every process
in its own process group and prints the base URL once ``/health`` answers. ``ManagedJudgeServer`` serves a model
(``replicas`` > 1: that many servers behind vllm-router, one unit); ``ManagedRouter`` puts vllm-router in front of
judges that already run. Both are context managers: everything they started is stopped when the block ends,
whether it ends normally, by an exception, by Ctrl-C (KeyboardInterrupt) or by SIGTERM/SIGHUP once
``exit_on_signals`` turned those into SystemExit.
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


class _ServeScript:
    """One ``scripts/serve_judge.sh`` start (``arguments()``) in ``run_dir``, stopped through its PID file."""

    name = "judge"

    def __init__(self, run_dir: str | Path, port: int | None, start_timeout: int, python: str):
        self.run_dir = Path(run_dir)
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.python = python
        self.pid_file = self.run_dir / f"{self.name}.pid"
        self.log_file = self.run_dir / f"{self.name}.log"
        self.url: str | None = None

    def arguments(self) -> list[str]:
        raise NotImplementedError

    def command(self) -> list[str]:
        files = ["--pid-file", str(self.pid_file), "--log-file", str(self.log_file)]
        return ["bash", str(SERVE_SCRIPT), *self.arguments(), "--port", str(self.port), *files,
                "--timeout", str(self.start_timeout), *self.server_arguments()]  # fmt: skip

    def server_arguments(self) -> list[str]:
        return []

    def start(self) -> str:
        if not SERVE_SCRIPT.is_file():
            raise JudgeServerError(
                f"{SERVE_SCRIPT} not found (this installation has no scripts/): start a judge "
                "yourself and give its base URL (--judge-base-url / JUDGE_BASE_URL)"
            )
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # the script keeps PID files only in private ones
        env = {**os.environ, "PYTHON": self.python, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        try:
            started = subprocess.run(self.command(), stdout=subprocess.PIPE, text=True, env=env, check=False)
        except BaseException:  # Ctrl-C while the server loads: the script's own trap stops it; make sure
            self.stop()
            raise
        lines = started.stdout.strip().splitlines()
        if started.returncode != 0 or not lines:
            self.stop()
            raise JudgeServerError(f"the {self.describe()} did not start (log: {self.log_file})")
        self.url = lines[-1]
        return self.url

    def describe(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop everything started (TERM to each process group, KILL after a grace period); nothing when it is
        gone. A second Ctrl-C does not interrupt the stopping."""
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

    def __enter__(self) -> _ServeScript:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ManagedJudgeServer(_ServeScript):
    """Serves ``model`` (a hub name or a directory) with scripts/serve_judge.sh while the ``with`` block runs.

    ``run_dir`` receives ``judge.pid`` and ``judge.log``; ``server_args`` go to the server after ``--`` (a string is
    split like a shell would). ``replicas`` > 1 serves that many servers behind vllm-router (``policy``), started
    and stopped as one unit. ``url`` is the OpenAI-style base URL once started.
    """

    def __init__(
        self,
        model: str,
        run_dir: str | Path,
        port: int | None = None,
        server_args: str | Sequence[str] = (),
        start_timeout: int = 900,
        python: str = sys.executable,
        replicas: int = 1,
        policy: str | None = None,
    ):
        super().__init__(run_dir, port, start_timeout, python)
        if replicas < 1:
            raise ValueError(f"replicas must be >= 1, got {replicas}")
        self.model = model
        self.server_args = shlex.split(server_args) if isinstance(server_args, str) else list(server_args)
        self.replicas = replicas
        self.policy = policy

    def arguments(self) -> list[str]:
        fleet = ["--replicas", str(self.replicas)] if self.replicas > 1 else []
        return [self.model, *fleet, *(["--policy", self.policy] if self.policy else [])]

    def server_arguments(self) -> list[str]:
        return ["--", *self.server_args] if self.server_args else []

    def describe(self) -> str:
        return f"judge server for {self.model}" + (f" ({self.replicas} replicas)" if self.replicas > 1 else "")


class ManagedRouter(_ServeScript):
    """vllm-router (scripts/serve_judge.sh --route) in front of the running judges ``urls`` while the block runs.

    ``run_dir`` receives ``router.pid`` and ``router.log``; ``policy`` is vllm-router's routing policy (the
    script's default when None). ``url`` is the router's OpenAI-style base URL once started.
    """

    name = "router"

    def __init__(
        self,
        urls: Sequence[str],
        run_dir: str | Path,
        port: int | None = None,
        policy: str | None = None,
        start_timeout: int = 120,
        python: str = sys.executable,
    ):
        super().__init__(run_dir, port, start_timeout, python)
        if not urls:
            raise ValueError("ManagedRouter needs one or more judge URLs")
        if any("@" in url for url in urls):  # vllm-router cannot send them; scripts/serve_judge.sh refuses them too
            raise ValueError(
                "ManagedRouter: a judge URL holds credentials (user:password@), which vllm-router cannot send"
            )
        self.urls = list(urls)
        self.policy = policy

    def arguments(self) -> list[str]:
        return ["--route", *self.urls, *(["--policy", self.policy] if self.policy else [])]

    def describe(self) -> str:
        return f"router in front of {', '.join(self.urls)}"
