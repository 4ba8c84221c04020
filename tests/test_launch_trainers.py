"""``flip-reward launch verl|openrlhf|local``: the settings (flag > environment > preset > default, checked up front),
the data plan and the rendered commands as unit tests; then the thin scripts end to end against real processes.

The end-to-end runs use stand-ins for what needs GPUs: a fake ``vllm`` on PATH that serves the scripted judge
(flip_reward.serving.scripted_judge, a test double) on the port it is given, and a fake ``verl`` package first on
PYTHONPATH whose ``verl.trainer.main_ppo`` records its arguments and environment, then exits or hangs. The reward
service of the OpenRLHF mode is a real ``flip-reward serve``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import REPO, free_port, group_alive, port_open

from flip_reward.core.settings import FlipSettings
from flip_reward.data.mixes import DatasetError
from flip_reward.knobs import SettingsError, resolve
from flip_reward.launch import local
from flip_reward.launch.openrlhf import OpenRLHFSettings, openrlhf_trainer, serve_service
from flip_reward.launch.openrlhf import data_lines as openrlhf_data
from flip_reward.launch.run_judge import run_judge
from flip_reward.launch.verl import VerlSettings, data_lines, verl_data, verl_trainer
from flip_reward.presets import load_preset, preset_names
from flip_reward.training.config import TrainSettings

SAMPLE = "data/sample_rlvr_flip.jsonl"
VERL = REPO / "scripts" / "train" / "verl_grpo_flip.sh"
OPENRLHF = REPO / "scripts" / "train" / "openrlhf_grpo_flip.sh"
KWARGS = "+reward.custom_reward_function.reward_kwargs"
SHIPPED_VERL_1GPU = load_preset("verl", "1gpu").origin  # the path a dry run says it read the preset from

FAKE_VLLM = """#!/usr/bin/env bash
# fake `vllm serve MODEL --host H --port P ARGS...`: records its PID and arguments, then serves the scripted judge
printf 'pid %s\\n' "$$" >"$FAKE_VLLM_RECORD"; printf 'arg %s\\n' "$@" >>"$FAKE_VLLM_RECORD"
if [[ ${FAKE_VLLM_FAIL:-0} == 1 ]]; then echo "torch.OutOfMemoryError: CUDA out of memory"; exit 1; fi
while (($#)); do [[ $1 == --port ]] && port=$2; shift; done
exec "$FAKE_PYTHON" -m flip_reward.serving.scripted_judge --port "$port"
"""
FAKE_MAIN_PPO = """
import json, os, sys, time
import pyarrow.parquet as pq
args = sys.argv[1:]
files = {arg.split("=", 1)[0]: arg.split("=", 1)[1].strip("[]") for arg in args if arg.startswith("data.")}
state = {"argv": args, "pgid": os.getpgid(0), "rows": {key: pq.read_table(files[key]).num_rows
         for key in ("data.train_files", "data.val_files")},
         "env": {k: v for k, v in os.environ.items() if k.startswith(("HOSTED_", "CUDA_VISIBLE", "LITELLM"))}}
with open(os.environ["FAKE_RECORD"], "w") as out:
    json.dump(state, out)
if os.environ.get("FAKE_MODE") == "hang":
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        sys.exit(130)
sys.exit(int(os.environ.get("FAKE_STATUS", "0")))
"""


def env_without_knobs(**overrides: str) -> dict[str, str]:
    """os.environ minus every knob the launchers read, so that only the test's settings count."""
    names = {item.knob.env for cls in (VerlSettings, OpenRLHFSettings) for item in _declared(cls)}
    kept = {k: v for k, v in os.environ.items() if k not in names and not k.startswith(("FLIP_", "GRPO_"))}
    return {**kept, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1", **overrides}


def _declared(cls):
    from flip_reward.knobs import declared

    return declared(cls)


def write_rows(path: Path, count: int, **extra: object) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": f"Instruction {i}"}], "ground_truth": f"Instruction {i}",
         "dataset": "general-flip", **extra}
        for i in range(count)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# --- verl: settings ------------------------------------------------------------------------------------------------


def test_verl_settings_follow_flag_environment_preset_default():
    default = VerlSettings.from_sources({}, {})
    assert (default.preset, default.preset_origin, default.exp_name, default.output_dir) == (
        "1node", load_preset("verl", "1node").origin, "verl_grpo_flip", "output/verl_grpo_flip"
    )  # fmt: skip
    assert default.training_gpus() == [0, 1, 2, 3, 4, 5, 6]
    one_gpu = VerlSettings.from_sources({"prompts_per_step": "4"}, {"PRESET": "1gpu", "MODEL_NAME_OR_PATH": "m"})
    assert (one_gpu.num_gpus, one_gpu.training_gpus(), one_gpu.samples_per_prompt) == (1, [0], 4)  # the preset
    assert (one_gpu.model_name_or_path, one_gpu.prompts_per_step) == ("m", 4)  # environment, then flag
    assert VerlSettings.from_sources({"preset": "1gpu"}, {"PRESET": "1node"}).num_gpus == 1


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PRESET": "2gpu"}, "no preset '2gpu' (configs/verl_2gpu.env); available: 1gpu, 1node"),
        ({"DATASETS": SAMPLE}, f"DATASETS must be 'NAME AMOUNT [NAME AMOUNT ...]', got '{SAMPLE}'"),
        ({"DATASETS": "x 0"}, "DATASETS: the amount of 'x' must be > 0, got '0'"),
        ({"DATASETS": "x 1.0 y 1.0", "DATASET_SPLITS": "a b c"}, "DATASET_SPLITS: 3 splits ('a b c') for 2 datasets"),
        ({"NUM_GPUS": "abc"}, "NUM_GPUS (environment): expected an integer, got 'abc'"),
        ({"LOCAL_EVAL_COUNT": "0"}, "LOCAL_EVAL_COUNT (environment): must be >= 1, got 0"),
        ({"PROMPTS_PER_STEP": "5"}, "PROMPTS_PER_STEP x SAMPLES_PER_PROMPT (40) must divide by the 7 training GPU(s)"),
        ({"NUM_GPUS": "1", "JUDGE_GPUS": "0"}, "no GPU left for training (NUM_GPUS=1, JUDGE_GPUS=0)"),
        ({"JUDGE_GPUS": "seven"}, "JUDGE_GPUS must be GPU ids like 7 or 6,7, got 'seven'"),
        ({"JUDGE_SERVER": "vlm"}, "JUDGE_SERVER (environment): must be one of auto, vllm, transformers, got 'vlm'"),
        (
            {"JUDGE_MODEL": "openai/gpt-4o"},
            "JUDGE_MODEL 'openai/gpt-4o' is not hosted_vllm/...: set JUDGE_BASE_URL, or use a hosted_vllm/ model to "
            "serve",
        ),
    ],
)
def test_bad_verl_settings_are_refused_naming_the_knob(environ, message):
    with pytest.raises(SettingsError) as error:
        VerlSettings.from_sources({}, environ)
    assert str(error.value) == message


