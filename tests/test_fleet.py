"""Judge fleets: real vllm-router processes (``flip-reward judge route`` / ``serve --replicas``, through
scripts/serve_judge.sh and ManagedRouter / ManagedJudgeServer) in front of judges on loopback, and what FlipReward
sees through them.

The judges are the scripted OpenAI-compatible server (flip_reward.serving.scripted_judge), a test double that
answers ``Inferred: <the judged response>`` so that every reward follows from its response; the ones a test kills
run as separate processes. ``--replicas`` is tested with a fake ``vllm`` on PATH that records its GPUs and serves
the scripted judge, since there is no GPU here. Nothing leaves loopback and nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import FAST_RETRIES, REPO, free_port, free_ports, group_alive, port_open

from flip_reward.core.reward import FlipReward
from flip_reward.launch.judge_commands import ROUTER_ONLY
from flip_reward.serving.judge_fleet import TRANSFORMERS_FLEET_REFUSED
from flip_reward.serving.judge_server import ManagedRouter
from flip_reward.serving.scripted_judge import ScriptedJudgeServer, echo_answer

SCRIPT = REPO / "scripts" / "serve_judge.sh"
JUDGE = "hosted_vllm/scripted"
PROMPTS = [f"Describe the sea in {i} words" for i in range(60)]
RESPONSES = [f"Waves number {i}" for i in range(60)]
# "Inferred: Waves number I" against "Describe the sea in I words": 1 shared token, P = 1/4, R = 1/5.
REWARD = 2 * (1 / 4) * (1 / 5) / (1 / 4 + 1 / 5)

FAKE_VLLM = """#!/usr/bin/env bash
# fake `vllm serve MODEL --host H --port P ARGS...`: records itself, then serves the scripted judge on P
tp=1
while (($#)); do
  case $1 in --port) port=$2 ;; --tensor-parallel-size) tp=$2 ;; esac
  shift
done
printf 'pid %s\\ngpus %s\\ntp %s\\n' "$$" "${CUDA_VISIBLE_DEVICES:-}" "$tp" >"$FAKE_VLLM_DIR/$port"
if [[ $port == "${FAKE_VLLM_FAIL_PORT:-}" ]]; then echo "torch.OutOfMemoryError: CUDA out of memory" >&2; exit 1; fi
if [[ $port == "${FAKE_VLLM_HANG_PORT:-}" ]]; then exec sleep 300; fi
exec "$FAKE_PYTHON" -m flip_reward.serving.scripted_judge --port "$port" --echo
"""


def script_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **extra}


def serve(*args: object, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = ["bash", str(SCRIPT), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env or script_env(), timeout=timeout)


def flip(url: str, **options: object) -> FlipReward:
    return FlipReward(JUDGE, url, cache=False, **{**FAST_RETRIES, **options})


def assert_rewards_right(results: list) -> None:
    assert [result.error for result in results] == [None] * len(results)
    assert [result.inferred_instruction for result in results] == [f"Inferred: {r}" for r in RESPONSES]
    assert [result.reward for result in results] == [pytest.approx(REWARD, abs=1e-12)] * len(results)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def pids(pid_file: Path) -> list[int]:
    """The process groups a PID file records (each line: PID and start time)."""
    return [int(line.split()[0]) for line in pid_file.read_text().splitlines()]


class JudgeProcess:
    """The scripted judge in a child process (so that a test can kill it); ``url`` is its base URL."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "flip_reward.serving.scripted_judge", "--port", "0", "--echo"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def judges():
    """Starts scripted judge processes on demand; kills every one at the end."""
    started: list[JudgeProcess] = []

    def start(count: int) -> list[JudgeProcess]:
        started.extend(JudgeProcess() for _ in range(count))
        return started[-count:]

    yield start
    for judge in started:
        judge.kill()


