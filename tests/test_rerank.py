"""Best-of-N (``flip-reward rerank`` and BestOfN) against the scripted loopback judge (a test double with known
verdicts and faults), on the bundled data/sample_rerank.jsonl."""

from __future__ import annotations

import json

import pytest
from conftest import FAST_RETRIES, REPO
from scripted_verdicts import Verdicts, answer, shown

from flip_reward import BestOfN
from flip_reward.cli import main
from flip_reward.core.metrics import f1_score
from flip_reward.evaluation.evaluate import listwise_order
from flip_reward.evaluation.rerank import best_index, prompt_key
from flip_reward.serving.scripted_judge import Reply

SAMPLE = REPO / "data" / "sample_rerank.jsonl"
HAIKU = "Write a haiku about autumn leaves."
# response: (FLIP's inferred instruction, pointwise score, listwise rank)
TABLE = {
    "Autumn is a season.": ("Describe autumn.", 2, 0),
    "Crimson leaves let go,\ndrifting on the cooling wind,\nthe branch learns to rest.": (HAIKU, 9, 2),
    "Spring blossoms open,\npink petals on morning dew,\nthe garden wakes up.": ("Write a haiku about spring.", 4, 1),
    "SELECT COUNT(*) FROM orders;": ("Write a SQL query that counts the rows of the table orders.", 8, 2),
    "SELECT * FROM orders;": ("Write a SQL query that selects every row of the table orders.", 5, 1),
    "Use a database.": ("How do I store data?", 1, 0),
    "Bonne nuit.": ("Translate 'good night' into French.", 9, 1),
    "Buenas noches.": ("Translate 'good night' into Spanish.", 3, 0),
    "Good night in French is 'bonjour'.": ("How do you say good night in French?", 2, 0),
    "Bonne nuit !": ("Translate 'good night' into French.", 9, 1),
    "1. Keep a regular schedule.\n2. Avoid screens before bed.": ("Give me two tips for sleeping better.", 7, 1),
    "Eat more vegetables.": ("How can I eat healthier?", 2, 0),
    "Sydney.": ("Capital of Australia?", 3, 0),
    "The capital of Australia is Canberra.": ("What is the capital of Australia?", 10, 1),
    "Canberra is the capital of Australia.": ("What is the capital of Australia?", 10, 1),
    "Melbourne.": ("Capital of Australia?", 3, 0),
}
# the listwise shuffle of data/sample_rerank.jsonl's rows (eval's listwise_order keyed by the prompt)
ORDERS_SEED_0 = [[0, 1, 2], [0, 1, 2], [3, 1, 2, 0], [1, 0], [3, 0, 1, 2]]
ORDERS_SEED_5 = [[1, 0, 2], [0, 1, 2], [2, 0, 1, 3], [1, 0], [0, 2, 3, 1]]
CAPITAL = [text for text in TABLE if "Australia" in text or text in ("Sydney.", "Melbourne.")]
FAULTS = {
    ("flip", "Eat more vegetables."): "no idea",
    **{("flip", text): Reply(status=500) for text in CAPITAL},
    ("pointwise", "Use a database."): Reply(status=500),
    ("listwise", "Eat more vegetables."): "I like both.",  # shown first with seed 0
}


@pytest.fixture
def judged(script):
    script.default = Verdicts(
        flip={k: v[0] for k, v in TABLE.items()},
        points={k: v[1] for k, v in TABLE.items()},
        ranks={k: v[2] for k, v in TABLE.items()},
        faults=FAULTS,
    )
    return script


def rerank(tmp_path, server, method, source=SAMPLE, *extra):
    output = tmp_path / f"{method}.jsonl"
    code = main(
        [
            "rerank",
            str(source),
            "--output",
            str(output),
            "--method",
            method,
            "--judge",
            "hosted_vllm/judge",
            "--api-base",
            server.base_url,
            "--retries",
            "0",
            *extra,
        ]
    )
    return code, [json.loads(line) for line in output.read_text().splitlines()] if output.exists() else []


def test_best_index_prefers_the_lowest_index_on_ties():
    assert best_index([0.2, 0.9, 0.9]) == 1
    assert best_index([None, 0.1, None]) == 1
    assert best_index([None]) is None and best_index([]) is None