def test_a_mistyped_launcher_flag_is_not_passed_to_verl(capsys):
    """verl takes Hydra overrides (key=value): an option among them is a mistyped flag, unless after --."""
    from flip_reward.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["launch", "verl", "--dry-run", "trainer.total_epochs=2", "--num-gpu", "4"])
    assert stop.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "flip-reward launch verl: error: unrecognized arguments: --num-gpu"


def test_a_preset_key_that_is_no_knob_is_refused(tmp_path):
    preset = tmp_path / "mine.env"
    preset.write_text("NUM_GPU=1\nSAMPLES_PER_PROMPT=4\n")
    with pytest.raises(SettingsError) as error:
        VerlSettings.from_sources({}, {"PRESET": str(preset)})
    assert str(error.value) == f"preset {preset}: unknown setting(s) NUM_GPU (did you mean NUM_GPUS?)"


def test_a_preset_cannot_name_another(tmp_path):
    """PRESET is read once, from its flag, the environment or its one default (1node), before the preset is."""
    preset = tmp_path / "mine.env"
    preset.write_text("PRESET=1gpu\nSAMPLES_PER_PROMPT=4\n")
    with pytest.raises(SettingsError) as error:
        VerlSettings.from_sources({}, {"PRESET": str(preset)})
    assert str(error.value) == f"preset {preset}: PRESET picks the preset; it cannot be set in one"
    assert VerlSettings.from_sources({}, {}).preset == "1node"


def test_the_shipped_verl_presets_hold_only_knobs_of_both_launchers():
    assert preset_names("verl") == ["1gpu", "1node"]
    for name in preset_names("verl"):
        for cls in (VerlSettings, OpenRLHFSettings):
            assert cls.from_sources({}, {"PRESET": name}).preset_origin == load_preset("verl", name).origin


# --- verl: the command ---------------------------------------------------------------------------------------------


def verl_line(**environ: str) -> str:
    settings = VerlSettings.from_sources({}, {"PRESET": "1gpu", **environ})
    judge = run_judge(settings, Path("judge"), "python", dry_run=True)
    return verl_trainer(settings, verl_data(settings), judge.url, "python", ["trainer.total_epochs=2"]).line()


def test_the_judge_url_goes_in_verls_config_unless_it_holds_credentials():
    """verl prints its config, overrides included: a URL with credentials goes in HOSTED_VLLM_API_BASE, shown
    redacted even with an unencoded "#" in the password; another provider's URL with credentials is refused; an
    "@" in a path is no credentials."""
    started = verl_line()
    assert started.startswith("env CUDA_VISIBLE_DEVICES=0 python -m verl.trainer.main_ppo algorithm.adv_estimator=grpo")
    assert f" {KWARGS}.api_base=http://127.0.0.1:8001/v1 " in started and started.endswith(" trainer.total_epochs=2")
    hidden = verl_line(JUDGE_BASE_URL="http://user:pa#s3cret@127.0.0.1:9/v1", JUDGE_MODEL="hosted_vllm/scripted")
    assert hidden.startswith("env CUDA_VISIBLE_DEVICES=0 'HOSTED_VLLM_API_BASE=http://***@127.0.0.1:9/v1' python ")
    assert "api_base" not in hidden and "s3cret" not in hidden
    with pytest.raises(SettingsError) as error:
        verl_line(JUDGE_BASE_URL="http://user:s3cret@127.0.0.1:9/v1", JUDGE_MODEL="openai/gpt-4o")
    assert str(error.value) == (
        "JUDGE_BASE_URL holds credentials, which verl would print: they need a hosted_vllm/ JUDGE_MODEL"
    )
    in_path = verl_line(JUDGE_BASE_URL="http://127.0.0.1:9/v1/a@b", JUDGE_MODEL="openai/gpt-4o")
    assert f" {KWARGS}.api_base=http://127.0.0.1:9/v1/a@b " in in_path


