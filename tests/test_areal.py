"""AReaL: ``flip_reward.integrations.areal.flip_reward_fn`` through AReaL's own ``AsyncRewardWrapper`` (its process
pool: each reward is computed in a forked worker process) and ``RLVRWorkflow`` / ``FlipRLVRWorkflow`` episodes
(areal 1.0.4 from PyPI, installed --no-deps, on CPU); ``flip-reward launch areal``'s rows, config and command, read by
the training script and composed by AReaL's own config loader.

Prompts are what RLVRWorkflow passes: ``tokenizer.decode`` of the chat-templated prompt tokens, special tokens kept
(the tiny model's ChatML tokenizer, and the same tokenizer given the Llama 3, Qwen3 and OLMo 3 templates and their
special tokens); completions end with the template's stop token. The judge is the scripted OpenAI-compatible server
on loopback (a test double); so is the inference engine that RLVRWorkflow asks for a completion (AReaL's SGLang and
vLLM engines need GPUs), which returns the scripted completion's tokens. Training itself (GPUs) is not run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from areal.api.cli_args import GenerationHyperparameters
from areal.api.io_struct import ModelResponse
from areal.api.reward_api import AsyncRewardWrapper
from areal.workflow.rlvr import RLVRWorkflow
from chat_template_support import TEMPLATES
from conftest import REPO
from serve_support import FirstFails, inspected_overall, requests_for

from flip_reward.integrations.areal import flip_reward_fn
from flip_reward.integrations.areal_train import own_arguments, training_rows, training_steps
from flip_reward.integrations.areal_workflow import FlipRLVRWorkflow, reward_budget_s
from flip_reward.launch.areal import RECIPE, ArealSettings, areal_command, areal_files
from flip_reward.launch.command_trainer import RunFiles, mixed_rows
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, judged_response
from flip_reward.training.tiny_model import build_tokenizer

SEA = "Write a poem about the sea."
WAVES = "Waves roll in under a silver moon."
MOUNTAINS = "Mountains rise above the clouds."
DOWN = "The judge never answers about this one."
ANSWERS = {
    WAVES: SEA,
    MOUNTAINS: "Write a poem about mountains.",
    DOWN: Reply("scripted outage", status=500),
}
SEA_CHAT = [{"role": "user", "content": SEA}]
SAMPLE = str(REPO / "data" / "sample_rlvr_flip.jsonl")


@pytest.fixture
def judge():
    with ScriptedJudgeServer(FirstFails(ANSWERS)) as server:
        yield server


@pytest.fixture(autouse=True)
def flip_env(judge, fresh_flip_reward, monkeypatch):
    """The judge as AReaL's processes read it (``FLIP_*``, ``HOSTED_VLLM_API_BASE``), set before the pool forks; each
    test's pools are shut down after it (AReaL's own atexit hook), so every test forks workers of its own."""
    monkeypatch.setenv("FLIP_JUDGE_MODEL", "hosted_vllm/scripted")
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)
    monkeypatch.setenv("FLIP_RETRIES", "1")
    yield
    AsyncRewardWrapper._atexit_shutdown_all()


def chatml():
    return build_tokenizer()


def with_template(name: str, bos: str, eos: str, specials: list[str]):
    """The tiny tokenizer with chat template ``name`` (tests/chat_templates) and its special tokens."""
    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens({"bos_token": bos, "eos_token": eos, "additional_special_tokens": specials})
    tokenizer.chat_template = (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")
    return tokenizer


def decoded_prompt(tokenizer, messages: list[dict], **switches: object) -> str:
    """The prompt as RLVRWorkflow passes it: the templated prompt's tokens decoded with their special tokens."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, **switches)["input_ids"]
    return tokenizer.decode(ids)


def rewards(samples: list[tuple[str, str, dict]], workers: int = 2) -> list[float]:
    """``(prompt, completion, row)`` samples scored concurrently through AReaL's AsyncRewardWrapper, as RLVRWorkflow
    calls it (token ids are not read by FLIP)."""
    wrapper = AsyncRewardWrapper(flip_reward_fn, max_workers=workers)

    async def gathered():
        return await asyncio.gather(*(wrapper(prompt, text, [1], [2], **row) for prompt, text, row in samples))

    return list(asyncio.run(gathered()))


