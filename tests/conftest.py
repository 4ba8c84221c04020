"""Shared fixtures. Tests never reach the network: hub access is off and litellm uses its bundled price map."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pkgutil
import socket
import subprocess
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import datasets.config
import pytest

# Importing nemo_gym (test_nemo_gym.py, and the doctest collection of flip_reward.integrations.nemo_gym) points
# HF_HOME and HF_DATASETS_CACHE at ./cache/huggingface unless they are set, so that every later test would write its
# dataset cache into the working directory (the checkout): pinned to where they point before it is imported.
os.environ.setdefault("HF_HOME", str(datasets.config.HF_CACHE_HOME))
os.environ.setdefault("HF_DATASETS_CACHE", str(datasets.config.HF_DATASETS_CACHE))

import flip_reward
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, echo_answer

REPO = Path(__file__).resolve().parents[1]
collect_ignore = ["blocked_imports"]  # its sitecustomize is for child processes, never imported here (doctests)
FAST_RETRIES = {"backoff": 0.01, "backoff_max": 0.05}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> int:
    """A port P such that P..P+count-1 are all free on 127.0.0.1 now (a fleet's router and its replicas)."""
    while True:
        base = free_port()
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def group_alive(pgid: int) -> bool:
    """Whether any process of process group ``pgid`` still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Script:
    """A judge script for the scripted loopback server: queued replies first, then ``default`` for each request."""

    def __init__(self, default=None):
        self.queue: list[Reply | str] = []
        self.default = default or echo_answer

    def __call__(self, request: dict) -> Reply | str:
        return self.queue.pop(0) if self.queue else self.default(request)


_LOGGING = (logging.Logger.root, logging.Logger.manager)  # as this process set logging up, before areal's import


def restore_logging() -> None:
    """Logging's root and manager as this process set them up. AReaL's ``getLogger`` (called when areal's modules
    are imported: test_areal.py, flip_reward.integrations.areal_*) gives logging a new root and manager, so that a
    logger made afterwards reaches neither this process's root handlers nor pytest's caplog."""
    logging.Logger.root, logging.Logger.manager = _LOGGING


def import_package_first() -> None:
    """Every module of flip_reward imported now, logging restored after each, so that their module-level loggers
    belong to this process's logging whatever a test module or the doctest collection imports later (a module whose
    trainer is not installed is left to its tests)."""
    for module in pkgutil.walk_packages(flip_reward.__path__, "flip_reward."):
        if module.name.endswith("__main__"):
            continue  # runs the command line
        with contextlib.suppress(ImportError):
            importlib.import_module(module.name)
        restore_logging()


import_package_first()


@pytest.fixture(autouse=True)
def logging_as_set_up():
    """Each test starts with logging as this process set it up (see ``restore_logging``)."""
    restore_logging()


@pytest.fixture
def fresh_flip_reward(monkeypatch):
    """This process's FLIP reward as a new process has it, for the adapters' tests: no ``FLIP_*`` or
    ``HOSTED_VLLM_API_BASE`` variable, no FlipReward built yet, the ``FLIP_SAMPLE_LOG`` trace read afresh (and again
    after the test)."""
    from flip_reward.integrations import process_reward

    for name in [name for name in os.environ if name.startswith("FLIP_") or name == "HOSTED_VLLM_API_BASE"]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(process_reward, "_rewards", {})
    process_reward.process_trace.cache_clear()
    yield
    process_reward.process_trace.cache_clear()


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def judge_server(script):
    """A scripted OpenAI-compatible server on loopback (a test double, not a model) driven by ``script``."""
    with ScriptedJudgeServer(script) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random chat model + tokenizer built locally (no download)."""
    pytest.importorskip("transformers")
    from flip_reward.training.tiny_model import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_judge(tiny_model_dir, tmp_path_factory):
    """The tiny model behind a real ``transformers serve`` (scripts/serve_judge.sh): ``(litellm model, base URL)``."""
    pytest.importorskip("fastapi")
    run_dir = tmp_path_factory.mktemp("judge")
    pid_file = run_dir / "judge.pid"
    env = {**os.environ, "PYTHON": sys.executable, "JUDGE_SERVER": "transformers"}
    started = subprocess.run(
        [
            "bash",
            str(REPO / "scripts" / "serve_judge.sh"),
            str(tiny_model_dir),
            "--port",
            str(free_port()),
            "--pid-file",
            str(pid_file),
            "--log-file",
            str(run_dir / "judge.log"),
            "--timeout",
            "300",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield f"hosted_vllm/{tiny_model_dir}", started.stdout.strip()
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "serve_judge.sh"), "--stop", str(pid_file)], check=False)


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mounts real tmpfs file systems for the test (root, as here and in CI): ``mount_tmpfs(name, size)`` is the
    folder of one; all are unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the tests run as root here and in CI)")
    mounts = []

    def mount(name: str = "disk", size: str = "64k") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def tmpfs(mount_tmpfs):
    """A real 64 KiB tmpfs mounted for the test, unmounted after it."""
    return mount_tmpfs()
