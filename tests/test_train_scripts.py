"""scripts/train/grpo_{flip,llmjudge}.sh: --dry-run, overrides and presets, flags vs upstream, and the judge's
lifecycle (started, then stopped on success, failure, Ctrl-C and TERM).

No GPU here, so the lifecycle tests use stand-ins for the two heavy commands: a fake `vllm` on PATH that serves the
scripted judge (flip_reward.serving.scripted_judge, a test double) through the real scripts/serve_judge.sh, and a
fake trainer given as LAUNCHER that records its arguments and environment, checks the judge answers, then exits,
fails or hangs.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, group_alive, port_open
from open_instruct_support import NO_CHECKOUT, REPO, upstream_checkout

from flip_reward.integrations.open_instruct.flags import grpo_fast_fields, unknown_flags
from flip_reward.serving.scripted_judge import ScriptedJudgeServer

FLIP = REPO / "scripts" / "train" / "grpo_flip.sh"
LLMJUDGE = REPO / "scripts" / "train" / "grpo_llmjudge.sh"
SAMPLE = "data/sample_rlvr_flip.jsonl"

FAKE_VLLM = """#!/usr/bin/env bash
# fake `vllm serve MODEL --host H --port P ARGS...`: records itself, then answers /health and /v1/models on P
{ echo "pid $$"; echo "gpus ${CUDA_VISIBLE_DEVICES:-}"; printf 'arg %s\\n' "$@"; } >"$FAKE_VLLM_RECORD"
if [[ ${FAKE_VLLM_FAIL:-0} == 1 ]]; then echo "torch.OutOfMemoryError: CUDA out of memory" >&2; exit 1; fi
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
state = {"argv": sys.argv[1:], "pid": os.getpid(), "pgid": os.getpgid(0),
         "env": {k: v for k, v in os.environ.items() if k.startswith(("FLIP_", "HOSTED_", "CUDA_VISIBLE", "RAY_"))}}
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
    sys.exit(3)
if mode in ("hang", "ignore_int"):
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        save(interrupted=True)
        sys.exit(130)
"""


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment minus every knob the scripts read, so that only the test's settings count; the open-instruct
    backend unless a test picks another (the local backend has tests of its own in test_train.py)."""
    knobs = {
        "PRESET",
        "DATASETS",
        "LOCAL_EVALS",
        "JUDGE_BASE_URL",
        "JUDGE_MODEL",
        "MODEL_NAME_OR_PATH",
        "NUM_GPUS",
        "JUDGE_GPUS",
        "OUTPUT_DIR",
        "EXP_NAME",
        "LAUNCHER",
        "RAY_ADDRESS",
        "VIRTUAL_ENV",
        "OPEN_INSTRUCT_DIR",
        "BACKEND",
    }
    env = {key: value for key, value in os.environ.items() if key not in knobs and not key.startswith("FLIP_")}
    env.update(PYTHON=sys.executable, HF_HUB_OFFLINE="1", LITELLM_LOCAL_MODEL_COST_MAP="True", BACKEND="open-instruct")
    env.update(overrides)
    return env


def dry_run(script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), "--dry-run", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean_env(**env),
        timeout=120,
        check=False,
    )


def line(output: str, prefix: str) -> str:
    return next(text for text in output.splitlines() if text.startswith(prefix))


def trainer_command(output: str) -> list[str]:
    """The trainer command of a dry run, from `env VAR=... LAUNCHER...` on."""
    return shlex.split(line(output, "trainer: ").removeprefix("trainer: "))


def grpo_args(output: str) -> list[str]:
    command = trainer_command(output)
    return command[command.index("flip_reward.integrations.open_instruct.launch") + 1 :]


def value(args: list[str], flag: str) -> list[str]:
    start = args.index(flag) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
    return args[start:end]


# --- dry runs ----------------------------------------------------------------------------------------------------


