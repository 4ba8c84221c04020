"""The restatement guard: ``mask_restatements`` on the corpus (tests/restatement_corpus.py) and its contract inside
``FlipReward``, against the scripted loopback judge (flip_reward.serving.scripted_judge). That server is a test
double, not a model: here it plays adversarial judges that copy back any restatement they can read.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest
from conftest import FAST_RETRIES
from hypothesis import given, settings
from hypothesis import strategies as st
from restatement_corpus import APPROXIMATE, BASES, ECHOES, FORMS, NATURAL, TRANSFORMS, caught, request_tokens
from restatement_corpus import restated_cases as all_restated_cases

from flip_reward.core.restatement import mask_restatements, request_flags, tokens_of
from flip_reward.core.reward import OFF_LOOP_CHARACTERS, FlipReward
from flip_reward.serving.scripted_judge import flip_answer, judged_response

# What the guard lets through, by design (see its module docstring): an instruction of 3 tokens or fewer inside a
# sentence, and a 60 % copy of a 2-token instruction (one word).
MISSED = {
    ("inline lead-in", "Write a haiku"),
    ("60% partial (start)", "Write a haiku"),
    ("60% partial (end)", "Write a haiku"),
}
ALL_CASES = all_restated_cases()
CASES = [case for case in ALL_CASES if (case.form, case.instruction) not in MISSED]
# R with only a restatement added: not the forms that also add words ("Sure! ... Here you go:") or re-encode R (JSON)
ADDED = [case for case in CASES if case.form not in ("inline lead-in", "JSON string")]
NATURALS = NATURAL + BASES
SLEEP = BASES[5][0]  # "Give me three tips for improving my sleep, and keep each tip under twenty words." (15 tokens)
TIPS = "1. Keep a fixed bedtime.\n2. No screens late."


def verdict(case) -> bool | None:
    masked, _ = mask_restatements(case.restated, case.instruction)
    return caught(masked, case.restated, case.clean, request_tokens(case.instruction))


def test_the_corpus_holds_every_form_and_its_rates_are_those_documented():
    assert len(FORMS) == 36 and len(APPROXIMATE) == 8 and len(ALL_CASES) == 364 and len(NATURALS) == 59
    verdicts = [verdict(case) for case in ALL_CASES]
    assert (verdicts.count(True), verdicts.count(False), verdicts.count(None)) == (288, 1, 75)
    assert {(c.form, c.instruction) for c, v in zip(ALL_CASES, verdicts) if v is False} < MISSED
    assert sum(mask_restatements(response, instruction)[1] > 0 for instruction, response in NATURALS) == 0


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.form}:{case.instruction[:24]}")
def test_every_restatement_is_masked_and_caught(case):
    """Masked, and what it added to the response's overlap with the request is gone (``caught``; None where the
    clean response already holds the instruction's words, as "Here is a poem about the sea")."""
    assert mask_restatements(case.restated, case.instruction)[1] > 0
    assert verdict(case) is not False, mask_restatements(case.restated, case.instruction)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if (c.form, c.instruction) in MISSED], ids=lambda c: c.form)
def test_what_the_guard_lets_through_is_what_its_docs_say(case):
    assert mask_restatements(case.restated, case.instruction) == (case.restated, 0)


@pytest.mark.parametrize("instruction, response", NATURALS, ids=lambda value: value[:24])
def test_natural_overlap_is_left_alone(instruction, response):
    assert mask_restatements(response, instruction) == (response, 0)


@pytest.mark.parametrize("instruction, response", TRANSFORMS, ids=lambda value: value[:24])
def test_answers_that_reproduce_the_material_they_were_given_are_left_alone(instruction, response):
    """The paragraph to correct, the text to complete, the quote to explain, the list to sort, the code to fix and
    the sentences asked for are material, not a restatement of the request."""
    assert mask_restatements(response, instruction) == (response, 0)


@pytest.mark.parametrize("instruction, response, left", ECHOES, ids=lambda value: value[:24])
def test_a_line_echoing_most_of_the_request_is_masked(instruction, response, left):
    assert mask_restatements(response, instruction)[0] == left


