"""Judge servers and routers for the length of one job, on ``flip_reward.serving.processes``'s ``Supervisor``.

``vllm serve`` on a CUDA machine with vLLM, ``transformers serve`` otherwise (``flip_reward.serving.judge_fleet``),
every process in its own process group, the base URL known once ``/health`` answers. ``ManagedJudgeServer`` serves
a model (``replicas`` > 1: that many vLLM servers behind vllm-router, one unit); ``ManagedRouter`` puts vllm-router
in front of judges that already run. Both are context managers: everything they started is stopped when the block
ends, whether it ends normally, by an exception, by Ctrl-C (KeyboardInterrupt) or by SIGTERM/SIGHUP once
``exit_on_signals`` turned those into SystemExit.
"""

from __future__ import annotations

import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from flip_reward.serving import judge_fleet
from flip_reward.serving.pid_files import PidFileError
from flip_reward.serving.processes import Service, StartError, Supervisor

SERVED_PREFIX = "hosted_vllm/"
HOST = judge_fleet.REPLICA_HOST


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


def say(message: str) -> None:
    print(f"judge server: {message}", file=sys.stderr, flush=True)


class _Managed:
    """The services of ``services()`` under a Supervisor, with ``run_dir``/NAME.pid and NAME.log."""

    name = "judge"

    def __init__(self, run_dir: str | Path, port: int | None, start_timeout: int, python: str):
        self.run_dir = Path(run_dir)
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.python = python
        self.pid_file = self.run_dir / f"{self.name}.pid"
        self.log_file = self.run_dir / f"{self.name}.log"
        self.url: str | None = None
        self.supervisor = Supervisor(self.pid_file, start_timeout, say)

    def services(self) -> list[Service]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def start(self) -> str:
        """Start everything and wait until it is healthy; the base URL. JudgeServerError (everything started
        stopped) when it does not start; Ctrl-C meanwhile stops everything too."""
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # PID files live only in private directories
        try:
            self.supervisor.start(self.services())
        except (StartError, judge_fleet.FleetError, PidFileError, OSError) as error:
            self.stop()
            raise JudgeServerError(f"the {self.describe()} did not start: {error}") from None
        except BaseException:
            self.stop()
            raise
        self.url = judge_fleet.local_url(HOST, self.port, "/v1")
        return self.url

    def stop(self) -> None:
        """Stop everything started (TERM to each process group, KILL after a grace period); nothing when it is
        gone. A second Ctrl-C does not interrupt the stopping."""
        self.url = None
        self.supervisor.stop()

    def __enter__(self) -> _Managed:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ManagedJudgeServer(_Managed):
    """Serves ``model`` (a hub name or a directory) while the ``with`` block runs.

    ``run_dir`` receives ``judge.pid`` and ``judge.log``; ``server_args`` go to the server (a string is split like
    a shell would). ``replicas`` > 1 serves that many vLLM servers behind vllm-router (``policy``), started and
    stopped as one unit. JUDGE_SERVER, JUDGE_GPUS and JUDGE_ROUTER_ARGS are read from the environment, as
    ``flip-reward judge serve`` reads them. ``url`` is the OpenAI-style base URL once started.
    """

    def __init__(
        self,
        model: str,
        run_dir: str | Path,
        port: int | None = None,
        server_args: str | Sequence[str] = (),
        start_timeout: int = judge_fleet.DEFAULT_START_TIMEOUT_S,
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

    def services(self) -> list[Service]:
        environment = judge_fleet.FleetEnvironment.read()
        return judge_fleet.judge_services(
            self.model, replicas=self.replicas, host=HOST, port=self.port, gpus=environment.gpus,
            server=environment.server, server_args=self.server_args, log_file=self.log_file, python=self.python,
            policy=self.policy or environment.policy, router_args=environment.router_args,
            start_timeout=self.start_timeout,
        )  # fmt: skip

    def describe(self) -> str:
        return f"judge server for {self.model}" + (f" ({self.replicas} replicas)" if self.replicas > 1 else "")


class ManagedRouter(_Managed):
    """vllm-router in front of the running judges ``urls`` while the block runs.

    ``run_dir`` receives ``router.pid`` and ``router.log``; ``policy`` is vllm-router's routing policy
    (JUDGE_ROUTER_POLICY, else power_of_two, when None). ``url`` is the router's OpenAI-style base URL once started.
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
        self.workers = [judge_fleet.worker_url(url) for url in urls]  # a URL with credentials: ValueError
        self.urls = list(urls)
        self.policy = policy

    def services(self) -> list[Service]:
        environment = judge_fleet.FleetEnvironment.read()
        router = judge_fleet.router_service(
            self.workers,
            host=HOST,
            port=self.port,
            policy=self.policy or environment.policy,
            router_args=environment.router_args,
            start_timeout=self.start_timeout,
            log_file=self.log_file,
            python=self.python,
        )
        return [router]

    def describe(self) -> str:
        return f"router in front of {', '.join(self.workers)}"
