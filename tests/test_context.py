"""The context guard: over-long responses lose their middle and fit the judge's context window."""

from __future__ import annotations

import pytest

from flip_reward.core.context import ContextGuard, load_local_tokenizer


def test_short_response_untouched():
    guard = ContextGuard(max_context_length=1000, max_tokens=100)
    assert guard.fit("short reply", "system prompt") == "short reply"


def test_long_response_keeps_head_and_tail_with_heuristic():
    guard = ContextGuard(max_context_length=400, max_tokens=100, chars_per_token=3.0)
    response = "HEAD " + "x" * 5000 + " TAIL"
    fitted = guard.fit(response, "overhead " * 10)
    assert fitted.startswith("HEAD ") and fitted.endswith(" TAIL")
    assert "tokens omitted ...]" in fitted
    assert guard.count_tokens(fitted) <= guard.budget("overhead " * 10)


def test_missing_tokenizer_falls_back_to_estimate(tmp_path):
    guard = ContextGuard(max_context_length=400, max_tokens=100, tokenizer=str(tmp_path / "absent"))
    assert load_local_tokenizer(str(tmp_path / "absent")) is None
    assert guard.count_tokens("abcdef") == 3


def test_real_tokenizer_counts_and_trims(tiny_model_dir):
    guard = ContextGuard(max_context_length=300, max_tokens=50, tokenizer=str(tiny_model_dir))
    tokenizer = load_local_tokenizer(str(tiny_model_dir))
    response = "The start of the story. " + "The sea was calm and the night was long. " * 200 + "The end."
    fitted = guard.fit(response, "prompt around it")
    assert len(tokenizer.encode(fitted, add_special_tokens=False)) <= guard.budget("prompt around it")
    assert fitted.startswith("The start of the story.") and fitted.endswith("The end.")


def test_surely_fits_uses_bytes():
    guard = ContextGuard(max_context_length=100, max_tokens=10)
    assert guard.surely_fits("é" * 29)
    assert not guard.surely_fits("é" * 30)


@pytest.mark.parametrize("budget_words", [0, 1])
def test_degenerate_budget_still_returns_marker(budget_words):
    guard = ContextGuard(max_context_length=60, max_tokens=40)
    fitted = guard.fit("word " * 500, "o" * budget_words)
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
    fitted = guard.fit("海" * 12000, "prompt")
    assert "tokens omitted" in fitted and guard.count_tokens(fitted) <= guard.budget("prompt")