def test_rerank_with_flip(tmp_path, judge_server, judged, capsys):
    code, rows = rerank(tmp_path, judge_server, "flip")
    assert code == 0
    assert [row["id"] for row in rows] == ["haiku", "sql", "translate", "sleep", "capital"]
    haiku = rows[0]
    assert haiku["scores"] == [f1_score(TABLE[text][0], HAIKU)["f1"] for text in haiku["responses"]]
    assert haiku["best_index"] == 1 and haiku["error"] is None and haiku["errors"] == []
    assert rows[1]["best_index"] == 0
    assert rows[2]["scores"][0] == rows[2]["scores"][3] == 1.0 and rows[2]["best_index"] == 0
    sleep = rows[3]
    assert sleep["scores"][1] is None and sleep["best_index"] == 0 and sleep["error"] is None
    assert sleep["errors"] == ["response 1: no inferred instruction in judge output: 'no idea'"]
    capital = rows[4]
    assert capital["scores"] == [None] * 4 and capital["best_index"] is None and len(capital["errors"]) == 4
    assert capital["error"].startswith("response 0: judge hosted_vllm/judge") and "500" in capital["error"]
    assert "rows 5 | best picked 4 | no best 1 | failed judgments 5 | method flip" in capsys.readouterr().err


def test_rerank_with_pointwise_and_listwise(tmp_path, judge_server, judged):
    code, rows = rerank(tmp_path, judge_server, "pointwise")
    assert code == 0
    assert [row["scores"] for row in rows] == [
        [0.2, 0.9, 0.4],
        [0.8, 0.5, None],
        [0.9, 0.3, 0.2, 0.9],
        [0.7, 0.2],
        [0.3, 1.0, 1.0, 0.3],
    ]
    assert [row["best_index"] for row in rows] == [1, 0, 0, 0, 1]
    code, rows = rerank(tmp_path, judge_server, "listwise")
    assert code == 0
    # seed 0 shows translate as [3, 1, 2, 0] (two responses of rank 1: the first shown, 3, wins) and capital as
    # [3, 0, 1, 2] (1 and 2 tie: 1 is shown first); sleep shows "Eat more vegetables." first, scripted to fail
    assert [row["best_index"] for row in rows] == [1, 0, 3, None, 1]
    assert rows[0]["scores"] == [0.0, 1.0, 0.0]
    assert rows[3]["scores"] == [None, None]
    assert rows[3]["error"] == "pick: no usable BEST_RESPONSE_INDEX in judge output: 'I like both.'"


@pytest.mark.parametrize(("seed", "orders"), [("0", ORDERS_SEED_0), ("5", ORDERS_SEED_5)])
def test_rerank_listwise_shuffles_like_eval_and_maps_the_pick_back(tmp_path, judge_server, script, seed, orders):
    """A judge with pure position bias (always "response 0") picks the first response shown: the pick is then the
    original index the shuffle put first, and each request shows the responses in eval's seeded order."""
    script.default = lambda request: answer("BEST_RESPONSE_INDEX", 0)
    code, rows = rerank(tmp_path, judge_server, "listwise", SAMPLE, "--seed", seed)
    assert code == 0
    assert [row["best_index"] for row in rows] == [order[0] for order in orders]
    for request, row, order in zip(judge_server.requests, rows, orders):
        assert shown(request) == [row["responses"][i] for i in order]
    assert orders == [listwise_order(int(seed), prompt_key(row["prompt"]), len(row["responses"])) for row in rows]


def test_rerank_rejects_bad_rows_before_any_call(tmp_path, judge_server, capsys):
    source = tmp_path / "bad.jsonl"
    source.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"prompt": "Q?", "responses": ["a", "b"]},
                {"prompt": "Q?", "responses": []},
                {"prompt": "Q?"},
                {"prompt": "Q?", "responses": ["a", 2]},
                {"prompt": 3, "responses": ["a"]},
            ]
        )
        + "\n"
    )
    code, rows = rerank(tmp_path, judge_server, "flip", source)
    assert code == 2 and rows == [] and judge_server.requests == []
    assert capsys.readouterr().err.splitlines() == [
        "error: row 2: field 'responses': must be a non-empty list of strings, got list",
        "error: row 3: field 'responses': missing",
        "error: row 4: field 'responses': item 1 must be a string, got int",
        "error: row 5: field 'prompt': prompt must be a string or a list of messages, got int",
        "4 invalid row(s); nothing was reranked",
    ]


def test_best_of_n_python_api(judge_server, judged):
    selector = BestOfN("pointwise", judge_model="hosted_vllm/judge", api_base=judge_server.base_url, **FAST_RETRIES)
    result = selector.rerank(HAIKU, list(TABLE)[:3])
    assert (result.scores, result.best_index, result.error) == ((0.2, 0.9, 0.4), 1, None)
    assert result.prompt_tokens > 0
    with pytest.raises(ValueError, match="method must be one of flip, pointwise, listwise"):
        BestOfN("pairwise")