def test_the_judge_of_a_run_is_a_server_a_fleet_or_a_router_in_front_of_running_judges():
    def judge(**environ: str):
        settings = VerlSettings.from_sources({}, environ)
        return run_judge(settings, Path("run"), sys.executable, dry_run=True)

    fleet = judge(JUDGE_REPLICAS="2", JUDGE_GPUS="6,7", TRAIN_GPUS="0")
    assert [service.name for service in fleet.services] == ["replica 1", "replica 2", "router"]
    assert fleet.url == "http://127.0.0.1:8001/v1" and fleet.pid_file == Path("run/judge.pid")
    routed = judge(JUDGE_BASE_URL="http://10.0.0.1:8000/v1,http://10.0.0.2:8000/v1")
    assert [service.name for service in routed.services] == ["router"] and routed.url == "http://127.0.0.1:8001/v1"
    assert "--worker-urls http://10.0.0.1:8000 http://10.0.0.2:8000 " in " ".join(routed.services[0].command)
    given = judge(JUDGE_BASE_URL="http://10.0.0.1:8000/v1")
    assert (given.services, given.url) == ((), "http://10.0.0.1:8000/v1")
    with pytest.raises(SettingsError) as error:
        judge(JUDGE_REPLICAS="2", JUDGE_SERVER="transformers", JUDGE_GPUS="6,7", TRAIN_GPUS="0")
    assert str(error.value).startswith("--replicas 2 needs vLLM (JUDGE_SERVER=vllm on a GPU machine)")


# --- verl: data ----------------------------------------------------------------------------------------------------


def test_the_validation_set_is_held_out_of_the_first_dataset_and_said(tmp_path):
    source = write_rows(tmp_path / "rows.jsonl", 40)
    second = write_rows(tmp_path / "more.jsonl", 5)
    out = tmp_path / "run"
    settings = VerlSettings.from_sources(
        {}, {"PRESET": "1gpu", "DATASETS": f"{source} 1.0 {second} 3", "OUTPUT_DIR": str(out)}
    )
    expected = [
        f"data: {source}: 40 rows -> 36 training rows -> {out}/data/train_0.parquet",
        f"validation: 4 rows of {source} held out of training (a seeded sample: LOCAL_EVAL_COUNT=16, at most one row "
        f"in 10) -> {out}/data/val.parquet",
        f"data: {second}: 5 rows -> 3 training rows -> {out}/data/train_1.parquet",
    ]
    assert data_lines(verl_data(settings), write=False) == expected
    assert not out.exists()  # a dry run writes nothing
    assert data_lines(verl_data(settings), write=True) == expected
    train = pq.read_table(out / "data" / "train_0.parquet").to_pylist()
    validation = pq.read_table(out / "data" / "val.parquet").to_pylist()
    truths = sorted(row["reward_model"]["ground_truth"] for row in train + validation)
    assert truths == sorted(f"Instruction {i}" for i in range(40))  # every row once: none trained on and validated
    assert len(validation) == 4 and pq.read_table(out / "data" / "train_1.parquet").num_rows == 3


@pytest.mark.parametrize(("amount", "rows"), [("1", 1), ("1.0", 5), ("0.4", 2), ("7", 7)])
def test_verl_reads_an_amount_as_open_instruct_and_the_local_trainer_do(tmp_path, amount, rows):
    """data.mixes' meaning: "1" is one row (it was every row here), a fraction a share, a count above the size
    repeats rows."""
    first, second = write_rows(tmp_path / "rows.jsonl", 40), write_rows(tmp_path / "more.jsonl", 5)
    out = tmp_path / "run"
    environ = {"PRESET": "1gpu", "DATASETS": f"{first} 1.0 {second} {amount}", "OUTPUT_DIR": str(out)}
    lines = data_lines(verl_data(VerlSettings.from_sources({}, environ)), write=True)
    assert lines[-1] == f"data: {second}: 5 rows -> {rows} training rows -> {out}/data/train_1.parquet"
    assert pq.read_table(out / "data" / "train_1.parquet").num_rows == rows


def test_a_hub_dataset_is_said_not_read_by_a_dry_run():
    settings = VerlSettings.from_sources({}, {"DATASETS": "org/chats 100"})
    assert data_lines(verl_data(settings), write=False) == [
        "data: org/chats: Hugging Face dataset, not read by a dry run; converted at the start to "
        "output/verl_grpo_flip/data/train_0.parquet (amount 100)",
        "validation: up to 16 rows of org/chats held out of training (a seeded sample: LOCAL_EVAL_COUNT=16, at most "
        "one row in 10) -> output/verl_grpo_flip/data/val.parquet",
    ]


def test_bad_data_is_refused_naming_the_dataset_row_and_field(tmp_path):
    missing = VerlSettings.from_sources({}, {"DATASETS": "data/nope.jsonl 1.0"})
    with pytest.raises(DatasetError) as error:
        data_lines(verl_data(missing), write=False)
    assert str(error.value) == "DATASETS: data/nope.jsonl: input file not found: data/nope.jsonl"
    broken = write_rows(tmp_path / "broken.jsonl", 3)
    broken.write_text(broken.read_text() + '{"messages": 5}\n')
    with pytest.raises(DatasetError) as error:
        data_lines(verl_data(VerlSettings.from_sources({}, {"DATASETS": f"{broken} 1.0"})), write=False)
    assert str(error.value) == (
        f"DATASETS: {broken}: 1 of 4 rows invalid (row 4: field 'messages': must be a string or a list of messages, "
        "got int)"
    )


# --- OpenRLHF ------------------------------------------------------------------------------------------------------


