"""OpenRLHF: its own remote reward code (``openrlhf.utils.agent.SingleTurnAgentExecutor``, OpenRLHF 0.11 from PyPI,
installed without its GPU dependencies) against a real ``flip-reward serve`` process, retries included (the
launcher, ``flip-reward launch openrlhf``, is tested in test_launch_trainers.py).

The executor decodes prompt + response with the tiny model's tokenizer (special tokens kept) exactly as in
training; the vLLM engine it would generate with cannot run here, so a stand-in returns fixed response tokens. The
judge is the scripted server (a test double). OpenRLHF's experience maker imports vLLM at the top and does not
import here; what it does with the answer (``torch.tensor([value])`` for rewards, scores and each extra_logs
value) is checked on the answer instead.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
import torch
from conftest import free_port
from serve_support import ResponseScript, ServeProcess, call, metric

from flip_reward.serving.scripted_judge import ScriptedJudgeServer

agent = pytest.importorskip("openrlhf.utils.agent", reason="openrlhf is not installed (the 'openrlhf' extra)")

SEA = "Write a poem about the sea."
WAVES = "Waves roll in under a silver moon."


@pytest.fixture(scope="module")
def service():
    with ScriptedJudgeServer(ResponseScript({WAVES: SEA})) as judge:
        with ServeProcess("--judge", "hosted_vllm/scripted", "--api-base", judge.base_url, "--retries", "0") as process:
            yield process


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


class StandInEngine:
    """Stands in for OpenRLHF's vLLM engine (GPU only): 'generates' the given response text's tokens."""

    def __init__(self, tokenizer, response: str):
        self.tokens = tokenizer.encode(response + "<|im_end|>", add_special_tokens=False)

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        output = SimpleNamespace(token_ids=self.tokens, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[output])


def chat_prompt(tokenizer) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": SEA}], tokenize=False, add_generation_prompt=True)


def execute(url: str, tokenizer, label: str, response: str) -> dict:
    """One sample through OpenRLHF's single-turn executor, rewarded by ``url``."""
    executor = agent.SingleTurnAgentExecutor(url)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": SEA}], tokenize=False, add_generation_prompt=True
    )
    params = SimpleNamespace(max_tokens=64, logprobs=None)
    engine = StandInEngine(tokenizer, response)
    return asyncio.run(executor.execute(prompt, label, params, 4096, tokenizer, engine))


def test_openrlhf_executor_gets_flip_rewards_from_the_service(service, tokenizer) -> None:
    with_label = execute(service.url + "/get_reward", tokenizer, SEA, WAVES)
    without_label = execute(service.url + "/get_reward", tokenizer, "", WAVES)  # no --data.label_key: label ""
    other = execute(service.url + "/get_reward", tokenizer, SEA, "Mountains rise above the clouds.")
    assert with_label["reward"] == [1.0] and with_label["scores"] == [1.0]
    assert without_label["reward"] == [1.0]  # the instruction read back from the ChatML prompt
    assert other["reward"] == [0.0]
    assert with_label["extra_logs"]["flip_f1"] == [1.0]
    for output in (with_label, without_label, other):  # what OpenRLHF's experience maker does with them
        torch.tensor([output["reward"]]), torch.tensor([output["scores"]])
        assert all(torch.tensor([value]).numel() == 1 for value in output["extra_logs"].values())


def test_openrlhf_http_fetch_shards_a_batch_across_endpoints_in_order(service, tokenizer) -> None:
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": SEA}], tokenize=False, add_generation_prompt=True
    )
    queries = [prompt + WAVES + "<|im_end|>", prompt + "Something else.<|im_end|>", prompt + WAVES + "<|im_end|>"]
    executor = agent.SingleTurnAgentExecutor([service.url + "/get_reward"] * 2)
    answers = asyncio.run(executor._fetch_rewards_via_http(queries, [prompt] * 3, [SEA, SEA, ""]))
    assert [answer["rewards"] for answer in answers] == [[1.0, 0.0], [1.0]]


def test_openrlhf_retries_a_dead_judges_503_then_gives_up_and_the_sample_gets_no_reward(tokenizer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with ServeProcess("--judge", "hosted_vllm/scripted", "--api-base", dead, "--retries", "0") as service:
        prompt = "<|im_start|>user\n" + SEA + "<|im_end|>\n<|im_start|>assistant\n"
        items = [{"prompt": f"user: {SEA}", "response": f"Answer {n}."} for n in range(5)]
        assert call(service.url, "/v1/score", {"items": items})[0] == 503  # the breaker opens
        executor = agent.SingleTurnAgentExecutor(service.url + "/get_reward")
        with pytest.raises(RuntimeError, match="Request error for 5 times"):
            asyncio.run(executor._fetch_rewards_via_http([prompt + "x"], [prompt], [SEA]))
        text = call(service.url, "/metrics")[1]
        assert metric(text, 'flip_serve_requests_total{endpoint="/get_reward",status="503"}') == 5
        assert execute(service.url + "/get_reward", tokenizer, SEA, WAVES)["reward"] is None
