"""The context guard: a whole judge request fits the judge's context window: the oldest turns of the history go
first, then over-long responses lose their middle. The end-to-end tests use the scripted loopback judge (a test
double that records the requests it is sent)."""

from __future__ import annotations

import pytest
from conftest import FAST_RETRIES

from flip_reward import FlipReward
from flip_reward.core.context import ContextGuard, estimate_tokens, joined, load_local_tokenizer
from flip_reward.core.conversation import split_turns
from flip_reward.evaluation.baselines import PairwiseJudge, PointwiseJudgeReward
from flip_reward.serving.scripted_judge import flip_answer, judged_response


def one_text(context: str, responses: list[str]) -> list[dict[str, str]]:
    """A request of nothing but a short header, the history text and the responses (for exact counts)."""
    return [{"role": "user", "content": "\n".join(["header", context, *responses])}]


def test_short_response_untouched():
    guard = ContextGuard(max_context_length=1000, max_tokens=100)
    assert guard.fit_request(one_text, [], ["short reply"]).responses == ["short reply"]


def test_long_response_keeps_head_and_tail_with_heuristic():
    guard = ContextGuard(max_context_length=400, max_tokens=100, chars_per_token=3.0)
    response = "HEAD " + "x" * 5000 + " TAIL"
    fitted = guard.fit_request(one_text, [], [response])
    [shown] = fitted.responses
    assert shown.startswith("HEAD ") and shown.endswith(" TAIL")
    assert "tokens omitted ...]" in shown
    assert guard.count_tokens(joined(fitted.messages)) <= 400 - 100


TURNS = [f"user: turn {index} " + "w" * 297 for index in range(10)]  # 100 estimated tokens each (+1 separator)


def test_the_oldest_turns_go_first_and_a_marker_says_how_many():
    guard = ContextGuard(max_context_length=1000, max_tokens=300)
    fitted = guard.fit_request(one_text, TURNS, ["A short answer."])
    context = fitted.messages[0]["content"].split("\n", 1)[1].rsplit("\n", 1)[0]
    assert fitted.omitted_turns == 4 and fitted.responses == ["A short answer."]
    assert context == "\n\n".join(["[... 4 earlier turns omitted ...]", *TURNS[4:]])
    assert estimate_tokens(joined(fitted.messages)) <= 1000 - 300


def test_a_response_too_long_by_itself_takes_the_whole_history_then_loses_its_middle():
    guard = ContextGuard(max_context_length=1000, max_tokens=300)
    fitted = guard.fit_request(one_text, TURNS[:3], ["HEAD " + "y" * 6000 + " TAIL"])
    assert fitted.omitted_turns == 3
    assert fitted.messages[0]["content"].startswith("header\n[... 3 earlier turns omitted ...]\nHEAD ")
    assert fitted.responses[0].endswith(" TAIL") and "tokens omitted ...]" in fitted.responses[0]
    assert estimate_tokens(joined(fitted.messages)) <= 1000 - 300


def test_a_history_that_fits_is_kept_whole_without_a_marker():
    guard = ContextGuard(max_context_length=3000, max_tokens=300)
    fitted = guard.fit_request(one_text, TURNS[:5], ["A short answer."])
    assert fitted.omitted_turns == 0 and "omitted" not in fitted.messages[0]["content"]


def test_missing_tokenizer_falls_back_to_estimate(tmp_path):
    guard = ContextGuard(max_context_length=400, max_tokens=100, tokenizer=str(tmp_path / "absent"))
    assert load_local_tokenizer(str(tmp_path / "absent")) is None
    assert guard.count_tokens("abcdef") == 3


def test_real_tokenizer_counts_and_trims(tiny_model_dir):
    guard = ContextGuard(max_context_length=300, max_tokens=50, tokenizer=str(tiny_model_dir))
    tokenizer = load_local_tokenizer(str(tiny_model_dir))
    response = "The start of the story. " + "The sea was calm and the night was long. " * 200 + "The end."
    fitted = guard.fit_request(one_text, ["user: Hi there. " * 30, "assistant: Hello! " * 30], [response])
    assert len(tokenizer.encode(joined(fitted.messages), add_special_tokens=False)) <= 300 - 50
    assert fitted.omitted_turns == 2
    assert fitted.responses[0].startswith("The start of the story.") and fitted.responses[0].endswith("The end.")


def test_surely_fits_uses_bytes():
    guard = ContextGuard(max_context_length=100, max_tokens=10)
    assert guard.surely_fits("é" * 29)
    assert not guard.surely_fits("é" * 30)


@pytest.mark.parametrize("budget", [0, 1])
def test_degenerate_budget_still_returns_marker(budget):
    guard = ContextGuard(max_context_length=60, max_tokens=40)
    fitted = guard.fit_within("word " * 500, budget)
    assert "tokens omitted" in fitted and len(fitted) < 200


