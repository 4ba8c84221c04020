"""SkyRL: ``flip_reward.integrations.skyrl.FlipEnv`` through skyrl-gym's own registry (``register``/``make``) and
the rows of SkyRL's own ``PromptDataset`` (skyrl 0.4.0 from PyPI, installed without its dependencies), and
``flip-reward launch skyrl``: its rows read by that dataset, its overrides checked by SkyRL's config dataclasses.

SkyRL's generator (``SkyRLGymGenerator``) and its full config need Python 3.12 (their imports reach pydantic models
built on ``typing.TypedDict``), so its way of calling an environment is reproduced here as its
``_run_in_executor_if_available`` does it: ``make(env_class, env_config=..., extras=row)``, ``init(prompt)`` and
``step(text)`` awaited on a thread of an env pool (``max_env_workers`` > 0) or called on the event-loop thread itself
(``max_env_workers=0``), trajectories gathered concurrently. For the same reason the launcher's overrides are
checked section by section (``build_nested_dataclass``, which refuses an unknown key, on each of
``SkyRLTrainConfig``'s sections, as ``from_cli_overrides`` does before the root's 3.12-only checks). Training itself
needs GPUs and is not run. The judge is the scripted server (a test double).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import skyrl_gym
from serve_support import FirstFails, ResponseScript, inspected_overall, requests_for
from skyrl_gym.error import RegistrationError
from skyrl_gym.metrics import aggregate_for_environment

from flip_reward.integrations import process_reward
from flip_reward.integrations import skyrl as flip_skyrl
from flip_reward.knobs import SettingsError
from flip_reward.launch import skyrl as launch_skyrl
from flip_reward.launch.command_trainer import RunFiles, mixed_rows
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer

SEA = "Write a poem about the sea."
MOUNTAINS = "Write a poem about mountains."
WAVES, PEAKS = "Waves roll in under a silver moon.", "Mountains rise above the clouds."
ANSWERS = {WAVES: SEA, PEAKS: MOUNTAINS, "FAIL500": Reply(content="scripted outage", status=500)}
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Write something."},
]
# (prompt messages, the row's other columns, response) -> (reward, error_type)
ROWS = [
    (CHAT, {"reward_spec": {"method": "rule", "ground_truth": SEA}}, WAVES),  # the ground truth is the instruction
    ([{"role": "user", "content": [{"type": "text", "text": MOUNTAINS}]}], {}, PEAKS),  # no reward_spec: last user
    ([{"role": "user", "content": MOUNTAINS}], {"reward_spec": {"ground_truth": SEA}}, PEAKS),  # ground truth wins
    ([{"role": "user", "content": SEA}], {"reward_spec": {"method": "rule", "ground_truth": None}}, PEAKS),  # null
    ([{"role": "user", "content": SEA}], {"reward_spec": {"ground_truth": SEA}}, "FAIL500"),
    ([{"role": "user", "content": SEA}], {"reward_spec": {"ground_truth": SEA}}, ""),
]
EXPECTED = [(1.0, ""), (1.0, ""), (0.75, ""), (0.75, ""), (0.0, "judge"), (0.0, "input")]


@pytest.fixture
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


@pytest.fixture(autouse=True)
def flip_env(fresh_flip_reward, monkeypatch):
    """An environment with only the judge's settings (FlipEnv reads FLIP_* and HOSTED_VLLM_API_BASE), fresh
    FlipRewards and trace per test; ``flip`` registered with skyrl-gym."""
    monkeypatch.setenv("FLIP_JUDGE_MODEL", "hosted_vllm/scripted")
    monkeypatch.setenv("FLIP_RETRIES", "0")
    flip_skyrl.register_flip_env()
    yield


def use_judge(monkeypatch, judge) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)


async def rollout(prompt: list, extras: dict, response: str, executor: ThreadPoolExecutor | None) -> dict:
    """One trajectory as SkyRLGymGenerator.agent_loop drives a one-step environment (``_run_in_executor_if_available``
    runs ``init``, ``step`` and ``close`` on ``executor``, or on this loop's thread when there is none); after the
    step the chat ``init`` returned is extended in place with the response, as its ``_update_chat_history`` does."""

    async def call(func, *args):
        if executor is None:
            return func(*args)
        return await asyncio.get_running_loop().run_in_executor(executor, func, *args)

    env = skyrl_gym.make("flip", env_config={}, extras={**extras, "max_turns": 1})
    chat, _ = await call(env.init, [dict(message) for message in prompt])
    assert chat == prompt
    output = await call(env.step, response)
    chat += [{"role": "assistant", "content": response}, *output["observations"]]
    await call(env.close)
    return {**output, "metrics": env.get_metrics()}


def rollouts(rows: list, max_env_workers: int) -> list[dict]:
    """Every row's trajectory, gathered concurrently on one event loop as the generator's ``generate`` does."""

    async def run() -> list[dict]:
        if max_env_workers == 0:
            return list(await asyncio.gather(*(rollout(*row, None) for row in rows)))
        with ThreadPoolExecutor(max_workers=max_env_workers, thread_name_prefix="skyrl-gym-env-") as executor:
            return list(await asyncio.gather(*(rollout(*row, executor) for row in rows)))

    return asyncio.run(run())


# --- registration --------------------------------------------------------------------------------------------------


def test_flip_is_registered_with_skyrl_gym_and_made_by_its_make() -> None:
    flip_skyrl.register_flip_env()  # again: a no-op
    assert skyrl_gym.registry["flip"].entry_point == "flip_reward.integrations.skyrl:FlipEnv"
    env = skyrl_gym.make("flip", env_config={}, extras={"reward_spec": {"ground_truth": SEA}})
    assert isinstance(env, flip_skyrl.FlipEnv) and env.spec.id == "flip"
    assert "flip" in skyrl_gym.pprint_registry(disable_print=True)
    with pytest.raises(RegistrationError, match="`gsm8k` is already registered"):
        flip_skyrl.register_flip_env("gsm8k")  # another environment's id is refused by skyrl-gym


# --- rewards -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_env_workers", [4, 0], ids=["env thread pool", "event-loop thread"])
def test_every_reward_is_the_scripted_f1_on_the_env_pool_and_on_the_loop_thread(
    judge, monkeypatch, max_env_workers
) -> None:
    use_judge(monkeypatch, judge)
    outputs = rollouts(ROWS, max_env_workers)
    assert [(output["reward"], output["metadata"]["error_type"]) for output in outputs] == EXPECTED
    assert all(output["observations"] == [] and output["done"] is True for output in outputs)
    assert outputs[0]["metadata"] == {
        "f1": 1.0, "inferred_instruction": SEA, "error": "", "error_type": "", "restatement_masked": 0,
    }  # fmt: skip
    outage = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    assert outputs[4]["metadata"]["error"] == outage
    assert outputs[5]["metadata"]["error"] == "response is empty once reasoning is removed"
    [context] = [request for request in judge.requests if "Hello! How can I help?" in str(request["messages"])]
    assert "system: Be brief." in context["messages"][-1]["content"]  # the turns before the instruction
    assert "Write something." not in context["messages"][-1]["content"]  # replaced by the ground truth
    assert requests_for(judge, PEAKS) == 1  # one FlipReward per process: dedup and cache across environments


def test_skyrl_gym_aggregates_the_environment_metrics_into_rates(judge, monkeypatch) -> None:
    use_judge(monkeypatch, judge)
    metrics = [output["metrics"] for output in rollouts(ROWS, 4)]
    assert metrics[4] == {
        "flip_f1": 0.0, "flip_input_error": 0.0, "flip_judge_error": 1.0, "flip_parse_failure": 0.0,
        "flip_config_error": 0.0, "flip_internal_error": 0.0, "flip_restatement_masked": 0.0,
    }  # fmt: skip
    aggregated = aggregate_for_environment("flip", metrics)  # what SkyRL logs as environment/<key>
    assert aggregated["flip_f1"] == pytest.approx((1.0 + 1.0 + 0.75 + 0.75) / 6)
    assert (aggregated["flip_judge_error"], aggregated["flip_input_error"]) == (1 / 6, 1 / 6)
    assert skyrl_gym.make("flip", env_config={}, extras={}).get_metrics() == {}  # never stepped: nothing to average


def test_a_transient_judge_failure_is_retried(monkeypatch) -> None:
    monkeypatch.setenv("FLIP_RETRIES", "1")
    with ScriptedJudgeServer(FirstFails(ANSWERS)) as judge:
        use_judge(monkeypatch, judge)
        outputs = rollouts(ROWS[:3], 2)
        assert [output["reward"] for output in outputs] == [1.0, 1.0, 0.75]
        assert [output["metadata"]["error"] for output in outputs] == ["", "", ""]
        assert (requests_for(judge, WAVES), requests_for(judge, PEAKS)) == (2, 2)  # the 500, then the answer


def test_a_dead_judge_or_a_bad_setting_is_zero_with_the_error_never_an_exception(monkeypatch) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    [down] = rollouts(ROWS[:1], 1)
    assert (down["reward"], down["done"], down["metadata"]["error_type"]) == (0.0, True, "judge")
    assert "cannot connect to http://127.0.0.1:9/v1" in down["metadata"]["error"]
    monkeypatch.setattr(process_reward, "_rewards", {})
    monkeypatch.setenv("FLIP_REWARD_METRIC", "x")
    [bad] = rollouts(ROWS[:1], 0)
    assert (bad["reward"], bad["metadata"]["error_type"]) == (0.0, "config")
    assert bad["metadata"]["error"].startswith("FlipSettingsError: FLIP_REWARD_METRIC")
    monkeypatch.delenv("FLIP_REWARD_METRIC")
    never_initialised = skyrl_gym.make("flip", env_config={}, extras={"reward_spec": "not a mapping"}).step("x")
    assert never_initialised["reward"] == 0.0 and never_initialised["metadata"]["error_type"] == "input"
    odd_truth = skyrl_gym.make("flip", env_config={}, extras={"reward_spec": {"ground_truth": 7}})
    odd_truth.init([{"role": "user", "content": SEA}])
    assert odd_truth.step("x")["metadata"]["error"] == "prompt: prompt must be a string or a list of messages, got int"


# --- traces and the entrypoint's environment ------------------------------------------------------------------------


def pipe_text(pipe: Path, lines: int) -> str:
    """The first ``lines`` lines written to the named ``pipe``, read on a daemon thread (the trace's writer opens its
    file for each line: each opening is read to its end) that a stuck writer cannot hold up the tests' exit with."""
    done: queue.Queue[str] = queue.Queue()

    def read() -> None:
        text = ""
        while text.count("\n") < lines:
            text += pipe.read_text(encoding="utf-8")
        done.put(text)

    threading.Thread(target=read, daemon=True).start()
    return done.get(timeout=60)


def test_the_trace_holds_the_prompt_as_it_was_when_skyrl_extends_its_chat_after_the_step(
    judge, monkeypatch, tmp_path
) -> None:
    """SkyRL appends the response to the chat it gave ``init`` right after ``step``, while the trace line of that step
    may still wait in the trace's queue: the trace is a named pipe here, so that its writer waits on the first line
    until this test reads, and the second line is written only after SkyRL's append."""
    use_judge(monkeypatch, judge)
    pipe = tmp_path / f"samples.pid{os.getpid()}.jsonl"
    os.mkfifo(pipe)
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "samples.jsonl"))
    rows = [ROWS[0], ROWS[1]]  # with a ground truth, then without: the prompt as SkyRL gave it
    for row in rows:
        rollouts([row], 1)  # the writer holds the first line, waiting for a reader of the pipe
    lines = [json.loads(line) for line in pipe_text(pipe, len(rows)).splitlines()]
    assert [line["prompt"] for line in lines] == [
        [*CHAT[:3], {"role": "user", "content": SEA}], ROWS[1][0]
    ]  # fmt: skip


