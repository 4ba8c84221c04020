"""``flip-reward launch open-instruct`` as functions: GrpoFastSettings (knobs, presets, checks, derived values), the
plan rendered from them (the grpo_fast.py command, the trainer's environment, the judge's services, the held-out
eval), and the dry run in process (its lines and exit status). The scripts end to end: test_train_scripts.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import free_port
from open_instruct_support import NO_CHECKOUT, REPO, upstream_checkout

from flip_reward.cli import main
from flip_reward.knobs import SettingsError
from flip_reward.launch.grpo_fast import plan
from flip_reward.launch.grpo_flags import grpo_fast_fields, unknown_flags
from flip_reward.launch.grpo_settings import GrpoFastSettings
from flip_reward.launch.open_instruct import launch
from flip_reward.launch.preflight import checkout_commit
from flip_reward.serving.judge_fleet import find_executable
from flip_reward.serving.scripted_judge import ScriptedJudgeServer

SAMPLE = str(REPO / "data" / "sample_rlvr_flip.jsonl")
LAUNCHER = [sys.executable, "-m", "flip_reward.integrations.open_instruct.launch"]
BASE = {"BACKEND": "open-instruct", "HF_HUB_OFFLINE": "1"}
VLLM = find_executable("vllm", sys.executable, dry_run=True)


def settings(verifier: str = "general-flip", flags: dict | None = None, **environ: str) -> GrpoFastSettings:
    return GrpoFastSettings.from_sources({"verifier": verifier, **(flags or {})}, {**BASE, **environ})


def arguments(verifier: str = "general-flip", trainer_args: tuple[str, ...] = (), **environ: str) -> list[str]:
    return list(plan(settings(verifier, **environ), trainer_args, environ, dry_run=True).grpo_args)


def value(args: list[str], flag: str) -> list[str]:
    start = args.index(flag) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
    return args[start:end]


# --- the plan ----------------------------------------------------------------------------------------------------


def test_the_default_plan_is_the_authors_run_on_one_node() -> None:
    run = plan(settings(), [], {}, dry_run=True)
    assert run.grpo_args == (
        "--exp_name", "grpo_flip", "--output_dir", "output/grpo_flip", "--seed", "1",
        "--model_name_or_path", "allenai/Olmo-3-7B-Think-DPO", "--chat_template_name", "olmo_thinker",
        "--dataset_mixer_list", "yikeee/rlvr_general_chat_flip", "1.0", "--dataset_mixer_list_splits", "train",
        "--dataset_mixer_eval_list", "yikeee/rlvr_general_chat_flip", "16", "--dataset_mixer_eval_list_splits",
        "train", "--local_eval_every", "25", "--ground_truths_key", "ground_truth", "--sft_messages_key", "messages",
        "--max_prompt_token_length", "2048", "--response_length", "16384", "--pack_length", "18432",
        "--num_unique_prompts_rollout", "24", "--num_samples_per_prompt_rollout", "8", "--num_mini_batches", "1",
        "--num_epochs", "1", "--per_device_train_batch_size", "1", "--learning_rate", "1e-06",
        "--lr_scheduler_type", "constant", "--beta", "0.0", "--load_ref_policy", "false", "--kl_estimator", "2",
        "--clip_higher", "0.272", "--rho_clamp_upper_bound", "2.0", "--async_steps", "1", "--temperature", "1.0",
        "--total_episodes", "96000", "--save_freq", "50", "--apply_verifiable_reward", "true",
        "--non_stop_penalty", "false", "--mask_truncated_completions", "true",
        "--advantage_normalization_type", "standard", "--inflight_updates", "false", "--fused_optimizer", "false",
        "--backend_timeout", "120", "--deepspeed_stage", "3", "--deepspeed_zpg", "4", "--num_learners_per_node", "4",
        "--vllm_num_engines", "3", "--vllm_tensor_parallel_size", "1", "--vllm_gpu_memory_utilization", "0.9",
        "--vllm_sync_backend", "nccl", "--vllm_enable_prefix_caching", "--llm_judge_model", "hosted_vllm/Qwen/Qwen3-4B",
        "--llm_judge_max_tokens", "2048", "--llm_judge_max_context_length", "25000", "--llm_judge_timeout", "3600",
        "--llm_judge_temperature", "1.0", "--push_to_hub", "false", "--try_auto_save_to_beaker", "false",
        "--stop_strings", "</answer>", "--gradient_checkpointing",
    )  # fmt: skip
    assert run.trainer_command == (*LAUNCHER, *run.grpo_args)
    assert run.trainer_env == {
        "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6",
        "HOSTED_VLLM_API_BASE": "http://127.0.0.1:8001/v1",
        "FLIP_THINK_PREFILLED": "1",
    }
    assert [service.command for service in run.judge.services] == [
        ("env", "CUDA_VISIBLE_DEVICES=7", VLLM, "serve", "Qwen/Qwen3-4B", "--host", "127.0.0.1", "--port", "8001",
         "--max-model-len", "25000"),
    ]  # fmt: skip
    assert (run.judge.url, run.judge.pid_file) == ("http://127.0.0.1:8001/v1", Path("output/grpo_flip/judge/judge.pid"))


def test_flip_and_the_baseline_differ_only_in_data_and_names() -> None:
    flip, baseline = arguments("general-flip"), arguments("general-quality")
    assert len(flip) == len(baseline)
    assert {(a, b) for a, b in zip(flip, baseline) if a != b} == {
        ("grpo_flip", "grpo_llmjudge"),
        ("output/grpo_flip", "output/grpo_llmjudge"),
        ("yikeee/rlvr_general_chat_flip", "yikeee/rlvr_general_chat"),
    }


def test_flags_beat_the_environment_and_trainer_arguments_come_last(tmp_path: Path) -> None:
    environ = {
        "MODEL_NAME_OR_PATH": "Qwen/Qwen3-1.7B", "DATASETS": f"{SAMPLE} 1.0 yikeee/other 0.5", "LOCAL_EVALS": "none",
        "JUDGE_MODEL": "hosted_vllm/Qwen/Qwen3-8B", "NUM_GPUS": "4", "JUDGE_GPUS": "3", "EXP_NAME": "mine",
        "FLIP_DISABLE_THINKING": "1", "RESPONSE_LENGTH": "4096", "OUTPUT_DIR": str(tmp_path / "run"),
    }  # fmt: skip
    flags = {"response_length": "1024", "beta": "0.01", "chat_template": ""}
    run = plan(settings(flags=flags, **environ), ["--learning_rate", "3e-7"], environ, dry_run=True)
    args = list(run.grpo_args)
    assert run.trainer_env == {
        "CUDA_VISIBLE_DEVICES": "0,1,2",
        "HOSTED_VLLM_API_BASE": "http://127.0.0.1:8001/v1",
        "FLIP_DISABLE_THINKING": "1",
        "FLIP_THINK_PREFILLED": "0",  # no chat template: the tokenizer's, which does not open <think>
    }
    assert "--chat_template_name" not in args
    assert value(args, "--num_learners_per_node") == ["2"] and value(args, "--vllm_num_engines") == ["1"]
    assert value(args, "--dataset_mixer_list") == [SAMPLE, "1.0", "yikeee/other", "0.5"]
    assert value(args, "--local_eval_every") == ["-1"] and "--dataset_mixer_eval_list" not in args
    assert value(args, "--response_length") == ["1024"] and value(args, "--pack_length") == [str(2048 + 1024)]
    assert value(args, "--beta") == ["0.01"] and value(args, "--load_ref_policy") == ["true"]
    assert (value(args, "--exp_name"), value(args, "--output_dir")) == (["mine"], [str(tmp_path / "run")])
    assert args[-2:] == ["--learning_rate", "3e-7"]  # after the launcher's own, so it wins


def test_presets_and_the_environment_over_them() -> None:
    one_gpu = plan(settings(PRESET="1gpu", DATASETS=f"{SAMPLE} 1.0", TOTAL_EPISODES="50"), [], {}, dry_run=True)
    args = list(one_gpu.grpo_args)
    assert args[-5:] == ["--stop_strings", "</answer>", "--vllm_enforce_eager", "--single_gpu_mode",
                         "--gradient_checkpointing"]  # fmt: skip
    assert value(args, "--vllm_sync_backend") == ["gloo"] and value(args, "--num_learners_per_node") == ["1"]
    assert value(args, "--total_episodes") == ["50"] and value(args, "--model_name_or_path") == ["Qwen/Qwen3-0.6B"]
    assert one_gpu.trainer_env["CUDA_VISIBLE_DEVICES"] == "0"  # shared with the judge
    assert one_gpu.judge.services[0].command[-5:] == (
        "--max-model-len", "8192", "--gpu-memory-utilization", "0.25", "--enforce-eager",
    )  # fmt: skip
    multinode = plan(settings(PRESET="multinode", JUDGE_ADVERTISE_HOST="10.1.2.3"), [], {}, dry_run=True)
    assert multinode.trainer_env == {
        "RAY_ADDRESS": "auto",
        "HOSTED_VLLM_API_BASE": "http://10.1.2.3:8001/v1",  # reachable from the other nodes
        "FLIP_THINK_PREFILLED": "1",
    }
    args = list(multinode.grpo_args)
    assert value(args, "--num_learners_per_node") == ["8"] and value(args, "--vllm_num_engines") == ["15"]
    assert value(args, "--deepspeed_zpg") == ["8"]
    assert multinode.judge.services[0].command[5:9] == ("--host", "0.0.0.0", "--port", "8001")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PRESET": "2gpu"}, "no preset '2gpu' (configs/grpo_2gpu.env); available: 1gpu, 1node, multinode"),
        ({"DATASETS": "only-a-name"}, "DATASETS must be 'NAME AMOUNT [NAME AMOUNT ...]', got 'only-a-name'"),
        ({"DATASETS": "a.jsonl 0"}, "DATASETS: the amount of 'a.jsonl' must be > 0, got '0'"),
        ({"LOCAL_EVALS": "a.jsonl"}, "LOCAL_EVALS must be 'NAME AMOUNT [NAME AMOUNT ...]', got 'a.jsonl'"),
        (
            {"LOCAL_EVALS": "a.jsonl 8 b.jsonl x"},
            "LOCAL_EVALS: 'x' after 'b.jsonl' is not an amount (a fraction like 0.5 or 1.0, or a row count like 100)",
        ),
        (
            {"NUM_GPUS": "2", "JUDGE_GPUS": "1"},
            "1 training GPU(s): GRPO needs one for learners and one for vLLM (or PRESET=1gpu)",
        ),
        ({"NUM_GPUS": "1", "JUDGE_GPUS": "0"}, "no GPU left for training (NUM_GPUS=1, JUDGE_GPUS=0)"),
        ({"PACK_LENGTH": "100"}, "PACK_LENGTH (100) must be >= MAX_PROMPT_LENGTH + RESPONSE_LENGTH (18432)"),
        (
            {"JUDGE_MODEL": "openai/gpt-4o"},
            "JUDGE_MODEL 'openai/gpt-4o' is not hosted_vllm/...: set JUDGE_BASE_URL, or use a hosted_vllm/ model to "
            "serve",
        ),
        (
            {"NUM_LEARNERS_PER_NODE": "6", "VLLM_NUM_ENGINES": "3"},
            "6 learner(s) + 3 vLLM engine(s) x TP 1 need 9 GPUs; 7 left for training",
        ),
        (
            {"NUM_NODES": "2"},
            "set NUM_LEARNERS_PER_NODE and VLLM_NUM_ENGINES for a multi-node run (PRESET=multinode sets them)",
        ),
        ({"BACKEND_TIMEOUT": "30"}, "BACKEND_TIMEOUT (30 min) must be above JUDGE_TIMEOUT (3600 s)"),
        ({"JUDGE_PORT": "x"}, "JUDGE_PORT (environment): expected an integer, got 'x'"),
        ({"BACKEND": "slurm"}, "BACKEND (environment): must be one of auto, local, open-instruct, got 'slurm'"),
        (
            {"PRESET": "multinode", "JUDGE_HOST": "127.0.0.1"},
            "JUDGE_HOST=127.0.0.1 is served on this node only, but the vLLM actors of a multi-node run reach the "
            "judge over the network: set JUDGE_HOST=0.0.0.0 (advertised as JUDGE_ADVERTISE_HOST or this host's "
            "first address)",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_knob(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        settings(**environ)
    assert str(error.value) == message


def test_an_unknown_key_in_a_preset_file_is_refused(tmp_path: Path) -> None:
    preset = tmp_path / "mine.env"
    preset.write_text("NUM_GPUS=4\nJUDGE_GPU=3\n")
    with pytest.raises(SettingsError) as error:
        settings(PRESET=str(preset))
    assert str(error.value) == f"preset {preset}: unknown setting(s) JUDGE_GPU (did you mean JUDGE_GPUS?)"


def test_the_reward_backend_and_preset_come_from_a_flag_or_the_environment_never_a_preset(tmp_path, capsys) -> None:
    assert launch({}, [], True, {**BASE, "GRPO_VERIFIER": "math"}) == 2
    assert capsys.readouterr().err == (
        "grpo: error: GRPO_VERIFIER (environment): must be one of general-flip, general-quality, got 'math'\n"
    )
    assert settings("general-quality").datasets == "yikeee/rlvr_general_chat 1.0"
    assert GrpoFastSettings.from_sources({}, {**BASE, "GRPO_VERIFIER": "general-quality"}).exp_name == "grpo_llmjudge"
    assert settings(flags={"preset": "1gpu"}, PRESET="multinode").preset == "1gpu"
    preset = tmp_path / "mine.env"
    preset.write_text("BACKEND=local\n")
    with pytest.raises(SettingsError) as error:
        settings(PRESET=str(preset))
    assert str(error.value) == f"preset {preset}: unknown setting(s) BACKEND (did you mean BACKEND_TIMEOUT?)"


def test_the_backend_outlasts_the_judge() -> None:
    assert value(arguments(), "--backend_timeout") == ["120"]  # minutes: JUDGE_TIMEOUT 3600 s + an hour, >= 120
    assert value(arguments(JUDGE_TIMEOUT="9000"), "--backend_timeout") == ["210"]


def test_the_eval_set_is_held_out_of_a_local_file_and_said_for_a_hub_one(tmp_path: Path) -> None:
    data = tmp_path / "mine.jsonl"
    row = {"messages": [{"role": "user", "content": "Write a poem"}], "ground_truth": "x", "dataset": "general-flip"}
    data.write_text("".join(json.dumps({**row, "ground_truth": str(i)}) + "\n" for i in range(200)))
    run = plan(settings(DATASETS=f"{data} 1.0", OUTPUT_DIR=str(tmp_path / "run")), [], {}, dry_run=True)
    held = tmp_path / "run" / "data"
    assert value(list(run.grpo_args), "--dataset_mixer_list") == [str(held / "mine.train.jsonl"), "1.0"]
    assert value(list(run.grpo_args), "--dataset_mixer_eval_list") == [str(held / "mine.eval.jsonl"), "16"]
    assert run.eval_note == (
        f"eval: 16 prompts of {data} held out of training ({held / 'mine.eval.jsonl'}; the rest: "
        f"{held / 'mine.train.jsonl'})"
    )
    assert not held.exists()  # planning writes nothing
    hub = plan(settings(DATASETS="someone/chat 1.0"), [], {}, dry_run=True)
    assert hub.eval_note == (
        "warning: the in-loop eval takes 16 prompts of someone/chat, which this run also trains on (a hub dataset is "
        "not split here): set LOCAL_EVALS='EVAL_DATASET COUNT' for a separate eval set, or LOCAL_EVALS=none"
    )
    mine = plan(settings(DATASETS="someone/chat 1.0", LOCAL_EVALS="someone/chat 8"), [], {}, dry_run=True)
    assert mine.eval_note == "warning: LOCAL_EVALS evaluates on someone/chat, which this run also trains on (DATASETS)"
    one_row = tmp_path / "one.jsonl"
    one_row.write_text(json.dumps(row) + "\n")
    with pytest.raises(SettingsError) as error:
        plan(settings(DATASETS=f"{one_row} 1.0"), [], {}, dry_run=True)
    assert str(error.value) == (
        f"cannot hold eval prompts out of {one_row}: {one_row} has 1 row(s): nothing can be held out for evaluation; "
        "set LOCAL_EVALS='NAME COUNT' or LOCAL_EVALS=none"
    )


def test_several_running_judges_get_a_router_and_credentials_are_never_shown() -> None:
    run = plan(settings(JUDGE_BASE_URL="http://a:8000/v1,http://b:8000"), [], {}, dry_run=True)
    router = run.judge.services[0].command
    assert router[1:9] == ("--host", "127.0.0.1", "--port", "8001", "--worker-urls", "http://a:8000", "http://b:8000",
                           "--policy")  # fmt: skip
    assert run.trainer_env["HOSTED_VLLM_API_BASE"] == "http://127.0.0.1:8001/v1"
    secret = plan(settings(JUDGE_BASE_URL="http://user:s3cret@judge:8000/v1"), [], {}, dry_run=True)
    assert secret.judge.services == () and "s3cret" not in secret.shown_trainer()
    assert "HOSTED_VLLM_API_BASE=http://***@judge:8000/v1" in secret.shown_trainer()
    assert secret.judge.lines(secret.settings) == ["judge: external at http://***@judge:8000/v1"]


# --- the dry run and the backend, in process ---------------------------------------------------------------------


def test_the_dry_run_checks_local_data_and_a_running_judge(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}], "dataset": "general-flip"}) + "\n")
    missing = tmp_path / "missing.jsonl"
    with ScriptedJudgeServer(lambda request: "") as server:  # a test double of an OpenAI-compatible judge
        environ = {**BASE, "DATASETS": f"{bad} 1.0 {missing} 1.0", "LOCAL_EVALS": "none",
                   "JUDGE_BASE_URL": server.base_url, "JUDGE_MODEL": "hosted_vllm/scripted",
                   "FLIP_RESTATMENT_GUARD": "0"}  # fmt: skip
        status = launch({"verifier": "general-flip"}, [], dry_run=True, environ=environ)
    out = capsys.readouterr().out.splitlines()
    assert status == 2  # invalid data
    assert f"data: ERROR DATASETS: {bad}: 1 of 1 rows invalid (row 1: field 'ground_truth': missing)" in out
    assert f"data: ERROR DATASETS: {missing}: local file not found" in out
    assert f"judge: ok, {server.base_url} serves scripted" in out
    assert (
        "settings: WARNING FLIP_RESTATMENT_GUARD is not a FLIP setting, so nothing reads it (see docs/reference.md)"
        in out
    )


@pytest.mark.parametrize(
    ("name", "amount", "split", "message"),
    [
        ("one.jsonl", "0.5", "train", "DATASETS: {path}: amount 0.5 of its 1 rows selects no row"),
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
def test_the_dry_run_refuses_what_upstream_would(tmp_path, capsys, name, amount, split, message) -> None:
    path = tmp_path / name
    row = {"messages": [{"role": "user", "content": "Hi"}], "ground_truth": "Hi", "dataset": "general-flip"}
    path.write_text(json.dumps([row]) if name.endswith(".json") else json.dumps(row) + "\n")
    environ = {**BASE, "DATASETS": f"{path} {amount}", "DATASET_SPLITS": split, "LOCAL_EVALS": "none"}
    assert launch({"verifier": "general-flip"}, [], dry_run=True, environ=environ) == 2
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("data: ")][0].startswith(
        "data: ERROR " + message.format(path=path)
    )


def test_a_mismatched_dataset_is_flagged_for_the_baseline(capsys) -> None:
    environ = {**BASE, "DATASETS": f"{SAMPLE} 1.0", "LOCAL_EVALS": "none"}
    assert launch({"verifier": "general-quality"}, [], dry_run=True, environ=environ) == 0
    assert any(
        line.startswith(f"data: DATASETS: WARNING {SAMPLE} has no general-quality rows")
        for line in capsys.readouterr().out.splitlines()
    )


def test_invalid_settings_exit_2_in_one_line(capsys) -> None:
    assert launch({"verifier": "general-flip"}, [], dry_run=True, environ={**BASE, "FLIP_CONCURRENCY": "abc"}) == 2
    assert capsys.readouterr().err == "grpo: error: FLIP_CONCURRENCY (environment): expected an integer, got 'abc'\n"
    assert launch({"verifier": "general-flip"}, [], dry_run=True, environ={**BASE, "PRESET": "2gpu"}) == 2
    assert capsys.readouterr().err == (
        "grpo: error: no preset '2gpu' (configs/grpo_2gpu.env); available: 1gpu, 1node, multinode\n"
    )


def test_unknown_options_and_everything_after_a_double_dash_go_to_grpo_fast(capsys, monkeypatch) -> None:
    monkeypatch.setenv("BACKEND", "open-instruct")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["launch", "open-instruct", "--dry-run", "--learning_rate", "3e-7", "--local-eval-count", "4", "--",
            "--seed", "4"]  # fmt: skip
    assert main(argv) == 0
    trainer = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("trainer: "))
    assert trainer.endswith("--learning_rate 3e-7 --seed 4")  # --seed after -- is grpo_fast's, not the knob
    assert " --seed 1 " in trainer and "--dataset_mixer_eval_list yikeee/rlvr_general_chat_flip 4 " in trainer


@pytest.mark.parametrize("preset", ["1node", "1gpu", "multinode"])
def test_every_flag_the_plan_emits_exists_in_upstream_grpo_fast(preset: str) -> None:
    checkout = upstream_checkout()
    if checkout is None:
        pytest.skip(NO_CHECKOUT)
    fields = grpo_fast_fields(checkout)
    environ = {"PRESET": preset, "DATASETS": f"{SAMPLE} 1.0", "JUDGE_ADVERTISE_HOST": "10.1.2.3"}
    assert unknown_flags(arguments(**environ), fields) == []
    assert unknown_flags(arguments(**environ, WITH_TRACKING="1", SINGLE_GPU_MODE="1"), fields) == []


def test_a_flag_upstream_does_not_accept_fails_the_dry_run(capsys) -> None:
    checkout = upstream_checkout()
    if checkout is None:
        pytest.skip(NO_CHECKOUT)
    environ = {**BASE, "OPEN_INSTRUCT_DIR": str(checkout), "LOCAL_EVALS": "none"}
    assert launch({"verifier": "general-flip"}, ["--max_token_length", "10"], dry_run=True, environ=environ) == 2
    flags = [line for line in capsys.readouterr().out.splitlines() if line.startswith("flags: ")]
    assert flags == [
        f"flags: ERROR grpo_fast.py at {checkout} ({checkout_commit(checkout)}) does not accept: --max_token_length"
    ]


def test_an_unencoded_hash_in_a_judge_password_is_redacted_and_refused(capsys) -> None:
    """Every line hides the whole user-info; the dry run's judge and settings checks refuse the URL, and a real run
    stops before starting anything (exit 2)."""
    url = "http://user:pa#s3cret@127.0.0.1:9/v1"
    environ = {**BASE, "JUDGE_BASE_URL": url, "JUDGE_MODEL": "hosted_vllm/scripted", "LOCAL_EVALS": "none"}
    assert launch({"verifier": "general-flip"}, [], dry_run=True, environ=environ) == 2
    out = capsys.readouterr().out
    shown = "http://***@127.0.0.1:9/v1"
    refusal = (
        f"judge URL {shown}: its user name or password holds a '/', '?' or '#': percent-encode them in the URL "
        "(/ as %2F, ? as %3F, # as %23, @ as %40)"
    )
    lines = out.splitlines()
    assert f"judge: external at {shown}" in lines and f"'HOSTED_VLLM_API_BASE={shown}'" in out
    assert f"judge: ERROR {refusal}" in lines and f"settings: ERROR HOSTED_VLLM_API_BASE: {refusal}" in lines
    assert "s3cret" not in out
    assert launch({"verifier": "general-flip"}, [], dry_run=False, environ=environ) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-2:] == [f"settings: ERROR HOSTED_VLLM_API_BASE: {refusal}", "grpo: error: fix the setting above first"]


def test_the_dry_run_sends_url_credentials_as_basic_auth_and_never_prints_them(capsys) -> None:
    # the scripted judge (a test double) answers 401 without these credentials, as a reverse proxy with basic auth
    with ScriptedJudgeServer(lambda request: "", basic_auth="user:s3cret") as server:
        url = server.base_url.replace("http://", "http://user:s3cret@")
        environ = {**BASE, "JUDGE_BASE_URL": url, "JUDGE_MODEL": "hosted_vllm/scripted", "LOCAL_EVALS": "none"}
        assert launch({"verifier": "general-flip"}, [], dry_run=True, environ=environ) == 0
    shown = f"http://***@127.0.0.1:{server.port}/v1"
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert f"judge: external at {shown}" in lines and f"judge: ok, {shown} serves scripted" in lines
    assert f"HOSTED_VLLM_API_BASE={shown}" in captured.out
    assert "s3cret" not in captured.out + captured.err and server.refused_authorizations == []


def test_the_local_backend_gets_the_verifier_the_knob_flags_and_mapped_arguments(capsys) -> None:
    """In process, and nothing written to os.environ: the knob flags that are flip-reward train's become its options,
    the settings given here that the local backend does not use are named in one line."""
    pytest.importorskip("trl")
    environ = {**BASE, "BACKEND": "local", "PRESET": "1gpu", "LOCAL_PRESET": "tiny", "NUM_GPUS": "4"}
    flags = {"verifier": "general-quality", "samples_per_prompt": "2", "num_nodes": "2", "judge_gpus": "6,7",
             "gradient_checkpointing": False}  # fmt: skip
    before = dict(os.environ)
    assert launch(flags, ["--learning_rate", "3e-5"], True, environ) == 0
    assert dict(os.environ) == before
    lines = capsys.readouterr().err.splitlines()
    assert lines[:4] == [
        "grpo: backend local (BACKEND=local)",
        "grpo (local): not used by the local backend: --judge-gpus, --num-nodes, PRESET (environment), NUM_GPUS "
        "(environment) (LOCAL_PRESET picks the local preset)",
        "grpo (local): grpo_fast.py arguments mapped for flip-reward train: --learning_rate -> --learning-rate",
        "grpo (local): preset tiny, reward pointwise: flip-reward train --reward pointwise --preset tiny --exp-name "
        "grpo_llmjudge_local --no-gradient-checkpointing --num-generations 2 --learning-rate 3e-5 --dry-run",
    ]
    assert any("2 prompts x 2 generations" in line for line in lines)


def test_a_dry_run_against_a_judge_that_does_not_answer_exits_3(capsys) -> None:
    """Valid data and settings, a running judge given by URL that refuses connections: the judge-down status."""
    environ = {
        **BASE,
        "DATASETS": f"{SAMPLE} 1.0",
        "LOCAL_EVALS": "none",
        "JUDGE_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
    }
    assert launch({"verifier": "general-flip"}, [], dry_run=True, environ=environ) == 3
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("data: ERROR")] == []