@pytest.mark.parametrize(
    "response, expected",
    [
        ("**Task:** Write a poem about the sea.\n\nWaves fold.", ("Waves fold.", 5)),
        ('Waves fold.\n\n> "WRITE A POEM\nabout the SEA!"', ("Waves fold.", 4)),
        ("Write a poem about the sea\nWaves fold.\nwrite a poem about the sea.", ("Waves fold.", 8)),
        ("```\nWrite a poem about the sea\n```\nWaves fold.", ("Waves fold.", 4)),
        ("You asked me to write a poem about the sea, so: waves fold.", ("so: waves fold.", 8)),
        ("Write, um, a poem, like, about the sea\nWaves fold.", ("Waves fold.", 6)),
        ("# Write a poem about the sea\nWaves fold.", ("Waves fold.", 4)),
        ("Here is a poem about the sea: waves fold.", ("Here is a poem about the sea: waves fold.", 0)),
        ("Write a poem about the ocean\nWaves fold.", ("Write a poem about the ocean\nWaves fold.", 0)),
    ],
)
def test_masked_counts_are_exact(response, expected):
    assert mask_restatements(response, "Write a poem about the sea") == expected


@pytest.mark.parametrize(
    "restated, count",
    [
        (
            "Give me, like, three tips, you know, for improving, well, my sleep,, I mean, and keep, like, each tip, "
            f"you know, under twenty, well, words.\n\n{TIPS}",
            25,
        ),
        (f"and keep each tip under twenty words. Give me three tips for improving my sleep,\n\n{TIPS}", 15),
        (f"Give me three tips for improving my something and keep each tip under twenty words.\n\n{TIPS}", 15),
        (f"Give me three tips for improving my and keep each tip under twenty words.\n\n{TIPS}", 14),
        (f"Give me three tips for improving my sleep, and\n\n{TIPS}", 9),
        (f"Give me three tips for improving my sleep, and keep each tip\n\n{TIPS}", 12),
        (f"// Give me three tips for improving my sleep, and keep each tip under twenty words.\n{TIPS}", 15),
        (f"## Give me three tips for improving my sleep, and keep\neach tip under twenty words.\n\n{TIPS}", 15),
        (f"Sure! Give me three tips for improving my sleep, um, and keep each tip under twenty words.\n{TIPS}", 17),
        (f"{TIPS}\n\n> Give me three tips for improving my sleep,\n> and keep each tip under twenty words.", 15),
    ],
    ids=["filler", "reordered", "word changed", "word dropped", "60%", "80%", "comment", "heading", "lead-in", "end"],
)
def test_approximate_copies_are_masked_exactly(restated, count):
    assert mask_restatements(restated, SLEEP) == (TIPS, count)


@pytest.mark.parametrize(
    "restated, count",
    [
        ("Write-a-poem-about-the-sea\nWaves fold.", 4),
        ("write_a_poem_about_the_sea\nWaves fold.", 4),
        ("Write\u200ba\u200bpoem\u200babout\u200bthe\u200bsea\nWaves fold.", 4),  # zero-width spaces
        ("W.r.i.t.e  a  p.o.e.m  a.b.o.u.t  t.h.e  s.e.a\nWaves fold.", 4),
        ("W r i t e  a  p o e m  a b o u t  t h e  s e a\nWaves fold.", 4),
        ("Wr\u0456te \u0430 \u0440\u043eem \u0430bout the se\u0430\nWaves fold.", 4),  # Cyrillic i, a, p, o
        ("\uff37\uff52\uff49\uff54\uff45 a po\u00adem about the \u200fsea\nWaves fold.", 4),  # fullwidth, soft hyphen
    ],
    ids=["hyphens", "underscores", "zero-width", "dotted letters", "spaced letters", "look-alikes", "NFKC and Cf"],
)
def test_disguised_copies_are_read_as_the_judge_reads_them(restated, count):
    assert mask_restatements(restated, "Write a poem about the sea") == ("Waves fold.", count)


def test_joined_words_split_only_into_the_instructions_words():
    vocabulary = {"write", "poem", "sea", "art"}
    text = "Write-a po\u00adem W r i t e s-e-a e-mail state-of-the-art U.S. \u0421\u0435\u0430 \uff37rite x y"
    assert [token for token, _, _ in tokens_of(text, vocabulary)] == [
        "writea", "poem", "write", "sea", "email", "stateoftheart", "us", "cea", "write", "x", "y"
    ]  # fmt: skip
    assert [token for token, _, _ in tokens_of(text)] == [
        "writea", "poem", "w", "r", "i", "t", "e", "sea", "email", "stateoftheart", "us", "cea", "write", "x", "y"
    ]  # fmt: skip
    honest = "I sent an e-mail about the state-of-the-art sea poem.\nWaves fold."
    assert mask_restatements(honest, "Write a poem about the sea") == (honest, 0)


def test_a_copy_inside_a_json_string_is_masked_escapes_splitting_words():
    restated = '{"task": "Give me three tips\\nfor improving my \\"sleep\\", and keep each tip under twenty words."}'
    assert mask_restatements(restated, SLEEP) == ('{"task":', 15)
    assert [token for token, _, _ in tokens_of('"sea.\\nWrite a \\"poem\\""')] == ["sea", "write", "poem"]


