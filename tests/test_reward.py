"""FlipReward end to end against the scripted loopback judge (a test double with known answers and faults)."""

from __future__ import annotations

import asyncio
import pickle

import pytest
from conftest import FAST_RETRIES

from flip_reward import FlipResult, FlipReward
from flip_reward.core.reward import final_answer
from flip_reward.serving.scripted_judge import Reply, flip_answer, judged_response

INFERRED = {
    "Roses bloom in June.": flip_answer("Write a poem about roses", reasoning="A short rose poem."),
    "SELECT 1;": '```json\r\n{"REASONING": "SQL.", "INFERRED INSTRUCTION": "Write a SQL query"}\r\n```',
    "garbled": "I think the user wanted something, but I cannot say.",
}


def answer_by_response(request: dict) -> str:
    return INFERRED[judged_response(request)]


def make_flip(server, **options) -> FlipReward:
    return FlipReward("hosted_vllm/judge", server.base_url, **{**FAST_RETRIES, **options})


def test_rewards_are_f1_in_input_order(judge_server, script):
    script.default = answer_by_response
    prompts = ["Write a short poem about roses", [{"role": "user", "content": "Write a SQL query"}], "user: x"]
    results = make_flip(judge_server).score(prompts, ["Roses bloom in June.", "SELECT 1;", "garbled"])
    first, second, third = results
    assert (first.reward, first.precision, first.recall) == (pytest.approx(2 * 0.8 / 1.8), 1.0, 0.8)
    assert first.inferred_instruction == "Write a poem about roses"
    assert first.reasoning == "A short rose poem."
    assert (first.error, first.error_type) == (None, None)
    assert (second.reward, second.inferred_instruction) == (1.0, "Write a SQL query")
    assert (third.reward, third.error_type, third.inferred_instruction) == (0.0, "parse", None)
    assert third.error.startswith("no inferred instruction in judge output: 'I think the user")
    assert third.completion_tokens > 0


def test_reward_metric_can_be_recall(judge_server, script):
    script.default = answer_by_response
    [result] = make_flip(judge_server, reward_metric="recall").score(
        ["Write a short poem about roses"], ["Roses bloom in June."]
    )
    assert result.reward == 0.8 and result.f1 == pytest.approx(2 * 0.8 / 1.8)


def test_judge_sees_context_and_final_answer_only(judge_server, script):
    script.default = answer_by_response
    prompt = [
        {"role": "system", "content": "Be nice."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Write a poem about roses"},
    ]
    make_flip(judge_server).score([prompt], ["<think>roses are flowers</think><answer>Roses bloom in June.</answer>"])
    system, user = judge_server.requests[0]["messages"]
    assert system["role"] == "system" and "INFERRED INSTRUCTION" in system["content"]
    assert "<history>\nsystem: Be nice.\n\nuser: hi\n\nassistant: hello\n</history>" in user["content"]
    assert "<reply>\nRoses bloom in June.\n</reply>" in user["content"]
    assert "Write a poem about roses" not in user["content"] and "roses are flowers" not in user["content"]


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("plain", "plain"),
        ("<think>a</think> b <think>c</think>d", "b d"),
        ("<think>never closed", ""),
        ("<think>x</think><answer>42</answer> trailing", "42"),
        ("<answer>unterminated", "unterminated"),
        ("reasoning opened by the chat template</think>The answer.", "The answer."),
        ("x</think>y<think>z</think>w", "yw"),
    ],
)
def test_final_answer(response, expected):
    assert final_answer(response) == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [("still thinking, never closed", ""), ("thought</think>Answer", "Answer"), ("<think>a</think>B", "B")],
)
def test_final_answer_when_the_template_prefills_think(response, expected):
    assert final_answer(response, think_prefilled=True) == expected


def test_failures_never_raise(judge_server, script):
    script.default = lambda request: Reply(status=500)
    results = make_flip(judge_server, retries=1).score(
        ["Write a poem", "assistant: no user", "Write"], ["text", "text", "<think>unfinished"]
    )
    assert [r.error_type for r in results] == ["judge", "input", "input"]
    assert all(r.reward == 0.0 for r in results)
    assert results[1].error == "prompt: prompt has no user message"
    assert results[2].error == "response is empty once reasoning is removed"
    assert "InternalServerError" in results[0].error
    assert len(judge_server.requests) == 2


def test_length_mismatch_is_a_caller_error(judge_server):
    with pytest.raises(ValueError, match="got 2 prompts but 1 responses"):
        make_flip(judge_server).score(["a", "b"], ["x"])


def test_invalid_reward_metric():
    with pytest.raises(ValueError, match="reward_metric must be one of"):
        FlipReward("hosted_vllm/judge", "http://127.0.0.1:1/v1", reward_metric="bleu")