def test_dry_run_defaults_follow_the_authors_run_on_one_node() -> None:
    result = dry_run(FLIP)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    judge = line(out, "judge: ")
    assert "JUDGE_GPUS=7" in judge and "serve_judge.sh Qwen/Qwen3-4B" in judge and "--max-model-len 25000" in judge
    command = trainer_command(out)
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6" in command
    assert "HOSTED_VLLM_API_BASE=http://127.0.0.1:8001/v1" in command and "FLIP_THINK_PREFILLED=1" in command
    args = grpo_args(out)
    expected = {
        "--model_name_or_path": ["allenai/Olmo-3-7B-Think-DPO"],
        "--chat_template_name": ["olmo_thinker"],
        "--dataset_mixer_list": ["yikeee/rlvr_general_chat_flip", "1.0"],
        "--num_unique_prompts_rollout": ["24"],
        "--num_samples_per_prompt_rollout": ["8"],
        "--learning_rate": ["1e-6"],
        "--beta": ["0.0"],
        "--response_length": ["16384"],
        "--pack_length": ["18432"],
        "--deepspeed_stage": ["3"],
        "--async_steps": ["1"],
        "--clip_higher": ["0.272"],
        "--rho_clamp_upper_bound": ["2.0"],
        "--kl_estimator": ["2"],
        "--stop_strings": ["</answer>"],
        "--llm_judge_model": ["hosted_vllm/Qwen/Qwen3-4B"],
        "--llm_judge_max_tokens": ["2048"],
        "--llm_judge_max_context_length": ["25000"],
        "--llm_judge_timeout": ["3600"],
        "--num_learners_per_node": ["4"],
        "--vllm_num_engines": ["3"],
        "--deepspeed_zpg": ["4"],
    }
    assert {flag: value(args, flag) for flag in expected} == expected
    assert "data: DATASETS: yikeee/rlvr_general_chat_flip: Hugging Face dataset, not checked offline" in out
    assert "judge: not checked (started by the script on a real run)" in out


def test_flip_and_llmjudge_differ_only_in_data_and_names() -> None:
    flip, baseline = dry_run(FLIP), dry_run(LLMJUDGE)
    assert flip.returncode == 0 and baseline.returncode == 0
    flip_args, baseline_args = grpo_args(flip.stdout), grpo_args(baseline.stdout)
    differences = {(a, b) for a, b in zip(flip_args, baseline_args) if a != b}
    assert len(flip_args) == len(baseline_args)
    assert differences == {
        ("grpo_flip", "grpo_llmjudge"),
        ("output/grpo_flip", "output/grpo_llmjudge"),
        ("yikeee/rlvr_general_chat_flip", "yikeee/rlvr_general_chat"),
    }
    assert line(flip.stdout, "judge: ").replace("grpo_flip", "X") == line(baseline.stdout, "judge: ").replace(
        "grpo_llmjudge", "X"
    )