def test_openrlhf_commands_follow_the_settings_and_the_flip_environment(tmp_path):
    settings = OpenRLHFSettings.from_sources({}, {"PRESET": "1gpu", "DATASETS": f"{SAMPLE} 1.0", "SEED": "7"})
    flip = FlipSettings.from_env({"FLIP_THINK_PREFILLED": "1", "FLIP_CONCURRENCY": "8"})
    judge = run_judge(settings, tmp_path, "python", dry_run=True)
    serve = serve_service(settings, judge.url, flip, "python", tmp_path)
    assert serve.command == (
        "python", "-m", "flip_reward", "serve", "--judge", "hosted_vllm/Qwen/Qwen3-4B",
        "--api-base", "http://127.0.0.1:8001/v1", "--host", "127.0.0.1", "--port", "8080", "--max-tokens", "2048",
        "--max-context-length", "8192", "--timeout", "3600", "--temperature", "1.0", "--shutdown-timeout", "3600",
        "--think-prefilled", "--concurrency", "8",
    )  # fmt: skip
    assert serve.health_url == "http://127.0.0.1:8080/health"
    trainer = openrlhf_trainer(settings, "python", ["--actor.extra", "1"])
    assert trainer.env == {"CUDA_VISIBLE_DEVICES": "0"}
    assert trainer.command == [
        "python", "-m", "openrlhf.cli.train_ppo_ray", "--actor.model_name_or_path", "Qwen/Qwen3-0.6B",
        "--reward.remote_url", "http://127.0.0.1:8080/get_reward", "--algo.advantage.estimator", "group_norm",
        "--rollout.n_samples_per_prompt", "4", "--rollout.batch_size", "8", "--train.batch_size", "32",
        "--data.prompt_dataset", SAMPLE, "--data.prompt_probs", "1.0", "--data.prompt_split", "train",
        "--data.input_key", "messages", "--data.label_key", "ground_truth", "--data.apply_chat_template",
        "--rollout.max_new_tokens", "2048", "--data.max_len", "3072", "--rollout.temperature", "1.0",
        "--actor.adam.lr", "1e-06", "--actor.num_gpus_per_node", "1", "--vllm.num_engines", "1",
        "--vllm.tensor_parallel_size", "1", "--vllm.gpu_memory_utilization", "0.3", "--train.colocate_all",
        "--ds.zero_stage", "3", "--train.seed", "7", "--ckpt.output_dir", "output/openrlhf_grpo_flip/checkpoints",
        "--actor.extra", "1",
    ]  # fmt: skip


def test_a_judge_url_with_credentials_reaches_the_service_in_its_environment_only(tmp_path):
    """The service's command line is printed (and shown by ps): a URL with credentials goes in HOSTED_VLLM_API_BASE
    of its environment, shown redacted; with another provider it is refused."""
    url = "http://user:s3cret@127.0.0.1:9/v1"
    settings = OpenRLHFSettings.from_sources({}, {"JUDGE_BASE_URL": url, "JUDGE_MODEL": "hosted_vllm/scripted"})
    serve = serve_service(settings, url, FlipSettings(), "python", tmp_path)
    assert "--api-base" not in serve.command and serve.env["HOSTED_VLLM_API_BASE"] == url
    with pytest.raises(SettingsError) as error:
        serve_service(OpenRLHFSettings.from_sources({}, {"JUDGE_BASE_URL": url, "JUDGE_MODEL": "openai/gpt-4o"}), url,
                      FlipSettings(), "python", tmp_path)  # fmt: skip
    assert str(error.value) == (
        "JUDGE_BASE_URL holds credentials, which the launcher (and ps) would print: they need a hosted_vllm/ "
        "JUDGE_MODEL"
    )
    shown = run_script(OPENRLHF, "--dry-run", JUDGE_BASE_URL=url, JUDGE_MODEL="hosted_vllm/scripted")
    assert shown.returncode == 3, shown.stderr  # nothing answers on port 9: said, its credentials hidden
    assert shown.stdout.splitlines()[-1] == (
        "judge: ERROR http://***@127.0.0.1:9/v1/models is not reachable "
        "(<urlopen error [Errno 111] Connection refused>)"
    )
    assert "s3cret" not in shown.stdout + shown.stderr
    assert (
        "serve: env LITELLM_LOCAL_MODEL_COST_MAP=True HOSTED_VLLM_API_BASE=http://***@127.0.0.1:9/v1 " in shown.stdout
    )
    assert "judge: external at http://***@127.0.0.1:9/v1" in shown.stdout


def test_openrlhf_mixes_by_probability_and_needs_rlvr_rows(tmp_path):
    with pytest.raises(SettingsError) as error:
        OpenRLHFSettings.from_sources({}, {"DATASETS": "a 2000"})
    assert str(error.value) == (
        "DATASETS: OpenRLHF mixes by probability: the amount of 'a' must be a fraction in (0, 1] such as 0.5 or 1.0, "
        "got 2000"
    )
    with pytest.raises(SettingsError) as error:  # "1" is one row, as everywhere (data.mixes), not a probability
        OpenRLHFSettings.from_sources({}, {"DATASETS": "a 1"})
    assert str(error.value) == (
        "DATASETS: OpenRLHF mixes by probability: the amount of 'a' must be a fraction in (0, 1] such as 0.5 or 1.0, "
        "got 1"
    )
    with pytest.raises(SettingsError) as error:  # the messages of data.mixes.parse_mixer
        OpenRLHFSettings.from_sources({}, {"DATASETS": "a half"})
    assert str(error.value) == (
        "DATASETS: 'half' after 'a' is not an amount (a fraction like 0.5 or 1.0, or a row count like 100)"
    )
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "Hi"}) + "\n")
    with pytest.raises(DatasetError) as error:
        openrlhf_data(OpenRLHFSettings.from_sources({}, {"DATASETS": f"{chat} 1.0"}))
    assert str(error.value) == f"DATASETS: {chat}: 1 of 1 rows invalid (row 1: field 'dataset': missing)"
    assert openrlhf_data(OpenRLHFSettings.from_sources({}, {"DATASETS": f"{SAMPLE} 0.5 org/x 0.5"})) == [
        f"data: {SAMPLE}: 24 RLVR rows (probability 0.5); verifiers: general-flip 24",
        "data: org/x: Hugging Face dataset, not checked offline (flip-reward data check org/x)",
    ]


