"""ROLL: ``flip_reward.integrations.roll.FlipRewardWorker`` (a reward domain's ``worker_cls``) and the batch
translation it calls (``flip_reward.integrations.roll_batch``).

Always: ``roll_batch.score_batch`` on batches of ROLL's documented shapes (``Batch`` below: torch tensors and numpy
object arrays as ROLL's RLVR pipeline fills a reward worker's ``DataProto``, written here from ROLL's code, not
ROLL's class), with a tiny tokenizer built here; and ``flip-reward launch roll`` (dry run, and a run whose pipeline
script is a stand-in).

With ``ROLL_DIR`` (a checkout of alibaba/ROLL, which is not on PyPI; run at 8eb27cc), skipped with that reason
otherwise: the worker through ROLL's own code. ROLL's CPU import needs must be importable too (more_itertools,
dacite, peft, TransferQueue with pyzmq and msgspec, opentelemetry-exporter-otlp-proto-grpc with grpcio; e.g. ``pip
install --no-deps --target DIR`` with DIR on PYTHONPATH, as TransferQueue's own pins would downgrade numpy). The
launcher's YAML read into ROLL's ``RLVRConfig`` by dacite (strict), a CPU-only Ray cluster, ROLL's
``ResourceManager`` and ``Cluster`` importing the ``worker_cls`` path and starting the actor, ``initialize
(pipeline_config)`` and ``compute_rewards`` with ROLL's ``DataProto`` (a batch, and one prompt's responses sent to an
actor as ROLL's rollout loop does), and ROLL's ``DataProto.concat`` of the answer with a float16 rule worker's, as
its reward scheduler does. Training itself (vLLM rollouts, Megatron/FSDP) needs GPUs and is not run. The judge is
the scripted server (a test double).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST_RETRIES, REPO
from serve_support import FirstFails, ResponseScript, inspected_overall, requests_for

from flip_reward.integrations import process_reward
from flip_reward.integrations.roll_batch import row_prompt, score_batch
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, judged_response
from flip_reward.training.tiny_model import build_tokenizer

SAMPLE = str(REPO / "data" / "sample_rlvr_flip.jsonl")

SEA = "Write a poem about the sea."
PEAKS = "Write a poem about mountains."
ANSWERS = {
    "Waves roll in under a silver moon.": SEA,  # F1 1.0
    "Salt and spray at night.": "Write a short poem about the sea at night.",  # F1 8/11 (float16 rounds it)
    "Snow on the peaks.": PEAKS,  # F1 0.75 against SEA
    "FAIL500": Reply(content="scripted outage", status=500),
}
EIGHT_ELEVENTHS = 8 / 11
USER_SEA = [{"role": "user", "content": SEA}]
CHAT = [
    {"role": "system", "content": "You are a poet."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! What shall I write?"},
    {"role": "user", "content": [{"type": "text", "text": SEA}]},
]  # fmt: skip


@dataclass
class Batch:
    """A reward worker's batch in ROLL's documented shapes: ``batch`` (token id tensors: ``prompts`` left-padded,
    ``responses`` right-padded), ``non_tensor_batch`` (numpy object arrays of the dataset row's columns),
    ``meta_info``; its length is its rows'."""

    batch: dict[str, torch.Tensor]
    non_tensor_batch: dict[str, np.ndarray]
    meta_info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.batch.values()))) if self.batch else len(next(iter(self.non_tensor_batch.values())))


def objects(values: list) -> np.ndarray:
    """A numpy object array of ``values`` (one per row), as ROLL's collator makes it."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def tensors_and_columns(tokenizer, rows: list[dict]) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Rows ``{"response": text, column: value, ...}`` as ROLL's tensors (the policy's prompt and response ids, the
    response ending in ``<|im_end|>``) and non-tensor columns (every other key)."""
    prompts = [tokenizer.encode(f"<|im_start|>user\n{SEA}<|im_end|>\n<|im_start|>assistant\n") for _ in rows]
    responses = [tokenizer.encode(row["response"] + "<|im_end|>", add_special_tokens=False) for row in rows]
    pad, width_p, width_r = tokenizer.pad_token_id, max(map(len, prompts)), max(map(len, responses))
    columns = {key: objects([row[key] for row in rows]) for key in rows[0] if key != "response"}
    return {
        "prompts": torch.tensor([[pad] * (width_p - len(ids)) + ids for ids in prompts]),
        "responses": torch.tensor([ids + [pad] * (width_r - len(ids)) for ids in responses]),
    }, columns