def test_overrides_and_extra_arguments(tmp_path: Path) -> None:
    result = dry_run(
        FLIP,
        "--learning_rate",
        "3e-7",
        "--with_tracking",
        MODEL_NAME_OR_PATH="Qwen/Qwen3-1.7B",
        DATASETS=f"{SAMPLE} 1.0 yikeee/other 0.5",
        LOCAL_EVALS="none",
        JUDGE_MODEL="hosted_vllm/Qwen/Qwen3-8B",
        NUM_GPUS="4",
        JUDGE_GPUS="3",
        OUTPUT_DIR=str(tmp_path / "run"),
        EXP_NAME="mine",
        FLIP_DISABLE_THINKING="1",
        RESPONSE_LENGTH="4096",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    command, args = trainer_command(result.stdout), grpo_args(result.stdout)
    assert "CUDA_VISIBLE_DEVICES=0,1,2" in command and "FLIP_DISABLE_THINKING=1" in command
    assert value(args, "--num_learners_per_node") == ["2"] and value(args, "--vllm_num_engines") == ["1"]
    assert value(args, "--model_name_or_path") == ["Qwen/Qwen3-1.7B"]
    assert value(args, "--dataset_mixer_list") == [SAMPLE, "1.0", "yikeee/other", "0.5"]
    assert "--dataset_mixer_eval_list" not in args and value(args, "--local_eval_every") == ["-1"]
    assert value(args, "--llm_judge_model") == ["hosted_vllm/Qwen/Qwen3-8B"]
    assert value(args, "--exp_name") == ["mine"] and value(args, "--output_dir") == [str(tmp_path / "run")]
    assert value(args, "--pack_length") == [str(2048 + 4096)]
    assert args[-3:] == ["--learning_rate", "3e-7", "--with_tracking"]  # passed through last, so they win
    assert "serve_judge.sh Qwen/Qwen3-8B" in line(result.stdout, "judge: ")
    assert f"data: DATASETS: {SAMPLE}: 24 rows -> 24 (amount 1.0); verifiers: general-flip 24" in result.stdout


def test_presets() -> None:
    one_gpu = dry_run(FLIP, PRESET="1gpu", DATASETS=f"{SAMPLE} 1.0")
    assert one_gpu.returncode == 0, one_gpu.stdout + one_gpu.stderr
    args = grpo_args(one_gpu.stdout)
    assert {"--single_gpu_mode", "--vllm_enforce_eager"} <= set(args)
    assert value(args, "--vllm_sync_backend") == ["gloo"] and value(args, "--num_learners_per_node") == ["1"]
    assert "CUDA_VISIBLE_DEVICES=0" in trainer_command(one_gpu.stdout)  # shared with the judge
    assert "--gpu-memory-utilization 0.25" in line(one_gpu.stdout, "judge: ")
    multinode = dry_run(FLIP, PRESET="multinode", JUDGE_ADVERTISE_HOST="10.1.2.3")
    assert multinode.returncode == 0, multinode.stdout + multinode.stderr
    command, args = trainer_command(multinode.stdout), grpo_args(multinode.stdout)
    assert "RAY_ADDRESS=auto" in command and not any(item.startswith("CUDA_VISIBLE_DEVICES") for item in command)
    assert "HOSTED_VLLM_API_BASE=http://10.1.2.3:8001/v1" in command  # reachable from the other nodes
    assert value(args, "--num_learners_per_node") == ["8"] and value(args, "--vllm_num_engines") == ["15"]
    assert "--host 0.0.0.0" in line(multinode.stdout, "judge: ")
    missing = dry_run(FLIP, PRESET="2node")
    assert missing.returncode != 0 and "available: 1gpu 1node multinode" in missing.stderr


def test_dry_run_checks_local_data_and_a_running_judge(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}], "dataset": "general-flip"}) + "\n")
    with ScriptedJudgeServer(lambda request: "") as server:
        result = dry_run(
            FLIP,
            DATASETS=f"{bad} 1.0 {tmp_path / 'missing.jsonl'} 1.0",
            LOCAL_EVALS="none",
            JUDGE_BASE_URL=f"{server.base_url},http://127.0.0.1:9/v1",
            JUDGE_MODEL="hosted_vllm/scripted",
        )
    assert result.returncode == 1
    out = result.stdout
    assert f"data: ERROR DATASETS: {bad}: 1 of 1 rows invalid (row 1: field 'ground_truth': missing)" in out
    assert f"data: ERROR DATASETS: {tmp_path / 'missing.jsonl'}: local file not found" in out
    assert f"judge: ok, {server.base_url} serves scripted" in out
    assert "judge: ERROR http://127.0.0.1:9/v1/models is not reachable" in out
    command = trainer_command(out)  # several judges: one URL, vllm-router's, for both verifiers
    assert "HOSTED_VLLM_API_BASE=http://127.0.0.1:8001/v1" in command
    assert not [item for item in command if item.startswith("FLIP_JUDGE")]
    router = shlex.split(line(out, "router: ").removeprefix("router: "))
    assert router[1:8] == ["--host", "127.0.0.1", "--port", "8001", "--worker-urls", server.base_url[:-3],
                           "http://127.0.0.1:9"]  # fmt: skip
    assert value(router, "--policy") == ["power_of_two"] and value(router, "--request-timeout-secs") == ["3600"]