@pytest.fixture
def fake_vllm(tmp_path: Path):
    """A PATH with the fake `vllm`; returns (environment, records directory)."""
    bin_dir, records = tmp_path / "bin", tmp_path / "records"
    bin_dir.mkdir()
    records.mkdir()
    (bin_dir / "vllm").write_text(FAKE_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    env = script_env(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        JUDGE_SERVER="vllm",
        FAKE_VLLM_DIR=str(records),
        FAKE_PYTHON=sys.executable,
    )
    yield env, records
    for record in records.iterdir():  # never leave a replica behind, whatever the test did
        pid = int(record.read_text().split()[1])
        if group_alive(pid):
            os.killpg(pid, signal.SIGKILL)


# --- --route ------------------------------------------------------------------------------------------------------


def test_route_spreads_requests_over_the_replicas_and_stops(tmp_path: Path) -> None:
    with ScriptedJudgeServer(echo_answer) as first, ScriptedJudgeServer(echo_answer) as second:
        router = ManagedRouter([first.base_url + "/", second.base_url[:-3]], tmp_path, policy="round_robin")
        with router:
            assert router.url == f"http://127.0.0.1:{router.port}/v1"
            workers = get_json(f"http://127.0.0.1:{router.port}/list_workers")["urls"]
            assert sorted(workers) == sorted([first.base_url[:-3], second.base_url[:-3]])  # no trailing / or /v1
            results = flip(router.url).score(PROMPTS, RESPONSES)
            router_pids = pids(router.pid_file)
        assert_rewards_right(results)
        assert (len(first.requests), len(second.requests)) == (30, 30)
    assert not router.pid_file.exists() and not port_open(router.port)
    assert [group_alive(pid) for pid in router_pids] == [False]


def test_route_dry_run_prints_the_router_command(tmp_path: Path) -> None:
    """The thin script's dry run (the commands' pieces are unit-tested in tests/test_judge_fleet.py)."""
    result = serve("--route", "http://h:1/v1/", "http://h:2/", "https://h:3/judge/v1", "--port", 9, "--dry-run")
    router = Path(sys.executable).parent / "vllm-router"
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"router: {router} --host 127.0.0.1 --port 9 --worker-urls http://h:1 http://h:2 https://h:3/judge "
        "--policy power_of_two --worker-startup-timeout-secs 900 --worker-startup-check-interval 1 "
        "--log-level warning\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--route", "h:1"), "--route: 'h:1' is not an http(s) URL"),
        (("--route", "http://h:1/v1", "http://h:1"), "--route lists a judge twice"),
        (("--route",), "--route needs one or more judge URLs"),
        (("--route", "http://h:1", "--replicas", "2"), ROUTER_ONLY),
        (("m", "--replicas", "0"), "--replicas must be a whole number >= 1, got '0'"),
    ],
)
def test_route_settings_that_cannot_work_are_one_line_and_exit_2(args: tuple, message: str) -> None:
    refused = serve(*args, "--dry-run")
    assert (refused.returncode, refused.stdout, refused.stderr) == (2, "", f"serve_judge: error: {message}\n")


@pytest.mark.parametrize("dry_run", [("--dry-run",), ()], ids=["dry-run", "start"])
def test_route_refuses_credentials_in_a_judge_url_at_once(dry_run) -> None:
    """vllm-router cannot send them (it would wait --timeout for a worker that answers 401): one line, exit 2, the
    password shown nowhere and nothing started."""
    port = free_port()
    urls = ("http://h:1", "http://alice:s3cret@127.0.0.1:9/v1")
    result = serve("--route", *urls, "--port", port, "--timeout", 10, *dry_run)
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "serve_judge: error: --route: a judge URL holds credentials (user:password@), which vllm-router cannot "
        "send: give the replicas' URLs without them (see docs/judge-servers.md)\n",
    )
    assert not port_open(port)
    with pytest.raises(ValueError, match="a judge URL holds credentials"):
        ManagedRouter(["http://alice:s3cret@127.0.0.1:9/v1"], Path("unused"))