def test_rewards_from_areals_process_pool_are_the_exact_f1_with_a_transient_failure_retried(judge) -> None:
    """The judge fails the first request about each response (FirstFails): FLIP_RETRIES=1 retries it."""
    prompt = decoded_prompt(chatml(), SEA_CHAT)
    assert prompt == f"<|im_start|>user\n{SEA}<|im_end|>\n<|im_start|>assistant\n"
    row = {"messages": SEA_CHAT, "answer": "unused", "query_id": 7}
    scored = rewards(
        [
            (prompt, f"{WAVES}<|im_end|>", row),
            (prompt, f"{MOUNTAINS}<|im_end|>", row),
            (prompt, f"{DOWN}<|im_end|>", row),
            (prompt, f"<think>The sea, at night.</think>\n\n{MOUNTAINS}<|im_end|><|endoftext|>", row),
        ]
    )
    assert scored == [1.0, 0.75, 0.0, 0.75]
    assert (requests_for(judge, WAVES), requests_for(judge, DOWN)) == (2, 2)  # FLIP_RETRIES=1: one retry each
    workers = AsyncRewardWrapper._executors[2]._processes
    assert workers and os.getpid() not in workers  # scored in AReaL's forked pool processes


def test_templated_prompts_of_real_chat_templates_give_the_row_instruction_and_the_bare_answer(judge) -> None:
    llama3 = with_template("llama3", "<|begin_of_text|>", "<|eot_id|>", ["<|start_header_id|>", "<|end_header_id|>"])
    qwen3 = with_template("qwen3", "<|endoftext|>", "<|im_end|>", ["<|im_start|>", "<think>", "</think>"])
    olmo3 = with_template("olmo3", "<|endoftext|>", "<|im_end|>", ["<|im_start|>", "<think>", "</think>"])
    chat = [
        {"role": "system", "content": "You are a poet."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! What shall I write?"},
        {"role": "user", "content": [{"type": "text", "text": SEA}]},  # content parts, as datasets may hold them
    ]
    text_chat = [*chat[:3], {"role": "user", "content": SEA}]
    llama_prompt = decoded_prompt(llama3, text_chat)
    assert llama_prompt.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a poet.")
    olmo_prompt, qwen_prompt = decoded_prompt(olmo3, SEA_CHAT), decoded_prompt(qwen3, SEA_CHAT)
    assert olmo_prompt.endswith("<|im_start|>assistant\n<think>")  # the template opens the thinking
    scored = rewards(
        [
            (llama_prompt, f"{WAVES}<|eot_id|>", {"messages": chat}),
            (qwen_prompt, f"<think>\nThe sea.\n</think>\n\n{MOUNTAINS}<|im_end|>", {"messages": SEA_CHAT}),
            (decoded_prompt(qwen3, SEA_CHAT, enable_thinking=False), f"{WAVES}<|im_end|>", {"messages": SEA_CHAT}),
            (olmo_prompt, f"The sea, calm.</think>\n{MOUNTAINS}<|im_end|>", {"messages": SEA_CHAT}),
            (olmo_prompt, "The sea, calm and still, and the moon", {"messages": SEA_CHAT}),  # cut off while thinking
            (llama_prompt, f"{MOUNTAINS}<|eot_id|>", {}),  # no messages: the instruction read from the prompt
        ]
    )  # fmt: skip
    assert scored == [1.0, 0.75, 1.0, 0.75, 0.0, 0.75]
    assert {judged_response(request) for request in judge.requests} == {MOUNTAINS, WAVES}  # the bare answers only
    contexts = [request["messages"][-1]["content"] for request in judge.requests]
    assert len({text for text in contexts if "user: Hi\n\nassistant: Hello! What shall I write?" in text}) == 2


def test_a_persistent_failure_or_a_bad_row_is_zero_never_an_exception_into_areal(judge, monkeypatch, tmp_path) -> None:
    """Each is 0.0 with its error, in the pool processes' traces (their log line: the next test)."""
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    prompt = decoded_prompt(chatml(), SEA_CHAT)
    scored = rewards(
        [
            (prompt, f"{DOWN}<|im_end|>", {"messages": SEA_CHAT}),
            (prompt, f"{WAVES}<|im_end|>", {"messages": json.dumps(SEA_CHAT)}),  # a JSON string, not messages
            ("Write a poem.", f"{WAVES}<|im_end|>", {}),  # no messages, and a prompt in no chat template
            (prompt, "<think>only thinking</think><|im_end|>", {"messages": SEA_CHAT}),
            (prompt, f"{WAVES}<|im_end|>", {"messages": [{"role": "assistant", "content": "no user turn"}]}),
            (prompt, None, {"messages": SEA_CHAT}),
        ],
        workers=3,  # a pool of its own (AReaL keeps one per size), forked with FLIP_SAMPLE_LOG set
    )
    assert scored == [0.0] * 6
    outage = f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"
    traced = [json.loads(line) for trace in (tmp_path / "traces").iterdir() for line in trace.read_text().splitlines()]
    assert sorted((line["error_type"], line["error"]) for line in traced) == [
        ("input", "completions must be a string, got NoneType"),
        ("input", "prompt: prompt has no user message"),
        ("input", "response is empty once reasoning is removed"),
        ("input", "the row has no 'messages' and the prompt gives no instruction: the prompt is in no known chat "
         "template (tried chatml, phi4, llama3, tulu, phi3, mistral, gemma, deepseek, granite, glm45, harmony, kimi)"),
        ("input", "the row's 'messages' must be a list of chat messages, got str"),
        ("judge", outage),
    ]  # fmt: skip


def test_the_failure_line_survives_areals_logging_reset() -> None:
    """AReaL's ``getLogger`` (every areal module calls it) gives logging a new root without handlers each time: a
    failure's line still reaches the process's stderr, where AReaL keeps a worker's log (a row with no instruction: no
    judge is asked)."""
    code = (
        "from flip_reward.integrations.areal import flip_reward_fn\n"
        "from areal.utils import logging as areal_logging\n"
        "areal_logging.getLogger('areal.workflow')\n"
        "print(flip_reward_fn('plain text', 'An answer.', [], [], messages='not a list'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (0, "0.0\n"), done.stderr
    assert done.stderr.splitlines()[-1] == (
        "FLIP reward 0.0 (input error): the row's 'messages' must be a list of chat messages, got str"
    )


def test_samples_are_traced_by_the_pool_process_and_flip_reward_inspect_reads_the_trace(
    judge, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    prompt = decoded_prompt(chatml(), SEA_CHAT)
    scored = rewards(
        [
            (prompt, f"{WAVES}<|im_end|>", {"messages": SEA_CHAT}),
            (prompt, f"{DOWN}<|im_end|>", {"messages": SEA_CHAT}),
            (prompt, f"{WAVES}<|im_end|>", {"messages": "not messages"}),
            (prompt, f"{MOUNTAINS}<|im_end|>", {"messages": SEA_CHAT}),
        ],
        workers=1,
    )
    assert scored == [1.0, 0.0, 0.0, 0.75]
    [worker] = AsyncRewardWrapper._executors[1]._processes
    [trace] = (tmp_path / "traces").iterdir()
    assert trace.name == f"samples.pid{worker}.jsonl" and worker != os.getpid()
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [(line["sample"], line["reward"], line["error_type"], line["response"]) for line in lines] == [
        (1, 1.0, None, WAVES),
        (2, 0.0, "judge", DOWN),
        (3, 0.0, "input", WAVES),
        (4, 0.75, None, MOUNTAINS),
    ]
    assert lines[2]["error"] == "the row's 'messages' must be a list of chat messages, got str"
    overall = inspected_overall(trace, tmp_path / "report")
    rates = (overall["judge_error_rate"], overall["input_error_rate"])
    assert (overall["completions"], overall["mean_reward"], *rates) == (4, 0.4375, 0.25, 0.25)


# --- through RLVRWorkflow ------------------------------------------------------------------------------------------


class ScriptedEngine:
    """Stands in for AReaL's inference engine (SGLang/vLLM need GPUs): ``agenerate`` answers the request's prompt
    tokens with ``completion``'s tokens, as a ModelResponse."""

    def __init__(self, tokenizer, completion: str):
        self.tokenizer, self.completion = tokenizer, completion

    async def agenerate(self, request) -> ModelResponse:
        tokens = self.tokenizer.encode(self.completion, add_special_tokens=False)
        return ModelResponse(
            input_tokens=list(request.input_ids),
            output_tokens=tokens,
            output_logprobs=[0.0] * len(tokens),
            output_versions=[0] * len(tokens),
            tokenizer=self.tokenizer,
        )


def episode_rewards(workflow, tokenizer, completions: list[str], row: dict) -> list[float]:
    async def episodes():
        return [await workflow.arun_episode(ScriptedEngine(tokenizer, text), row) for text in completions]

    return [float(result["rewards"][0]) for result in asyncio.run(episodes())]


def test_rlvr_workflow_scores_its_episodes_with_flip_reward_fn(judge) -> None:
    tokenizer = chatml()
    gconfig = GenerationHyperparameters(n_samples=1, max_new_tokens=32)
    row = {"messages": SEA_CHAT, "query_id": "q1"}
    completions = [f"{WAVES}<|im_end|>", f"{MOUNTAINS}<|im_end|>", f"{DOWN}<|im_end|>"]
    named = "flip_reward.integrations.areal.flip_reward_fn"
    plain = RLVRWorkflow(reward_fn=named, gconfig=gconfig, tokenizer=tokenizer)
    assert episode_rewards(plain, tokenizer, completions, row) == [1.0, 0.75, 0.0]
    assert plain.async_reward_fn.timeout_seconds == 15  # AReaL's default: too short for a loaded judge

    flip = FlipRLVRWorkflow(gconfig=gconfig, tokenizer=tokenizer, reward_workers=2)
    wrapper = flip.async_reward_fn
    budget = 60.0 * 2 + 20.0 + 30.0  # FLIP_JUDGE_TIMEOUT (default 60 s) per try, FLIP_RETRIES=1, back-off, margin
    assert (wrapper.reward_fn, wrapper.timeout_seconds, wrapper.max_retries, wrapper.max_workers) == (
        flip_reward_fn, budget, 0, 2
    )  # fmt: skip
    assert reward_budget_s() == budget
    assert episode_rewards(flip, tokenizer, completions, row) == [1.0, 0.75, 0.0]
    by_name = FlipRLVRWorkflow(
        reward_fn=named, gconfig=gconfig, tokenizer=tokenizer, reward_timeout_s=600, reward_workers=2
    )
    assert (by_name.async_reward_fn.reward_fn, by_name.async_reward_fn.timeout_seconds) == (flip_reward_fn, 600)
    assert episode_rewards(by_name, tokenizer, [f"{WAVES}<|im_end|>"], row) == [1.0]


def test_the_reward_function_is_picklable_by_reference() -> None:
    import pickle

    assert pickle.loads(pickle.dumps(flip_reward_fn)) is flip_reward_fn
    assert Path(sys.modules[flip_reward_fn.__module__].__file__).name == "areal.py"


# --- the launcher: its rows, AReaL's config and the training script ------------------------------------------------


def launch_plan(tmp_path: Path, *extra: str, **environ: str):
    """The launcher's files (written) and command for settings ``environ``, as ``flip-reward launch areal`` renders
    them (flip_reward.launch.areal; the run folder under ``tmp_path``)."""
    settings = ArealSettings.from_sources({}, {"OUTPUT_DIR": str(tmp_path / "run"), **environ})
    files = RunFiles(tmp_path / "run" / "data" / "train.jsonl", tmp_path / "run" / "config")
    for path, text in areal_files(settings, files).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return settings, files, areal_command(settings, files, "python", list(extra))


def areal_config_of(command: list[str]):
    """What AReaL's training script reads from ``command``: this script's options, and the GRPOConfig that AReaL's
    own loader composes (Hydra, the overrides, the structured config; ``load_expr_config`` less its saving of the
    config, whose stats logger imports wandb, swanlab and trackio)."""
    from areal.api.cli_args import GRPOConfig, parse_cli_args, to_structured_cfg
    from omegaconf import OmegaConf

    assert command[1:3] == ["-m", "flip_reward.integrations.areal_train"]
    from hydra.core.global_hydra import GlobalHydra

    own, rest = own_arguments(command[3:])
    try:
        composed, _ = parse_cli_args(rest)
    finally:
        GlobalHydra.instance().clear()  # AReaL's loader leaves Hydra initialized, which later composes refuse
    return own, OmegaConf.to_object(to_structured_cfg(composed, config_cls=GRPOConfig))


def saved_steps(config, steps_per_epoch: int, epochs: int) -> list[int]:
    """The global steps after which AReaL's own Saver (its frequency control, called as PPOTrainer calls it after
    each step) saves the model under ``config``."""
    from areal.api.io_struct import FinetuneSpec
    from areal.utils.saver import Saver

    batch = config.train_dataset.batch_size
    saver = Saver(config.saver, FinetuneSpec(epochs, steps_per_epoch * batch, batch))
    last = steps_per_epoch - 1
    return [step for step in range(epochs * steps_per_epoch)
            if saver.freq_ctl.check(epochs=int(step % steps_per_epoch == last), steps=1)]  # fmt: skip


def test_the_launchers_config_and_command_are_what_areals_own_config_loader_accepts(tmp_path, monkeypatch) -> None:
    from areal.api.alloc_mode import ModelAllocation
    from areal.api.cli_args import GRPOConfig, PPOActorConfig
    from areal.utils.data import allocate_balanced_mbs

    settings, files, trainer = launch_plan(tmp_path, "actor.optimizer.lr=2e-6", NUM_GPUS="8", JUDGE_GPUS="7")
    assert trainer.command == ["python", "-m", "flip_reward.integrations.areal_train", "--config",
                               f"{tmp_path}/run/config/areal_grpo.yaml", "actor.optimizer.lr=2e-6"]  # fmt: skip
    own, config = areal_config_of(trainer.command)
    assert (own.reward_timeout_s, own.reward_workers, own.enable_thinking) == (None, None, False)
    assert isinstance(config, GRPOConfig) and config.scheduler.type == "local"
    assert (config.rollout.backend, config.actor.backend, config.cluster.n_gpus_per_node) == (
        "sglang:d3p1t1", "fsdp:d4p1t1", 7
    )  # fmt: skip
    backends = (config.rollout.backend, config.actor.backend)
    assert [ModelAllocation.from_str(backend).backend for backend in backends] == ["sglang", "fsdp"]
    assert (config.gconfig.n_samples, config.gconfig.max_new_tokens, config.actor.optimizer.lr) == (8, 8192, 2e-6)
    assert (config.train_dataset.path, config.train_dataset.batch_size, config.train_dataset.max_length) == (
        str(files.data), 28, 2048
    )  # fmt: skip
    assert config.actor.kl_ctl == 0.0 and config.ref is None
    assert config.actor.scheduling_spec[0].gpu == 1 and config.saver.fileroot == f"{tmp_path}/run/areal"
    assert saved_steps(config, steps_per_epoch=5, epochs=2) == [4, 9]  # each epoch's end (AReaL's default: never)
    # AReaL's controller drops a rollout after rollout.request_timeout (its default 3600 s): the launcher gives it
    # AReaL's 3600 s for generation and the reward timeout of the workflow that runs in the trainer's environment
    # (the judge_env's FLIP_JUDGE_TIMEOUT=3600, FLIP_RETRIES=1 here: 3600 x 2 + 20 s of back-off + 30 s)
    monkeypatch.setenv("FLIP_JUDGE_TIMEOUT", "3600")
    workflow = FlipRLVRWorkflow(gconfig=config.gconfig, tokenizer=chatml(), reward_workers=1)
    assert config.rollout.request_timeout == 3600 + workflow.async_reward_fn.timeout_seconds == 3600 + 7250
    # AReaL's micro-batching of a minibatch (its default: one micro-batch, 14 sequences of 10k tokens at once)
    packed = allocate_balanced_mbs(config.actor.mb_spec, [10240, 10240, 3000, 4000, 3000, 500])
    assert [[int(index) for index in group] for group in packed] == [[0], [1], [2, 3, 4], [5]]
    assert (config.rollout.consumer_batch_size, config.actor.reward_norm.group_size, config.actor.temperature) == (
        28, 8, 1.0
    )  # fmt: skip
    assert config.tokenizer_path == config.sglang.model_path == "Qwen/Qwen3-4B" and config.rollout.trial_name == "run"

    # an override of a value AReaL's config repeats reaches every copy: the GRPO group AReaL normalizes rewards over
    # is the n_samples it generates, the batch it waits for the one its loader gives, the logprobs' temperature the
    # sampling one
    overrides = ["gconfig.n_samples=4", "train_dataset.batch_size=16", "gconfig.temperature=0.7",
                 "gconfig.max_new_tokens=1024", "experiment_name=other"]  # fmt: skip
    _, _, overridden = launch_plan(tmp_path, *overrides, NUM_GPUS="8", JUDGE_GPUS="7")
    _, config = areal_config_of(overridden.command)
    assert (config.actor.reward_norm.group_size, config.rollout.consumer_batch_size, config.actor.temperature,
            config.actor.max_new_tokens, config.saver.experiment_name) == (4, 16, 0.7, 1024, "other")  # fmt: skip
    # AReaL's local scheduler refuses a worker whose spec has no cmd (WorkerCreationError): a spec given in the
    # config replaces AReaL's default spec whole, so it must name AReaL's RPC server again
    [default_spec] = PPOActorConfig.__dataclass_fields__["scheduling_spec"].default_factory()
    assert [spec.cmd for spec in (*config.actor.scheduling_spec, *config.rollout.scheduling_spec)] == [
        default_spec.cmd
    ] * 2

    _, _, tuned = launch_plan(tmp_path, NUM_GPUS="4", JUDGE_GPUS="3", BETA="0.01", AREAL_ROLLOUT_GPUS="2",
                              AREAL_ROLLOUT_BACKEND="vllm", AREAL_REWARD_TIMEOUT="900", AREAL_REWARD_WORKERS="32",
                              AREAL_ENABLE_THINKING="1", SAVE_FREQ="2")  # fmt: skip
    own, config = areal_config_of(tuned.command)
    assert (own.reward_timeout_s, own.reward_workers, own.enable_thinking) == (900.0, 32, True)
    assert config.rollout.request_timeout == 3600 + 900
    assert (config.rollout.backend, config.actor.backend, config.vllm.max_model_len) == (
        "vllm:d2p1t1", "fsdp:d1p1t1", 2048 + 8192
    )  # fmt: skip
    assert config.actor.kl_ctl == 0.01 and config.ref.scheduling_strategy.target == "actor"
    assert config.ref.scheduling_spec[0].cmd == default_spec.cmd
    assert config.ref.mb_spec.max_tokens_per_mb == config.actor.mb_spec.max_tokens_per_mb == 2048 + 8192
    assert saved_steps(config, steps_per_epoch=5, epochs=2) == [1, 3, 4, 5, 7, 9]  # every 2 steps, and epochs' ends


def test_the_launchers_rows_load_in_the_training_script_and_score_in_the_workflow(tmp_path) -> None:
    """DATASETS as AReaL rows (the launcher's converter), loaded by the training script (datasets, AReaL's
    apply_chat_template for the length check), and one of them an episode of FlipRLVRWorkflow."""
    source = tmp_path / "chat.jsonl"
    chats = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SEA}],
        [{"role": "user", "content": "Rewrite this: " + "very long notes " * 60}],
    ]
    source.write_text("".join(json.dumps({"messages": chat}) + "\n" for chat in chats), encoding="utf-8")
    settings, files, _ = launch_plan(tmp_path, DATASETS=f"{source} 1.0", NUM_GPUS="2", JUDGE_GPUS="1",
                                     TRAIN_GPUS="0,1")  # fmt: skip
    assert mixed_rows(RECIPE, settings, files.data) == [f"data: {source}: 2 rows -> 2 training rows"]
    written = [json.loads(line) for line in files.data.read_text(encoding="utf-8").splitlines()]
    assert written == [{"messages": chats[0]}, {"messages": chats[1]}]
    tokenizer = chatml()
    rows = training_rows(str(files.data), tokenizer, 64, enable_thinking=False)
    assert [row["messages"] for row in rows] == [chats[0]]  # the long prompt left out, and said
    # AReaL's dataloader drops an incomplete batch: one row and PROMPTS_PER_STEP=28 is no step (the script exits 2
    # before AReaL starts its workers); with a batch of one, one step
    _, config = areal_config_of(areal_command(settings, files, "python", []).command)
    _, one = areal_config_of(areal_command(settings, files, "python", ["train_dataset.batch_size=1"]).command)
    assert (training_steps(rows, config.train_dataset), training_steps(rows, one.train_dataset)) == (0, 1)
    flip = FlipRLVRWorkflow(gconfig=GenerationHyperparameters(n_samples=1, max_new_tokens=32), tokenizer=tokenizer,
                            reward_workers=1)  # fmt: skip
    assert episode_rewards(flip, tokenizer, [f"{WAVES}<|im_end|>"], rows[0]) == [1.0]