def test_dry_run_sends_url_credentials_as_basic_auth_and_never_prints_them() -> None:
    # the scripted judge (a test double) answers 401 without these credentials, as a reverse proxy with basic auth
    with ScriptedJudgeServer(lambda request: "", basic_auth="user:s3cret") as server:
        api_base = server.base_url.replace("http://", "http://user:s3cret@")
        result = dry_run(FLIP, JUDGE_BASE_URL=api_base, JUDGE_MODEL="hosted_vllm/scripted", LOCAL_EVALS="none")
    shown = f"http://***@127.0.0.1:{server.port}/v1"
    assert result.returncode == 0, result.stderr
    assert (line(result.stdout, "judge: external"), line(result.stdout, "judge: ok")) == (
        f"judge: external at {shown}",
        f"judge: ok, {shown} serves scripted",
    )
    assert f"HOSTED_VLLM_API_BASE={shown}" in trainer_command(result.stdout)
    assert "s3cret" not in result.stdout + result.stderr and server.refused_authorizations == []


def test_an_unencoded_hash_in_the_password_is_redacted_and_refused() -> None:
    """The script's own lines hide the whole user-info (redacted() is urls.redact_url), and the judge probe refuses
    the URL in one line asking for percent-encoding."""
    url = "http://user:pa#s3cret@127.0.0.1:9/v1"
    result = dry_run(FLIP, JUDGE_BASE_URL=url, JUDGE_MODEL="hosted_vllm/scripted", LOCAL_EVALS="none")
    shown = "http://***@127.0.0.1:9/v1"
    assert result.returncode == 1
    assert line(result.stdout, "judge: external") == f"judge: external at {shown}"
    assert f"HOSTED_VLLM_API_BASE={shown}" in trainer_command(result.stdout)
    assert line(result.stdout, "judge: ERROR") == (
        f"judge: ERROR judge URL {shown}: its user name or password holds a '/', '?' or '#': "
        "percent-encode them in the URL (/ as %2F, ? as %3F, # as %23, @ as %40)"
    )
    assert "s3cret" not in result.stdout + result.stderr


def test_a_mismatched_dataset_is_flagged_for_the_baseline() -> None:
    result = dry_run(LLMJUDGE, DATASETS=f"{SAMPLE} 1.0", LOCAL_EVALS="none")
    assert f"data: DATASETS: WARNING {SAMPLE} has no general-quality rows" in result.stdout


def test_bad_settings_fail_before_anything_starts() -> None:
    for env, message in [
        ({"DATASETS": "only-a-name"}, "DATASETS must be 'NAME AMOUNT"),
        ({"NUM_GPUS": "2", "JUDGE_GPUS": "1"}, "GRPO needs one for learners and one for vLLM"),
        ({"PACK_LENGTH": "100"}, "PACK_LENGTH (100) must be >="),
        ({"JUDGE_MODEL": "openai/gpt-4o"}, "set JUDGE_BASE_URL"),
        ({"NUM_LEARNERS_PER_NODE": "6", "VLLM_NUM_ENGINES": "3"}, "need 9 GPUs; 7 left for training"),
    ]:
        result = dry_run(FLIP, **env)
        assert result.returncode != 0 and message in result.stderr, (env, result.stderr)