def test_a_missing_router_names_the_extra_to_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)  # an interpreter with no vllm-router beside it or on PATH
    env = script_env(PYTHON=str(bin_dir / "python"), PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    command = [sys.executable, "-m", "flip_reward.cli", "judge", "route", "http://127.0.0.1:9", "--pid-file",
               str(tmp_path / "r.pid")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert (result.returncode, result.stdout) == (2, "") and not (tmp_path / "r.pid").exists()
    assert result.stderr.splitlines()[-1] == (
        f"flip-reward judge: error: 'vllm-router' is neither next to {bin_dir / 'python'} nor on PATH: "
        'install it with pip install "flip-reward[fleet]"'
    )


def test_an_interpreter_without_flip_reward_gets_one_line(tmp_path: Path) -> None:
    """A python without the project's dependencies (here: this one without site-packages, ``-S``): the script says
    to activate the virtualenv, in one line, instead of a traceback."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S "$@"\n')
    (bin_dir / "python").chmod(0o755)
    result = serve("Qwen/Qwen3-4B", "--dry-run", env=script_env(PYTHON=str(bin_dir / "python")))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"serve_judge.sh: error: flip_reward does not import with {bin_dir / 'python'}: run `make setup` (then "
        "`source .venv/bin/activate`) or set PYTHON\n"
    )
    assert result.stderr.count("\n") == 1


# --- replicas and routers dying -------------------------------------------------------------------------------


def test_a_replica_dying_mid_run_costs_retries_not_rewards(tmp_path: Path, judges) -> None:
    (victim,) = judges(1)
    served = 0

    def answer_then_kill(request: dict) -> str:  # the live replica kills the other once it has served 10
        nonlocal served
        served += 1
        if served == 10:
            victim.process.kill()
        return echo_answer(request)

    with (
        ScriptedJudgeServer(answer_then_kill, capacity=4) as live,
        ManagedRouter([live.base_url, victim.url], tmp_path, policy="round_robin") as router,
    ):
        reward = flip(router.url, max_concurrency=8)
        results = reward.score(PROMPTS, RESPONSES)
    assert victim.process.wait(timeout=10) == -signal.SIGKILL
    assert_rewards_right(results)
    assert 10 <= len(live.requests) < len(PROMPTS)  # the victim answered the rest before it died
    assert reward.judge.breaker.times_opened == 0


def test_every_replica_dead_opens_the_breaker_with_one_clear_message(tmp_path: Path, judges, caplog) -> None:
    replicas = judges(2)
    with ManagedRouter([judge.url for judge in replicas], tmp_path) as router:
        url = router.url
        reward = flip(url, max_concurrency=4, retries=1)
        assert_rewards_right(reward.score(PROMPTS, RESPONSES))
        for judge in replicas:
            judge.kill()
        with caplog.at_level(logging.ERROR, logger="flip_reward"):
            results = reward.score(PROMPTS, RESPONSES)
    assert [result.reward for result in results] == [0.0] * len(PROMPTS)
    assert all(result.error for result in results)
    opened = [record.getMessage() for record in caplog.records if "consecutive failures" in record.getMessage()]
    assert len(opened) == 1 and reward.judge.breaker.times_opened == 1
    assert f"no judge replica behind the router at {url} could answer (HTTP 50" in opened[0]
    assert "No available workers" in opened[0] or "error sending request for url" in opened[0]
    assert sum("is unreachable: " in result.error for result in results) >= len(PROMPTS) // 2  # failed fast


def test_the_router_dying_opens_the_breaker(tmp_path: Path, caplog) -> None:
    with ScriptedJudgeServer(echo_answer) as judge:
        router = ManagedRouter([judge.base_url], tmp_path)
        with router:
            url = router.url
            reward = flip(url, max_concurrency=4, retries=1)
            assert_rewards_right(reward.score(PROMPTS, RESPONSES))
            for pid in pids(router.pid_file):
                os.killpg(pid, signal.SIGKILL)
            with caplog.at_level(logging.ERROR, logger="flip_reward"):
                results = reward.score(PROMPTS, RESPONSES)
    assert [result.reward for result in results] == [0.0] * len(PROMPTS)
    opened = [record.getMessage() for record in caplog.records if "consecutive failures" in record.getMessage()]
    assert len(opened) == 1 and f"judge {JUDGE} at {url} unreachable after 5 consecutive" in opened[0]
    assert len(judge.requests) == len(PROMPTS)  # nothing reached the judge once its router was gone


# --- --replicas: one unit ------------------------------------------------------------------------------------


def test_replicas_split_the_gpus_behind_a_router_and_stop_with_ctrl_c(tmp_path: Path, fake_vllm) -> None:
    env, records = fake_vllm
    port, run_dir = free_ports(3), tmp_path / "run"
    program = (
        "import sys, threading\n"
        "from flip_reward.serving.judge_server import ManagedJudgeServer\n"
        f"with ManagedJudgeServer('Qwen/Qwen3-4B', {str(run_dir)!r}, port={port}, replicas=2) as fleet:\n"
        "    print(fleet.url, flush=True)\n"
        "    threading.Event().wait()\n"
    )
    unit = subprocess.Popen(
        [sys.executable, "-c", program], stdout=subprocess.PIPE, text=True, env={**env, "JUDGE_GPUS": "0,1,2,3"}
    )
    try:
        url = unit.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}/v1"
        recorded = {int(path.name): path.read_text().split() for path in records.iterdir()}
        assert sorted(recorded) == [port + 1, port + 2]
        assert [recorded[port + 1][3:], recorded[port + 2][3:]] == [["0,1", "tp", "2"], ["2,3", "tp", "2"]]
        assert_rewards_right(flip(url).score(PROMPTS, RESPONSES))
        unit_pids = pids(run_dir / "judge.pid")
        assert len(unit_pids) == 3  # two replicas and the router
        unit.send_signal(signal.SIGINT)  # Ctrl-C in the job that holds the fleet
        assert unit.wait(timeout=60) != 0
    finally:
        unit.kill()
    assert [group_alive(pid) for pid in unit_pids] == [False, False, False]
    assert not any(port_open(p) for p in (port, port + 1, port + 2))
    assert not (run_dir / "judge.pid").exists()


def test_a_replica_that_fails_to_start_stops_the_others(tmp_path: Path, fake_vllm) -> None:
    env, records = fake_vllm
    port, pid_file = free_ports(3), tmp_path / "judge.pid"
    env = {**env, "JUDGE_GPUS": "0,1", "FAKE_VLLM_FAIL_PORT": str(port + 2)}
    result = serve("Qwen/Qwen3-4B", "--replicas", 2, "--port", port, "--pid-file", pid_file, env=env)
    assert result.returncode == 1 and result.stdout == ""
    assert "the replica 2 (PID" in result.stderr and "exited before it was healthy" in result.stderr
    assert "CUDA out of memory" in result.stderr
    [stopped] = [line for line in result.stderr.splitlines() if line.startswith("serve_judge: stopping process group")]
    first = int(stopped.split()[-1])  # replica 1, stopped before the error was shown
    assert not group_alive(first) and not port_open(port + 1) and not pid_file.exists()


@pytest.mark.parametrize(("number", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "term"])
def test_a_signal_while_the_replicas_start_stops_every_one(tmp_path: Path, fake_vllm, number, status) -> None:
    env, records = fake_vllm
    port, pid_file = free_ports(3), tmp_path / "judge.pid"
    env = {**env, "JUDGE_GPUS": "0,1", "FAKE_VLLM_HANG_PORT": str(port + 2)}
    command = ["bash", str(SCRIPT), "Qwen/Qwen3-4B", "--replicas", "2", "--port", str(port), "--pid-file",
               str(pid_file)]  # fmt: skip
    starting = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in starting.stderr:  # replica 2 never gets healthy: the script waits for it
        if line.startswith("serve_judge: starting:") and f"--port {port + 2}" in line:
            break
    while len(list(records.iterdir())) < 2 or not port_open(port + 1):
        assert starting.poll() is None, starting.stderr.read()
        time.sleep(0.05)  # polling, not an assertion on time
    started = pids(pid_file)
    starting.send_signal(number)  # the script exec'd flip-reward judge: same PID
    _, err = starting.communicate(timeout=60)
    assert starting.returncode == status
    assert err.splitlines()[-1] == "interrupted" if number == signal.SIGINT else "Traceback" not in err
    assert len(started) == 2 and [group_alive(pid) for pid in started] == [False, False]
    assert not port_open(port + 1) and not pid_file.exists()


def test_uneven_gpu_split_is_refused_before_anything_starts(fake_vllm) -> None:
    env, records = fake_vllm
    result = serve("Qwen/Qwen3-4B", "--replicas", 2, "--port", free_port(), env={**env, "JUDGE_GPUS": "0,1,2"})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "serve_judge: error: JUDGE_GPUS (0,1,2: 3 GPUs) does not split evenly over 2 replicas\n"
    assert list(records.iterdir()) == []


# --- transformers serve behind the router: the documented limit ----------------------------------------------


def test_a_fleet_of_transformers_servers_is_refused_in_one_line(tmp_path: Path) -> None:
    port, pid_file = free_port(), tmp_path / "judge.pid"
    env = script_env(JUDGE_SERVER="transformers")
    result = serve(tmp_path, "--replicas", 2, "--port", port, "--pid-file", pid_file, env=env)
    expected = f"serve_judge: error: {TRANSFORMERS_FLEET_REFUSED.format(replicas=2)}\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, "", expected)
    assert not pid_file.exists() and not any(port_open(p) for p in (port, port + 1, port + 2))


def test_transformers_serve_behind_the_router_refuses_every_request(tiny_judge, tmp_path: Path) -> None:
    """Why the fleet above is refused: vllm-router adds vLLM's sampling fields, which transformers serve answers
    with HTTP 422 (a real transformers serve of the tiny model, a real router). Should a transformers release
    accept them, this test fails and the refusal can go."""
    model, url = tiny_judge
    body = {"model": model.removeprefix("hosted_vllm/"), "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4}  # fmt: skip
    with ManagedRouter([url], tmp_path) as router:
        request = urllib.request.Request(
            f"{router.url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        answer = refused.value.read().decode()
    assert refused.value.code == 422 and "Unexpected fields in the request" in answer
    assert "skip_special_tokens" in answer and "separate_reasoning" in answer
    direct = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode(),
                                    {"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(direct, timeout=60) as response:  # the same request, straight to the judge
        assert response.status == 200
