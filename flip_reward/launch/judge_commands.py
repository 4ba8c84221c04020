"""What ``flip-reward judge serve``, ``route`` and ``stop`` (and ``scripts/serve_judge.sh``) do: check the settings,
print the plan (--dry-run) or start the judge's services under a ``Supervisor`` and leave them running, recorded in a
PID file that ``stop`` reads back."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from flip_reward.exit_codes import EXIT_INVALID_INPUT, EXIT_RUN_FAILED
from flip_reward.serving import judge_fleet, pid_files
from flip_reward.serving.judge_fleet import FleetError
from flip_reward.serving.processes import Service, StartError, Supervisor

POLICY_NAME = re.compile(r"^[a-z_]+$")
ROUTER_ONLY = (
    "--route starts only a router: no MODEL, --replicas or server arguments (router arguments: JUDGE_ROUTER_ARGS)"
)
Log = Callable[[str], None]


@dataclass(frozen=True)
class JudgeStart:
    """One start of ``judge serve`` (``model``) or ``judge route`` (``route_urls``), as given on the command line."""

    model: str | None
    route_urls: tuple[str, ...]
    replicas: str
    policy: str | None
    port: str
    host: str
    pid_file: Path | None
    log_file: Path | None
    timeout: str
    server_args: tuple[str, ...]
    dry_run: bool
    stop_hint: str  # the command that stops it, e.g. "flip-reward judge stop"


def private_dir() -> Path:
    """Where PID and log files go by default: ${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}}/flip-reward-UID (created 0700)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"
    return Path(base) / f"flip-reward-{os.getuid()}"


def default_pid_file(port: int) -> Path:
    return private_dir() / f"serve_judge.{port}.pid"


def interpreter() -> str:
    """The interpreter whose directory holds the servers' executables: $PYTHON, else this one."""
    return os.environ.get("PYTHON") or sys.executable


def whole_number(value: str, message: str, minimum: int = 0) -> int:
    if not value.isdigit() or int(value) < minimum:
        raise FleetError(f"{message}, got '{value}'")
    return int(value)


def plan(start: JudgeStart, log: Log) -> tuple[list[Service], int, Path]:
    """The services a start runs, its port and its PID file; FleetError for settings that cannot work."""
    port = whole_number(start.port, "--port must be a number")
    timeout = whole_number(start.timeout, "--timeout must be a number of seconds")
    replicas = whole_number(start.replicas, "--replicas must be a whole number >= 1", 1)
    environment = judge_fleet.FleetEnvironment.read()
    policy = start.policy or environment.policy
    if not POLICY_NAME.match(policy):
        raise FleetError(f"--policy must be a vllm-router policy name like power_of_two, got '{policy}'")
    log_file = start.log_file or private_dir() / f"serve_judge.{port}.log"
    router_args = environment.router_args
    python = interpreter()
    if start.model is None:
        if replicas != 1 or start.server_args:
            raise FleetError(ROUTER_ONLY)
        urls = [judge_fleet.worker_url(url) for url in start.route_urls]
        if not urls:
            raise FleetError("--route needs one or more judge URLs")
        if len(set(urls)) < len(urls):
            raise FleetError("--route lists a judge twice")
        say_round_robin(len(urls), policy, log)
        router = judge_fleet.router_service(urls, host=start.host, port=port, policy=policy, router_args=router_args,
                                            start_timeout=timeout, log_file=log_file, python=python,
                                            dry_run=start.dry_run)  # fmt: skip
        return [router], port, start.pid_file or default_pid_file(port)
    if start.model.startswith(("/", "./", "../")) and not os.path.isdir(start.model):
        raise FleetError(f"model directory {start.model} does not exist")
    services = judge_fleet.judge_services(
        start.model, replicas=replicas, host=start.host, port=port, gpus=environment.gpus,
        server=environment.server, server_args=start.server_args, log_file=log_file,
        python=python, policy=policy, router_args=router_args, start_timeout=timeout, dry_run=start.dry_run,
    )  # fmt: skip
    return services, port, start.pid_file or default_pid_file(port)


def say_round_robin(workers: int, policy: str, log: Log) -> None:
    if judge_fleet.router_policy(workers, policy) != policy:
        log("one judge behind the router: policy round_robin (power_of_two needs two or more)")


def dry_run_lines(services: Sequence[Service]) -> list[str]:
    """``server: CMD``, ``replica I: CMD`` and ``router: CMD`` lines, the commands quoted as a shell would take them."""
    return [f"{service.name}: {shlex.join(service.command)}" for service in services]


def serve(start: JudgeStart, log: Log) -> int:
    """Start the judge (or router) of ``start``, print its base URL as the only line on stdout and leave it running;
    an exit status (0, 1 when it did not start, 2 for settings that cannot work)."""
    try:
        services, port, pid_file = plan(start, log)
    except FleetError as error:
        log(f"error: {error}")
        return EXIT_INVALID_INPUT
    if start.dry_run:
        print("\n".join(dry_run_lines(services)), flush=True)
        return 0
    client = judge_fleet.local_url(start.host, port)
    supervisor = Supervisor(pid_file, float(start.timeout), log)
    with supervisor:
        try:
            started = time.monotonic()
            supervisor.start(services)
        except (StartError, pid_files.PidFileError, OSError, FleetError) as error:
            say_error(error, log)
            return EXIT_RUN_FAILED
        supervisor.detach()
    log(f"healthy after {time.monotonic() - started:.0f}s (stop it with: {start.stop_hint} {pid_file})")
    print(f"{client}/v1", flush=True)
    return 0


def say_error(error: BaseException, log: Log) -> None:
    """``error: MESSAGE``; a StartError's log tail follows, as it was written."""
    first, _, rest = str(error).partition("\n")
    log(f"error: {first}")
    heading, _, tail = rest.partition("\n")
    if heading:
        log(heading)
        print(tail, file=sys.stderr, flush=True)


def stop(pid_file: Path | None, port: str, log: Log) -> int:
    """Stop every process group of ``pid_file`` (default: the PID file of ``port``) and remove it: 0, also when it
    is gone; 1 when it cannot be trusted; 2 for a port that is no number."""
    try:
        number = whole_number(port, "--port must be a number")
    except FleetError as error:
        log(f"error: {error}")
        return EXIT_INVALID_INPUT
    try:
        pid_files.stop(pid_file or default_pid_file(number), log)
    except (pid_files.PidFileError, OSError) as error:
        log(f"error: {error}")
        return EXIT_RUN_FAILED
    return 0