# --- the local backend ---------------------------------------------------------------------------------------------


def test_the_local_backend_maps_its_knobs_onto_flip_reward_train(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no nvidia-smi: no GPU visible
    settings = resolve(local.LocalSettings, {}, {"GRPO_VERIFIER": "general-quality"})
    arguments = local.local_train_arguments(["--learning_rate", "3e-5", "--seed", "2"], settings, {})
    assert arguments == [
        "train", "--reward", "pointwise", "--preset", "tiny", "--exp-name", "grpo_llmjudge_local",
        "--learning-rate", "3e-5", "--seed", "2",
    ]  # fmt: skip
    assert capsys.readouterr().err == (
        "grpo (local): grpo_fast.py arguments mapped for flip-reward train: --learning_rate -> --learning-rate\n"
    )
    named = resolve(local.LocalSettings, {"preset": "1gpu"}, {"LOCAL_PRESET": "tiny", "EXP_NAME": "x"})
    assert local.local_train_arguments([], named, {}) == [
        "train", "--reward", "flip", "--preset", "1gpu", "--exp-name", "x",
    ]  # fmt: skip
    assert local.pick_backend({}) == (
        "local",
        "grpo: backend local (TRL GRPO on this machine): no CUDA GPU visible (nvidia-smi); BACKEND=open-instruct "
        "forces grpo_fast.py",
    )


def test_with_tracking_is_a_checked_knob_of_flip_reward_train():
    """WITH_TRACKING=1 makes REPORT_TO default to wandb (REPORT_TO still wins); a value that is no boolean is
    refused, as every launcher refuses it, instead of meaning off."""
    assert TrainSettings.from_sources({}, "tiny", {"WITH_TRACKING": "1"}).report_to == "wandb"
    assert TrainSettings.from_sources({}, "tiny", {"WITH_TRACKING": "1", "REPORT_TO": "tensorboard"}).report_to == (
        "tensorboard"
    )
    assert TrainSettings.from_sources({}, "tiny", {}).report_to == "none"
    with pytest.raises(SettingsError) as error:
        TrainSettings.from_sources({}, "tiny", {"WITH_TRACKING": "maybe"})
    assert str(error.value) == ("WITH_TRACKING (environment): expected 1/0, true/false, yes/no or on/off, got 'maybe'")


def test_local_preset_is_read_through_its_knob_and_cannot_come_from_a_preset(tmp_path):
    assert TrainSettings.from_sources({}, None, {"LOCAL_PRESET": "tiny"}).preset == "tiny"
    assert TrainSettings.from_sources({"preset": "1gpu"}, None, {"LOCAL_PRESET": "tiny"}).preset == "1gpu"
    assert TrainSettings.from_sources({}, None, {}).preset is None
    nested = tmp_path / "nested.env"
    nested.write_text("LOCAL_PRESET=1gpu\nSTEPS=2\n")
    with pytest.raises(SettingsError) as error:
        TrainSettings.from_sources({}, str(nested), {})
    assert str(error.value) == f"preset {nested}: LOCAL_PRESET picks the preset; it cannot be set in one"


@pytest.mark.parametrize(
    ("arguments", "environ", "message"),
    [
        (
            [],
            {"GRPO_VERIFIER": "math"},
            "GRPO_VERIFIER (environment): must be one of general-flip, general-quality, got 'math'",
        ),
        (
            [],
            {"WITH_TRACKING": "maybe"},
            "WITH_TRACKING (environment): expected 1/0, true/false, yes/no or on/off, got 'maybe'",
        ),
        ([], {"FLIP_CONCURRENCY": "abc"}, "FLIP_CONCURRENCY (environment): expected an integer, got 'abc'"),
        (
            ["--vllm_num_engines", "4"],
            {},
            "backend local runs `flip-reward train`, which has no equivalent of the grpo_fast.py argument "
            "--vllm_num_engines; run on a CUDA machine with BACKEND=open-instruct, or drop it (flip-reward train "
            "--help lists the local options)",
        ),
    ],
)
def test_the_local_backend_refuses_before_training(arguments, environ, message, capsys):
    status = local.run_local([*arguments, "--dry-run"], environ={"LOCAL_PRESET": "tiny", **environ})
    assert status == 2
    assert capsys.readouterr().err.splitlines()[-1] in (f"grpo (local): error: {message}", f"error: {message}")


def test_the_flip_judge_settings_set_the_judge_of_flip_reward_train():
    """FLIP_* judge settings are second names of flip-reward train's JUDGE_* knobs (the local backend runs it)."""
    from flip_reward.training.loop import make_reward  # needs the [train] extra (torch)

    environ = {
        "FLIP_CONCURRENCY": "8", "FLIP_RETRIES": "0", "FLIP_DISABLE_THINKING": "1", "FLIP_STRUCTURED_OUTPUT": "yes",
        "FLIP_CACHE_DIR": "/tmp/answers", "FLIP_TOKENIZER": "/models/judge",
    }  # fmt: skip
    s = TrainSettings.from_sources({}, "tiny", environ)
    judge = (s.judge_concurrency, s.judge_retries, s.judge_no_thinking, s.judge_structured_output, s.judge_cache)
    assert (*judge, s.judge_tokenizer) == (8, 0, True, True, "/tmp/answers", "/models/judge")
    reward = make_reward(TrainSettings.from_sources({}, "tiny", {"FLIP_CONCURRENCY": "8"}), "hosted_vllm/j",
                         "http://127.0.0.1:9/v1", None, None)  # fmt: skip
    assert reward.scorer.judge.config.max_concurrency == 8
    same = {"JUDGE_CONCURRENCY": "8", "FLIP_CONCURRENCY": " 8"}
    assert TrainSettings.from_sources({}, "tiny", same).judge_concurrency == 8
    assert TrainSettings.from_sources({"judge_concurrency": "2"}, "tiny", environ).judge_concurrency == 2
    with pytest.raises(SettingsError) as error:
        TrainSettings.from_sources({}, "tiny", {"JUDGE_RETRIES": "1", "FLIP_RETRIES": "0"})
    assert str(error.value) == "JUDGE_RETRIES and FLIP_RETRIES (environment) are one setting but differ: '1' vs '0'"


@pytest.mark.parametrize(
    ("command", "environ", "status", "line"),
    [
        (
            ["launch", "local"],
            {"FLIP_CONCURRENCY": "8"},
            0,
            "train: reward: flip (f1) | judge tiny:0 at a server started here (as flip-reward judge serve does) "
            "(8 requests in flight, 3 retries, 60 s each)",
        ),
        (
            ["launch", "local"],
            {"FLIP_CONCURRENCY": "abc"},
            2,
            "grpo (local): error: FLIP_CONCURRENCY (environment): expected an integer, got 'abc'",
        ),
        (["train"], {"JUDGE_TIMEOUT": "0"}, 2, "error: JUDGE_TIMEOUT (environment): must be > 0, got 0.0"),
        (["train"], {"FLIP_CONCURRENCY": "0"}, 2, "error: FLIP_CONCURRENCY (environment): must be > 0, got 0"),
    ],
)
def test_flip_and_judge_settings_of_a_local_run_end_to_end(tmp_path, command, environ, status, line):
    """A real ``flip-reward`` dry run: the value takes effect, or exit 2 with one line naming the variable."""
    env = env_without_knobs(LOCAL_PRESET="tiny", PYTHONPATH=str(REPO), **environ)
    completed = subprocess.run([sys.executable, "-m", "flip_reward.cli", *command, "--dry-run"], capture_output=True,
                               text=True, cwd=tmp_path, env=env, timeout=120, check=False)  # fmt: skip
    assert (completed.returncode, line in (completed.stdout + completed.stderr).splitlines()) == (status, True)


# --- the thin scripts, end to end ----------------------------------------------------------------------------------


def run_script(script: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *arguments], capture_output=True, text=True, cwd=REPO,
                          env=env_without_knobs(**env), timeout=120, check=False)  # fmt: skip