def test_structured_output_sends_flip_schema(judge_server, script):
    script.default = answer_by_response
    make_flip(judge_server, structured_output=True).score(["Write a poem about roses"], ["Roses bloom in June."])
    schema = judge_server.requests[0]["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["REASONING", "INFERRED INSTRUCTION"]


def test_score_inside_running_loop_and_pickled_copy(judge_server, script):
    script.default = answer_by_response
    flip = pickle.loads(pickle.dumps(make_flip(judge_server)))

    async def inside_loop():
        return flip.score(["Write a SQL query"], ["SELECT 1;"])

    [result] = asyncio.run(inside_loop())
    assert result.reward == 1.0
    [again] = asyncio.run(flip.ascore(["Write a SQL query"], ["SELECT 1;"]))
    assert again.cached and again.reward == 1.0


def test_result_dict_has_every_field():
    assert list(FlipResult(reward=0.5).to_dict()) == [
        "reward",
        "f1",
        "precision",
        "recall",
        "inferred_instruction",
        "restatement_masked",
        "judged_response",
        "replaced_surrogates",
        "reasoning",
        "error",
        "error_type",
        "latency_s",
        "prompt_tokens",
        "completion_tokens",
        "cached",
    ]


def test_judge_out_of_tokens_is_a_parse_failure_not_retried(judge_server, script):
    script.default = lambda request: Reply(content=None)
    [result] = make_flip(judge_server, max_tokens=64).score(["Write a poem"], ["Roses bloom in June."])
    assert (result.reward, result.error_type) == (0.0, "parse")
    assert result.error == "no inferred instruction in judge output: ''"
    assert result.completion_tokens == 64
    assert len(judge_server.requests) == 1


def test_sync_scoring_leaves_no_loop_state_behind(judge_server, script):
    from flip_reward.judge import loops

    script.default = answer_by_response
    flip = make_flip(judge_server)
    before = len(loops._registry)  # loops that live on (an adapter's judging loop from an earlier test) keep theirs
    for _ in range(5):
        flip.score(["Write a SQL query"], ["SELECT 1;"])
    assert len(loops._registry) == before
    for _ in range(3):  # asyncio.run shuts down async generators: the loop's share is closed with it
        asyncio.run(flip.ascore(["Write a SQL query"], ["SELECT 1;"]))
    assert len(loops._registry) == before


def test_python_users_get_the_same_configuration_errors(monkeypatch):
    """The CLI's up-front checks are FlipReward's (and the baselines') own: ValueError at construction."""
    from flip_reward.evaluation.baselines import ListwiseJudge

    with pytest.raises(ValueError, match=r"^max_tokens 4096 leaves too little of max_context_length 4096 "):
        FlipReward("hosted_vllm/judge", "http://127.0.0.1:9/v1", max_tokens=4096, max_context_length=4096)
    with pytest.raises(ValueError, match=r"the ListwiseJudge prompt takes about 435 tokens"):
        ListwiseJudge("hosted_vllm/judge", "http://127.0.0.1:9/v1", max_tokens=1000, max_context_length=1200)
    with pytest.raises(ValueError, match=r"^judge 'Qwen/Qwen3-4B' names no litellm provider"):
        FlipReward("Qwen/Qwen3-4B", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("HOSTED_VLLM_API_BASE", raising=False)
    with pytest.raises(ValueError, match=r"^judge 'hosted_vllm/judge' needs the base URL of its server"):
        FlipReward("hosted_vllm/judge")
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", "http://127.0.0.1:9/v1")
    assert FlipReward("hosted_vllm/judge").judge.endpoint.api_base == "http://127.0.0.1:9/v1"


CHATML_QUESTION = "Explain what <|im_start|> and <|im_end|> do in ChatML"


def test_an_instruction_about_chat_template_tokens_keeps_them(judge_server, script):
    """A judge that infers the instruction exactly, in the shape of a server that leaves its special tokens in the
    text, gets F1 1.0: the tokens inside the instruction are text, only the turn's header and end go."""
    script.default = lambda request: f"<|im_start|>assistant\n{flip_answer(CHATML_QUESTION)}<|im_end|>\n<|endoftext|>"
    [result] = make_flip(judge_server).score([CHATML_QUESTION], ["They open and close each turn."])
    assert (result.reward, result.inferred_instruction) == (1.0, CHATML_QUESTION)


def test_lone_surrogates_in_the_inputs_are_replaced_and_counted(judge_server, script, tmp_path):
    """Half an emoji (valid JSON "\\ud83d") in the earlier turns, the instruction and the response is U+FFFD by the
    time anything encodes it; the judge (scripted: it echoes the response) sees valid text; the disk cache keys it."""
    script.default = lambda request: flip_answer(judged_response(request))
    prompt = [
        {"role": "user", "content": "Hi \ud83d"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Write \ude00 a poem \ud83d\ude00"},
    ]
    flip = make_flip(judge_server, cache_dir=str(tmp_path / "cache"), restatement_guard=False)
    [result] = flip.score([prompt], ["Write \ud83d a poem \U0001f600"])
    assert (result.error, result.replaced_surrogates, result.judged_response) == (None, 3, "Write \ufffd a poem 😀")
    assert (result.inferred_instruction, result.f1) == ("Write \ufffd a poem 😀", 1.0)
    assert "user: Hi \ufffd" in judge_server.requests[-1]["messages"][-1]["content"]
    [again] = make_flip(judge_server, cache_dir=str(tmp_path / "cache"), restatement_guard=False).score(
        [prompt], ["Write \ud83d a poem \U0001f600"]
    )
    assert (again.cached, again.reward) == (True, 1.0)


def test_lone_surrogates_in_the_judge_answer_are_replaced(judge_server, script, tmp_path):
    """The scripted judge escapes half an emoji in its JSON answer, as a JSON encoder does: the inferred instruction
    and the reasoning hold U+FFFD, and the answer is cached on disk."""
    script.default = lambda request: (
        '{"REASONING": "An emoji \\ud83d.", "INFERRED INSTRUCTION": "Write a poem \\ude00"}'
    )
    flip = make_flip(judge_server, cache_dir=str(tmp_path / "cache"))
    [result] = flip.score(["Write a poem \ufffd"], ["Roses bloom."])
    assert (result.inferred_instruction, result.reasoning, result.reward) == (
        "Write a poem \ufffd",
        "An emoji \ufffd.",
        1.0,
    )
    [again] = make_flip(judge_server, cache_dir=str(tmp_path / "cache")).score(
        ["Write a poem \ufffd"], ["Roses bloom."]
    )
    assert (again.cached, again.inferred_instruction) == (True, "Write a poem \ufffd")
