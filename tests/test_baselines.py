"""The LLM-as-a-judge baselines: parsers on malformed judge output (exact values), and the judges end to end against
the scripted loopback judge (a test double with known answers and faults)."""

from __future__ import annotations

import pickle

import pytest
from conftest import FAST_RETRIES
from scripted_verdicts import Verdicts, answer, shown, tagged

from flip_reward import (
    ListwiseJudge,
    PairwiseJudge,
    PointwiseJudgeReward,
    PointwiseResult,
    parse_best_index,
    parse_better_response,
    parse_score,
)
from flip_reward.core.context import OMISSION_MARKER
from flip_reward.serving.scripted_judge import Reply

SCORES = [
    ('{"REASONING": "Correct and complete.", "SCORE": 8}', 8.0),
    ('{"REASONING": "x", "SCORE": 10}', 10.0),
    ('{"REASONING": "x", "SCORE": 1}', 1.0),
    ('{"SCORE": 7.5}', 7.5),
    ('{"SCORE": "7/10"}', 7.0),
    ('{"SCORE": "7 out of 10"}', 7.0),
    ('{"SCORE": " 6 "}', 6.0),
    ('{"SCORE": "**9**"}', 9.0),
    ('{"rating": 6}', 6.0),
    ('{"score": 3}', 3.0),
    ('```json\n{"REASONING": "Fine.", "SCORE": 9}\n```', 9.0),
    ('Here is my verdict:\n{"REASONING": "Fine.", "SCORE": 4}\nThanks.', 4.0),
    ("REASONING: mostly right\nSCORE: 6", 6.0),
    ("**Score:** 8/10", 8.0),
    ('<think>SCORE: 2 maybe</think>{"SCORE": 9}', 9.0),
    ('{"REASONING": "It says 10/10 is deserved", "SCORE": 4', 4.0),
    ("{'REASONING': 'single quotes', 'SCORE': 5,}", 5.0),
    ('{"SCORE": 0}', None),
    ('{"SCORE": 11}', None),
    ('{"SCORE": -3}', None),
    ('{"SCORE": 10.5}', None),
    ('{"SCORE": "3/5"}', None),
    ('{"SCORE": "high"}', None),
    ('{"SCORE": "8 (very good)"}', None),
    ('{"SCORE": "NaN"}', None),
    ('{"SCORE": true}', None),
    ('{"SCORE": null}', None),
    ('{"SCORE": [8]}', None),
    ('{"SCORE": {"value": 8}}', None),
    ("<think>unfinished SCORE: 3", None),
    ('{"REASONING": "no score key"}', None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), SCORES)
def test_parse_score(text, expected):
    assert parse_score(text) == expected


BETTER = [
    ('{"REASONING": "A is right.", "BETTER_RESPONSE": "A"}', "A"),
    ('{"BETTER_RESPONSE": "b"}', "B"),
    ('{"BETTER_RESPONSE": "Response B"}', "B"),
    ('{"BETTER_RESPONSE": "[[A]]"}', "A"),
    ('{"BETTER_RESPONSE": "A."}', "A"),
    ('{"better response": "**B**"}', "B"),
    ('{"better-response": "Assistant A"}', "A"),
    ("REASONING: B is wrong\nBETTER_RESPONSE: A", "A"),
    ('```\n{"REASONING": "B is off-topic", "BETTER_RESPONSE": "A"\n```', "A"),
    ('{"REASONING": "A is bad", "BETTER_RESPONSE": "B', "B"),
    ('{"BETTER_RESPONSE": "tie"}', None),
    ('{"BETTER_RESPONSE": "A and B"}', None),
    ('{"BETTER_RESPONSE": "C"}', None),
    ('{"BETTER_RESPONSE": 1}', None),
    ('{"BETTER_RESPONSE": null}', None),
    ('{"REASONING": "Response A is better."}', None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), BETTER)
def test_parse_better_response(text, expected):
    assert parse_better_response(text) == expected


INDICES = [
    ('{"REASONING": "x", "BEST_RESPONSE_INDEX": 2}', 2),
    ('{"BEST_RESPONSE_INDEX": 0}', 0),
    ('{"BEST_RESPONSE_INDEX": "3"}', 3),
    ('{"BEST_RESPONSE_INDEX": "Response 1"}', 1),
    ('{"BEST_RESPONSE_INDEX": "#2"}', 2),
    ('{"BEST_RESPONSE_INDEX": 2.0}', 2),
    ('{"best response index": 1}', 1),
    ('{"BEST_INDEX": 3}', 3),
    ("BEST_RESPONSE_INDEX: 2", 2),
    ('{"REASONING": "x", "BEST_RESPONSE_INDEX": 1', 1),
    ('{"BEST_RESPONSE_INDEX": 4}', None),
    ('{"BEST_RESPONSE_INDEX": -1}', None),
    ('{"BEST_RESPONSE_INDEX": 2.5}', None),
    ('{"BEST_RESPONSE_INDEX": true}', None),
    ('{"BEST_RESPONSE_INDEX": "two"}', None),
    ('{"BEST_RESPONSE_INDEX": [1]}', None),
    ('{"REASONING": "the second one"}', None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), INDICES)