def test_the_verl_dry_run_checks_the_data_and_prints_every_command(tmp_path):
    out = tmp_path / "run"
    completed = run_script(VERL, "--dry-run", "trainer.total_epochs=2", PRESET="1gpu", DATASETS=f"{SAMPLE} 1.0",
                           OUTPUT_DIR=str(out))  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == (
        f"verl_grpo: preset 1gpu ({SHIPPED_VERL_1GPU}); 1 training GPU(s); reward flip_reward.integrations.verl"
    )
    assert lines[1].startswith("judge: server: env CUDA_VISIBLE_DEVICES=0 ") and lines[1].endswith(
        "serve Qwen/Qwen3-4B --host 127.0.0.1 --port 8001 --max-model-len 8192 --gpu-memory-utilization 0.25 "
        f"--enforce-eager (log: {out}/judge/judge.log)"
    )
    assert lines[2:4] == [
        f"data: {SAMPLE}: 24 rows -> 22 training rows -> {out}/data/train_0.parquet",
        f"validation: 2 rows of {SAMPLE} held out of training (a seeded sample: LOCAL_EVAL_COUNT=16, at most one row "
        f"in 10) -> {out}/data/val.parquet",
    ]
    assert lines[4].startswith(f"trainer: env CUDA_VISIBLE_DEVICES=0 {sys.executable} -m verl.trainer.main_ppo ")
    assert lines[4].endswith(" trainer.total_epochs=2") and len(lines) == 5 and not out.exists()
    refused = run_script(VERL, "--dry-run", FLIP_REWARD_METRIC="f2")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        "error: FLIP_REWARD_METRIC (environment): must be one of f1, precision, recall, got 'f2'\n"
    )
    missing = run_script(VERL, "--dry-run", DATASETS="data/nope.jsonl 1.0")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == "error: DATASETS: data/nope.jsonl: input file not found: data/nope.jsonl\n"


