"""slime: ``flip_reward.integrations.slime.flip_rm`` (``--custom-rm-path``, one sample or a ``--group-rm`` list) and
``POST /slime/reward`` of a real ``flip-reward serve`` (``--rm-type remote_rm``).

slime is not on PyPI. Against the checkout named by ``SLIME_DIR`` (skipped with the reason when unset), samples are
built by slime's own ``Dataset`` (its chat templating, label and metadata handling), scored through its own reward
dispatch (``slime.rollout.rm_hub.async_rm`` / ``batched_async_rm``) with arguments parsed by slime's own argument
declarations (tests/slime_support.py), and the remote form through slime's own ``remote_rm`` client. Without it, the
same functions are called with ``SampleShape``, the fields of slime's ``Sample``. Generation (SGLang) and training
(Megatron) need GPUs and are not run. The judge is the scripted OpenAI-compatible server (a test double).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from chat_template_support import TEMPLATES, render
from serve_support import (
    REPO,
    ResponseScript,
    ServeProcess,
    call,
    inspected_overall,
    metric,
    requests_for,
    scripted_judge_args,
)
from slime_support import NEEDS_SLIME, SampleShape, slime_dir, slime_parser, slime_script_flags

from flip_reward.integrations import process_reward
from flip_reward.integrations.slime import flip_group_rm, flip_rm
from flip_reward.serving.protocol import DEFAULT_READER
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer, judged_response

SEA = "Write a poem about the sea."
WAVES = "Waves roll in under a silver moon."
PEAKS = "Mountains rise above the clouds."
FLAKY = "The tide comes back twice a day."
ANSWERS = {
    WAVES: SEA,
    PEAKS: "Write a poem about mountains.",
    FLAKY: SEA,
    "FAIL500": Reply("scripted outage", status=500),
}
CHATML = f"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n{SEA}<|im_end|>\n<|im_start|>assistant\n"
HELLO = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
OK = {"f1": 1.0, "inferred_instruction": SEA, "error": "", "error_type": "", "restatement_masked": 0}


class FailsOnce(ResponseScript):
    """``ANSWERS``, but the first request about ``FLAKY`` gets an HTTP 500 (a transient judge failure)."""

    def __init__(self) -> None:
        super().__init__(ANSWERS)
        self.failed = False

    def __call__(self, request: dict) -> Reply | str:
        if judged_response(request) == FLAKY and not self.failed:
            self.failed = True
            return Reply("scripted blip", status=500)
        return super().__call__(request)


@pytest.fixture
def judge():
    with ScriptedJudgeServer(FailsOnce()) as server:
        yield server


pytestmark = pytest.mark.usefixtures("fresh_flip_reward")  # conftest: a new process's FLIP reward


def options(judge, retries: int = 0) -> dict:
    """What ``--custom-config-path``'s YAML puts in ``args.flip_reward``."""
    return {"judge_model": "hosted_vllm/scripted", "api_base": judge.base_url, "retries": retries, "backoff": 0.01}


def outage(judge) -> str:
    return f"judge hosted_vllm/scripted at {judge.base_url} failed: InternalServerError: HTTP 500: scripted outage"


def llama3(instruction: str) -> str:
    """A Llama 3.1 prompt (date preamble included) as transformers renders it for ``apply_chat_template``."""
    source = (TEMPLATES / "llama3.1.jinja").read_text(encoding="utf-8")
    return render(source, [{"role": "user", "content": instruction}], bos="<|begin_of_text|>")


async def each(args, samples: list) -> list:
    """``flip_rm`` awaited for each sample at once, as slime's rollout awaits one reward per finished sample."""
    return list(await asyncio.gather(*(flip_rm(args, sample) for sample in samples)))


# --- the documented shapes: flip_rm with Sample's fields ------------------------------------------------------------


