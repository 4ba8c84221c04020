"""scripts/train/grpo_{flip,llmjudge}.sh end to end, as real processes: the dry run's text, and the judge's lifecycle
(started, then stopped on success, a failing trainer, Ctrl-C and TERM; a judge that never comes up, or does not
answer at the address the trainer uses). The plan itself is unit-tested in test_grpo_plan.py.

No GPU here, so two stand-ins replace the heavy commands: a fake `vllm` on PATH that serves a tiny JSON endpoint (a
test double of a judge server; it answers /health and /v1/models) and a fake trainer given as LAUNCHER that records
its arguments and environment, checks the judge answers, then exits, fails or hangs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, group_alive, port_open
from open_instruct_support import REPO

from flip_reward.presets import load_preset

FLIP = REPO / "scripts" / "train" / "grpo_flip.sh"
LLMJUDGE = REPO / "scripts" / "train" / "grpo_llmjudge.sh"
SAMPLE = "data/sample_rlvr_flip.jsonl"

FAKE_VLLM = """#!/usr/bin/env bash
# fake `vllm serve MODEL --host H --port P ARGS...`: records itself, then answers every GET on P
{ echo "pid $$"; echo "gpus ${CUDA_VISIBLE_DEVICES:-}"; printf 'arg %s\\n' "$@"; } >"$FAKE_VLLM_RECORD"
if [[ ${FAKE_VLLM_FAIL:-0} == 1 ]]; then echo "torch.OutOfMemoryError: CUDA out of memory" >&2; exit 1; fi
if [[ ${FAKE_VLLM_HANG:-0} == 1 ]]; then echo "loading weights" >&2; exec sleep 120; fi
while (($#)); do [[ $1 == --port ]] && port=$2; shift; done
exec "$FAKE_PYTHON" -c '
import http.server, json, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"data": [{"id": "Qwen/Qwen3-4B"}]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
' "$port"
"""

FAKE_TRAINER = """
import json, os, signal, sys, time, urllib.request

record = os.environ["FAKE_RECORD"]
seen = ("FLIP_", "HOSTED_", "CUDA_VISIBLE", "RAY_ADDRESS")
state = {"argv": sys.argv[1:], "pid": os.getpid(), "pgid": os.getpgid(0),
         "env": {k: v for k, v in os.environ.items() if k.startswith(seen)}}
with urllib.request.urlopen(os.environ["HOSTED_VLLM_API_BASE"] + "/models", timeout=5) as response:
    state["judge_answered"] = response.status == 200

def save(**extra):
    state.update(extra)
    with open(record + ".tmp", "w") as out:
        json.dump(state, out)
    os.replace(record + ".tmp", record)

mode = os.environ.get("FAKE_MODE", "ok")
if mode == "ignore_int":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
save()
if mode == "fail":
    sys.exit(5)
if mode in ("hang", "ignore_int"):
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        save(interrupted=True)
        sys.exit(130)
"""

KNOBS = {
    "PRESET", "DATASETS", "LOCAL_EVALS", "JUDGE_BASE_URL", "JUDGE_MODEL", "MODEL_NAME_OR_PATH", "NUM_GPUS",
    "JUDGE_GPUS", "OUTPUT_DIR", "EXP_NAME", "LAUNCHER", "RAY_ADDRESS", "VIRTUAL_ENV", "OPEN_INSTRUCT_DIR", "BACKEND",
    "GRPO_VERIFIER", "PYTHON",
}  # fmt: skip


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment minus every knob the scripts read, so that only the test's settings count; this interpreter,
    offline, and the open-instruct backend unless a test picks another."""
    env = {key: value for key, value in os.environ.items() if key not in KNOBS and not key.startswith("FLIP_")}
    env.update(PYTHON=sys.executable, HF_HUB_OFFLINE="1", BACKEND="open-instruct")
    env.update(overrides)
    return env


def script(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(path), *args], capture_output=True, text=True, cwd=REPO, env=clean_env(**env), timeout=120
    )


def line(output: str, prefix: str) -> str:
    return next(text for text in output.splitlines() if text.startswith(prefix))


def test_the_dry_run_prints_the_plan_and_the_checks() -> None:
    result = script(FLIP, "--dry-run", "--learning_rate", "3e-7", DATASETS=f"{SAMPLE} 1.0", LOCAL_EVALS="none")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert result.stderr.splitlines()[0] == "grpo: backend open-instruct (BACKEND=open-instruct)"
    preset = load_preset("grpo", "1node").origin
    assert out[0] == f"grpo: preset 1node ({preset}); verifier general-flip; 4 learner(s), 3 vLLM engine(s)"
    assert line(result.stdout, "judge: server: ").endswith(
        "vllm serve Qwen/Qwen3-4B --host 127.0.0.1 --port 8001 --max-model-len 25000 "
        "(log: output/grpo_flip/judge/judge.log)"
    )
    trainer = line(result.stdout, "trainer: ")
    assert trainer.startswith(
        "trainer: env CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6 HOSTED_VLLM_API_BASE=http://127.0.0.1:8001/v1 "
        f"FLIP_THINK_PREFILLED=1 {sys.executable} -m flip_reward.integrations.open_instruct.launch --exp_name grpo_flip"
    )
    assert trainer.endswith("--learning_rate 3e-7")  # passed through last, so it wins
    assert f"data: DATASETS: {SAMPLE}: 24 rows -> 24 (amount 1.0); verifiers: general-flip 24" in out
    assert "judge: not checked (started by the launcher on a real run)" in out


def test_a_dry_run_without_a_gpu_shows_the_open_instruct_plan_and_says_what_a_run_would_do() -> None:
    result = script(LLMJUDGE, "--dry-run", BACKEND="auto", PATH="/usr/bin:/bin")  # no nvidia-smi on this PATH
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "grpo: a real run here would use backend local (TRL GRPO on this machine): no CUDA GPU visible (nvidia-smi); "
        "BACKEND=open-instruct forces grpo_fast.py; this dry run shows the open-instruct plan"
    )
    assert "--dataset_mixer_list yikeee/rlvr_general_chat 1.0" in line(result.stdout, "trainer: ")


