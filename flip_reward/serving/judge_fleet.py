"""The commands of a judge: one server (``vllm serve`` or ``transformers serve``), N replicas behind vllm-router, or
vllm-router alone in front of judges that already run, as ``Service`` values for a ``Supervisor``.

Everything here is a pure function of its arguments except ``pick_server`` (asks the machine for a GPU and vLLM)
and ``find_executable`` (looks beside the interpreter, then on PATH).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from flip_reward.serving.processes import Service

SERVERS = ("auto", "vllm", "transformers")
DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_POLICY = "power_of_two"
DEFAULT_START_TIMEOUT_S = 900
REPLICA_HOST = "127.0.0.1"
FLEET_EXTRA = 'pip install "flip-reward[fleet]"'
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
URL_PATTERN = re.compile(r"^https?://[^/\s]+(/\S*)?$")
GPU_LIST = re.compile(r"^[0-9]+(,[0-9]+)*$")
TENSOR_PARALLEL_FLAGS = ("--tensor-parallel-size", "-tp")
CREDENTIALS_REFUSED = (
    "--route: a judge URL holds credentials (user:password@), which vllm-router cannot send: give the replicas' URLs "
    "without them (see docs/judge-servers.md)"
)
# transformers serve answers 422 to every request vllm-router forwards (the router adds vLLM's sampling fields,
# e.g. separate_reasoning and skip_special_tokens, which transformers serve refuses): no fleet of them.
TRANSFORMERS_FLEET_REFUSED = (
    "--replicas {replicas} needs vLLM (JUDGE_SERVER=vllm on a GPU machine): transformers serve refuses the fields "
    "vllm-router adds to every request (HTTP 422), so it cannot serve behind the router; serve one replica "
    "(--replicas 1) on this machine"
)


@dataclass(frozen=True)
class FleetEnvironment:
    """The judge fleet's settings read from the environment: JUDGE_GPUS, JUDGE_SERVER (default auto),
    JUDGE_ROUTER_POLICY (default power_of_two) and JUDGE_ROUTER_ARGS (split on whitespace)."""

    gpus: str
    server: str
    policy: str
    router_args: tuple[str, ...]

    @classmethod
    def read(cls, environ: Mapping[str, str] = os.environ) -> FleetEnvironment:
        return cls(
            gpus=environ.get("JUDGE_GPUS", ""),
            server=environ.get("JUDGE_SERVER") or "auto",
            policy=environ.get("JUDGE_ROUTER_POLICY") or DEFAULT_POLICY,
            router_args=tuple(environ.get("JUDGE_ROUTER_ARGS", "").split()),
        )


class FleetError(ValueError):
    """A judge fleet that cannot be started as asked (bad settings, a missing executable)."""


class CredentialsInUrlError(FleetError):
    """A judge URL for the router holds user:password@ (vllm-router cannot send it); the message shows no URL."""


def served_url(host: str, port: int, advertise_host: str | None = None) -> str:
    """The base URL a client uses for a server bound to ``host``:``port``: ``http://H:P/v1``, where a wildcard
    ``host`` (0.0.0.0, ::) is ``advertise_host`` when given, else this machine's first address."""
    return f"http://{client_host(host, advertise_host)}:{port}/v1"


def client_host(host: str, advertise_host: str | None = None) -> str:
    """The address that reaches a server bound to ``host`` (see ``served_url``)."""
    if host not in WILDCARD_HOSTS:
        return host
    return advertise_host or first_address()


def first_address() -> str:
    """This machine's first non-loopback IPv4 address, read from its network interfaces in their order (as
    ``hostname -I`` lists them; the host name may resolve to 127.0.1.1 in /etc/hosts), else 127.0.0.1."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return "127.0.0.1"


def local_url(host: str, port: int, path: str = "") -> str:
    """``http://H:P`` + ``path`` as seen from this machine (a wildcard ``host`` is 127.0.0.1)."""
    return f"http://{REPLICA_HOST if host in WILDCARD_HOSTS else host}:{port}{path}"


