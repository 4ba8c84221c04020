"""The judge's commands as pure functions (flip_reward.serving.judge_fleet, judge_commands.plan): one server, N
replicas behind vllm-router, a router alone, and the settings refused before anything starts. The executables are
empty files beside a python symlink in a temporary directory, so every path is known; nothing is started here
(tests/test_fleet.py and tests/test_serve_judge.py start real processes)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from flip_reward.launch.judge_commands import JudgeStart, dry_run_lines, plan
from flip_reward.serving import judge_fleet
from flip_reward.serving.judge_fleet import CredentialsInUrlError, FleetError


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A python beside fake vllm, transformers and vllm-router executables."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "python").symlink_to(sys.executable)
    for name in ("vllm", "transformers", "vllm-router"):
        (directory / name).write_text("#!/bin/sh\n")
        (directory / name).chmod(0o755)
    return directory


def services(bin_dir: Path, model: str = "Qwen/Qwen3-4B", **options: object) -> list:
    settings = {"replicas": 1, "host": "127.0.0.1", "port": 8000, "gpus": "", "server": "vllm", "server_args": (),
                "log_file": Path("/run/j.log"), "python": str(bin_dir / "python"), **options}  # fmt: skip
    return judge_fleet.judge_services(model, **settings)


def test_one_vllm_server(bin_dir: Path) -> None:
    [server] = services(bin_dir, gpus="6,7", server_args=("--max-model-len", "4096"))
    assert dry_run_lines([server]) == [
        f"server: env CUDA_VISIBLE_DEVICES=6,7 {bin_dir}/vllm serve Qwen/Qwen3-4B --tensor-parallel-size 2 "
        "--host 127.0.0.1 --port 8000 --max-model-len 4096"
    ]
    assert (server.health_url, server.log_file, server.after_healthy) == (
        "http://127.0.0.1:8000/health",
        Path("/run/j.log"),
        False,
    )


def test_given_tensor_parallel_size_is_kept(bin_dir: Path) -> None:
    for flag in ("--tensor-parallel-size", "-tp"):
        [server] = services(bin_dir, gpus="0,1", server_args=(flag, "1"))
        assert server.command.count(flag) == 1 and "--tensor-parallel-size" not in server.command[:-2]


def test_one_transformers_server_on_a_wildcard_host(bin_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = tmp_path / "model"
    model.mkdir()
    [server] = services(bin_dir, str(model), server="transformers", host="0.0.0.0", port=9000)
    assert server.command == (str(bin_dir / "transformers"), "serve", str(model), "--host", "0.0.0.0", "--port", "9000")
    assert server.health_url == "http://127.0.0.1:9000/health"
    assert server.env["HF_HUB_OFFLINE"] == "1"  # a model directory: no hub look-up
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert "HF_HUB_OFFLINE" not in services(bin_dir, str(model), server="transformers")[0].env  # the user's wins


def test_replicas_split_the_gpus_behind_a_router(bin_dir: Path) -> None:
    fleet = services(bin_dir, replicas=2, gpus="0,1,2,3", port=8000, host="0.0.0.0", policy="cache_aware",
                     router_args=("--request-timeout-secs", "60"), start_timeout=30)  # fmt: skip
    assert dry_run_lines(fleet) == [
        f"replica 1: env CUDA_VISIBLE_DEVICES=0,1 {bin_dir}/vllm serve Qwen/Qwen3-4B --tensor-parallel-size 2 "
        "--host 127.0.0.1 --port 8001",
        f"replica 2: env CUDA_VISIBLE_DEVICES=2,3 {bin_dir}/vllm serve Qwen/Qwen3-4B --tensor-parallel-size 2 "
        "--host 127.0.0.1 --port 8002",
        f"router: {bin_dir}/vllm-router --host 0.0.0.0 --port 8000 --worker-urls http://127.0.0.1:8001 "
        "http://127.0.0.1:8002 --policy cache_aware --worker-startup-timeout-secs 30 --worker-startup-check-interval 1 "
        "--log-level warning --request-timeout-secs 60",
    ]
    assert [service.log_file for service in fleet] == [Path("/run/j.1.log"), Path("/run/j.2.log"), Path("/run/j.log")]
    assert [service.after_healthy for service in fleet] == [False, False, True]
    assert [service.health_url for service in fleet] == [
        "http://127.0.0.1:8001/health",
        "http://127.0.0.1:8002/health",
        "http://127.0.0.1:8000/health",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"replicas": 2, "server": "transformers"}, judge_fleet.TRANSFORMERS_FLEET_REFUSED.format(replicas=2)),
        ({"replicas": 2}, "--replicas 2 with vLLM: set JUDGE_GPUS (e.g. 0,1,2,3) to split over them"),
        ({"replicas": 2, "gpus": "0,1,2"}, "JUDGE_GPUS (0,1,2: 3 GPUs) does not split evenly over 2 replicas"),
        ({"replicas": 2, "gpus": "0;1"}, "JUDGE_GPUS must be GPU ids like 7 or 6,7, got '0;1'"),
        ({"server": "tgi"}, "JUDGE_SERVER must be auto, vllm or transformers, got 'tgi'"),
    ],
)
def test_fleets_that_cannot_work_are_refused(bin_dir: Path, options: dict, message: str) -> None:
    with pytest.raises(FleetError) as error:
        services(bin_dir, **options)
    assert str(error.value) == message


def test_a_missing_executable_names_how_to_install_it(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.symlink_to(sys.executable)
    with pytest.raises(FleetError) as error:
        judge_fleet.find_executable("no-such-router", str(python), 'install it with pip install "flip-reward[fleet]"')
    assert str(error.value) == (
        f"'no-such-router' is neither next to {python} nor on PATH: install it with pip install \"flip-reward[fleet]\""
    )
    assert judge_fleet.find_executable("no-such-router", str(python), dry_run=True) == "no-such-router"


def test_worker_urls_as_the_router_wants_them() -> None:
    given = ["http://h:1/v1/", "http://h:2/", "https://h:3/judge/v1", "http://h:4"]
    assert [judge_fleet.worker_url(url) for url in given] == [
        "http://h:1",
        "http://h:2",
        "https://h:3/judge",
        "http://h:4",
    ]
    with pytest.raises(FleetError, match="^--route: 'h:1' is not an http\\(s\\) URL$"):
        judge_fleet.worker_url("h:1")
    with pytest.raises(CredentialsInUrlError) as error:
        judge_fleet.worker_url("http://alice:s3cret@h:1/v1")
    assert "s3cret" not in str(error.value) and str(error.value) == judge_fleet.CREDENTIALS_REFUSED


def test_one_worker_gets_round_robin() -> None:
    assert judge_fleet.router_policy(1, "power_of_two") == "round_robin"
    assert judge_fleet.router_policy(2, "power_of_two") == "power_of_two"
    assert judge_fleet.router_policy(1, "cache_aware") == "cache_aware"


def test_served_url_advertises_a_wildcard_host() -> None:
    assert judge_fleet.served_url("127.0.0.1", 8001) == "http://127.0.0.1:8001/v1"
    assert judge_fleet.served_url("0.0.0.0", 8001, "10.0.0.7") == "http://10.0.0.7:8001/v1"
    assert judge_fleet.served_url("::", 8001, "node3") == "http://node3:8001/v1"
    assert judge_fleet.served_url("0.0.0.0", 8001) == f"http://{judge_fleet.first_address()}:8001/v1"


def start(**fields: object) -> JudgeStart:
    defaults = {"model": "m", "route_urls": (), "replicas": "1", "policy": None, "port": "8000",
                "host": "127.0.0.1", "pid_file": None, "log_file": None, "timeout": "900", "server_args": (),
                "dry_run": True, "stop_hint": "flip-reward judge stop"}  # fmt: skip
    return JudgeStart(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"port": "80a"}, "--port must be a number, got '80a'"),
        ({"timeout": "1.5"}, "--timeout must be a number of seconds, got '1.5'"),
        ({"replicas": "0"}, "--replicas must be a whole number >= 1, got '0'"),
        ({"policy": "Power"}, "--policy must be a vllm-router policy name like power_of_two, got 'Power'"),
        ({"model": "./absent"}, "model directory ./absent does not exist"),
        ({"model": None}, "--route needs one or more judge URLs"),
        ({"model": None, "route_urls": ("http://h:1/v1", "http://h:1")}, "--route lists a judge twice"),
        ({"model": None, "route_urls": ("http://h:1",), "replicas": "2"}, "--route starts only a router"),
        ({"model": None, "route_urls": ("http://h:1",), "server_args": ("-x",)}, "--route starts only a router"),
    ],
)
def test_settings_refused_before_anything_starts(fields: dict, message: str, monkeypatch) -> None:
    monkeypatch.setenv("JUDGE_SERVER", "transformers")
    with pytest.raises(FleetError) as error:
        plan(start(**fields), lambda line: None)
    assert str(error.value).startswith(message)


def test_default_files_and_policy_from_the_environment(monkeypatch, tmp_path: Path, bin_dir: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHON", str(bin_dir / "python"))
    monkeypatch.setenv("JUDGE_ROUTER_POLICY", "random")
    monkeypatch.setenv("JUDGE_ROUTER_ARGS", "--request-timeout-secs 3600")
    messages: list[str] = []
    [router], port, pid_file = plan(start(model=None, route_urls=("http://h:1/v1",), port="9000"), messages.append)
    private = tmp_path / f"flip-reward-{os.getuid()}"
    assert (port, pid_file, router.log_file) == (
        9000,
        private / "serve_judge.9000.pid",
        private / "serve_judge.9000.log",
    )
    assert router.command[router.command.index("--policy") + 1] == "random"
    assert router.command[-2:] == ("--request-timeout-secs", "3600")
    assert messages == []  # random is no power_of_two: nothing to say


def test_the_fleet_environment_and_its_defaults() -> None:
    assert judge_fleet.FleetEnvironment.read({}) == judge_fleet.FleetEnvironment("", "auto", "power_of_two", ())
    environ = {"JUDGE_GPUS": "6,7", "JUDGE_SERVER": "vllm", "JUDGE_ROUTER_POLICY": "random",
               "JUDGE_ROUTER_ARGS": " --request-timeout-secs  3600 "}  # fmt: skip
    assert judge_fleet.FleetEnvironment.read(environ) == judge_fleet.FleetEnvironment(
        "6,7", "vllm", "random", ("--request-timeout-secs", "3600")
    )


def test_the_advertised_address_is_the_first_interface_address_as_hostname_lists_it():
    """A 0.0.0.0 judge is advertised at this machine's first outward address, as `hostname -I` gives it (the host
    name itself often resolves to 127.0.1.1 or 127.0.0.1 in /etc/hosts, which the other nodes cannot reach)."""
    import shutil
    import subprocess

    if shutil.which("hostname") is None:
        pytest.skip("no hostname command to compare with")
    listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()
    ipv4 = [address for address in listed if "." in address and not address.startswith("127.")]
    assert judge_fleet.first_address() == (ipv4[0] if ipv4 else "127.0.0.1")
    assert judge_fleet.served_url("0.0.0.0", 8001) == f"http://{judge_fleet.first_address()}:8001/v1"