def test_a_python_without_flip_reward_is_one_line(tmp_path: Path) -> None:
    isolated = tmp_path / "python"
    isolated.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')  # no site-packages, no PYTHONPATH
    isolated.chmod(0o755)
    result = script(FLIP, "--dry-run", PYTHON=str(isolated))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"grpo_flip.sh: error: flip_reward does not import with {isolated}: run `make setup` (then `source "
        ".venv/bin/activate`) or set PYTHON\n"
    )


def test_a_bad_flip_setting_is_refused_before_anything_for_every_backend() -> None:
    for backend in ("open-instruct", "local"):
        result = script(FLIP, "--dry-run", BACKEND=backend, FLIP_CONCURRENCY="abc")
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert result.stderr == "grpo: error: FLIP_CONCURRENCY (environment): expected an integer, got 'abc'\n"


def test_the_local_backend_refuses_a_grpo_fast_argument_it_cannot_map() -> None:
    refused = script(FLIP, "--dry-run", "--vllm_num_engines", "4", BACKEND="local")
    assert (refused.returncode, refused.stderr.splitlines()) == (
        2,
        [
            "grpo: backend local (BACKEND=local)",
            "grpo (local): error: backend local runs `flip-reward train`, which has no equivalent of the grpo_fast.py "
            "argument --vllm_num_engines; run on a CUDA machine with BACKEND=open-instruct, or drop it "
            "(flip-reward train --help lists the local options)",
        ],
    )


# --- the judge's lifecycle ---------------------------------------------------------------------------------------