def worker_url(url: str) -> str:
    """A judge's base URL as vllm-router wants it: scheme://host:port[/path] without a trailing / or /v1.
    CredentialsInUrlError for a URL with user-info (never shown); FleetError for one that is not http(s)."""
    if "@" in url:
        raise CredentialsInUrlError(CREDENTIALS_REFUSED)
    if not URL_PATTERN.match(url):
        raise FleetError(f"--route: '{url}' is not an http(s) URL")
    return url.removesuffix("/").removesuffix("/v1").removesuffix("/")


def find_executable(name: str, python: str, install_hint: str = "", dry_run: bool = False) -> str:
    """The path of executable ``name`` beside interpreter ``python`` (so that its virtualenv's wins), else on PATH;
    a dry run settles for the bare name. FleetError (saying how to install it) otherwise."""
    python_path = shutil.which(python)
    if python_path is None:
        raise FleetError(f"python interpreter not found: {python}")
    beside = Path(python_path).parent / name
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found or dry_run:
        return found or name
    raise FleetError(
        f"'{name}' is neither next to {python_path} nor on PATH" + (f": {install_hint}" if install_hint else "")
    )


def pick_server(server: str, python: str) -> str:
    """ "vllm" or "transformers" for ``server`` ("auto": vLLM when a CUDA GPU is visible and vLLM imports)."""
    if server not in SERVERS:
        raise FleetError(f"JUDGE_SERVER must be auto, vllm or transformers, got '{server}'")
    if server != "auto":
        return server
    return "vllm" if gpu_visible() and imports(python, "vllm") else "transformers"


def gpu_visible() -> bool:
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(line.startswith("GPU") for line in listed.stdout.splitlines())