def test_samples_are_traced_and_flip_reward_inspect_reads_the_trace(judge, monkeypatch, tmp_path) -> None:
    use_judge(monkeypatch, judge)
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    assert [output["reward"] for output in rollouts(ROWS, 0)] == [reward for reward, _ in EXPECTED]
    process_reward.process_trace().flush()
    [trace] = (tmp_path / "traces").iterdir()
    assert trace.name == f"samples.pid{os.getpid()}.jsonl"
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [(line["sample"], line["error_type"]) for line in lines] == [
        (1, None), (2, None), (3, None), (4, None), (5, "judge"), (6, "input"),
    ]  # fmt: skip
    overall = inspected_overall(trace, tmp_path / "report")
    rates = (overall["judge_error_rate"], overall["input_error_rate"], overall["parse_failure_rate"])
    assert (overall["completions"], overall["mean_reward"], *rates) == (6, 3.5 / 6, 1 / 6, 1 / 6, 0.0)


def test_the_entrypoint_hands_the_judge_settings_to_the_trainers_task(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "judge-tokenizer").mkdir()
    environ = {
        "HOSTED_VLLM_API_BASE": "http://127.0.0.1:8001/v1",
        "FLIP_JUDGE_MODEL": "hosted_vllm/Qwen/Qwen3-4B",
        "FLIP_SAMPLE_LOG": "traces/samples.jsonl",
        "FLIP_CACHE_DIR": "judge-cache",
        "FLIP_TOKENIZER": "judge-tokenizer",
        "OPENAI_API_KEY": "never forwarded",
        "PATH": "/usr/bin",
    }
    assert flip_skyrl.judge_environment(environ) == {
        "HOSTED_VLLM_API_BASE": "http://127.0.0.1:8001/v1",
        "FLIP_JUDGE_MODEL": "hosted_vllm/Qwen/Qwen3-4B",
        "FLIP_SAMPLE_LOG": str(tmp_path / "traces" / "samples.jsonl"),
        "FLIP_CACHE_DIR": str(tmp_path / "judge-cache"),  # made before the first answer: absolute though absent
        "FLIP_TOKENIZER": str(tmp_path / "judge-tokenizer"),
    }
    hub_tokenizer = {**environ, "FLIP_TOKENIZER": "Qwen/Qwen3-4B"}  # a Hub id, not a local directory: as it is
    assert flip_skyrl.judge_environment(hub_tokenizer)["FLIP_TOKENIZER"] == "Qwen/Qwen3-4B"
    with_password = {**environ, "HOSTED_VLLM_API_BASE": "http://user:secret@judge:8001/v1"}
    assert "HOSTED_VLLM_API_BASE" not in flip_skyrl.judge_environment(with_password)  # never in Ray's runtime_env


