"""The scoring and evaluation demos (flip_reward/launch/demos.py): their commands, and scripts/score_demo.sh end to end
with a real tiny judge on `transformers serve`, stopped when the run ends (Ctrl-C included)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import group_alive, port_open

from flip_reward.data.mixes import sample_path
from flip_reward.launch.demos import commands

REPO = Path(__file__).resolve().parents[1]


def test_score_demo_commands(tmp_path: Path) -> None:
    steps, outputs = commands("score", tmp_path, tmp_path / "judge-model", "http://127.0.0.1:9/v1")
    assert steps == [
        ["score", str(sample_path("sample_scoring.jsonl")), "--output", str(tmp_path / "scored.jsonl"),
         "--judge", f"hosted_vllm/{tmp_path}/judge-model", "--api-base", "http://127.0.0.1:9/v1", "--max-tokens", "48",
         "--max-context-length", "4096", "--tokenizer", str(tmp_path / "judge-model")],
    ]  # fmt: skip
    assert outputs == f"scored rows: {tmp_path}/scored.jsonl"


def test_eval_demo_commands(tmp_path: Path) -> None:
    steps, outputs = commands("eval", tmp_path, tmp_path / "m", "http://127.0.0.1:9/v1")
    judge = ["--judge", f"hosted_vllm/{tmp_path}/m", "--api-base", "http://127.0.0.1:9/v1", "--max-tokens", "32",
             "--max-context-length", "4096", "--tokenizer", str(tmp_path / "m"), "--concurrency", "8"]  # fmt: skip
    assert steps == [
        ["eval", str(sample_path("sample_rewardbench2.jsonl")), "--output-dir", str(tmp_path / "eval"),
         "--methods", "flip,pointwise,pairwise,listwise", "--seed", "0", *judge],
        ["rerank", str(sample_path("sample_rerank.jsonl")), "--output", str(tmp_path / "reranked.jsonl"),
         "--method", "flip", *judge],
    ]  # fmt: skip
    assert outputs == f"report: {tmp_path}/eval/report.md; best-of-N: {tmp_path}/reranked.jsonl"


def test_score_demo_script_scores_the_sample_and_stops_its_judge(tmp_path: Path) -> None:
    for name in ("torch", "transformers", "fastapi"):
        pytest.importorskip(name)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHON": sys.executable, "RUN_DIR": str(run_dir), "JUDGE_SERVER": "transformers"}
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "score_demo.sh")], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"scored rows: {run_dir}/scored.jsonl\n"
    rows = [json.loads(line) for line in (run_dir / "scored.jsonl").read_text().splitlines()]
    assert len(rows) == len(sample_path("sample_scoring.jsonl").read_text().splitlines()) == 12
    assert "Traceback" not in result.stderr
    assert not (run_dir / "judge.pid").exists()  # the judge was stopped and its PID file removed
    started = next(line for line in result.stderr.splitlines() if line.startswith("judge server: starting:"))
    port = int(started.split("--port ")[1].split()[0])
    assert not port_open(port)


def test_a_judge_that_cannot_start_is_one_error_line_and_status_1(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    python = Path(sys.executable)
    if (python.parent / "vllm").exists() or shutil.which("vllm"):
        pytest.skip("vllm is installed here: JUDGE_SERVER=vllm would start")
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHON": sys.executable, "RUN_DIR": str(run_dir), "JUDGE_SERVER": "vllm"}
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "eval_demo.sh")], capture_output=True, text=True, env=env, timeout=300
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines()[-1] == (
        f"demos: error: the judge server for {run_dir}/judge-model did not start: 'vllm' is neither next to "
        f"{sys.executable} nor on PATH"
    )
    assert not (run_dir / "judge.pid").exists() and not (run_dir / "eval").exists()


def test_ctrl_c_stops_the_running_command_then_the_judge(tmp_path: Path) -> None:
    """SIGINT to scripts/eval_demo.sh while `flip-reward eval` runs (a child process group of its own, against the
    real tiny judge on `transformers serve`): the child gets SIGINT, then the judge is stopped; exit 130, the judge's
    PID file removed, its port closed, no process of the child's group left."""
    for name in ("torch", "transformers", "fastapi"):
        pytest.importorskip(name)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHON": sys.executable, "RUN_DIR": str(run_dir), "JUDGE_SERVER": "transformers"}
    demo = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "eval_demo.sh")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env,
    )  # fmt: skip
    assert demo.stderr is not None
    seen = []
    for line in demo.stderr:
        seen.append(line)
        if line.startswith("demos: running: flip-reward eval "):
            break
    group = started_child(demo.pid, run_dir / "judge.pid")
    demo.send_signal(signal.SIGINT)
    stdout, rest = demo.communicate(timeout=300)
    lines = "".join(seen + [rest]).splitlines()
    assert (demo.returncode, stdout) == (130, ""), "\n".join(lines)
    assert lines[-1] == "interrupted"
    assert f"demos: sending SIGINT to the trainer (process group {group})" in lines
    assert not group_alive(group)
    assert not (run_dir / "judge.pid").exists()
    started = next(line for line in lines if line.startswith("judge server: starting:"))
    assert not port_open(int(started.split("--port ")[1].split()[0]))


def started_child(pid: int, judge_pid_file: Path) -> int:
    """The PID (= process group) of the command the demo ``pid`` runs, once it runs: its child that is not the judge
    (polled in /proc, at most a minute)."""
    judge = int(judge_pid_file.read_text().split()[0])
    for _ in range(600):
        children = set(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())) - {judge}
        if children:
            return children.pop()
        time.sleep(0.1)
    raise AssertionError(f"the demo {pid} started no command")