def test_flip_rm_scores_every_prompt_shape_slime_gives_with_the_label_winning(judge) -> None:
    args = SimpleNamespace(flip_reward=options(judge))
    parts = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": SEA}]}]
    samples = [
        SampleShape(CHATML, WAVES + "<|im_end|>"),  # --apply-chat-template, ChatML; slime keeps the stop token
        SampleShape(llama3(SEA), PEAKS + "<|eot_id|>"),  # Llama 3.1
        SampleShape(SEA, WAVES),  # raw text (no --apply-chat-template)
        SampleShape(parts, WAVES),  # chat messages with content parts
        SampleShape(CHATML.replace(SEA, "Tell me something."), WAVES, label=SEA),  # the label is the instruction
        SampleShape([*HELLO, {"role": "user", "content": "Tell me something."}], WAVES, label=SEA),
        SampleShape(llama3("Tell me something."), WAVES, label=SEA),
    ]
    rewards = asyncio.run(each(args, samples))
    assert rewards == [1.0, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert samples[0].metadata == {"flip": OK}
    assert samples[1].metadata["flip"]["inferred_instruction"] == "Write a poem about mountains."
    history = [request["messages"][-1]["content"].partition("<history>\n")[2].partition("\n</history>")[0]
               for request in judge.requests if judged_response(request) == WAVES]  # fmt: skip
    assert sorted(history) == ["", "system: Be brief.", "user: Hi\n\nassistant: Hello!"]  # the label keeps them


def test_group_rm_form_returns_a_list_in_order_with_each_failure_in_its_metadata(judge) -> None:
    args = SimpleNamespace(flip_reward=options(judge))
    group = [
        SampleShape(CHATML, WAVES),
        SampleShape(CHATML, "FAIL500"),
        SampleShape(CHATML, PEAKS),
        SampleShape(None, WAVES),
        SampleShape(CHATML, "<|im_end|>"),
    ]
    assert asyncio.run(flip_group_rm(args, group)) == [1.0, 0.0, 0.75, 0.0, 0.0]
    assert asyncio.run(flip_rm(args, group[:3])) == [1.0, 0.0, 0.75]  # a fan-out's samples without --group-rm
    assert [sample.metadata["flip"]["error_type"] for sample in group] == ["", "judge", "", "input", "input"]
    assert group[1].metadata["flip"] == {
        "f1": 0.0, "inferred_instruction": "", "error": outage(judge), "error_type": "judge", "restatement_masked": 0
    }  # fmt: skip
    assert group[3].metadata["flip"]["error"] == "the prompt must be a string or a list of messages, got NoneType"
    assert group[4].metadata["flip"]["error"] == "response is empty once reasoning is removed"


def test_a_transient_judge_failure_is_retried_and_a_persistent_one_is_zero(judge) -> None:
    args = SimpleNamespace(flip_reward=options(judge, retries=2))
    flaky, down = SampleShape(CHATML, FLAKY), SampleShape(CHATML, "FAIL500")
    assert asyncio.run(flip_rm(args, [flaky, down])) == [1.0, 0.0]
    assert requests_for(judge, FLAKY) == 2 and requests_for(judge, "FAIL500") == 3
    assert flaky.metadata["flip"] == OK
    assert down.metadata["flip"]["error"] == outage(judge)


def test_the_judge_from_the_environment_and_bad_options_or_samples_are_failures(judge, monkeypatch) -> None:
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", judge.base_url)
    monkeypatch.setenv("FLIP_JUDGE_MODEL", "hosted_vllm/scripted")
    monkeypatch.setenv("FLIP_RETRIES", "0")
    assert asyncio.run(flip_rm(SimpleNamespace(), SampleShape(CHATML, WAVES))) == 1.0  # no --custom-config-path
    bad = [
        (SimpleNamespace(flip_reward="x"), SampleShape(CHATML, WAVES)),
        (SimpleNamespace(flip_reward={"reward_metric": "x"}), SampleShape(CHATML, WAVES)),
        (SimpleNamespace(), SampleShape(CHATML, 3)),
        (SimpleNamespace(), SampleShape(CHATML, WAVES, label={"answer": 1})),
        (SimpleNamespace(), SampleShape("<|im_start|>user\nunfinished", WAVES)),
    ]
    rewards = [asyncio.run(flip_rm(args, sample)) for args, sample in bad]
    assert rewards == [0.0] * 5
    assert [(sample.metadata["flip"]["error_type"], sample.metadata["flip"]["error"]) for _, sample in bad] == [
        ("config", "TypeError: args.flip_reward must be a mapping of FLIP options, got str"),
        ("config", "ValueError: reward_metric must be one of ('f1', 'precision', 'recall'), got 'x'"),
        ("input", "the response must be a string, got int"),
        ("input", "the label must be a string (the instruction) or null, got dict"),
        ("input", "no instruction: no label, and the prompt is in no known chat template (tried " + TRIED + ")"),
    ]


TRIED = ", ".join(DEFAULT_READER.names)


def test_samples_are_traced_and_flip_reward_inspect_reads_the_trace(judge, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FLIP_SAMPLE_LOG", str(tmp_path / "traces" / "samples.jsonl"))
    args = SimpleNamespace(flip_reward=options(judge))
    group = [SampleShape(CHATML, WAVES), SampleShape(CHATML, "FAIL500"), SampleShape(None, WAVES)]
    for sample in group:  # one at a time: the trace's order is the order they finish
        asyncio.run(flip_rm(args, sample))
    asyncio.run(flip_rm(SimpleNamespace(flip_reward=[]), SampleShape(CHATML, WAVES)))
    process_reward.process_trace().flush()
    [trace] = (tmp_path / "traces").iterdir()
    lines = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    assert [(line["sample"], line["reward"], line["error_type"]) for line in lines] == [
        (1, 1.0, None), (2, 0.0, "judge"), (3, 0.0, "input"), (4, 0.0, "config")
    ]  # fmt: skip
    assert lines[0]["prompt"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SEA}]
    overall = inspected_overall(trace, tmp_path / "report")
    rates = ("judge_error_rate", "config_error_rate", "input_error_rate")
    assert (overall["completions"], overall["mean_reward"], *(overall[rate] for rate in rates)) == (
        4, 0.25, 0.25, 0.25, 0.25
    )  # fmt: skip


# --- the remote form: POST /slime/reward of a real flip-reward serve ------------------------------------------------


@pytest.fixture(scope="module")
def remote():
    """``(service, judge)``: one flip-reward serve for this module's remote tests, judged by the scripted server."""
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as judge:
        with ServeProcess(*scripted_judge_args(judge)) as service:
            yield service, judge


def test_slime_reward_answers_one_object_with_reward_and_200_for_every_failure(remote) -> None:
    service, judge = remote

    def reward(prompt, response, label=None) -> tuple:
        return call(service.url, "/slime/reward", {"prompt": prompt, "response": response, "label": label})

    before = call(service.url, "/metrics")[1]
    answered, judge_errors = ('flip_serve_requests_total{endpoint="/slime/reward",status="200"}',
                              "flip_serve_judge_errors_total")  # fmt: skip

    assert reward(CHATML, WAVES + "<|im_end|>") == (200, {"reward": 1.0, **OK, "error": None, "error_type": None})
    assert reward(llama3("Tell me something."), PEAKS + "<|eot_id|>", SEA)[1]["reward"] == 0.75
    assert reward([{"role": "user", "content": SEA}], WAVES)[1]["reward"] == 1.0
    assert reward(SEA, WAVES)[1]["reward"] == 1.0
    assert reward(CHATML, "FAIL500") == (200, {
        "reward": 0.0, "f1": 0.0, "inferred_instruction": None, "error": outage(judge), "error_type": "judge",
        "restatement_masked": 0,
    })  # fmt: skip
    assert (
        reward(CHATML, WAVES, {"x": 1})[1]["error"] == "the label must be a string (the instruction) or null, got dict"
    )
    assert call(service.url, "/slime/reward", [CHATML]) == (
        400, {"error": "the body must be a JSON object, got list", "index": None, "field": None}
    )  # fmt: skip
    after = call(service.url, "/metrics")[1]
    assert counted(after, answered) - counted(before, answered) == 6
    assert counted(after, judge_errors) - counted(before, judge_errors) == 1


def counted(text: str, name: str) -> float:
    """The Prometheus sample ``name`` in ``text``, 0 before it was first counted."""
    return metric(text, name) if f"\n{name} " in text else 0.0


def test_slime_reward_is_200_while_the_judge_is_down() -> None:
    """A dead judge opens the breaker: /v1/score is refused with 503, /slime/reward still answers 200 (slime would
    retry, then stop training) with the breaker's message as the sample's error."""
    dead = "http://127.0.0.1:9/v1"
    with ServeProcess("--judge", "hosted_vllm/scripted", "--api-base", dead, "--retries", "0") as service:
        body = {"prompt": CHATML, "response": WAVES, "label": None}
        answers = [call(service.url, "/slime/reward", body) for _ in range(7)]
    assert {status for status, _ in answers} == {200}
    assert {answer["reward"] for _, answer in answers} == {0.0}
    assert answers[-1][1]["error"].startswith(f"judge hosted_vllm/scripted at {dead} is unreachable")


# --- through slime's own code (SLIME_DIR) ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slime():
    return slime_dir()


def slime_args(slime, *argv: str):
    """slime's namespace for ``argv`` (and the one argument slime requires), parsed by slime's own declarations."""
    args, unknown = slime_parser(slime).parse_known_args(["--rollout-batch-size", "8", *argv])
    assert unknown == []
    return args


def slime_samples(tmp_path, tokenizer, rows: list[dict], label_key: str | None = "label", **dataset_kwargs) -> list:
    """slime ``Sample``s of ``rows`` (its ``--input-key prompt --label-key label``), built by slime's own Dataset."""
    from slime.utils.data import Dataset

    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    dataset = Dataset(str(path), tokenizer, None, None, prompt_key="prompt", label_key=label_key, **dataset_kwargs)
    return list(dataset.samples)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@NEEDS_SLIME
def test_slime_rm_hub_calls_flip_rm_for_its_own_samples(slime, judge, tokenizer, tmp_path) -> None:
    from slime.rollout.rm_hub import async_rm, batched_async_rm

    args = slime_args(slime, "--custom-rm-path", "flip_reward.integrations.slime.flip_rm")
    group_args = slime_args(slime, "--custom-rm-path", "flip_reward.integrations.slime.flip_group_rm", "--group-rm")
    args.flip_reward = options(judge, retries=1)  # what --custom-config-path's YAML sets (slime_validate_args)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SEA}]
    templated = slime_samples(
        tmp_path, tokenizer, [{"prompt": chat, "label": SEA}, {"prompt": "Tell me something.", "label": SEA}],
        apply_chat_template=True,
    )  # fmt: skip
    assert templated[0].prompt == CHATML and templated[0].label == SEA
    raw = slime_samples(tmp_path, tokenizer, [{"prompt": SEA}, {"prompt": chat}], label_key=None)
    assert raw[0].prompt == SEA and raw[1].prompt == chat and raw[0].label is None
    for sample, response in zip([*templated, *raw], [WAVES, PEAKS, FLAKY, "FAIL500"]):
        sample.response = response + "<|im_end|>"

    group_args.flip_reward = args.flip_reward

    async def rewards():
        return [await async_rm(args, sample) for sample in templated], await batched_async_rm(group_args, raw)

    assert asyncio.run(rewards()) == ([1.0, 0.75], [1.0, 0.0])
    assert templated[0].metadata == {"flip": OK}
    assert raw[1].metadata["flip"]["error"] == outage(judge)
    assert requests_for(judge, FLAKY) == 2  # the transient failure, retried


@NEEDS_SLIME
def test_slime_remote_rm_posts_to_flip_reward_serve(slime, remote, tokenizer, tmp_path) -> None:
    service, judge = remote
    from slime.rollout import rm_hub

    url = service.url + "/slime/reward"
    args = slime_args(slime, "--rm-type", "remote_rm", "--rm-url", url, "--reward-key", "reward")
    chat = [{"role": "user", "content": "Tell me something."}]
    samples = slime_samples(tmp_path, tokenizer, [{"prompt": chat, "label": SEA}] * 3, apply_chat_template=True)
    for sample, response in zip(samples, [WAVES, PEAKS, "FAIL500"]):
        sample.response = response + "<|im_end|>"

    async def rewards():
        answers = [await rm_hub.async_rm(args, sample) for sample in samples]
        await rm_hub._get_shared_session().close()  # slime's client keeps one aiohttp session per process
        return answers

    failing = requests_for(judge, "FAIL500")  # this module's service: other tests asked about it before
    answers = asyncio.run(rewards())
    for sample, answer in zip(samples, answers):
        sample.reward = answer
    assert [sample.get_reward_value(args) for sample in samples] == [1.0, 0.75, 0.0]
    assert answers[2]["error"] == outage(judge) and answers[0]["error"] is None
    assert requests_for(judge, "FAIL500") == failing + 1  # answered 200 at once: slime's client did not post again


@NEEDS_SLIME
def test_slimes_own_plugin_contract_accepts_both_forms(slime, judge) -> None:
    """slime's plugin contract test (tests/plugin_contracts) for ``--custom-rm-path``, run by slime's own runner on
    flip_rm and, with ``--group-rm``, on flip_group_rm: the parameter names and what its dispatch returns."""
    contract = slime / "tests" / "plugin_contracts" / "test_plugin_path_loading_contracts.py"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOSTED_VLLM_API_BASE": judge.base_url,
           "FLIP_JUDGE_MODEL": "hosted_vllm/scripted", "FLIP_RETRIES": "0"}  # fmt: skip
    runs = [
        subprocess.Popen([sys.executable, str(contract), "--custom-rm-path", f"flip_reward.integrations.slime.{name}",
                          *flags, "-k", "custom_rm_path", "-p", "no:cacheprovider"],
                         cwd=slime, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, flags in (("flip_rm", ()), ("flip_group_rm", ("--group-rm",)))
    ]  # fmt: skip
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert all("1 passed" in output for output in outputs), outputs
    assert requests_for(judge, "response-3") == 1 and requests_for(judge, "response-0") == 1  # slime's own samples


# --- the launcher: flip-reward launch slime -------------------------------------------------------------------------

MODEL_SCRIPT = 'MODEL_ARGS=(\n   --num-layers 2\n   --rotary-base "${MODEL_ARGS_ROTARY_BASE:-10000}"\n)\n'
# Stands in for slime's train.py (GPU only) in a real launch: loads the --custom-rm-path function as slime's
# load_function does, scores the first row of --prompt-data with the response "Waves ..." and records what it saw.
STAND_IN_TRAIN = """
import asyncio, importlib, json, os, sys
from types import SimpleNamespace
argv = sys.argv[1:]
module, _, name = argv[argv.index("--custom-rm-path") + 1].rpartition(".")
row = json.loads(open(argv[argv.index("--prompt-data") + 1]).readline())
sample = SimpleNamespace(prompt=row["prompt"], label=row["label"], response=%r, metadata={})
reward = asyncio.run(getattr(importlib.import_module(module), name)(SimpleNamespace(), sample))
json.dump({"argv": argv, "reward": reward, "flip": sample.metadata["flip"], "row": row,
           "judge": os.environ["HOSTED_VLLM_API_BASE"]}, open(os.environ["RECORD_TO"], "w"))
""" % (WAVES + "<|im_end|>")


@pytest.fixture
def stand_in(tmp_path):
    """A stand-in slime checkout (train.py above, scripts/models/qwen3-4B.sh), a local Hugging Face directory and a
    dataset whose instruction is SEA; ``launch(*args, **environ)`` runs ``flip-reward launch slime`` in tmp_path."""
    (tmp_path / "slime" / "scripts" / "models").mkdir(parents=True)
    (tmp_path / "slime" / "train.py").write_text(STAND_IN_TRAIN)
    (tmp_path / "slime" / "scripts" / "models" / "qwen3-4B.sh").write_text(MODEL_SCRIPT)
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "config.json").write_text("{}")
    rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SEA}]}] * 3
    (tmp_path / "chats.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))

    def launch(*args: str, **environ: str) -> subprocess.CompletedProcess:
        env = {name: value for name, value in os.environ.items() if not name.startswith(("FLIP_", "JUDGE_", "SLIME"))}
        env.update(PYTHONPATH=str(REPO), SLIME_DIR="slime", MODEL_NAME_OR_PATH="policy", DATASETS="chats.jsonl 2")
        env.update(environ)
        command = [sys.executable, "-m", "flip_reward.cli", "launch", "slime", *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    return launch


def test_launch_slime_dry_run_prints_the_command_and_writes_nothing(stand_in, tmp_path) -> None:
    result = stand_in("--dry-run", "--num-gpus", "3", "--judge-gpus", "2", "--prompts-per-step", "4",
                      "--", "--tensor-model-parallel-size", "1", MODEL_ARGS_ROTARY_BASE="500")  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = tmp_path / "output" / "slime_grpo_flip"
    assert result.stdout.splitlines() == [
        "slime: 2 training GPU(s); reward flip_reward.integrations.slime.flip_rm",
        "judge: server: env CUDA_VISIBLE_DEVICES=2 vllm serve Qwen/Qwen3-4B --host 127.0.0.1 --port 8001 "
        "--max-model-len 25000 (log: output/slime_grpo_flip/judge/judge.log)",
        "data: chats.jsonl: 3 rows -> 2 training rows",
        f"data: -> {out}/data/train.jsonl",
        "trainer: env CUDA_VISIBLE_DEVICES=0,1 HOSTED_VLLM_API_BASE=http://127.0.0.1:8001/v1 "
        "FLIP_JUDGE_MODEL=hosted_vllm/Qwen/Qwen3-4B FLIP_JUDGE_TIMEOUT=3600 FLIP_JUDGE_MAX_TOKENS=2048 "
        "FLIP_JUDGE_TEMPERATURE=1.0 FLIP_JUDGE_MAX_CONTEXT=25000 PYTHONUNBUFFERED=1 CUDA_DEVICE_MAX_CONNECTIONS=1 "
        f"{sys.executable} {tmp_path}/slime/train.py --num-layers 2 --rotary-base 500 --actor-num-nodes 1 "
        "--actor-num-gpus-per-node 2 --colocate --rollout-num-gpus-per-engine 1 "
        f"--hf-checkpoint {tmp_path}/policy --load {tmp_path}/policy --save {out}/checkpoints --save-interval 50 "
        f"--prompt-data {out}/data/train.jsonl --input-key prompt --label-key label --apply-chat-template "
        "--rollout-shuffle --custom-rm-path flip_reward.integrations.slime.flip_rm --num-epoch 1 "
        "--rollout-batch-size 4 --n-samples-per-prompt 8 --global-batch-size 32 --rollout-max-prompt-len 2048 "
        "--rollout-max-response-len 8192 --rollout-temperature 1 --advantage-estimator grpo --lr 1e-06 --seed 1 "
        "--use-dynamic-batch-size --max-tokens-per-gpu 9216 --attention-dropout 0.0 --hidden-dropout 0.0 "
        "--sglang-mem-fraction-static 0.7 --tensor-model-parallel-size 1",
    ]
    assert not (tmp_path / "output").exists()
    ref = stand_in("--dry-run", "--slime-ref-load", "policy", "--with-tracking", MODEL_NAME_OR_PATH="Qwen/Qwen3-4B")
    assert ref.returncode == 0, ref.stderr
    assert f"--hf-checkpoint Qwen/Qwen3-4B --ref-load {tmp_path}/policy --load {out}/checkpoints " in ref.stdout
    assert ref.stdout.rstrip().endswith("--use-wandb --wandb-project flip-reward --wandb-group slime_grpo_flip")


@pytest.mark.parametrize(
    ("environ", "error"),
    [
        ({"SLIME_DIR": "nowhere"}, "SLIME_DIR: no train.py in 'nowhere': give the checkout of THUDM/slime "
         "(git clone https://github.com/THUDM/slime)"),
        ({"SLIME_MODEL_ARGS": "qwen9"},
         "SLIME_MODEL_ARGS: no script slime/scripts/models/qwen9.sh (slime's scripts/models)"),
        ({"MODEL_NAME_OR_PATH": "Qwen/Qwen3-4B"}, "MODEL_NAME_OR_PATH 'Qwen/Qwen3-4B' is no local Hugging Face "
         "directory, whose weights slime could load: give one, or SLIME_REF_LOAD (a Megatron checkpoint of it)"),
        ({"TEMPERATURE": "0"}, "TEMPERATURE must be > 0 for slime (0 is greedy decoding), got 0"),
        ({"SLIME_MODEL_ARGS": "chats.jsonl.sh"}, "SLIME_MODEL_ARGS: no script chats.jsonl.sh (slime's scripts/models)"),
    ],
)  # fmt: skip
def test_launch_slime_refuses_bad_settings_with_one_line(stand_in, environ, error) -> None:
    result = stand_in("--dry-run", **environ)
    assert (result.returncode, result.stdout, result.stderr.strip()) == (2, "", f"error: {error}")


def test_launch_slime_refuses_a_model_script_without_model_args(stand_in, tmp_path) -> None:
    (tmp_path / "slime" / "scripts" / "models" / "empty.sh").write_text("ARGS=(--x)\n")
    result = stand_in("--dry-run", SLIME_MODEL_ARGS="empty")
    assert (result.returncode, result.stderr.strip()) == (
        2, "error: SLIME_MODEL_ARGS: cannot read MODEL_ARGS from slime/scripts/models/empty.sh: it sets no MODEL_ARGS"
    )  # fmt: skip


def test_launch_slime_runs_train_py_whose_reward_reaches_the_judge_through_the_environment(stand_in, tmp_path) -> None:
    record = tmp_path / "record.json"
    with ScriptedJudgeServer(ResponseScript(ANSWERS)) as judge:
        result = stand_in("--num-gpus", "1", "--judge-model", "hosted_vllm/scripted", "--judge-base-url",
                          judge.base_url, RECORD_TO=str(record))  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen = json.loads(record.read_text())
    assert (seen["reward"], seen["flip"], seen["judge"]) == (1.0, OK, judge.base_url)
    assert seen["row"] == {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": SEA}],
                           "label": SEA}  # fmt: skip


@NEEDS_SLIME
def test_the_launchers_command_parses_with_slimes_own_arguments(slime, tiny_model_dir, tokenizer, tmp_path) -> None:
    """Every argument after train.py: slime's own (parsed by its declarations, values checked), or one its run scripts
    pass to Megatron and SGLang (their parsers need GPUs' packages); the written rows through slime's Dataset."""
    from flip_reward.launch import slime as launch_slime
    from flip_reward.launch.command_trainer import RunFiles, mixed_rows

    sample = REPO / "data" / "sample_rlvr_flip.jsonl"
    settings = launch_slime.SlimeSettings.from_sources(
        {}, {"SLIME_DIR": str(slime), "MODEL_NAME_OR_PATH": str(tiny_model_dir), "DATASETS": f"{sample} 3"}
    )
    files = RunFiles(tmp_path / "data" / "train.jsonl", tmp_path / "config")
    command = launch_slime.slime_command(settings, files, "python", ["--tensor-model-parallel-size", "1"]).command
    assert command[1] == str(slime / "train.py")
    args, unknown = slime_parser(slime).parse_known_args(command[2:])
    flags = {word for word in unknown if word.startswith("--")}
    assert flags and flags <= slime_script_flags(slime), flags - slime_script_flags(slime)
    assert "--num-layers" in flags and "--sglang-mem-fraction-static" in flags
    assert (args.custom_rm_path, args.input_key, args.label_key, args.apply_chat_template) == (
        "flip_reward.integrations.slime.flip_rm", "prompt", "label", True
    )  # fmt: skip
    assert (args.rollout_batch_size, args.n_samples_per_prompt, args.global_batch_size, args.colocate) == (
        28,
        8,
        224,
        True,
    )
    assert (args.prompt_data, args.hf_checkpoint, args.load) == (
        str(files.data),
        str(tiny_model_dir),
        str(tiny_model_dir),
    )
    mixed_rows(launch_slime.RECIPE, settings, files.data)
    samples = slime_samples(tmp_path, tokenizer, [json.loads(line) for line in files.data.read_text().splitlines()],
                            apply_chat_template=True)  # fmt: skip
    assert len(samples) == 3 and all(sample.prompt.endswith("<|im_start|>assistant\n") for sample in samples)
    assert all(sample.label and sample.label in sample.prompt for sample in samples)