@pytest.fixture
def lifecycle(tmp_path: Path):
    """Runs grpo_flip.sh with the fake vllm and the fake trainer; returns (start, paths)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(FAKE_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    (tmp_path / "trainer.py").write_text(FAKE_TRAINER)
    port = free_port()
    paths = {"record": tmp_path / "trainer.json", "vllm": tmp_path / "vllm.txt", "out": tmp_path / "out", "port": port}

    def start(**env: str) -> subprocess.Popen:
        defaults = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "JUDGE_PORT": str(port),
            "LAUNCHER": f"{sys.executable} {tmp_path / 'trainer.py'}",
            "DATASETS": f"{SAMPLE} 1.0",
            "LOCAL_EVALS": "none",
            "OUTPUT_DIR": str(paths["out"]),
            "FAKE_RECORD": str(paths["record"]),
            "FAKE_VLLM_RECORD": str(paths["vllm"]),
            "FAKE_PYTHON": sys.executable,
            "JUDGE_START_TIMEOUT": "60",
        }
        environment = clean_env(**{**defaults, **env})
        return subprocess.Popen(
            ["bash", str(FLIP)], cwd=REPO, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    yield start, paths
    if paths["vllm"].exists():  # never leave a judge behind, whatever the test did
        pid = int(paths["vllm"].read_text().split()[1])
        if group_alive(pid):
            os.killpg(pid, signal.SIGKILL)


def judge_pid(paths: dict) -> int:
    return int(paths["vllm"].read_text().split()[1])


def assert_judge_stopped(paths: dict) -> None:
    assert not (paths["out"] / "judge" / "judge.pid").exists()
    assert not group_alive(judge_pid(paths))
    assert not port_open(paths["port"])


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    return json.loads(path.read_text())


def test_the_judge_is_started_for_the_trainer_and_stopped_after_success(lifecycle) -> None:
    start, paths = lifecycle
    process = start(FLIP_DISABLE_THINKING="1")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    record = json.loads(paths["record"].read_text())
    assert record["judge_answered"]
    assert record["env"] == {
        "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6",
        "HOSTED_VLLM_API_BASE": f"http://127.0.0.1:{paths['port']}/v1",
        "FLIP_DISABLE_THINKING": "1",
        "FLIP_THINK_PREFILLED": "1",
    }
    assert record["argv"][record["argv"].index("--dataset_mixer_list") + 1] == SAMPLE
    vllm = paths["vllm"].read_text().splitlines()
    assert vllm[1:] == ["gpus 7", "arg serve", "arg Qwen/Qwen3-4B", "arg --host", "arg 127.0.0.1", "arg --port",
                        f"arg {paths['port']}", "arg --max-model-len", "arg 25000"]  # fmt: skip
    assert_judge_stopped(paths)
    lines = err.splitlines()
    assert lines.index("grpo: training finished") + 1 == lines.index("grpo: stopping the judge")


def test_the_judge_is_stopped_when_the_trainer_fails(lifecycle) -> None:
    start, paths = lifecycle
    process = start(FAKE_MODE="fail")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 5, err  # the trainer's own status
    assert "grpo: the trainer exited with status 5" in err.splitlines()
    assert_judge_stopped(paths)


@pytest.mark.parametrize(
    ("sent", "mode", "status"), [(signal.SIGINT, "hang", 130), (signal.SIGTERM, "ignore_int", 143)]
)
def test_judge_and_trainer_are_stopped_on_a_signal(lifecycle, sent, mode, status) -> None:
    start, paths = lifecycle
    process = start(FAKE_MODE=mode, TRAINER_INT_GRACE_S="1")
    record = wait_for(paths["record"], process)
    process.send_signal(sent)
    _, err = process.communicate(timeout=60)
    assert process.returncode == status, err
    assert f"grpo: received {signal.Signals(sent).name}: stopping" in err.splitlines()
    assert not group_alive(record["pgid"])  # the trainer's whole process group is gone
    if mode == "hang":
        assert json.loads(paths["record"].read_text()).get("interrupted")  # it got SIGINT (clean shutdown)
    else:
        assert f"grpo: sending SIGTERM to the trainer (process group {record['pid']})" in err.splitlines()
    assert_judge_stopped(paths)


def test_a_judge_that_never_comes_up_stops_the_run_before_training(lifecycle) -> None:
    start, paths = lifecycle
    process = start(FAKE_VLLM_FAIL="1")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    assert f"grpo: error: the judge did not start (logs: {paths['out'] / 'judge'}): the server (PID" in err
    assert "torch.OutOfMemoryError: CUDA out of memory" in err
    assert not paths["record"].exists()
    assert not group_alive(judge_pid(paths)) and not port_open(paths["port"])


def test_a_judge_never_healthy_in_time_is_stopped_and_nothing_trains(lifecycle) -> None:
    start, paths = lifecycle
    process = start(FAKE_VLLM_HANG="1", JUDGE_START_TIMEOUT="2")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    assert (
        f"grpo: error: the judge did not start (logs: {paths['out'] / 'judge'}): the server was not healthy after 2s"
    ) in err.splitlines()
    assert "loading weights" in err.splitlines()  # the last lines of its log
    assert not paths["record"].exists()
    assert_judge_stopped(paths)


def test_a_judge_that_does_not_answer_at_its_advertised_address_stops_the_launch(lifecycle) -> None:
    """Served on 0.0.0.0 and advertised as an address nothing answers at (TEST-NET-1): the launch stops before the
    trainer, naming the address, and the judge is stopped."""
    start, paths = lifecycle
    process = start(JUDGE_HOST="0.0.0.0", JUDGE_ADVERTISE_HOST="192.0.2.1")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    assert (
        f"grpo: error: the judge runs but does not answer at http://192.0.2.1:{paths['port']}/v1, the address the "
        "trainer uses (JUDGE_HOST=0.0.0.0; set JUDGE_ADVERTISE_HOST to an address of this node that the other nodes "
        "reach)"
    ) in err.splitlines()
    assert not paths["record"].exists()
    assert_judge_stopped(paths)


def test_a_real_launch_writes_the_held_out_split(lifecycle, tmp_path: Path) -> None:
    """Through the fake trainer: the two files exist, are disjoint, and at most a tenth of the rows is held out."""
    start, paths = lifecycle
    rows = [{"messages": [{"role": "user", "content": f"Write poem {i}"}], "ground_truth": f"Write poem {i}",
             "dataset": "general-flip"} for i in range(24)]  # fmt: skip
    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    process = start(DATASETS=f"{data} 1.0", LOCAL_EVALS="")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    argv, held = json.loads(paths["record"].read_text())["argv"], paths["out"] / "data"
    assert argv[argv.index("--dataset_mixer_list") + 1 : argv.index("--dataset_mixer_list_splits")] == [
        str(held / "small.train.jsonl"),
        "1.0",
    ]
    assert argv[argv.index("--dataset_mixer_eval_list") + 1 :][:2] == [str(held / "small.eval.jsonl"), "2"]
    train = [json.loads(row)["ground_truth"] for row in (held / "small.train.jsonl").read_text().splitlines()]
    evals = [json.loads(row)["ground_truth"] for row in (held / "small.eval.jsonl").read_text().splitlines()]
    assert (len(train), len(evals)) == (22, 2) and not set(train) & set(evals)