def test_openrlhf_says_in_one_line_that_it_does_not_read_the_tracking_knobs():
    """WITH_TRACKING and WANDB_PROJECT are no knobs of this launcher (OpenRLHF takes --logger.wandb.* arguments)."""
    quiet = run_script(OPENRLHF, "--dry-run", PRESET="1gpu", DATASETS=f"{SAMPLE} 1.0")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    noted = run_script(OPENRLHF, "--dry-run", PRESET="1gpu", DATASETS=f"{SAMPLE} 1.0", WITH_TRACKING="1",
                       WANDB_PROJECT="mine")  # fmt: skip
    assert (noted.returncode, noted.stderr) == (
        0,
        "openrlhf_grpo: note: WITH_TRACKING and WANDB_PROJECT not read here: OpenRLHF's tracking is set on its own "
        "command line (--logger.wandb.* arguments after the launcher's)\n",
    )
    assert noted.stdout == quiet.stdout


def test_the_openrlhf_dry_run_uses_the_launchers_interpreter_for_every_command():
    completed = run_script(OPENRLHF, "--dry-run", PRESET="1gpu", DATASETS=f"{SAMPLE} 1.0", FLIP_THINK_PREFILLED="1")
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == (
        f"openrlhf_grpo: preset 1gpu ({SHIPPED_VERL_1GPU}); 1 training GPU(s); reward service on 127.0.0.1:8080"
    )
    assert lines[2].startswith(f"serve: env LITELLM_LOCAL_MODEL_COST_MAP=True {sys.executable} -m flip_reward serve ")
    assert "--think-prefilled" in lines[2]
    assert lines[3] == f"data: {SAMPLE}: 24 RLVR rows (probability 1.0); verifiers: general-flip 24"
    assert lines[4].startswith(f"trainer: env CUDA_VISIBLE_DEVICES=0 {sys.executable} -m openrlhf.cli.train_ppo_ray ")
    refused = run_script(OPENRLHF, "--dry-run", FLIP_CONCURRENCY="abc")
    assert (refused.returncode, refused.stderr) == (
        2,
        "error: FLIP_CONCURRENCY (environment): expected an integer, got 'abc'\n",
    )


@pytest.fixture
def stand_ins(tmp_path: Path):
    """(env, paths): a fake vllm on PATH, a fake verl first on PYTHONPATH, a judge port; never leaves a judge."""
    bin_dir, fake = tmp_path / "bin", tmp_path / "fake"
    bin_dir.mkdir()
    (bin_dir / "vllm").write_text(FAKE_VLLM)
    (bin_dir / "vllm").chmod(0o755)
    (fake / "verl" / "trainer").mkdir(parents=True)
    (fake / "verl" / "__init__.py").write_text("")
    (fake / "verl" / "trainer" / "__init__.py").write_text("")
    (fake / "verl" / "trainer" / "main_ppo.py").write_text(FAKE_MAIN_PPO)
    paths = {"vllm": tmp_path / "vllm.txt", "record": tmp_path / "trainer.json", "out": tmp_path / "out",
             "port": free_port()}  # fmt: skip
    env = env_without_knobs(
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=os.pathsep.join([str(fake), str(REPO), os.environ.get("PYTHONPATH", "")]),
        PRESET="1gpu", DATASETS=f"{SAMPLE} 1.0", OUTPUT_DIR=str(paths["out"]), JUDGE_PORT=str(paths["port"]),
        JUDGE_START_TIMEOUT="60", FAKE_VLLM_RECORD=str(paths["vllm"]), FAKE_PYTHON=sys.executable,
        FAKE_RECORD=str(paths["record"]),
    )  # fmt: skip
    yield env, paths
    if paths["vllm"].exists() and group_alive(judge_pid(paths)):
        os.killpg(judge_pid(paths), signal.SIGKILL)