# --- the launcher ---------------------------------------------------------------------------------------------------


def chat_file(path: Path) -> Path:
    """Chat rows as users bring them: a single turn, and a system prompt with an earlier exchange."""
    rows = [
        {"messages": [{"role": "user", "content": SEA}]},
        {"messages": [*CHAT[:3], {"role": "user", "content": MOUNTAINS}, {"role": "assistant", "content": "Peaks."}]},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def launcher_overrides(tmp_path: Path, *extra: str, **environ: str) -> list[str]:
    """The overrides of the launcher's SkyRL command (after ``-m flip_reward.integrations.skyrl``)."""
    settings = launch_skyrl.SkyRLSettings.from_sources({}, {"OUTPUT_DIR": str(tmp_path / "run"), **environ})
    files = RunFiles(tmp_path / "run" / "data" / "train.parquet", tmp_path / "run" / "config")
    command = launch_skyrl.skyrl_command(settings, files, "python", extra).command
    assert command[:3] == ["python", "-m", "flip_reward.integrations.skyrl"]
    return command[3:]


def skyrl_config(overrides: list[str]) -> dict:
    """Each section of SkyRL's config built from ``overrides`` as ``SkyRLTrainConfig.from_cli_overrides`` parses
    them (OmegaConf's dotlist), by SkyRL's own ``build_nested_dataclass``, which refuses a key SkyRL does not have."""
    from omegaconf import OmegaConf
    from skyrl.train.config.config import SkyRLTrainConfig, build_nested_dataclass

    raw = OmegaConf.to_container(OmegaConf.from_cli(overrides), resolve=True)
    sections = typing.get_type_hints(SkyRLTrainConfig)  # data, trainer, generator, environment: their classes
    assert set(raw) <= set(sections)
    return {name: build_nested_dataclass(section, raw.get(name, {})) for name, section in sections.items()}


def test_the_launchers_overrides_are_keys_of_skyrls_own_config(tmp_path) -> None:
    config = skyrl_config(launcher_overrides(tmp_path, "generator.n_samples_per_prompt=4", NUM_GPUS="8"))
    environment, generator, trainer, data = (config[name] for name in ("environment", "generator", "trainer", "data"))
    assert (environment.env_class, environment.skyrl_gym.max_env_workers) == ("flip", 64)
    assert data.train_data == [str(tmp_path / "run" / "data" / "train.parquet")] and data.val_data == []
    assert (generator.batched, generator.n_samples_per_prompt) == (False, 4)  # the user's override comes last, wins
    assert generator.inference_engine.num_engines == 7 and trainer.placement.policy_num_gpus_per_node == 7
    assert (generator.sampling_params.max_generate_length, trainer.max_prompt_length) == (8192, 2048)
    assert (trainer.algorithm.advantage_estimator, trainer.algorithm.use_kl_loss) == ("grpo", False)
    assert (trainer.train_batch_size, trainer.policy_mini_batch_size, trainer.epochs) == (28, 28, 1)
    assert (trainer.eval_interval, trainer.logger, trainer.run_name) == (-1, "console", "skyrl_grpo_flip")
    assert trainer.ckpt_path == str(tmp_path / "run" / "checkpoints")
    one_gpu = skyrl_config(launcher_overrides(tmp_path, NUM_GPUS="2", JUDGE_GPUS="1", BETA="0.01", WITH_TRACKING="1"))
    assert one_gpu["trainer"].algorithm.use_kl_loss is True and one_gpu["trainer"].algorithm.kl_loss_coef == 0.01
    assert (one_gpu["generator"].inference_engine.num_engines, one_gpu["trainer"].logger) == (1, "wandb")
    with pytest.raises(ValueError, match="Invalid fields {'flip'} for SkyRLGymConfig"):
        skyrl_config(launcher_overrides(tmp_path, "environment.skyrl_gym.flip.timeout=5"))  # SkyRL's own refusal
    assert launch_skyrl.ENV_ID == flip_skyrl.ENV_ID


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"VLLM_TENSOR_PARALLEL_SIZE": "2"}, "VLLM_TENSOR_PARALLEL_SIZE (2) must divide the 7 training GPU(s)"),
        ({"PROMPTS_PER_STEP": "3", "SAMPLES_PER_PROMPT": "3"},
         "PROMPTS_PER_STEP x SAMPLES_PER_PROMPT (9) must divide by the 7 training GPU(s)"),
        ({"JUDGE_MODEL": "openai/gpt-4o", "JUDGE_BASE_URL": "http://127.0.0.1:9/v1"}, "must be a hosted_vllm/ model"),
    ],
)  # fmt: skip
def test_settings_skyrl_would_refuse_are_refused_naming_the_knob(environ, message) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        launch_skyrl.SkyRLSettings.from_sources({}, environ)