def test_parse_best_index(text, expected):
    assert parse_best_index(text, 4) == expected


def judges(server, **options):
    options = {**FAST_RETRIES, "retries": 0, **options}
    return (
        PointwiseJudgeReward("hosted_vllm/judge", server.base_url, **options),
        PairwiseJudge("hosted_vllm/judge", server.base_url, **options),
        ListwiseJudge("hosted_vllm/judge", server.base_url, **options),
    )


def test_pointwise_reward_is_score_over_ten(judge_server, script):
    script.default = Verdicts(
        points={"Paris.": 9, "Lyon.": 7.5, "Nice.": 11},
        faults={("pointwise", "Rome."): "I would rate it highly.", ("pointwise", "Oslo."): Reply(status=500)},
    )
    pointwise, _, _ = judges(judge_server)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    results = pointwise.score(
        [
            chat,
            "Capital of France?",
            "Capital of France?",
            "Capital of France?",
            "Capital of France?",
            "assistant: no user",
            "Capital of France?",
        ],
        ["<think>easy</think>Paris.", "Lyon.", "Nice.", "Rome.", "Oslo.", "Paris.", "<think>x"],
    )
    assert [(r.reward, r.score, r.error_type) for r in results] == [
        (0.9, 9.0, None),
        (0.75, 7.5, None),
        (0.0, None, "parse"),
        (0.0, None, "parse"),
        (0.0, None, "judge"),
        (0.0, None, "input"),
        (0.0, None, "input"),
    ]
    assert results[0].reasoning == "Scripted." and results[0].prompt_tokens > 0 and results[0].completion_tokens > 0
    assert results[3].error == "no usable SCORE in judge output: 'I would rate it highly.'"
    assert results[5].error == "prompt: prompt has no user message"
    assert results[6].error == "response 0 is empty once reasoning is removed"
    assert len(judge_server.requests) == 5
    [first] = [request for request in judge_server.requests if tagged(request, "response") == "Paris."]
    system, user = first["messages"]
    assert '"SCORE"' in system["content"] and "Capital" not in system["content"]
    assert "<history>\nsystem: Be brief.\n</history>" in user["content"]
    assert "<query>\nCapital of France?\n</query>" in user["content"]
    assert isinstance(pickle.loads(pickle.dumps(pointwise)), PointwiseJudgeReward)
    assert isinstance(results[0], PointwiseResult) and results[0].to_dict()["reward"] == 0.9


def test_pairwise_and_listwise_verdicts(judge_server, script):
    script.default = Verdicts(
        ranks={"good": 2, "bad": 1, "fine": 2}, faults={("listwise", "fine"): answer("BEST_RESPONSE_INDEX", 3)}
    )
    _, pairwise, listwise = judges(judge_server)
    assert pairwise.compare("Q?", "good", "bad").winner == "A"
    assert pairwise.compare("Q?", "bad", "good").winner == "B"
    request = judge_server.requests[-1]
    assert (tagged(request, "response_a"), tagged(request, "response_b")) == ("bad", "good")
    assert listwise.pick("Q?", ["bad", "good", "bad"]).index == 1
    assert shown(judge_server.requests[-1]) == ["bad", "good", "bad"]
    out_of_range = listwise.pick("Q?", ["fine", "bad", "good"])
    assert (out_of_range.index, out_of_range.error_type) == (None, "parse")
    empty = listwise.pick("Q?", [])
    assert (empty.index, empty.error_type, empty.error) == (None, "input", "no responses to pick from")
    assert pairwise.compare("Q?", "good", 3).error == "response 1 must be a string, got int"


def test_structured_output_sends_each_schema(judge_server, script):
    script.default = Verdicts(points={"a": 5}, ranks={"a": 1, "b": 0})
    pointwise, pairwise, listwise = judges(judge_server, structured_output=True)
    pointwise.score(["Q?"], ["a"])
    pairwise.compare("Q?", "a", "b")
    listwise.pick("Q?", ["a", "b"])
    schemas = [request["response_format"]["json_schema"]["schema"] for request in judge_server.requests]
    assert [schema["required"] for schema in schemas] == [
        ["REASONING", "SCORE"],
        ["REASONING", "BETTER_RESPONSE"],
        ["REASONING", "BEST_RESPONSE_INDEX"],
    ]


def test_long_responses_share_the_context(judge_server, script):
    long_a, long_b = "alpha " * 3000, "beta " * 3000
    script.default = lambda request: answer("BETTER_RESPONSE", "A")
    _, pairwise, _ = judges(judge_server, max_context_length=1024, max_tokens=64)
    assert pairwise.compare("Q?", long_a, long_b).winner == "A"
    request = judge_server.requests[0]
    shown_a, shown_b = tagged(request, "response_a"), tagged(request, "response_b")
    assert OMISSION_MARKER.split("{")[0] in shown_a and OMISSION_MARKER.split("{")[0] in shown_b
    assert shown_a.startswith("alpha") and shown_b.endswith("beta")
    assert sum(len(message["content"]) for message in request["messages"]) < 3 * (1024 - 64)