def roll_rows(tokenizer, rows: list[dict]) -> Batch:
    tensors, columns = tensors_and_columns(tokenizer, rows)
    return Batch(tensors, columns)


def row(response: str, messages: object = None, ground_truth: str = SEA) -> dict:
    """One row as ROLL's pipeline passes it (messages as a JSON string, as ROLL's data files hold it, by default)."""
    messages = json.dumps(USER_SEA) if messages is None else messages
    return {"response": response, "messages": messages, "ground_truth": ground_truth, "tag": "flip", "domain": "flip"}


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture
def judge():
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as server:
        yield server


pytestmark = pytest.mark.usefixtures("fresh_flip_reward")  # conftest: a new process's FLIP reward


def options(judge, retries: int = 0) -> dict:
    return {"judge_model": "hosted_vllm/scripted", "api_base": judge.base_url, "retries": retries, **FAST_RETRIES}


def float32(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


# --- ROLL's documented shapes (always) -----------------------------------------------------------------------------


def test_a_batch_gets_the_exact_f1_of_each_scripted_answer_at_float32(judge, tokenizer) -> None:
    data = roll_rows(
        tokenizer,
        [
            row("Waves roll in under a silver moon."),
            row("Salt and spray at night.", messages=USER_SEA),  # a list, as a jsonl 'messages' list arrives
            row("Snow on the peaks.", messages=json.dumps(CHAT)),  # earlier turns and content parts
            row("<think>The sea, then.</think>Waves roll in under a silver moon."),  # thinking hidden from the judge
        ],
    )
    rewards = asyncio.run(score_batch(data, tokenizer, options(judge)))
    expected = float32(1.0, EIGHT_ELEVENTHS, 0.75, 1.0)
    assert list(rewards.tensors) == ["token_level_rewards", "response_level_rewards", "scores"]
    assert rewards.tensors["scores"].dtype == torch.float32 and torch.equal(rewards.tensors["scores"], expected)
    assert torch.equal(rewards.tensors["response_level_rewards"], expected)
    assert rewards.tensors["scores"][1].item() == 0.7272727489471436  # float32 of 8/11
    assert torch.tensor(EIGHT_ELEVENTHS, dtype=torch.float16).item() == 0.72705078125  # what ROLL's float16 keeps
    token_level = rewards.tensors["token_level_rewards"]
    assert token_level.shape == data.batch["responses"].shape and token_level.dtype == torch.float32
    assert not token_level.any()  # ROLL puts response_level_rewards on the last token itself
    assert rewards.meta_info["metrics"] == {
        "flip/f1": [1.0, EIGHT_ELEVENTHS, 0.75, 1.0],
        "flip/failed": [0.0, 0.0, 0.0, 0.0],
        "flip/restatement_masked": [0.0, 0.0, 0.0, 0.0],
    }
    assert [info["inferred_instruction"] for info in rewards.meta_info["flip_results"]] == [
        SEA, "Write a short poem about the sea at night.", PEAKS, SEA
    ]  # fmt: skip
    asked = {judged_response(request): request["messages"][-1]["content"] for request in judge.requests}
    assert set(asked) == {"Waves roll in under a silver moon.", "Salt and spray at night.", "Snow on the peaks."}
    assert "system: You are a poet." in asked["Snow on the peaks."]
    assert "assistant: Hello! What shall I write?" in asked["Snow on the peaks."]


def test_one_sample_and_the_ground_truth_when_the_batch_has_no_messages(judge, tokenizer) -> None:
    one = roll_rows(tokenizer, [row("Salt and spray at night.")])
    rewards = asyncio.run(score_batch(one, tokenizer, options(judge)))
    assert torch.equal(rewards.tensors["scores"], float32(EIGHT_ELEVENTHS))
    assert rewards.tensors["token_level_rewards"].shape == one.batch["responses"].shape
    no_messages = roll_rows(tokenizer, [{"response": "Snow on the peaks.", "ground_truth": SEA, "tag": "flip"}])
    assert torch.equal(
        asyncio.run(score_batch(no_messages, tokenizer, options(judge))).tensors["scores"], float32(0.75)
    )
    messages = '[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]'
    assert row_prompt({"messages": objects([messages])}, 0) == json.loads(messages)
    assert row_prompt({"chat": objects([np.array(USER_SEA, dtype=object)])}, 0, "chat") == USER_SEA  # parquet arrays


def test_a_transient_judge_failure_is_retried_and_gets_the_right_reward(tokenizer) -> None:
    with ScriptedJudgeServer(FirstFails(ANSWERS)) as judge:  # one HTTP 500 per response, then its answer
        rewards = asyncio.run(score_batch(roll_rows(tokenizer, [row("Salt and spray at night.")]), tokenizer,
                                          options(judge, retries=1)))  # fmt: skip
        assert len(judge.requests) == 2
    assert torch.equal(rewards.tensors["scores"], float32(EIGHT_ELEVENTHS))
    assert rewards.meta_info["flip_results"][0]["error"] == ""


def test_failures_are_zero_with_the_error_and_never_raise(judge, tokenizer) -> None:
    data = roll_rows(
        tokenizer,
        [
            row("FAIL500"),
            row("Waves roll in under a silver moon.", messages='[{"role": "user", "content": '),  # cut-off JSON
            row("Waves roll in under a silver moon.", messages=json.dumps([{"role": "assistant", "content": "x"}])),
            row("Waves roll in under a silver moon."),
        ],
    )
    rewards = asyncio.run(score_batch(data, tokenizer, options(judge)))
    assert torch.equal(rewards.tensors["scores"], float32(0.0, 0.0, 0.0, 1.0))
    infos = rewards.meta_info["flip_results"]
    assert [info["error_type"] for info in infos] == ["judge", "input", "input", ""]
    outage = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    assert infos[0]["error"] == outage
    assert infos[1]["error"] == "messages: not a JSON list of messages (Expecting value: line 1 column 30 (char 29))"
    assert infos[2]["error"].startswith("prompt: ")
    assert rewards.meta_info["metrics"]["flip/failed"] == [1.0, 1.0, 1.0, 0.0]
    neither = roll_rows(tokenizer, [{"response": "Waves roll in under a silver moon.", "tag": "flip"}])
    [missing] = asyncio.run(score_batch(neither, tokenizer, options(judge))).meta_info["flip_results"]
    assert missing["error"] == "the batch has neither 'messages' nor 'ground_truth'"
    undecodable = asyncio.run(score_batch(data, None, options(judge)))  # no tokenizer: initialize never ran
    assert torch.equal(undecodable.tensors["scores"], float32(0.0, 0.0, 0.0, 0.0))
    assert undecodable.tensors["token_level_rewards"].shape == (4, 0)
    assert {info["error"] for info in undecodable.meta_info["flip_results"]} == {
        "responses: AttributeError: 'NoneType' object has no attribute 'batch_decode'"
    }
    bad_option = asyncio.run(score_batch(data, tokenizer, {**options(judge), "reward_metric": "x"}))
    assert {info["error_type"] for info in bad_option.meta_info["flip_results"][::3]} == {"config"}


def test_samples_are_traced_and_flip_reward_inspect_reads_the_trace(judge, tokenizer, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    data = roll_rows(
        tokenizer,
        [row("Waves roll in under a silver moon."), row("FAIL500"), row("Snow on the peaks.", messages="not json")],
    )
    rewards = asyncio.run(score_batch(data, tokenizer, options(judge)))
    assert [info["error_type"] for info in rewards.meta_info["flip_results"]] == ["", "judge", "input"]
    process_reward.process_trace().flush()
    [trace] = (tmp_path / "traces").iterdir()
    assert trace.name == f"samples.pid{os.getpid()}.jsonl"
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert sorted((line["response"], line["error_type"]) for line in lines) == [
        ("FAIL500", "judge"), ("Snow on the peaks.", "input"), ("Waves roll in under a silver moon.", None)
    ]  # fmt: skip
    overall = inspected_overall(trace, tmp_path / "report")
    assert (overall["completions"], overall["judge_error_rate"], overall["input_error_rate"]) == (3, 1 / 3, 1 / 3)


# --- the launcher: flip-reward launch roll ------------------------------------------------------------------------

# A stand-in for ROLL's examples/start_rlvr_pipeline.py, written for these tests: it reads its two arguments and
# composes the config the way ROLL's script does (Hydra, config_path relative to the script), then records what it
# got. It is not ROLL's code.
STAND_IN_PIPELINE = """
import argparse, json, os
from hydra import compose, initialize
from omegaconf import OmegaConf

parser = argparse.ArgumentParser()
parser.add_argument("--config_path")
parser.add_argument("--config_name")
args = parser.parse_args()
with initialize(config_path=args.config_path, version_base=None):
    config = OmegaConf.to_container(compose(config_name=args.config_name), resolve=True)
rows = [json.loads(line) for line in open(config["actor_train"]["data_args"]["file_name"][0])]
json.dump({"config": config, "rows": rows, "env": dict(os.environ)}, open(os.environ["RECORD_TO"], "w"))
"""


@pytest.fixture
def fake_roll(tmp_path) -> Path:
    """A folder shaped like a ROLL checkout whose pipeline script is the stand-in above."""
    script = tmp_path / "ROLL" / "examples" / "start_rlvr_pipeline.py"
    script.parent.mkdir(parents=True)
    script.write_text(STAND_IN_PIPELINE)
    return script.parents[1]


def launch(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess:
    """``flip-reward launch roll ARGS`` in ``tmp_path`` with ``environ`` added (no FLIP_/JUDGE_ variables)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("FLIP_", "JUDGE_"))}
    env.update(PYTHONPATH=str(REPO), **environ)
    command = [sys.executable, "-m", "flip_reward.cli", "launch", "roll", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_dry_run_renders_the_pipeline_command_and_the_flip_reward_domain(fake_roll, tmp_path) -> None:
    shape = ("--num-gpus", "4", "--judge-gpus", "3", "--prompts-per-step", "2", "--samples-per-prompt", "6")
    result = launch(tmp_path, "--dry-run", "--roll-dir", str(fake_roll), "--datasets", f"{SAMPLE} 4", *shape)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "roll: 3 training GPU(s); reward flip_reward.integrations.roll.FlipRewardWorker"
    run = tmp_path / "output" / "roll_grpo_flip"
    assert lines[2:5] == [
        f"data: {SAMPLE}: 24 rows -> 4 training rows",
        f"data: -> {run}/data/train.jsonl",
        f"config: {run}/config/flip_rlvr.yaml",
    ]
    assert lines[-1] == (
        "trainer: env CUDA_VISIBLE_DEVICES=0,1,2 HOSTED_VLLM_API_BASE=http://127.0.0.1:8001/v1 "
        "FLIP_JUDGE_MODEL=hosted_vllm/Qwen/Qwen3-4B FLIP_JUDGE_TIMEOUT=3600 FLIP_JUDGE_MAX_TOKENS=2048 "
        f"FLIP_JUDGE_TEMPERATURE=1.0 FLIP_JUDGE_MAX_CONTEXT=25000 PYTHONPATH={fake_roll}:{REPO} {sys.executable} "
        f"{fake_roll}/examples/start_rlvr_pipeline.py --config_path ../../output/roll_grpo_flip/config "
        "--config_name flip_rlvr"
    )
    import yaml

    config = yaml.safe_load("\n".join(line[4:] for line in lines[5:-1]))
    assert config["rewards"] == {
        "flip": {"worker_cls": "flip_reward.integrations.roll.FlipRewardWorker",
                 "model_args": {"model_name_or_path": "Qwen/Qwen3-4B"}, "data_args": {"template": "qwen3"},
                 "tag_included": ["flip"], "world_size": 1}
    }  # fmt: skip
    assert (config["rollout_batch_size"], config["num_return_sequences_in_group"]) == (2, 6)
    assert config["actor_train"]["training_args"]["gradient_accumulation_steps"] == 4  # 2 x 6 samples on 3 GPUs
    assert config["actor_train"]["device_mapping"] == "list(range(0,3))"
    assert not (tmp_path / "output").exists()


def test_a_run_writes_rolls_rows_and_yaml_and_runs_the_pipeline_script(fake_roll, tmp_path) -> None:
    """A real launch against the scripted judge (JUDGE_BASE_URL), the pipeline script being the stand-in: the data
    and YAML written, Hydra finding the YAML from the relative --config_path, the judge in the environment."""
    chat = tmp_path / "chat.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": SEA}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."},
                      {"role": "assistant", "content": "Blue."}]},
    ]  # fmt: skip
    chat.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as judge:
        common = ("--roll-dir", str(fake_roll), "--datasets", f"{chat} 1.0", "--num-gpus", "1", "--judge-base-url",
                  judge.base_url, "--judge-model", "hosted_vllm/scripted")  # fmt: skip
        too_few = launch(tmp_path, *common, "--prompts-per-step", "2", RECORD_TO=str(tmp_path / "record.json"))
        result = launch(tmp_path, *common, "--prompts-per-step", "1", RECORD_TO=str(tmp_path / "record.json"))
    # ROLL asserts more rows than rollout_batch_size (PROMPTS_PER_STEP) once its workers are up: refused before
    assert (too_few.returncode, too_few.stderr.strip()) == (
        2,
        "error: DATASETS gives 2 training rows; roll needs at least 3 (PROMPTS_PER_STEP=2)",
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["rows"] == [
        {"id": "1", "tag": "flip", "domain": "flip", "messages": json.dumps(rows[0]["messages"]), "ground_truth": SEA},
        {"id": "2", "tag": "flip", "domain": "flip", "messages": json.dumps(rows[1]["messages"][:4]),
         "ground_truth": "Name a colour."},
    ]  # fmt: skip
    assert record["config"]["rewards"]["flip"]["worker_cls"] == "flip_reward.integrations.roll.FlipRewardWorker"
    assert record["config"]["output_dir"] == str(tmp_path / "output" / "roll_grpo_flip")
    env = record["env"]
    assert (env["HOSTED_VLLM_API_BASE"], env["FLIP_JUDGE_MODEL"]) == (judge.base_url, "hosted_vllm/scripted")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(fake_roll)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--roll-dir", "nowhere"), "error: ROLL_DIR 'nowhere': no examples/start_rlvr_pipeline.py there (a checkout "
         "of github.com/alibaba/ROLL; ROLL is not on PyPI)"),
        (("--", "--lr", "3"), "error: ROLL's examples/start_rlvr_pipeline.py takes only --config_path and "
         "--config_name, not '--lr 3': its settings are the launcher's knobs (or edit "
         "OUTPUT_DIR/config/flip_rlvr.yaml and run the printed command)"),
        (("--roll-strategy", "deepspeed_train"), "error: --roll-strategy: must be one of fsdp2_train, "
         "megatron_train, got 'deepspeed_train'"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_with_one_line(fake_roll, tmp_path, args, error) -> None:
    result = launch(tmp_path, "--dry-run", "--roll-dir", str(fake_roll), *args)
    assert (result.returncode, result.stderr.strip().splitlines()[-1]) == (2, error)


def test_a_row_without_a_user_message_is_refused_naming_it() -> None:
    from flip_reward.data.rlvr import RowError
    from flip_reward.launch.roll import roll_row

    with pytest.raises(RowError, match="row 3: field 'messages': no user message"):
        roll_row({"messages": [{"role": "system", "content": "Be brief."}]}, 3)


# --- through ROLL's own code (ROLL_DIR) ----------------------------------------------------------------------------

ROLL_DIR = os.environ.get("ROLL_DIR", "")
ROLL_SKIP = (
    "ROLL_DIR is unset: ROLL (alibaba/ROLL) is not on PyPI; point ROLL_DIR at a checkout whose CPU import needs are "
    "installed (see this module's docstring) to run the worker through ROLL's Cluster"
)


def launcher_settings(roll_dir: str, tmp_path: Path, **environ: str):
    """The launcher's settings (flip_reward.launch.roll, as ``launch roll`` resolves them) for a small run."""
    from flip_reward.launch.roll import RollSettings

    environ = {"ROLL_DIR": roll_dir, "OUTPUT_DIR": str(tmp_path / "run"), "NUM_GPUS": "2", "JUDGE_GPUS": "1",
               "PROMPTS_PER_STEP": "2", "SAMPLES_PER_PROMPT": "4", "DATASETS": f"{SAMPLE} 4", **environ}  # fmt: skip
    return RollSettings.from_sources({}, environ)


def roll_config(settings, files):
    """The launcher's pipeline YAML read as ROLL's start_rlvr_pipeline.py reads it: composed by Hydra from its
    folder, resolved, then ``RLVRConfig`` by dacite (strict here: every key must be a field of ROLL's dataclasses)."""
    from dacite import Config, from_dict
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from roll.pipeline.rlvr.rlvr_config import RLVRConfig

    from flip_reward.launch.roll import CONFIG_NAME, config_files

    for path, text in config_files(settings, files).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    with initialize_config_dir(config_dir=str(files.config_dir), version_base=None):
        composed = OmegaConf.to_container(compose(config_name=CONFIG_NAME), resolve=True)
    return from_dict(data_class=RLVRConfig, data=composed, config=Config(strict=True))


@pytest.fixture(scope="module")
def roll_run(tmp_path_factory, tokenizer):
    """ROLL's reward Cluster of the launcher's FLIP domain on a CPU-only Ray cluster, initialized, with the scripted
    judge behind it, reached as in a launched run (``judge_env`` in the environment Ray's actors inherit):
    ``(cluster, judge, trace folder)``."""
    if not ROLL_DIR:
        pytest.skip(ROLL_SKIP)
    from flip_reward.launch.command_trainer import RunFiles, judge_env

    root = tmp_path_factory.mktemp("roll")
    tokenizer.save_pretrained(root / "policy")
    with pytest.MonkeyPatch.context() as patch, ScriptedJudgeServer(FirstFails(ANSWERS)) as judge:
        sys.path.insert(0, ROLL_DIR)
        paths = [str(REPO), ROLL_DIR, os.environ.get("PYTHONPATH", "")]
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))  # the Ray actors import both
        patch.setenv("ROLL_LOG_DIR", str(root / "logs"))
        settings = launcher_settings(ROLL_DIR, root, MODEL_NAME_OR_PATH=str(root / "policy"),
                                     JUDGE_BASE_URL=judge.base_url, JUDGE_MODEL="hosted_vllm/scripted")  # fmt: skip
        for name, value in judge_env(settings, judge.base_url).items():
            patch.setenv(name, value)
        patch.setenv("FLIP_RETRIES", "1")
        patch.setenv("FLIP_SAMPLE_LOG", str(root / "traces" / "samples.jsonl"))
        import ray
        from roll.distributed.executor.cluster import Cluster
        from roll.distributed.scheduler.resource_manager import ResourceManager
        from roll.utils.constants import RAY_NAMESPACE

        config = roll_config(settings, RunFiles(root / "data" / "train.jsonl", root / "config"))
        ray.init(num_cpus=2, include_dashboard=False, namespace=RAY_NAMESPACE, log_to_driver=False)
        try:
            cluster = Cluster(
                name="reward-flip",
                worker_cls=config.rewards["flip"].worker_cls,
                resource_manager=ResourceManager(num_gpus_per_node=0, num_nodes=1),
                worker_config=config.rewards["flip"],
            )
            cluster.initialize(pipeline_config=config)
            yield cluster, judge, root / "traces"
        finally:
            ray.shutdown()


def roll_data(tokenizer, rows: list[dict]):
    """ROLL's own DataProto of ``rows`` (see ``tensors_and_columns``), as its collator and rollout make it."""
    from roll.distributed.scheduler.protocol import DataProto

    tensors, columns = tensors_and_columns(tokenizer, rows)
    return DataProto.from_dict(tensors=tensors, non_tensors={key: list(value) for key, value in columns.items()})


def test_roll_cluster_scores_a_batch_through_the_worker(roll_run, tokenizer) -> None:
    cluster, judge, traces = roll_run
    data = roll_data(
        tokenizer,
        [
            row("Waves roll in under a silver moon."),
            row("Salt and spray at night.", messages=USER_SEA),
            row("Snow on the peaks.", messages=json.dumps(CHAT)),
            row("FAIL500"),  # 500 on every try (the others: one 500, then the answer, retried: FLIP_RETRIES=1)
        ],
    )
    rewards = cluster.compute_rewards(data=data)  # Dispatch.DP_MP_COMPUTE over the cluster's actors
    assert type(rewards).__name__ == "DataProto"
    assert torch.equal(rewards.batch["scores"], float32(1.0, EIGHT_ELEVENTHS, 0.75, 0.0))
    assert torch.equal(rewards.batch["response_level_rewards"], rewards.batch["scores"])
    assert rewards.batch["token_level_rewards"].shape == data.batch["responses"].shape
    infos = rewards.meta_info["flip_results"]
    assert [info["error_type"] for info in infos] == ["", "", "", "judge"]
    assert infos[3]["error"].endswith("failed: InternalServerError: HTTP 500: scripted outage")
    responses = ["Waves roll in under a silver moon.", "Salt and spray at night.", "Snow on the peaks.", "FAIL500"]
    assert [requests_for(judge, response) for response in responses] == [2, 2, 2, 2]  # each tried, retried once
    assert "system: You are a poet." in "".join(request["messages"][-1]["content"] for request in judge.requests)


def test_roll_per_prompt_call_and_the_reward_schedulers_concat(roll_run, tokenizer) -> None:
    """One prompt's responses sent to an actor as ROLL's rollout loop does (``compute_rewards.remote``), then the
    answer concatenated with a float16 rule worker's (ROLL's reward scheduler) and unioned into the request."""
    import ray
    from roll.distributed.scheduler.protocol import DataProto

    cluster, _, _ = roll_run
    request = roll_data(tokenizer, [row("Salt and spray at night.")])
    rewards = ray.get(cluster.workers[0].compute_rewards.remote(request))
    assert torch.equal(rewards.batch["scores"], float32(EIGHT_ELEVENTHS))
    assert rewards.meta_info["metrics"] == {"flip/f1": [EIGHT_ELEVENTHS], "flip/failed": [0.0],
                                            "flip/restatement_masked": [0.0]}  # fmt: skip
    half = torch.tensor([1.0], dtype=torch.float16)
    token_level = torch.zeros_like(request.batch["responses"], dtype=torch.float16)
    rule = DataProto.from_dict(tensors={"token_level_rewards": token_level, "response_level_rewards": half,
                                        "scores": half})  # fmt: skip
    both = DataProto.concat([rule, rewards])
    assert both.batch["scores"].tolist() == [1.0, 0.7272727489471436]  # promoted to float32: the F1 kept exact
    request.union(rewards)
    assert request.batch["scores"].item() == 0.7272727489471436


def test_roll_actor_traces_its_samples(roll_run, tokenizer) -> None:
    """FLIP_SAMPLE_LOG from the domain's system_envs: the actor writes its own file, named by its Ray actor id."""
    cluster, _, traces = roll_run
    cluster.compute_rewards(data=roll_data(tokenizer, [row("Snow on the peaks.")]))
    [trace] = wait_for(lambda: list(traces.glob("samples.*.jsonl")) if traces.exists() else [])
    assert trace.name != f"samples.pid{os.getpid()}.jsonl"
    lines = wait_for(lambda: [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()])
    assert {line["response"] for line in lines} >= {"Snow on the peaks."}


def wait_for(read, timeout: float = 30.0):
    """``read()`` once it is non-empty (the actor's trace is written by a background thread), else its last value."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := read()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


@pytest.mark.skipif(not ROLL_DIR, reason=ROLL_SKIP)
def test_roll_reads_the_launchers_yaml_into_its_own_config(tmp_path) -> None:
    """The YAML as ROLL's dataclasses take it (strict: no key ROLL lacks), found from the command's --config_path
    relative to ROLL's examples/; and the judge fields of ROLL's RewardConfig as the worker reads them."""
    sys.path.insert(0, ROLL_DIR)
    from roll.pipeline.rlvr.rlvr_config import RewardConfig

    from flip_reward.integrations.roll import judge_options
    from flip_reward.launch.command_trainer import RunFiles
    from flip_reward.launch.roll import roll_command

    settings = launcher_settings(ROLL_DIR, tmp_path)
    files = RunFiles(tmp_path / "run" / "data" / "train.jsonl", tmp_path / "run" / "config")
    config = roll_config(settings, files)
    flip = config.rewards["flip"]
    assert flip.worker_cls == "flip_reward.integrations.roll.FlipRewardWorker" and flip.device_mapping is None
    assert config.tag_2_domain == {"flip": "flip"} and flip.world_size == 1
    assert config.actor_train.data_args.file_name == [str(files.data)]
    assert config.actor_train.data_args.domain_interleave_probs == {"flip": 1.0}
    assert config.actor_infer.generating_args.num_return_sequences == 4 and config.rollout_batch_size == 2
    assert config.actor_infer.generating_args.max_new_tokens == 8192 and config.enable_reference is False
    command = roll_command(settings, files, "python", []).command
    config_path = command[command.index("--config_path") + 1]
    assert (Path(ROLL_DIR, "examples", config_path) / "flip_rlvr.yaml").resolve() == files.config_dir / "flip_rlvr.yaml"
    assert judge_options(flip) == {}  # the judge from the environment (judge_env)
    given = RewardConfig(judge_model_name="hosted_vllm/j", judge_api_url="http://127.0.0.1:9/v1", judge_api_key="k")
    assert judge_options(given) == {"judge_model": "hosted_vllm/j", "api_base": "http://127.0.0.1:9/v1", "api_key": "k"}