def test_the_launchers_rows_reach_the_environment_through_skyrls_prompt_dataset(
    judge, monkeypatch, tmp_path, tiny_model_dir
) -> None:
    """DATASETS converted as a real run writes them (one parquet file), read by SkyRL's own PromptDataset: its
    ``(messages, env_class, extras, uid)`` items make and step the environment."""
    from skyrl.train.dataset import PromptDataset
    from transformers import AutoTokenizer

    use_judge(monkeypatch, judge)
    settings = launch_skyrl.SkyRLSettings.from_sources({}, {"DATASETS": f"{chat_file(tmp_path / 'chat.jsonl')} 1.0"})
    data = tmp_path / "train.parquet"
    assert mixed_rows(launch_skyrl.RECIPE, settings, data) == [
        f"data: {tmp_path / 'chat.jsonl'}: 2 rows -> 2 training rows"
    ]
    dataset = PromptDataset([str(data)], AutoTokenizer.from_pretrained(tiny_model_dir), 4096, num_workers=1)
    items = [dataset[index] for index in range(len(dataset))]
    assert [(messages, env_class, extras) for messages, env_class, extras, _ in items] == [
        ([{"role": "user", "content": SEA}], "flip",
         {"data_source": "flip", "reward_spec": {"method": "flip", "ground_truth": SEA}, "extra_info": {"index": 0}}),
        ([*CHAT[:3], {"role": "user", "content": MOUNTAINS}], "flip",
         {"data_source": "flip", "reward_spec": {"method": "flip", "ground_truth": MOUNTAINS},
          "extra_info": {"index": 1}}),
    ]  # fmt: skip
    outputs = rollouts([(items[0][0], items[0][2], PEAKS), (items[1][0], items[1][2], PEAKS)], 2)
    assert [output["reward"] for output in outputs] == [0.75, 1.0]