def test_flip_reward_launch_areal_dry_run_prints_the_plan_and_refuses_a_node_with_one_training_gpu(tmp_path) -> None:
    ours = ("FLIP_", "JUDGE_", "AREAL_", "HOSTED_VLLM_API_BASE")
    env = {name: value for name, value in os.environ.items() if not name.startswith(ours)}
    common = [sys.executable, "-m", "flip_reward.cli", "launch", "areal", "--dry-run", "--datasets",
              f"{SAMPLE} 4", "--judge-base-url", "http://127.0.0.1:9/v1"]  # fmt: skip
    run = subprocess.run([*common, "--areal-reward-timeout", "900", "--", "gconfig.n_samples=4"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 3, run.stderr  # the plan is printed; the JUDGE_BASE_URL judge does not answer
    lines = run.stdout.splitlines()
    assert lines[0] == "areal: 8 training GPU(s); reward flip_reward.integrations.areal.flip_reward_fn"
    trainer = next(line for line in lines if line.startswith("trainer: "))
    assert trainer == (
        "trainer: env CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 HOSTED_VLLM_API_BASE=http://127.0.0.1:9/v1 "
        "FLIP_JUDGE_MODEL=hosted_vllm/Qwen/Qwen3-4B FLIP_JUDGE_TIMEOUT=3600 FLIP_JUDGE_MAX_TOKENS=2048 "
        f"FLIP_JUDGE_TEMPERATURE=1.0 FLIP_JUDGE_MAX_CONTEXT=25000 {sys.executable} -m "
        f"flip_reward.integrations.areal_train --reward-timeout-s 900 --config "
        f"{tmp_path}/output/grpo/config/areal_grpo.yaml gconfig.n_samples=4"
    )
    assert "    experiment_name: grpo" in lines and not (tmp_path / "output").exists()
    one = subprocess.run([*common, "--num-gpus", "2", "--judge-gpus", "1", "--judge-base-url", ""], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (one.returncode, one.stdout, one.stderr.strip()) == (
        2, "", "error: AReaL needs 2 training GPUs at least, one to generate and one to train; it has 1 "
        "(NUM_GPUS=2, JUDGE_GPUS=1, TRAIN_GPUS='')"
    )  # fmt: skip