def test_every_emitted_flag_exists_in_upstream_grpo_fast() -> None:
    checkout = upstream_checkout()
    if checkout is None:
        pytest.skip(NO_CHECKOUT)
    fields = grpo_fast_fields(checkout)
    for script, preset in [(FLIP, "1node"), (FLIP, "1gpu"), (LLMJUDGE, "multinode")]:
        result = dry_run(
            script, "--local_eval_every", "5", PRESET=preset, WITH_TRACKING="1", OPEN_INSTRUCT_DIR=str(checkout)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert unknown_flags(grpo_args(result.stdout), fields) == []
        assert "flags: ok, all" in result.stdout
    result = dry_run(FLIP, "--max_token_length", "10", OPEN_INSTRUCT_DIR=str(checkout))
    assert result.returncode == 1 and "does not accept: --max_token_length" in result.stdout


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
            "JUDGE_SERVER": "vllm",
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


def test_judge_is_started_for_the_trainer_and_stopped_after_success(lifecycle) -> None:
    start, paths = lifecycle
    process = start()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    record = json.loads(paths["record"].read_text())
    assert record["judge_answered"]
    assert record["env"]["HOSTED_VLLM_API_BASE"] == f"http://127.0.0.1:{paths['port']}/v1"
    assert record["env"]["CUDA_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6"
    assert record["argv"][record["argv"].index("--dataset_mixer_list") + 1] == SAMPLE
    vllm = paths["vllm"].read_text().splitlines()
    assert "gpus 7" in vllm and "arg Qwen/Qwen3-4B" in vllm and "arg --max-model-len" in vllm
    assert_judge_stopped(paths)
    assert "stopping the judge" in err and "training finished" in err


def test_judge_is_stopped_when_the_trainer_fails(lifecycle) -> None:
    start, paths = lifecycle
    process = start(FAKE_MODE="fail")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3
    assert "the trainer exited with status 3" in err
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
    assert not group_alive(record["pgid"])  # the trainer's whole process group is gone
    if mode == "hang":
        assert json.loads(paths["record"].read_text()).get("interrupted")  # it got SIGINT (clean shutdown)
    else:
        assert "sending SIGTERM to the trainer" in err  # SIGINT ignored: escalated
    assert_judge_stopped(paths)


def test_a_judge_that_fails_to_start_stops_the_run_before_training(lifecycle) -> None:
    start, paths = lifecycle
    process = start(FAKE_VLLM_FAIL="1")
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "the judge did not start" in err and "CUDA out of memory" in err
    assert not paths["record"].exists()
    assert not group_alive(judge_pid(paths)) and not port_open(paths["port"])


def test_auto_backend_without_gpu_runs_locally_and_says_so_once():
    completed = dry_run(FLIP, BACKEND="auto", PATH="/usr/bin:/bin")  # no nvidia-smi on this PATH
    assert completed.returncode == 0, completed.stderr
    announcements = [line for line in completed.stderr.splitlines() if "backend local" in line]
    assert announcements == [
        "grpo: backend local (TRL GRPO on this machine): no CUDA GPU visible (nvidia-smi); "
        "BACKEND=open-instruct forces grpo_fast.py"
    ]
    assert "preset tiny, reward flip" in completed.stderr


def test_local_backend_of_the_baseline_uses_the_pointwise_reward():
    completed = dry_run(LLMJUDGE, BACKEND="local", PATH="/usr/bin:/bin")
    assert completed.returncode == 0, completed.stderr
    assert "preset tiny, reward pointwise" in completed.stderr


def test_unknown_backend_is_refused():
    completed = dry_run(FLIP, BACKEND="slurm")
    assert completed.returncode == 1
    assert "BACKEND must be auto, local or open-instruct, got 'slurm'" in completed.stderr


def test_grpo_fast_arguments_are_mapped_for_the_local_backend_or_refused():
    mapped = dry_run(
        FLIP,
        "--learning_rate",
        "3e-5",
        "--dataset_mixer_list",
        SAMPLE,
        "1.0",
        "--with_tracking",
        BACKEND="local",
        PATH="/usr/bin:/bin",
    )
    assert mapped.returncode == 0, mapped.stderr
    assert (
        "grpo (local): grpo_fast.py arguments mapped for flip-reward train: --learning_rate -> --learning-rate, "
        "--dataset_mixer_list -> --datasets, --with_tracking -> --report-to wandb"
    ) in mapped.stderr
    assert f"--learning-rate 3e-5 --datasets {SAMPLE}\\ 1.0 --report-to wandb" in mapped.stderr
    assert "lr 3e-05" in mapped.stderr
    refused = dry_run(FLIP, "--vllm_num_engines", "4", BACKEND="local", PATH="/usr/bin:/bin")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        "grpo (local): error: backend local runs `flip-reward train`, which has no equivalent of the grpo_fast.py "
        "argument --vllm_num_engines; run on a CUDA machine with BACKEND=open-instruct, or drop it "
        "(flip-reward train --help lists the local options)"
    )


# --- what a new user hits (issue: training scripts) ------------------------------------------------------------


def write_rows(path: Path, count: int) -> Path:
    rows = [
        {
            "messages": [{"role": "user", "content": f"Write poem {i}"}],
            "ground_truth": f"Write poem {i}",
            "dataset": "general-flip",
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("script", [FLIP, LLMJUDGE], ids=["flip", "llmjudge"])
def test_the_eval_set_follows_datasets_and_is_held_out_of_a_local_file(tmp_path: Path, script: Path) -> None:
    data = write_rows(tmp_path / "mine.jsonl", 200)
    result = dry_run(script, DATASETS=f"{data} 1.0", OUTPUT_DIR=str(tmp_path / "run"))
    assert result.returncode == 0, result.stdout + result.stderr
    args, held = grpo_args(result.stdout), tmp_path / "run" / "data"
    assert value(args, "--dataset_mixer_list") == [str(held / "mine.train.jsonl"), "1.0"]
    assert value(args, "--dataset_mixer_eval_list") == [str(held / "mine.eval.jsonl"), "16"]
    assert f"eval: 16 prompts of {data} held out of training" in result.stdout
    assert not held.exists()  # the dry run writes nothing


def test_a_real_launch_writes_the_held_out_split(lifecycle, tmp_path: Path) -> None:
    """Through the fake trainer: the two files exist, are disjoint, and at most a tenth of the rows is held out."""
    start, paths = lifecycle
    data = write_rows(tmp_path / "small.jsonl", 24)
    process = start(DATASETS=f"{data} 1.0", LOCAL_EVALS="")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    argv, held = json.loads(paths["record"].read_text())["argv"], paths["out"] / "data"
    assert value(argv, "--dataset_mixer_list") == [str(held / "small.train.jsonl"), "1.0"]
    assert value(argv, "--dataset_mixer_eval_list") == [str(held / "small.eval.jsonl"), "2"]
    train = [json.loads(row)["ground_truth"] for row in (held / "small.train.jsonl").read_text().splitlines()]
    evals = [json.loads(row)["ground_truth"] for row in (held / "small.eval.jsonl").read_text().splitlines()]
    assert (len(train), len(evals)) == (22, 2) and not set(train) & set(evals)


def test_a_hub_dataset_evaluated_on_its_training_prompts_is_said_loudly() -> None:
    result = dry_run(FLIP, DATASETS="someone/chat 1.0")
    assert value(grpo_args(result.stdout), "--dataset_mixer_eval_list") == ["someone/chat", "16"]
    assert (
        "warning: the in-loop eval takes 16 prompts of someone/chat, which this run also trains on (a hub dataset is "
        "not split here): set LOCAL_EVALS='EVAL_DATASET COUNT' for a separate eval set, or LOCAL_EVALS=none"
    ) in result.stdout
    mine = dry_run(FLIP, DATASETS="someone/chat 1.0", LOCAL_EVALS="someone/chat 8")
    assert "warning: LOCAL_EVALS evaluates on someone/chat, which this run also trains on (DATASETS)" in mine.stdout


@pytest.mark.parametrize(
    ("name", "amount", "split", "message"),
    [
        ("one.jsonl", "0.5", "train", "DATASETS: {path}: amount 0.5 of its 1 rows selects no row"),
        ("one.jsonl", "0", "train", "DATASETS: DATASETS: the amount of '{path}' must be > 0, got '0'"),
        (
            "one.json",
            "1.0",
            "train",
            "DATASETS: {path}: upstream open-instruct reads local .jsonl and .parquet files only",
        ),
        (
            "one.jsonl",
            "1.0",
            "test",
            "DATASETS: {path}: upstream open-instruct reads only the 'train' split of a local file",
        ),
    ],
)
def test_the_dry_run_refuses_what_upstream_would(
    tmp_path: Path, name: str, amount: str, split: str, message: str
) -> None:
    path = tmp_path / name
    row = {"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "Hi", "dataset": "general-flip"}
    path.write_text(json.dumps([row]) if name.endswith(".json") else json.dumps(row) + "\n")
    result = dry_run(FLIP, DATASETS=f"{path} {amount}", DATASET_SPLITS=split, LOCAL_EVALS="none")
    assert result.returncode == 1
    assert "data: ERROR " + message.format(path=path) in result.stdout


def test_flip_settings_are_checked_by_the_dry_run_and_before_a_launch(lifecycle) -> None:
    dry = dry_run(FLIP, FLIP_CONCURRENCY="many", FLIP_RESTATMENT_GUARD="0")
    assert dry.returncode == 1
    assert "settings: ERROR FLIP_CONCURRENCY must be an integer >= 1, got 'many'" in dry.stdout
    assert "settings: WARNING FLIP_RESTATMENT_GUARD is not a FLIP setting, so nothing reads it" in dry.stdout
    start, paths = lifecycle
    process = start(FLIP_CONCURRENCY="many")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "settings: ERROR FLIP_CONCURRENCY must be an integer >= 1, got 'many'" in err
    assert "grpo: error: fix the FLIP_* variable above first" in err
    assert not paths["record"].exists() and not paths["vllm"].exists()  # nothing was started


def test_the_authors_settings_are_explicit_and_the_backend_outlasts_the_judge() -> None:
    args = grpo_args(dry_run(FLIP).stdout)
    assert value(args, "--mask_truncated_completions") == ["true"]
    assert value(args, "--advantage_normalization_type") == ["standard"]
    assert value(args, "--inflight_updates") == ["false"] and value(args, "--fused_optimizer") == ["false"]
    assert value(args, "--backend_timeout") == ["120"]  # minutes: JUDGE_TIMEOUT 3600 s + an hour
    assert value(grpo_args(dry_run(FLIP, JUDGE_TIMEOUT="9000").stdout), "--backend_timeout") == ["210"]
    short = dry_run(FLIP, BACKEND_TIMEOUT="30", JUDGE_TIMEOUT="3600")
    assert short.returncode == 1 and "BACKEND_TIMEOUT (30 min) must be above JUDGE_TIMEOUT (3600 s)" in short.stderr


def test_the_dry_run_reports_the_cpus_the_placement_needs() -> None:
    """On one CPU (taskset): 4 learner GPUs x 10, 3 vLLM engines and upstream's 3 fixed actors need 46."""
    result = subprocess.run(
        ["taskset", "-c", "0", "bash", str(FLIP), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=clean_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0  # the dry run may be made elsewhere than the run: reported, not required
    assert (
        "env: MISSING 46 CPUs on this node for 4 learner GPU(s) x 10, the vLLM engines and upstream's actors; it has 1 "
        "(upstream's placement would time out after 20 minutes)"
    ) in result.stdout


def test_a_loopback_judge_is_refused_for_a_multi_node_run() -> None:
    result = dry_run(FLIP, PRESET="multinode", JUDGE_HOST="127.0.0.1")
    assert result.returncode == 1
    assert "JUDGE_HOST=127.0.0.1 is served on this node only, but the vLLM actors of a multi-node run" in result.stderr


def test_the_environment_beats_a_preset_for_every_knob() -> None:
    args = grpo_args(
        dry_run(FLIP, PRESET="1gpu", TOTAL_EPISODES="50", PROMPTS_PER_STEP="2", DATASETS=f"{SAMPLE} 1.0").stdout
    )
    assert value(args, "--total_episodes") == ["50"] and value(args, "--num_unique_prompts_rollout") == ["2"]


def test_a_judge_that_does_not_answer_at_its_advertised_address_stops_the_launch(lifecycle) -> None:
    """Served on 0.0.0.0 and advertised as an address nothing answers at (TEST-NET-1): the launch stops before the
    trainer, naming the address, and the judge is stopped."""
    start, paths = lifecycle
    process = start(JUDGE_HOST="0.0.0.0", JUDGE_ADVERTISE_HOST="192.0.2.1")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert f"does not answer at http://192.0.2.1:{paths['port']}/v1, the address the trainer uses" in err
    assert not paths["record"].exists()
    assert_judge_stopped(paths)
