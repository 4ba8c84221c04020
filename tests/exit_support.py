"""Runs of a ``flip-reward`` command that calls a judge, on each way it can end, in real processes under a timeout.

A run is ``flip_reward.cli.main`` (what the ``flip-reward`` console script calls) in a process of its own, forked
from one that imported the CLI (so that many runs fit in a test), which then exits its interpreter as the console
script does: a hang at interpreter exit shows as a run that never ends. After ``main`` returns, the run prints the
threads still alive (``threads at exit: [...]``): only the main thread may be left. The judge is named by a local
model directory (as the docs do for a local judge, so the context guard may load its tokenizer) and served by the
scripted OpenAI-compatible server (flip_reward.serving.scripted_judge, a test double): an echoing judge (success),
one that refuses every request with HTTP 422, one that stalls (SIGINT once the first request arrived); the fourth
way is an output under /proc, where no one can create a folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, echo_answer

REPO = Path(__file__).resolve().parents[1]
PATHS = ("success", "refused", "interrupted", "unwritable")
COMMANDS = ("score", "eval", "rerank")
HANG_SECONDS = 240  # far beyond a run's few seconds: a run still going then is hung (they hang forever)
STALL_SECONDS = 3.0  # how long the stalling judge holds each request (the run is interrupted well before)
# Imports the CLI once, then forks one process per line of stdin (JSON: argv, stderr file), printing its pid; at EOF
# it waits for them all (killing those still running after HANG_SECONDS) and prints each pid's exit status (JSON).
# A child runs ``main(argv)`` as the console script does and exits the interpreter normally.
FORKER = f"""
import json, os, signal, sys, threading, time
from flip_reward.cli import main
from flip_reward.judge.transport import import_http_clients
import_http_clients()
children = []
for line in sys.stdin:
    argv, stderr_path = json.loads(line)
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        break
    children.append(pid)
    print(pid, flush=True)
else:
    deadline, statuses = time.monotonic() + {HANG_SECONDS}, {{}}
    while len(statuses) < len(children) and time.monotonic() < deadline:
        for pid in set(children) - set(statuses):
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                statuses[pid] = os.waitstatus_to_exitcode(raw)
        time.sleep(0.05)
    for pid in children:
        if pid not in statuses:
            os.kill(pid, signal.SIGKILL)
    print(json.dumps({{pid: statuses.get(pid) for pid in children}}), flush=True)
    sys.exit(0)
status = main(argv)
print("threads at exit:", [thread.name for thread in threading.enumerate()], file=sys.stderr)
sys.exit(status)
"""


@dataclass(frozen=True)
class Run:
    """How one run of ``flip-reward ARGV`` ended: its exit status (None: still running after HANG_SECONDS, killed)
    and its stderr lines."""

    argv: list[str]
    status: int | None
    stderr: list[str]

    def option(self, name: str) -> str:
        """The value of option ``name`` in ``argv``."""
        return self.argv[self.argv.index(name) + 1]

    @property
    def hung(self) -> bool:
        return self.status is None


def refuse(request: dict) -> Reply:
    return Reply(content="refused", status=422)


def stall(request: dict) -> Reply:
    return Reply(content=echo_answer(request), delay=STALL_SECONDS)


JUDGES = {"success": echo_answer, "refused": refuse, "interrupted": stall, "unwritable": echo_answer}


def command_line(command: str, judge: str, api_base: str, out: Path) -> list[str]:
    """The arguments of ``command`` on the sample data of the repository, writing under ``out``."""
    data = REPO / "data"
    inputs = {
        "score": [str(data / "sample_scoring.jsonl"), "--output", str(out / "scored.jsonl")],
        "rerank": [str(data / "sample_rerank.jsonl"), "--output", str(out / "reranked.jsonl")],
        "eval": [
            str(data / "sample_rewardbench2.jsonl"),
            "--methods",
            "flip",
            "--limit",
            "2",
            "--output-dir",
            str(out),
        ],
    }
    return [command, *inputs[command], "--judge", judge, "--api-base", api_base, "--retries", "0"]


def run_all(planned: list[tuple[list[str], ScriptedJudgeServer | None]], work: Path) -> list[Run]:
    """``flip-reward ARGV`` for each (argv, judge) of ``planned``, all at once, each in a process of its own forked
    from one that imported the CLI (FORKER: the imports, seconds of CPU, are paid once); with a judge, SIGINT once
    that judge got its first request."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    forker = subprocess.Popen(
        [sys.executable, "-W", "default::ResourceWarning", "-c", FORKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    stderr_files = [work / f"stderr-{number}.txt" for number in range(len(planned))]
    forker.stdin.write("".join(json.dumps([argv, str(file)]) + "\n" for (argv, _), file in zip(planned, stderr_files)))
    forker.stdin.close()
    pids = [int(forker.stdout.readline()) for _ in planned]
    waiting = {pid: judge for pid, (_, judge) in zip(pids, planned) if judge is not None}
    deadline = time.monotonic() + HANG_SECONDS
    while waiting and time.monotonic() < deadline:
        for pid in [pid for pid, judge in waiting.items() if judge.requests]:
            os.kill(pid, signal.SIGINT)
            del waiting[pid]
        time.sleep(0.02)
    statuses = json.loads(forker.stdout.readline())
    forker.wait()
    return [
        Run(argv, statuses[str(pid)], file.read_text().splitlines())
        for pid, (argv, _), file in zip(pids, planned, stderr_files)
    ]


def run_paths(
    command: str, judge_dir: Path, work: Path, runs: int, paths: tuple[str, ...] = PATHS
) -> dict[str, list[Run]]:
    """``runs`` runs of ``command`` on each of ``paths``, all at once (each interrupted run has a judge of its own,
    to know when its first request arrived)."""
    judge = f"hosted_vllm/{judge_dir}"
    with ExitStack() as stack:
        shared = {path: stack.enter_context(ScriptedJudgeServer(JUDGES[path])) for path in paths}
        planned, path_of = [], []
        for path in paths:
            for number in range(runs):
                out = work / f"{command}-{path}-{number}"
                out.mkdir(parents=True)
                if path == "unwritable":
                    out = Path("/proc/flip-reward-exit-test") / out.name
                server = stack.enter_context(ScriptedJudgeServer(stall)) if path == "interrupted" else shared[path]
                planned.append(
                    (command_line(command, judge, server.base_url, out), server if path == "interrupted" else None)
                )
                path_of.append(path)
        results = run_all(planned, work)
    return {path: [run for run, of in zip(results, path_of) if of == path] for path in paths}
