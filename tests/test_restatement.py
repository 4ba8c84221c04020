"""The restatement guard: ``mask_restatements`` on the corpus (tests/restatement_corpus.py) and its contract inside
``FlipReward``, against the scripted loopback judge (flip_reward.serving.scripted_judge). That server is a test
double, not a model: here it plays adversarial judges that copy back any restatement they can read.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest
from conftest import FAST_RETRIES
from restatement_corpus import BASES, NATURAL, restated_cases

from flip_reward.core.restatement import mask_restatements, restated_runs, tokens_of, window_size
from flip_reward.core.reward import OFF_LOOP_CHARACTERS, FlipReward
from flip_reward.serving.scripted_judge import flip_answer, judged_response

CASES = restated_cases()
NATURALS = NATURAL + BASES


def tokens(text: str) -> list[str]:
    return [token for token, _, _ in tokens_of(text)]


def caught(response: str, instruction: str) -> bool:
    """Masked, and no restated run of the instruction left in what the judge would see."""
    masked, count = mask_restatements(response, instruction)
    wanted = tokens(instruction)
    return count > 0 and not restated_runs(tokens(masked), wanted, window_size(len(wanted)))


def rates() -> tuple[float, float]:
    """(catch rate over the restatements, false-positive rate over the natural overlaps) of the corpus."""
    catch = sum(caught(case.restated, case.instruction) for case in CASES) / len(CASES)
    false = sum(mask_restatements(response, instruction)[1] > 0 for instruction, response in NATURALS) / len(NATURALS)
    return catch, false


def test_corpus_is_large_enough_and_rates_are_those_documented():
    assert len(CASES) >= 40 and len(NATURALS) >= 40
    assert rates() == (1.0, 0.0)


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.form}:{case.instruction[:24]}")
def test_every_restatement_is_caught(case):
    assert caught(case.restated, case.instruction), mask_restatements(case.restated, case.instruction)


@pytest.mark.parametrize("instruction, response", NATURALS, ids=lambda value: value[:24])
def test_natural_overlap_is_left_alone(instruction, response):
    assert mask_restatements(response, instruction) == (response, 0)


@pytest.mark.parametrize(
    "response, expected",
    [
        ("**Task:** Write a poem about the sea.\n\nWaves fold.", ("Waves fold.", 5)),
        ('Waves fold.\n\n> "WRITE A POEM\nabout the SEA!"', ("Waves fold.", 4)),
        ("Write a poem about the sea\nWaves fold.\nwrite a poem about the sea.", ("Waves fold.", 8)),
        ("```\nWrite a poem about the sea\n```\nWaves fold.", ("Waves fold.", 4)),
        ("You asked me to write a poem about the sea, so: waves fold.", ("so: waves fold.", 8)),
        ("Here is a poem about the sea: waves fold.", ("Here is a poem about the sea: waves fold.", 0)),
    ],
)
def test_masked_counts_are_exact(response, expected):
    assert mask_restatements(response, "Write a poem about the sea") == expected


def test_a_short_instruction_inside_a_sentence_is_left_but_alone_on_its_line_is_masked():
    assert mask_restatements("I will write a haiku for you.", "Write a haiku") == ("I will write a haiku for you.", 0)
    assert mask_restatements("Autumn moon.\nWrite a haiku", "Write a haiku") == ("Autumn moon.", 2)


def test_matching_is_linear_in_the_response_length():
    instruction = " ".join(f"word{index}" for index in range(300))
    response = " ".join(f"word{index % 300}" for index in range(16_200)) + " " + "other " * 16_000
    started = time.perf_counter()
    masked, count = mask_restatements(response, instruction)
    assert time.perf_counter() - started < 2.0  # about 30 ms here; quadratic matching would take minutes
    assert (masked, count) == (("other " * 16_000).strip(), 16_200)


# ------------------------------------------------------------------------------------- FlipReward's contract


def copy_shown(request: dict) -> str:
    """An adversarial judge that infers the whole shown response (copies any restatement in it back)."""
    return flip_answer(judged_response(request))


def copy_longest_line(request: dict) -> str:
    """An adversarial judge that infers the longest line of the shown response (a restatement on its own line)."""
    lines = [line for line in judged_response(request).split("\n") if line.strip()] or [""]
    return flip_answer(max(lines, key=len))


COPIERS = [copy_shown, copy_longest_line]


def make_flip(server, **options) -> FlipReward:
    return FlipReward("hosted_vllm/judge", server.base_url, **{**FAST_RETRIES, "retries": 0, "cache": False, **options})


def without_latency(result) -> dict:
    """Every field but the measured wall time, which differs between two calls by nature."""
    return {name: value for name, value in asdict(result).items() if name != "latency_s"}


@pytest.mark.parametrize("copier", COPIERS, ids=lambda copier: copier.__name__)
def test_a_restatement_never_raises_the_reward(judge_server, script, copier):
    script.default = copier
    flip = make_flip(judge_server)
    restated = flip.score([case.instruction for case in CASES], [case.restated for case in CASES])
    clean = flip.score([case.instruction for case in CASES], [case.clean for case in CASES])
    for case, guarded, plain in zip(CASES, restated, clean):
        assert guarded.reward <= plain.reward, (case.form, case.instruction, guarded.judged_response)
        assert guarded.restatement_masked > 0 and plain.restatement_masked == 0
    unguarded = make_flip(judge_server, restatement_guard=False)
    inflated = unguarded.score([case.instruction for case in CASES], [case.restated for case in CASES])
    assert sum(result.reward for result in inflated) > sum(result.reward for result in restated)


@pytest.mark.parametrize("copier", COPIERS, ids=lambda copier: copier.__name__)
def test_the_guard_changes_nothing_without_a_restatement(judge_server, script, copier):
    script.default = copier
    prompts = [instruction for instruction, _ in NATURALS] + [case.instruction for case in CASES]
    responses = [response for _, response in NATURALS] + [case.clean for case in CASES]
    guarded = make_flip(judge_server).score(prompts, responses)
    unguarded = make_flip(judge_server, restatement_guard=False).score(prompts, responses)
    assert [without_latency(result) for result in guarded] == [without_latency(result) for result in unguarded]


def test_fields_report_what_the_judge_saw(judge_server, script):
    script.default = copy_shown
    response = "<think>plan</think>**Task:** Write a poem about the sea.\n\nWaves fold."
    [guarded] = make_flip(judge_server).score(["Write a poem about the sea"], [response])
    assert (guarded.restatement_masked, guarded.judged_response, guarded.inferred_instruction) == (
        5,
        "Waves fold.",
        "Waves fold.",
    )
    assert judged_response(judge_server.requests[-1]) == "Waves fold."
    [old] = make_flip(judge_server, restatement_guard=False).score(["Write a poem about the sea"], [response])
    shown = "**Task:** Write a poem about the sea.\n\nWaves fold."
    assert (old.restatement_masked, old.judged_response, judged_response(judge_server.requests[-1])) == (
        0,
        shown,
        shown,
    )
    assert old.reward > guarded.reward


def test_a_response_that_is_only_a_restatement_is_an_input_failure(judge_server, script):
    script.default = copy_shown
    flip = make_flip(judge_server)
    [result] = flip.score(["Write a poem about the sea"], ['<think>hm</think>"Write a poem about the sea."'])
    assert (result.reward, result.error_type, result.restatement_masked, result.judged_response) == (
        0.0,
        "input",
        4,
        None,
    )
    assert result.error == "response is empty once its restatement of the instruction is removed"
    assert judge_server.requests == []
    [bad_prompt] = flip.score([[]], ["Waves fold."])
    assert (bad_prompt.error_type, bad_prompt.restatement_masked, bad_prompt.judged_response) == ("input", 0, None)


def test_judge_and_parse_failures_keep_what_was_shown(judge_server, script):
    script.queue = ["no json here"]
    [result] = make_flip(judge_server).score(["Write a poem about the sea"], ["Write a poem about the sea\nWaves."])
    assert (result.error_type, result.restatement_masked, result.judged_response) == ("parse", 4, "Waves.")


def test_a_long_response_is_masked_the_same_off_the_event_loop(judge_server, script):
    """Past OFF_LOOP_CHARACTERS the guard runs on a worker thread; what the judge sees is the same."""
    script.default = copy_shown
    body = "Waves fold over the harbour wall. " * 600  # 20,400 characters
    restated = f"Write a poem about the sea.\n\n{body}"
    assert len(restated) > OFF_LOOP_CHARACTERS
    [result] = make_flip(judge_server, max_context_length=100_000).score(["Write a poem about the sea"], [restated])
    assert (result.restatement_masked, result.judged_response) == (4, body.strip())
    assert judged_response(judge_server.requests[-1]) == body.strip()
