"""The tiny local chat model, `scripts/serve_judge.sh` serving it with `transformers serve`, and `flip-reward
judge` (the command the script runs) with fake `vllm` commands: one that never gets healthy (it sleeps) and one that
runs the scripted judge (flip_reward.serving.scripted_judge, a test double)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, group_alive, port_open

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "serve_judge.sh"
MESSAGES = [
    {"role": "system", "content": "You are a judge."},
    {"role": "user", "content": "Write a short poem about the sea."},
]


def build_tiny(out_dir: Path, seed: int = 0) -> Path:
    for name in ("torch", "tokenizers", "transformers"):
        pytest.importorskip(name)
    from flip_reward.training.tiny_model import build_tiny_chat_model

    return build_tiny_chat_model(out_dir, seed=seed)


def run_script(*args: str | Path | int, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "JUDGE_SERVER": "transformers",
        "HF_HUB_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout
    )


# --- the tiny model ---------------------------------------------------------------------------


def test_tiny_model_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    again = build_tiny(tmp_path / "again", seed=0)
    other = build_tiny(tmp_path / "other", seed=1)
    assert (again / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()
    weights, same_seed, other_seed = (load_file(d / "model.safetensors") for d in (tiny_model_dir, again, other))
    first = sorted(weights)[0]
    assert weights[first].equal(same_seed[first])
    assert not weights[first].equal(other_seed[first])
    assert sum(f.stat().st_size for f in tiny_model_dir.iterdir()) < 1_000_000


def test_tiny_model_chat_template(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert prompt == (
        "<|im_start|>system\nYou are a judge.<|im_end|>\n"
        "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert tokenizer.apply_chat_template(MESSAGES, tokenize=False).endswith("sea.<|im_end|>\n")
    assert tokenizer.decode(tokenizer(prompt)["input_ids"]) == prompt
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    eos_ids = GenerationConfig.from_pretrained(tiny_model_dir).eos_token_id
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in eos_ids


# --- scripts/serve_judge.sh -----------------------------------------------------------------


def test_serve_chat_and_stop(tiny_model_dir: Path, tmp_path: Path) -> None:
    openai = pytest.importorskip("openai")
    pytest.importorskip("fastapi")
    port, pid_file = free_port(), tmp_path / "judge.pid"

    started = run_script(
        tiny_model_dir, "--port", port, "--pid-file", pid_file, "--log-file", tmp_path / "judge.log",
        "--timeout", 240,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        base_url = f"http://127.0.0.1:{port}/v1"
        assert started.stdout == base_url + "\n"
        pgid, started_at = map(int, pid_file.read_text().split())  # the group's PID and its start time
        assert started_at == int(Path(f"/proc/{pgid}/stat").read_text().rpartition(")")[2].split()[19])

        client = openai.OpenAI(base_url=base_url, api_key="unused")
        # transformers serve only answers to the model name exactly as the server was given it.
        reply = client.chat.completions.create(model=str(tiny_model_dir), messages=MESSAGES, max_tokens=16)
        assert reply.choices[0].message.content.strip()
        assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    finally:
        stopped = run_script("--stop", pid_file, timeout=60)

    assert stopped.returncode == 0, stopped.stderr
    assert not pid_file.exists()
    assert not group_alive(pgid)
    assert not port_open(port)


def test_the_script_finds_the_checkouts_venv_as_the_training_scripts_do(tmp_path: Path) -> None:
    """No PYTHON, no active virtualenv, no flip_reward in python3: scripts/lib/python.sh falls back to the checkout's
    .venv (a copy of scripts/ beside a .venv whose python is this interpreter), so serve_judge.sh runs, its messages
    still serve_judge: lines."""
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    venv_python = tmp_path / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} "$@"\n')
    venv_python.chmod(0o755)
    port = free_port()
    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "serve_judge.sh"), "--stop", "--port", str(port)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    assert result.stderr.startswith("serve_judge: no PID file ")
    assert result.stderr.endswith(f"serve_judge.{port}.pid: nothing to stop\n")


def test_bad_model_dir_fails_fast(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pid_file = tmp_path / "judge.pid"
    (tmp_path / "empty").mkdir()

    result = run_script(tmp_path / "empty", "--port", free_port(), "--pid-file", pid_file, "--timeout", 600)

    assert result.returncode == 1
    # the server's death was seen (not the 600 s timeout): the line names it as an exit, with its PID
    error = next(line for line in result.stderr.splitlines() if line.startswith("serve_judge: error: "))
    assert re.fullmatch(r"serve_judge: error: the server \(PID \d+\) exited before it was healthy", error), error
    assert "was not healthy after" not in result.stderr
    assert not pid_file.exists()


def test_missing_model_dir_fails_before_starting(tmp_path: Path) -> None:
    result = run_script(tmp_path / "absent", "--port", free_port(), timeout=30)
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert result.stdout == ""


def test_stop_without_pid_file_is_a_no_op(tmp_path: Path) -> None:
    result = run_script("--stop", tmp_path / "absent.pid", timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_pid_and_log_files_in_new_directories(tiny_model_dir: Path, tmp_path: Path) -> None:
    port, pid_file = free_port(), tmp_path / "a" / "b" / "judge.pid"
    started = run_script(
        tiny_model_dir,
        "--port",
        port,
        "--pid-file",
        pid_file,
        "--log-file",
        tmp_path / "logs" / "judge.log",
        "--timeout",
        240,
    )
    try:
        assert started.returncode == 0, started.stderr
        assert [field.isdigit() for field in pid_file.read_text().split()] == [True, True]
    finally:
        assert run_script("--stop", pid_file).returncode == 0
    assert not port_open(port) and not pid_file.exists()


# --- flip-reward judge, the command the script runs ---------------------------------------------------------------

STUCK_VLLM = """#!/usr/bin/env bash
# fake `vllm serve ...` that never answers /health: records its PID, then sleeps
echo "$$" >"$STUCK_RECORD"
exec sleep 300
"""
SERVING_VLLM = """#!/usr/bin/env bash
# fake `vllm serve MODEL --host H --port P`: records its PID, then the scripted judge on P
echo "$$" >"$STUCK_RECORD"
exec "$FAKE_PYTHON" -m flip_reward.serving.scripted_judge --port "$6"
"""


def judge(*args: object, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "flip_reward.cli", "judge", *map(str, args)]
    environment = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout, check=False)


def test_a_judge_that_never_gets_healthy_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    bin_dir, record = tmp_path / "bin", tmp_path / "stuck.pid"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(STUCK_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "JUDGE_SERVER": "vllm", "STUCK_RECORD": str(record)}
    port, pid_file, log_file = free_port(), tmp_path / "run" / "judge.pid", tmp_path / "run" / "judge.log"
    result = judge("serve", "Qwen/Qwen3-4B", "--port", port, "--pid-file", pid_file, "--log-file", log_file,
                   "--timeout", 1, env=env)  # fmt: skip
    stuck = int(record.read_text())
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[1:] == [
        f"flip-reward judge: stopping process group {stuck}",
        "flip-reward judge: error: the server was not healthy after 1s",
    ]
    assert not group_alive(stuck) and not pid_file.exists()


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = judge("serve", tmp_path, "--port", port, "--pid-file", tmp_path / "j.pid", env={"JUDGE_SERVER":
                       "transformers"})  # fmt: skip
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"flip-reward judge: error: port {port} on 127.0.0.1 is already in use\n"
    assert not (tmp_path / "j.pid").exists()


def test_dry_run_prints_the_server_command(tmp_path: Path) -> None:
    result = judge("serve", tmp_path, "--port", 8123, "--host", "0.0.0.0", "--dry-run", "--", "--foo", "a b",
                   env={"JUDGE_SERVER": "transformers"})  # fmt: skip
    transformers = Path(sys.executable).parent / "transformers"
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"server: {transformers} serve {tmp_path} --host 0.0.0.0 --port 8123 --foo 'a b'\n"


def test_stop_by_port_reads_the_default_pid_file(tmp_path: Path) -> None:
    """The default PID file of --port, in the private directory under XDG_RUNTIME_DIR: a judge started without
    --pid-file is stopped with ``stop --port``."""
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "JUDGE_SERVER": "vllm"}
    bin_dir, record = tmp_path / "bin", tmp_path / "stuck.pid"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(SERVING_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    port = free_port()
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUCK_RECORD": str(record),
        "FAKE_PYTHON": sys.executable,
    }
    result = judge("serve", "Qwen/Qwen3-4B", "--port", port, "--timeout", 60, env=env)
    assert (result.returncode, result.stdout) == (0, f"http://127.0.0.1:{port}/v1\n"), result.stderr
    private = tmp_path / f"flip-reward-{os.getuid()}"
    pid_file = private / f"serve_judge.{port}.pid"
    assert result.stderr.splitlines()[-1].endswith(f"(stop it with: flip-reward judge stop {pid_file})")
    assert oct(private.stat().st_mode & 0o777) == "0o700" and (private / f"serve_judge.{port}.log").is_file()
    served = int(record.read_text())
    stopped = judge("stop", "--port", port, env=env)
    assert (stopped.returncode, stopped.stdout) == (0, "")
    assert stopped.stderr == f"flip-reward judge: stopping process group {served}\n"
    assert not pid_file.exists() and not port_open(port) and not group_alive(served)