def test_guard_for_a_judge_uses_its_own_tokenizer_when_local(tiny_model_dir):
    from flip_reward.judge.client import Judge, JudgeConfig

    local = Judge(JudgeConfig(model=f"hosted_vllm/{tiny_model_dir}", api_base="http://127.0.0.1:9/v1"))
    guard = ContextGuard.for_judge(local, max_context_length=300)
    assert guard.tokenizer == str(tiny_model_dir)
    assert guard.count_tokens("The sea was calm.") == len(
        load_local_tokenizer(str(tiny_model_dir)).encode("The sea was calm.", add_special_tokens=False)
    )
    remote = Judge(JudgeConfig(model="hosted_vllm/Org/Not-Cached-Anywhere", api_base="http://127.0.0.1:9/v1"))
    assert ContextGuard.for_judge(remote, 300).count_tokens("abcdef") == 3
    assert ContextGuard.for_judge(remote, 300, tokenizer=str(tiny_model_dir)).tokenizer == str(tiny_model_dir)


@pytest.mark.parametrize(("text", "expected"), [("abcdef", 3), ("2026-11-26", 0 + 8 + 1), ("你好世界", 4 + 1), ("", 1)])
def test_estimate_is_high_for_digits_and_non_ascii(text, expected):
    from flip_reward.core.context import estimate_tokens

    assert estimate_tokens(text) == expected


def test_cjk_response_is_trimmed_without_a_tokenizer():
    guard = ContextGuard(max_context_length=8192, max_tokens=2048)
    fitted = guard.fit_request(one_text, [], ["海" * 12000])
    assert "tokens omitted" in fitted.responses[0] and guard.count_tokens(joined(fitted.messages)) <= 8192 - 2048


LONG_CHAT = [
    *(
        message
        for index in range(60)
        for message in (
            {"role": "user", "content": f"Question {index}: " + "tell me more about the sea " * 250},
            {"role": "assistant", "content": f"Answer {index}: " + "the sea is wide and deep " * 250},
        )
    ),
    {"role": "user", "content": "Now write a haiku about the sea."},
]  # about 90k tokens of history by the estimate


def test_flip_fits_a_90k_token_history_into_a_4k_judge(judge_server, script):
    script.default = lambda request: flip_answer("Now write a haiku about the sea.")
    flip = FlipReward(
        "hosted_vllm/judge", judge_server.base_url, max_context_length=4096, max_tokens=512, **FAST_RETRIES
    )
    [result] = flip.score(
        [LONG_CHAT], ["Waves fold into foam,\nsalt wind on the quiet shore,\nthe tide keeps its time."]
    )
    [request] = judge_server.requests
    sent = joined(request["messages"])
    assert estimate_tokens(LONG_CHAT[0]["content"]) * 120 > 90_000
    assert estimate_tokens(sent) <= 4096 - 512
    last_turn = f"assistant: {LONG_CHAT[-2]['content'].strip()}"  # ~2,250 tokens: the only turn that fits
    assert f"<history>\n[... 119 earlier turns omitted ...]\n\n{last_turn}\n</history>" in sent
    assert judged_response(request) == result.judged_response == result.judged_response.strip()
    assert (result.reward, result.error) == (1.0, None)


@pytest.mark.parametrize(("judge_type", "answers"), [(PointwiseJudgeReward, 1), (PairwiseJudge, 2)])
def test_the_baselines_fit_the_whole_request_too(judge_type, answers):
    judge = judge_type("hosted_vllm/judge", "http://127.0.0.1:9/v1", max_context_length=4096, max_tokens=512)
    history, instruction = split_turns(LONG_CHAT)
    shown = ["A haiku.", "Another haiku."][:answers]
    messages = judge.judge_messages(history, instruction, shown)
    assert estimate_tokens(joined(messages)) <= 4096 - 512
    assert "[... 119 earlier turns omitted ...]" in joined(messages)
    assert all(f"\n{text}\n" in joined(messages) for text in [instruction, *shown])


def test_an_unusable_flip_tokenizer_is_one_warning_and_the_estimate(tmp_path, tiny_model_dir, caplog):
    """The plugin path (open-instruct, verl): FLIP_TOKENIZER is never refused (a training run goes on), but one
    WARNING says which variable and why, however many rewards are built; a usable one says nothing."""
    from flip_reward.core.settings import FlipSettings

    absent = str(tmp_path / "absent")
    with caplog.at_level("INFO", logger="flip_reward"):
        for _ in range(2):
            options = FlipSettings.from_env({"FLIP_TOKENIZER": absent}).reward_options("hosted_vllm/judge")
        FlipSettings.from_env({"FLIP_TOKENIZER": str(tiny_model_dir)}).reward_options("hosted_vllm/judge")
    assert options["tokenizer"] == absent
    assert [(record.levelname, record.getMessage()) for record in caplog.records if record.levelname != "INFO"] == [
        (
            "WARNING",
            f"FLIP_TOKENIZER {absent} cannot be used: no such directory, nor a hub tokenizer of that name in the local "
            "Hugging Face cache; the context guard estimates tokens from characters instead",
        )
    ]