def judge_pid(paths: dict) -> int:
    return int(paths["vllm"].read_text().split()[1])


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_a_verl_run_converts_the_data_serves_the_judge_and_stops_it_after_the_trainer(stand_ins):
    env, paths = stand_ins
    completed = subprocess.run(["bash", str(VERL), "trainer.total_epochs=2"], capture_output=True, text=True,
                               cwd=REPO, env={**env, "FAKE_STATUS": "3"}, timeout=120, check=False)  # fmt: skip
    assert completed.returncode == 3, completed.stderr  # the trainer's exit status
    record = json.loads(paths["record"].read_text())
    assert record["rows"] == {"data.train_files": 22, "data.val_files": 2}
    assert record["argv"][-1] == "trainer.total_epochs=2"
    assert f"{KWARGS}.api_base=http://127.0.0.1:{paths['port']}/v1" in record["argv"]
    assert record["env"] == {"CUDA_VISIBLE_DEVICES": "0", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    assert "arg --enforce-eager" in paths["vllm"].read_text()
    assert not group_alive(judge_pid(paths)) and not port_open(paths["port"])
    assert not (paths["out"] / "judge" / "judge.pid").exists()
    assert "verl_grpo: starting the judge Qwen/Qwen3-4B on GPU(s) 0" in completed.stderr
    assert "verl_grpo: stopping the judge\n" in completed.stderr


def test_a_judge_that_never_comes_up_stops_the_run_before_verl(stand_ins):
    env, paths = stand_ins
    completed = subprocess.run(["bash", str(VERL)], capture_output=True, text=True, cwd=REPO,
                               env={**env, "FAKE_VLLM_FAIL": "1"}, timeout=120, check=False)  # fmt: skip
    assert completed.returncode == 3, completed.stderr  # the judge is down, as in launch open-instruct
    log = paths["out"] / "judge" / "judge.log"
    assert completed.stderr.endswith(
        f"verl_grpo: error: the judge did not start: the server (PID {judge_pid(paths)}) exited before it was "
        f"healthy\nlast lines of {log}:\ntorch.OutOfMemoryError: CUDA out of memory\n"
    )
    assert not paths["record"].exists() and not group_alive(judge_pid(paths))


def test_ctrl_c_stops_verl_then_the_judge(stand_ins):
    env, paths = stand_ins
    process = subprocess.Popen(["bash", str(VERL)], cwd=REPO, env={**env, "FAKE_MODE": "hang"}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for(paths["record"], process)
    trainer = json.loads(paths["record"].read_text())["pgid"]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.endswith("interrupted\n")
    assert not group_alive(trainer) and not group_alive(judge_pid(paths)) and not port_open(paths["port"])


def test_the_openrlhf_mode_serves_until_ctrl_c_then_stops_the_service_and_the_judge(stand_ins):
    env, paths = stand_ins
    serve_port = free_port()
    process = subprocess.Popen(["bash", str(OPENRLHF)], cwd=REPO, env={**env, "SERVE_PORT": str(serve_port)},
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    trainer_line = process.stdout.readline()
    assert trainer_line.startswith(f"trainer: env CUDA_VISIBLE_DEVICES=0 {sys.executable} -m openrlhf"), (
        process.communicate(timeout=60)
    )
    pid_files = [paths["out"] / "judge" / name for name in ("judge.pid", "serve.pid")]
    groups = [int(pid_file.read_text().split()[0]) for pid_file in pid_files]
    assert port_open(serve_port) and port_open(paths["port"])
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "openrlhf_grpo: stopping flip-reward serve (requests in flight finish first) and the judge" in err
    assert not any(group_alive(group) for group in groups)
    assert not port_open(serve_port) and not port_open(paths["port"])
    assert not any(pid_file.exists() for pid_file in pid_files)


def test_a_judge_that_dies_while_verl_runs_stops_verl_with_status_3(stand_ins):
    env, paths = stand_ins
    process = subprocess.Popen(["bash", str(VERL)], cwd=REPO, env={**env, "FAKE_MODE": "hang"}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for(paths["record"], process)
    trainer = json.loads(paths["record"].read_text())["pgid"]
    os.killpg(judge_pid(paths), signal.SIGKILL)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 3, err
    lines = err.splitlines()
    died = f"verl_grpo: error: the server (PID {judge_pid(paths)}) exited with status 137: stopping the trainer"
    assert lines[lines.index(died) :] == [
        died, f"verl_grpo: sending SIGINT to the trainer (process group {trainer})", "verl_grpo: stopping the judge",
    ]  # fmt: skip
    assert not group_alive(trainer) and not (paths["out"] / "judge" / "judge.pid").exists()


@pytest.mark.parametrize("script", [VERL, OPENRLHF], ids=["verl", "openrlhf"])
def test_a_running_judge_that_does_not_answer_is_found_by_the_dry_run_and_stops_the_run(stand_ins, script):
    env, paths = stand_ins
    dead = f"http://127.0.0.1:{free_port()}/v1"
    env = {**env, "JUDGE_BASE_URL": dead, "FAKE_MODE": "hang"}
    refused = f"judge: ERROR {dead}/models is not reachable (<urlopen error [Errno 111] Connection refused>)"
    dry = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=120, check=False)  # fmt: skip
    assert dry.returncode == 3, dry.stderr
    assert dry.stdout.splitlines()[1] == f"judge: external at {dead}" and dry.stdout.splitlines()[-1] == refused
    real = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
                          check=False)  # fmt: skip
    prefix = "verl_grpo" if script == VERL else "openrlhf_grpo"
    assert real.returncode == 3, real.stderr
    assert real.stderr.splitlines()[-2:] == [
        f"{prefix}: {refused}",
        f"{prefix}: error: the judge is not usable (see above)",
    ]
    assert not paths["record"].exists() and real.stdout == ""


@pytest.fixture
def full_disk(tmp_path: Path):
    """An empty folder on a real tmpfs with room for no more files or folders (no inode left); unmounted after."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=2", "tmpfs", str(mount)], check=True)
    try:
        (mount / "out").mkdir()  # the second and last inode
        yield mount / "out"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_during_a_verl_run_is_a_run_failure_not_invalid_input(stand_ins, full_disk):
    env, paths = stand_ins
    completed = subprocess.run(["bash", str(VERL)], capture_output=True, text=True, cwd=REPO,
                               env={**env, "OUTPUT_DIR": str(full_disk)}, timeout=120, check=False)  # fmt: skip
    assert completed.returncode == 1, completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        f"verl_grpo: error: [Errno 28] No space left on device: '{full_disk / 'data'}'"
    )
    assert not paths["record"].exists() and not paths["vllm"].exists()


@pytest.mark.parametrize("script", [VERL, OPENRLHF, REPO / "scripts" / "train" / "grpo_flip.sh"])
def test_several_judges_one_with_credentials_are_refused_naming_the_variable(script):
    """vllm-router goes in front of several judges and cannot send credentials: refused before anything starts,
    naming JUDGE_BASE_URL (the knob the user set), never showing the password."""
    urls = "http://user:S3CRETPW@127.0.0.1:9/v1,http://127.0.0.1:10/v1"
    completed = run_script(script, "--dry-run", DATASETS=f"{SAMPLE} 1.0", JUDGE_BASE_URL=urls)
    assert completed.returncode == 2
    assert "S3CRETPW" not in completed.stdout + completed.stderr
    assert (
        completed.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "error: JUDGE_BASE_URL: a judge URL holds credentials (user:password@), which vllm-router (put in front of "
            "several judges) cannot send: give the judges' URLs without them (see docs/judge-servers.md)"
        )
    )
