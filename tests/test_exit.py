"""Every command that calls a judge ends, with its exit status, on every path (success, a judge refusing every
request, Ctrl-C mid-run, an output no one can create), many times over: a thread that died holding the import lock
at interpreter exit used to hang ``flip-reward`` forever after its last line. Real processes (tests/exit_support.py;
the judges are the scripted test double). FLIP_EXIT_RUNS sets the runs per path (default 2; the stress with hang
counts is benchmarks/bench_exit.py)."""

from __future__ import annotations

import os

import pytest
from exit_support import COMMANDS, run_paths

RUNS = int(os.environ.get("FLIP_EXIT_RUNS", "2"))
STATUS = {"success": 0, "refused": 1, "interrupted": 130, "unwritable": 2}
NOTHING_DONE = {"score": "no row was scored", "rerank": "no row was reranked", "eval": "no example was judged"}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_run_ends_with_its_status_and_its_main_thread_alone(command, tiny_model_dir, tmp_path):
    for path, runs in run_paths(command, tiny_model_dir, tmp_path, RUNS).items():
        assert [run.status for run in runs] == [STATUS[path]] * RUNS, (path, [run.stderr[-3:] for run in runs])
        for run in runs:
            assert run.stderr[-1] == "threads at exit: ['MainThread']", (path, run.stderr[-3:])
            assert not [line for line in run.stderr if "unclosed" in line or "Traceback" in line], (path, run.stderr)
            last = run.stderr[-2]
            if path == "refused":
                judge, api_base = run.option("--judge"), run.option("--api-base")
                assert last == (
                    f"error: judge {judge} at {api_base} refused the requests (HTTP 422: refused); "
                    f"{NOTHING_DONE[command]}"
                )
            if path == "interrupted":
                assert last.startswith("interrupted"), last
            if path == "unwritable":
                assert last.startswith("error: ") and "/proc/flip-reward-exit-test" in last, last