def imports(python: str, module: str) -> bool:
    try:
        checked = subprocess.run([python, "-c", f"import {module}"], capture_output=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return checked.returncode == 0


def split_gpus(gpus: str, replicas: int) -> list[str]:
    """``gpus`` (CUDA ids, e.g. "0,1,2,3") cut into ``replicas`` equal consecutive parts ("0,1" and "2,3");
    ``replicas`` empty strings when ``gpus`` is empty. FleetError when they do not split evenly."""
    if not gpus:
        return [""] * replicas
    if not GPU_LIST.match(gpus):
        raise FleetError(f"JUDGE_GPUS must be GPU ids like 7 or 6,7, got '{gpus}'")
    ids = gpus.split(",")
    if len(ids) % replicas:
        raise FleetError(f"JUDGE_GPUS ({gpus}: {len(ids)} GPUs) does not split evenly over {replicas} replicas")
    each = len(ids) // replicas
    return [",".join(ids[i * each : (i + 1) * each]) for i in range(replicas)]


def server_command(
    engine: str, executable: str, model: str, host: str, port: int, gpus: str, server_args: Sequence[str]
) -> tuple[str, ...]:
    """One judge server of ``model`` on ``host``:``port``: ``vllm serve`` (through ``env``, on ``gpus`` with
    --tensor-parallel-size for more than one unless ``server_args`` set it) or ``transformers serve``."""
    if engine == "transformers":
        return (executable, "serve", model, "--host", host, "--port", str(port), *server_args)
    command = ["env", *([f"CUDA_VISIBLE_DEVICES={gpus}"] if gpus else []), executable, "serve", model]
    count = len(gpus.split(",")) if gpus else 0
    if count > 1 and not any(flag in server_args for flag in TENSOR_PARALLEL_FLAGS):
        command += ["--tensor-parallel-size", str(count)]
    return (*command, "--host", host, "--port", str(port), *server_args)


def replica_log(log_file: Path, index: int) -> Path:
    """The log of replica ``index`` (1-based): ``log_file``'s name with .I before .log."""
    return log_file.with_name(f"{log_file.name.removesuffix('.log')}.{index}.log")


def server_env(model: str, environ: Mapping[str, str]) -> dict[str, str]:
    """What a judge server gets added to its environment: HF_HUB_OFFLINE=1 when ``model`` is a directory (unless
    set), and litellm's local model cost map."""
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if os.path.isdir(model) and "HF_HUB_OFFLINE" not in environ:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def judge_services(
    model: str,
    *,
    replicas: int,
    host: str,
    port: int,
    gpus: str,
    server: str,
    server_args: Sequence[str],
    log_file: Path,
    python: str,
    policy: str = DEFAULT_POLICY,
    router_args: Sequence[str] = (),
    start_timeout: float = DEFAULT_START_TIMEOUT_S,
    dry_run: bool = False,
) -> list[Service]:
    """The services that serve ``model`` on ``host``:``port``: one server, or (``replicas`` > 1) that many servers
    on 127.0.0.1:``port``+1.. (vLLM: ``gpus`` split evenly) and vllm-router on ``host``:``port`` in front.
    ``server`` is "vllm" or "transformers" ("auto" is resolved with ``pick_server``); FleetError for settings that
    cannot work (a fleet of transformers servers, GPUs that do not split, no executable)."""
    engine = pick_server(server, python)
    if replicas < 1:
        raise FleetError(f"--replicas must be a whole number >= 1, got '{replicas}'")
    if replicas > 1 and engine == "transformers":
        raise FleetError(TRANSFORMERS_FLEET_REFUSED.format(replicas=replicas))
    if replicas > 1 and engine == "vllm" and not gpus:
        raise FleetError(f"--replicas {replicas} with vLLM: set JUDGE_GPUS (e.g. 0,1,2,3) to split over them")
    parts = split_gpus(gpus, replicas) if replicas > 1 else [gpus]
    executable = find_executable(engine, python, dry_run=dry_run)
    env = server_env(model, os.environ)
    if replicas == 1:
        command = server_command(engine, executable, model, host, port, gpus, server_args)
        return [Service("server", command, local_url(host, port, "/health"), log_file, env)]
    services = []
    for index, part in enumerate(parts, 1):
        replica_port = port + index
        command = server_command(engine, executable, model, REPLICA_HOST, replica_port, part, server_args)
        health = local_url(REPLICA_HOST, replica_port, "/health")
        services.append(Service(f"replica {index}", command, health, replica_log(log_file, index), env))
    workers = [local_url(REPLICA_HOST, port + index) for index in range(1, replicas + 1)]
    router = router_service(workers, host=host, port=port, policy=policy, router_args=router_args,
                            start_timeout=start_timeout, log_file=log_file, python=python, dry_run=dry_run)  # fmt: skip
    return [*services, router]


def router_policy(worker_count: int, policy: str) -> str:
    """vllm-router refuses power_of_two over one worker: round_robin then."""
    return "round_robin" if worker_count == 1 and policy == "power_of_two" else policy


def router_service(
    worker_urls: Sequence[str],
    *,
    host: str,
    port: int,
    policy: str,
    router_args: Sequence[str],
    start_timeout: float,
    log_file: Path,
    python: str,
    dry_run: bool = False,
) -> Service:
    """vllm-router on ``host``:``port`` in front of ``worker_urls`` (as ``worker_url`` gives them), started once
    they are healthy (``after_healthy``)."""
    executable = find_executable("vllm-router", python, f"install it with {FLEET_EXTRA}", dry_run)
    command = (
        executable, "--host", host, "--port", str(port), "--worker-urls", *worker_urls,
        "--policy", router_policy(len(worker_urls), policy), "--worker-startup-timeout-secs", str(int(start_timeout)),
        "--worker-startup-check-interval", "1", "--log-level", "warning", *router_args,
    )  # fmt: skip
    return Service("router", command, local_url(host, port, "/health"), log_file, after_healthy=True)