@pytest.mark.parametrize(
    "instruction, expected",
    [
        (
            "Summarize this article in one sentence: The council voted to expand the bike lanes.",
            "summarize this article in one sentence",
        ),
        (
            "Correct the grammar of the following paragraph.\n\nMy sister have two cat.",
            "correct grammar of following paragraph",
        ),
        ('Simplify "Most of the basic functions are inherited from this early OS."', "simplify"),
        ("Task: write a poem about the sea", "task write poem about sea"),  # a label is no request before material
        ("Translate 'good night, sleep well' into French.", "translate into french"),
        ("Rewrite this sentence in lowercase. THE MEETING STARTS AT NOON", "rewrite this sentence in lowercase"),
        ("Add punctuation to the following sentence where are you going", "add punctuation to following sentence"),
        ("Convert to uppercase hello world how are you today", "convert to uppercase"),
        ("Summarize the text below in two sentences.\nFocus on the causes.", "summarize text below in two sentences"),
        ("Explain this code", "explain this code"),  # names material it does not supply
    ],
)
def test_the_request_is_the_instruction_without_its_material(instruction, expected):
    found = tokens_of(instruction)
    assert " ".join(token for (token, _, _), flag in zip(found, request_flags(instruction, found)) if flag) == expected


def test_a_copy_of_the_whole_instruction_goes_with_its_material_but_the_material_alone_stays():
    instruction = "Correct the grammar of the following paragraph.\n\nMy sister have two cat. They sleeps all day."
    answer = "My sister has two cats. They sleep all day."
    assert mask_restatements(f"{instruction}\n\n{answer}", instruction) == (answer, 14)
    quoted = "My sister have two cat. They sleeps all day.\nFixed:\nMy sister has two cats. They sleep all day."
    assert mask_restatements(quoted, instruction) == (quoted, 0)


def test_a_short_instruction_inside_a_sentence_is_left_but_alone_on_its_line_is_masked():
    assert mask_restatements("I will write a haiku for you.", "Write a haiku") == ("I will write a haiku for you.", 0)
    assert mask_restatements("Autumn moon.\nWrite a haiku", "Write a haiku") == ("Autumn moon.", 2)


def test_a_long_response_of_repeated_copies_is_masked_whole():
    """54 copies of a 300-token instruction in a 32k-token response all go (the time per token, flat in the length,
    is measured by benchmarks/bench_restatement.py)."""
    instruction = " ".join(f"word{index}" for index in range(300))
    response = " ".join(f"word{index % 300}" for index in range(16_200)) + " " + "other " * 16_000
    masked, count = mask_restatements(response, instruction)
    assert (masked, count) == (("other " * 16_000).strip(), 16_200)


TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=300)  # lone surrogates, NULs, controls


@settings(max_examples=300, deadline=None)
@given(response=TEXT, instruction=TEXT, cut=st.integers(0, 300))
def test_any_strings_are_masked_without_raising(response, instruction, cut):
    """Property: for any strings (and a response that copies part of the instruction), the guard returns a string and
    a count, and the response unchanged when the count is 0."""
    for text in (response, instruction[:cut] + "\n" + response):
        masked, count = mask_restatements(text, instruction)
        assert isinstance(masked, str) and count >= 0
        assert count > 0 or masked == text


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
    """For a response R and R with a restatement added (and nothing else), the guarded reward of the second is never
    above that of R."""
    script.default = copier
    flip = make_flip(judge_server)
    restated = flip.score([case.instruction for case in ADDED], [case.restated for case in ADDED])
    clean = flip.score([case.instruction for case in ADDED], [case.clean for case in ADDED])
    for case, guarded, plain in zip(ADDED, restated, clean):
        assert guarded.reward <= plain.reward, (case.form, case.instruction, guarded.judged_response)
        assert guarded.restatement_masked > 0 and plain.restatement_masked == 0
    unguarded = make_flip(judge_server, restatement_guard=False)
    inflated = unguarded.score([case.instruction for case in ADDED], [case.restated for case in ADDED])
    assert sum(result.reward for result in inflated) > sum(result.reward for result in restated)


@pytest.mark.parametrize("copier", COPIERS, ids=lambda copier: copier.__name__)
def test_the_guard_changes_nothing_without_a_restatement(judge_server, script, copier):
    script.default = copier
    untouched = NATURALS + TRANSFORMS + [(case.instruction, case.clean) for case in CASES]
    prompts, responses = [instruction for instruction, _ in untouched], [response for _, response in untouched]
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