def test_the_dry_run_checks_the_data_and_prints_the_command(judge, tmp_path) -> None:
    out = tmp_path / "run"
    environ = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("FLIP_", "JUDGE_"))},
        "JUDGE_BASE_URL": judge.base_url, "JUDGE_MODEL": "hosted_vllm/scripted", "NUM_GPUS": "2",
        "DATASETS": f"{chat_file(tmp_path / 'chat.jsonl')} 1.0", "OUTPUT_DIR": str(out), "HF_HUB_OFFLINE": "1",
    }  # fmt: skip
    command = [sys.executable, "-m", "flip_reward.cli", "launch", "skyrl", "--dry-run", "trainer.epochs=2"]
    completed = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "skyrl: 2 training GPU(s); reward flip_reward.integrations.skyrl:FlipEnv (env_class flip)"
    assert lines[2:4] == [
        f"data: {tmp_path / 'chat.jsonl'}: 2 rows -> 2 training rows",
        f"data: -> {out}/data/train.parquet",
    ]
    judge_env = f"HOSTED_VLLM_API_BASE={judge.base_url} FLIP_JUDGE_MODEL=hosted_vllm/scripted FLIP_JUDGE_TIMEOUT=3600"
    assert lines[4].startswith(f"trainer: env CUDA_VISIBLE_DEVICES=0,1 {judge_env} ")
    assert f" {sys.executable} -m flip_reward.integrations.skyrl environment.env_class=flip " in lines[4]
    assert lines[4].endswith(" trainer.epochs=2") and lines[5].startswith("judge: ") and not out.exists()
    (tmp_path / "bad.jsonl").write_text(json.dumps({"messages": [{"role": "assistant", "content": "Hi"}]}) + "\n")
    bad = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False,
                         env={**environ, "DATASETS": f"{tmp_path / 'bad.jsonl'} 1.0"})  # fmt: skip
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == (
        f"error: DATASETS: {tmp_path / 'bad.jsonl'}: 1 of 1 rows invalid (row 1: field 'messages': no user message)\n"
    )


def test_the_entrypoint_calls_what_the_pinned_skyrl_defines() -> None:
    """``main``/``run_experiment`` import SkyRL modules that need Python 3.12 and GPU packages; their names are read
    from the installed skyrl's source instead: the entrypoint mirrors ``main_base.main`` and ``skyrl_entrypoint``."""
    import ast
    import importlib.util

    package = Path(importlib.util.find_spec("skyrl").origin).parent

    def top_level_names(module: str) -> set[str]:
        tree = ast.parse((package / module).read_text(encoding="utf-8"))
        names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        return names | {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                        for alias in node.names}  # fmt: skip

    main_base = top_level_names("train/entrypoints/main_base.py")
    assert {"BasePPOExp", "validate_cfg", "initialize_ray", "skyrl_entrypoint", "main"} <= main_base
    assert {"initialize_ray", "validate_cfg"} <= top_level_names("train/utils/utils.py")
    assert "SkyRLTrainConfig" in top_level_names("train/config/__init__.py")
    from skyrl.train.config.config import SkyRLTrainConfig

    assert callable(SkyRLTrainConfig.from_cli_overrides)
