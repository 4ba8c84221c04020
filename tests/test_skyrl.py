"""SkyRL: ``flip_reward.integrations.skyrl.FlipEnv`` through skyrl-gym's own registry (``register``/``make``) and
the rows of SkyRL's own ``PromptDataset`` (skyrl 0.4.0 from PyPI, installed without its dependencies).

SkyRL's generator (``SkyRLGymGenerator``) and its full config need Python 3.12 (their imports reach pydantic models
built on ``typing.TypedDict``), so its way of calling an environment is reproduced here as its
``_run_in_executor_if_available`` does it: ``make(env_class, env_config=..., extras=row)``, ``init(prompt)`` and
``step(text)`` awaited on a thread of an env pool (``max_env_workers`` > 0) or called on the event-loop thread itself
(``max_env_workers=0``), trajectories gathered concurrently. The judge is the scripted server (a test double).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import skyrl_gym
from serve_support import ResponseScript, requests_for
from skyrl_gym.error import RegistrationError
from skyrl_gym.metrics import aggregate_for_environment

from flip_reward.integrations import process_reward
from flip_reward.integrations import skyrl as flip_skyrl
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, judged_response

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


class FailingOnce(ResponseScript):
    """ResponseScript whose first request about each response in ``flaky`` is a 500."""

    def __init__(self, answers: dict, flaky: set[str]):
        super().__init__(answers)
        self.flaky = set(flaky)
        self.lock = threading.Lock()

    def __call__(self, request: dict) -> Reply | str:
        with self.lock:
            response = judged_response(request)
            if response in self.flaky:
                self.flaky.discard(response)
                return Reply(content="scripted blip", status=500)
        return super().__call__(request)


@pytest.fixture
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


@pytest.fixture(autouse=True)
def flip_env(monkeypatch):
    """An environment with only the judge's settings (FlipEnv reads FLIP_* and HOSTED_VLLM_API_BASE), fresh
    FlipRewards and trace per test; ``flip`` registered with skyrl-gym."""
    for name in [name for name in os.environ if name.startswith("FLIP_") or name == "HOSTED_VLLM_API_BASE"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FLIP_JUDGE_MODEL", "hosted_vllm/scripted")
    monkeypatch.setenv("FLIP_RETRIES", "0")
    monkeypatch.setattr(process_reward, "_rewards", {})
    process_reward.process_trace.cache_clear()
    flip_skyrl.register_flip_env()
    yield
    process_reward.process_trace.cache_clear()


def use_judge(monkeypatch, judge) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)


async def rollout(prompt: list, extras: dict, response: str, executor: ThreadPoolExecutor | None) -> dict:
    """One trajectory as SkyRLGymGenerator.agent_loop drives a one-step environment (``_run_in_executor_if_available``
    runs ``init``, ``step`` and ``close`` on ``executor``, or on this loop's thread when there is none)."""

    async def call(func, *args):
        if executor is None:
            return func(*args)
        return await asyncio.get_running_loop().run_in_executor(executor, func, *args)

    env = skyrl_gym.make("flip", env_config={}, extras={**extras, "max_turns": 1})
    chat, _ = await call(env.init, [dict(message) for message in prompt])
    assert chat == prompt
    output = await call(env.step, response)
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
    with ScriptedJudgeServer(FailingOnce(ANSWERS, {WAVES, PEAKS})) as judge:
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


def test_rows_of_skyrl_prompt_dataset_reach_the_environment(judge, monkeypatch, tmp_path, tiny_model_dir) -> None:
    """A parquet in SkyRL's dataset format (``prompt``, ``env_class``, ``reward_spec``, ``extra_info``), read by
    SkyRL's own PromptDataset: its ``(messages, env_class, extras, uid)`` rows make and step the environment."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from skyrl.train.dataset import PromptDataset
    from transformers import AutoTokenizer

    use_judge(monkeypatch, judge)
    rows = [
        {"data_source": "flip", "prompt": CHAT, "env_class": "flip",
         "reward_spec": {"method": "rule", "ground_truth": SEA}, "extra_info": {"index": 0}},
        {"data_source": "flip", "prompt": [{"role": "user", "content": MOUNTAINS}], "env_class": "flip",
         "reward_spec": {"method": "rule", "ground_truth": None}, "extra_info": {"index": 1}},
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    dataset = PromptDataset([str(tmp_path / "train.parquet")], AutoTokenizer.from_pretrained(tiny_model_dir), 4096, 1)
    items = [dataset[index] for index in range(len(dataset))]
    assert [(env_class, extras["reward_spec"]["ground_truth"]) for _, env_class, extras, _ in items] == [
        ("flip", SEA),
        ("flip", None),
    ]
    outputs = rollouts([(messages, extras, WAVES if not i else PEAKS) for i, (messages, _, extras, _) in
                        enumerate(items)], 2)  # fmt: skip
    assert [output["reward"] for output in outputs] == [1.0, 1.0]


# --- traces and the entrypoint's environment ------------------------------------------------------------------------


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
    inspected = subprocess.run(
        [sys.executable, "-m", "flip_reward.cli", "inspect", str(trace), "--output-dir", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert inspected.returncode == 0, inspected.stderr
    overall = json.loads((tmp_path / "report" / "inspect.json").read_text(encoding="utf-8"))["overall"]
    rates = (overall["judge_error_rate"], overall["input_error_rate"], overall["parse_failure_rate"])
    assert (overall["completions"], overall["mean_reward"], *rates) == (6, 3.5 / 6, 1 / 6, 1 / 6, 0.0)


def test_the_entrypoint_hands_the_judge_settings_to_the_trainers_task(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    environ = {
        "HOSTED_VLLM_API_BASE": "http://127.0.0.1:8001/v1",
        "FLIP_JUDGE_MODEL": "hosted_vllm/Qwen/Qwen3-4B",
        "FLIP_SAMPLE_LOG": "traces/samples.jsonl",
        "OPENAI_API_KEY": "never forwarded",
        "PATH": "/usr/bin",
    }
    assert flip_skyrl.judge_environment(environ) == {
        "HOSTED_VLLM_API_BASE": "http://127.0.0.1:8001/v1",
        "FLIP_JUDGE_MODEL": "hosted_vllm/Qwen/Qwen3-4B",
        "FLIP_SAMPLE_LOG": str(tmp_path / "traces" / "samples.jsonl"),
    }
