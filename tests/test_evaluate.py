"""RewardBench-2-style evaluation: accuracy definitions (exact values), input validation, and ``flip-reward eval``
end to end against the scripted loopback judge (a test double with known verdicts and faults)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil

import pytest
from conftest import FAST_RETRIES, REPO, free_port
from scripted_verdicts import Verdicts, method_of, shown, tagged

from flip_reward import ListwiseJudge
from flip_reward.cli import main
from flip_reward.data.loading import load_rows
from flip_reward.evaluation.evaluate import (
    Verdict,
    evaluate_method,
    listwise_order,
    planned_calls,
    read_examples,
    strict_correct,
    tie_split_credit,
    ties_score,
)
from flip_reward.serving.scripted_judge import Reply

PROMPT = "alpha beta gamma delta"
FULL, HALF, QUARTER, NONE = "alpha beta gamma delta", "alpha beta", "alpha", "zeta"


def row(example_id, subset, chosen, rejected):
    return {"id": example_id, "prompt": PROMPT, "chosen": chosen, "rejected": rejected, "subset": subset}


ROWS = [
    row("e1", "Alpha", ["e1 c"], ["e1 r1", "e1 r2"]),
    row("e2", "Alpha", ["e2 c"], ["e2 r1", "e2 r2"]),
    row("e3", "Beta", ["e3 c1", "e3 c2"], ["e3 r1"]),
    row("e4", "Beta", ["e4 c"], ["e4 r1"]),
    row("ref:1", "Ties", ["t0"], ["t1"]),
    row("tied:1", "Ties", ["t2", "t3"], ["t4"]),
]
# response: (FLIP's inferred instruction, pointwise score, pairwise/listwise rank)
TABLE = {
    "e1 c": (FULL, 9, 3),
    "e1 r1": (HALF, 5, 1),
    "e1 r2": (NONE, 3, 2),
    "e2 c": (HALF, 7, 2),
    "e2 r1": (HALF, 7, 2),
    "e2 r2": (QUARTER, 2, 1),
    "e3 c1": (FULL, 8, 5),
    "e3 c2": (QUARTER, 4, 4),
    "e3 r1": (HALF, 6, 1),
    "e4 c": (FULL, 9, 3),
    "e4 r1": (NONE, 1, 1),
    "t0": (FULL, 6, 0),
    "t1": (QUARTER, 5, 0),
    "t2": (FULL, 9, 0),
    "t3": (HALF, 6, 0),
    "t4": (NONE, 2, 0),
}
FAULTS = {
    ("flip", "e4 c"): "I cannot tell.",
    ("pointwise", "e4 c"): Reply(status=500),
    ("pairwise", "e4 r1"): "Both are fine.",
}
FLIP_TIES = 0.3 + 0.3 + 0.2 + 0.2 + 0.01 * math.tanh(0.6 / (1 / 3) - 1)
POINTWISE_TIES = 0.3 + 0.3 + 0.2 + 0.0 + 0.01 * math.tanh(0.1 / 0.3 - 1)


def verdicts(table=TABLE, faults=FAULTS) -> Verdicts:
    return Verdicts(
        flip={k: v[0] for k, v in table.items()},
        points={k: v[1] for k, v in table.items()},
        ranks={k: v[2] for k, v in table.items()},
        faults=faults,
    )


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def evaluate(tmp_path, server, source, *extra):
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            str(source),
            "--output-dir",
            str(out),
            "--judge",
            "hosted_vllm/judge",
            "--api-base",
            server.base_url,
            "--retries",
            "0",
            *extra,
        ]
    )
    return code, out


@pytest.mark.parametrize(
    ("chosen", "rejected", "strict", "credit"),
    [
        ([0.9], [0.5, 0.1], True, 1.0),
        ([0.9], [0.5, 0.9, 0.1], False, 0.5),
        ([0.9], [0.9, 0.9, 0.9], False, 0.25),
        ([0.4], [0.5], False, 0.0),
        ([0.9, 0.8], [0.7], True, 1.0),
        ([0.9, 0.8], [0.8], False, 0.5),
        ([0.8, 0.8], [0.8], False, 1 / 3),
        ([0.8, 0.8], [0.8, 0.8], False, 1 / 6),
        ([0.9, 0.3], [0.5], False, 0.0),
        ([None], [0.1], False, 0.0),
        ([0.9], [None, 0.1], False, 0.0),
    ],
)
def test_strict_and_tie_split_rules(chosen, rejected, strict, credit):
    assert strict_correct(chosen, rejected) is strict
    assert tie_split_credit(chosen, rejected) == pytest.approx(credit)


def ties_verdict(example_id, chosen, rejected):
    return Verdict("flip", example_id, "Ties", False, 0.0, 0, 0, 0, 0, 0, tuple(chosen), tuple(rejected))


def test_ties_rule_of_rewardbench_2():
    score = ties_score([ties_verdict("ref:1", [1.0], [0.4]), ties_verdict("tied:1", [1.0, 2 / 3], [0.0])])
    assert (score.ref_accuracy, score.tied_accuracy) == (1.0, 1.0)
    assert (score.correctness_preferred, score.correctness_preferred_hard) == (1.0, 1.0)
    assert score.correctness_margin_score == pytest.approx(math.tanh(0.8))
    assert score.score == pytest.approx(FLIP_TIES)
    failed = ties_score(
        [
            ties_verdict("ref:1", [None], [0.4]),
            ties_verdict("tied:1", [1.0, 1.0], [None]),
            ties_verdict("ref:2", [0.5], [0.1]),
        ]
    )
    assert (failed.ref_accuracy, failed.tied_accuracy, failed.correctness_preferred) == (0.5, 0.0, 0.0)
    assert failed.correctness_margin_score == 0.0  # prompt 1 failed: it scores 0 in every term, never below
    assert failed.score == pytest.approx(0.15)
    assert ties_score([ties_verdict("ref:1", [1.0], [0.4])]) is None


@pytest.mark.parametrize("judge", ["always-500", "dead"])
def test_a_fully_failed_evaluation_scores_0_never_below(tmp_path, judge_server, script, judge):
    """Every judge call fails (a live judge answering 500, or no judge at all): every example, Ties included, scores
    0 (RewardBench 2's margin term would otherwise make Ties negative); a dead judge also exits 3."""
    script.default = lambda request: Reply(status=500)
    extra = ["--api-base", f"http://127.0.0.1:{free_port()}/v1", "--timeout", "2"] if judge == "dead" else []
    code, out = evaluate(tmp_path, judge_server, write_rows(tmp_path / "rb2.jsonl", ROWS), *extra)
    assert code == (3 if judge == "dead" else 0)
    results = json.loads((out / "results.json").read_text())
    for method in ("flip", "pointwise"):
        assert results[method]["per_subset"] == {"Alpha": 0.0, "Beta": 0.0, "Ties": 0.0}
        assert (results[method]["accuracy"], results[method]["accuracy_tie_split"]) == (0.0, 0.0)
        assert results[method]["ties"]["correctness_margin_score"] == 0.0
    for method in ("pairwise", "listwise"):
        assert results[method]["per_subset"] == {"Alpha": 0.0, "Beta": 0.0}
    assert {method: results[method]["failed_calls"] for method in results} == {
        "flip": 16,
        "pointwise": 16,
        "pairwise": 14,
        "listwise": 4,
    }


def test_listwise_order_depends_on_seed_and_id_only():
    assert listwise_order(0, "e2", 4) == listwise_order(0, "e2", 4)
    assert sorted(listwise_order(3, "x", 7)) == list(range(7))
    orders = {tuple(listwise_order(seed, "e2", 6)) for seed in range(10)}
    assert len(orders) > 5
    assert {tuple(listwise_order(0, f"id{i}", 6)) for i in range(10)} != {tuple(range(6))}


def expected_listwise_e2(seed):
    order = listwise_order(seed, "e2", 3)
    return order.index(0) < order.index(1)  # e2's chosen ties rejected 1 at the top: the first shown wins


def test_eval_all_methods_exact(tmp_path, judge_server, script, capsys):
    script.default = verdicts()
    code, out = evaluate(tmp_path, judge_server, write_rows(tmp_path / "rb2.jsonl", ROWS), "--seed", "7")
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["flip", "pointwise", "pairwise", "listwise"]
    flip, pointwise, pairwise, listwise = results.values()
    assert flip["per_subset"] == {"Alpha": 0.5, "Beta": 0.0, "Ties": pytest.approx(FLIP_TIES)}
    assert flip["per_subset_tie_split"] == {"Alpha": 0.75, "Beta": 0.0, "Ties": pytest.approx(FLIP_TIES)}
    assert flip["accuracy"] == pytest.approx((0.5 + FLIP_TIES) / 3)
    assert flip["accuracy_tie_split"] == pytest.approx((0.75 + FLIP_TIES) / 3)
    assert (flip["n"], flip["judge_calls"], flip["failed_calls"], flip["errors"]) == (6, 16, 1, 1)
    assert pointwise["per_subset"] == {"Alpha": 0.5, "Beta": 0.0, "Ties": pytest.approx(POINTWISE_TIES)}
    assert pointwise["ties"]["correctness_preferred_hard"] == 0.0
    assert (pointwise["n"], pointwise["judge_calls"], pointwise["failed_calls"], pointwise["errors"]) == (6, 16, 1, 1)
    assert pairwise["per_subset"] == {"Alpha": 0.5, "Beta": 0.5}
    assert pairwise["per_subset_tie_split"] == {"Alpha": 0.75, "Beta": 0.5}
    assert (pairwise["accuracy"], pairwise["accuracy_tie_split"]) == (0.5, 0.625)
    assert (pairwise["n"], pairwise["judge_calls"], pairwise["failed_calls"], pairwise["errors"]) == (4, 14, 1, 1)
    assert set(pairwise["excluded"]) == {"Ties"} and set(listwise["excluded"]) == {"Ties"}
    alpha = (1 + expected_listwise_e2(7)) / 2
    assert listwise["per_subset"] == {"Alpha": alpha, "Beta": 1.0} and listwise["seed"] == 7
    assert (listwise["n"], listwise["judge_calls"], listwise["errors"]) == (4, 4, 0)
    err = capsys.readouterr().err
    assert "note: pairwise: Ties left out: RewardBench 2 scores Ties from per-response scores" in err
    assert "note: listwise: Ties left out" in err


def test_eval_cost_is_what_the_judge_reported(tmp_path, judge_server, script):
    script.default = verdicts()
    code, out = evaluate(tmp_path, judge_server, write_rows(tmp_path / "rb2.jsonl", ROWS))
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    for method in results:
        requests = [r for r in judge_server.requests if method_of(r) == method]
        answered = [r for r in requests if not (method == "pointwise" and tagged(r, "response") == "e4 c")]
        words = sum(len(m["content"].split()) for r in answered for m in r["messages"])
        assert (len(requests), results[method]["prompt_tokens"]) == (results[method]["judge_calls"], words)
        assert results[method]["completion_tokens"] > 0
    report = (out / "report.md").read_text()
    assert "| method | examples | judge calls | failed calls | examples with errors | prompt tokens |" in report
    assert f"| pairwise | 4 | 14 | 1 | 1 | {results['pairwise']['prompt_tokens']} |" in report


def test_both_pairwise_orders_and_recorded_shuffle(tmp_path, judge_server, script):
    script.default = verdicts()
    code, out = evaluate(
        tmp_path,
        judge_server,
        write_rows(tmp_path / "rb2.jsonl", ROWS),
        "--methods",
        "pairwise,listwise",
        "--seed",
        "3",
    )
    assert code == 0
    pairs = sorted(
        (tagged(r, "response_a"), tagged(r, "response_b"))
        for r in judge_server.requests
        if method_of(r) == "pairwise" and r["messages"][-1]["content"].count("e1 ")
    )
    assert pairs == [("e1 c", "e1 r1"), ("e1 c", "e1 r2"), ("e1 r1", "e1 c"), ("e1 r2", "e1 c")]
    details = [json.loads(line) for line in (out / "details.jsonl").read_text().splitlines()]
    assert [(d["method"], d["example_id"]) for d in details] == [
        (m, e) for m in ("pairwise", "listwise") for e in ("e1", "e2", "e3", "e4")
    ]
    e2 = details[5]
    assert e2["detail"]["order"] == listwise_order(3, "e2", 3) and e2["detail"]["seed"] == 3
    [request] = [r for r in judge_server.requests if method_of(r) == "listwise" and "e2 c" in shown(r)]
    candidates = ROWS[1]["chosen"] + ROWS[1]["rejected"]
    assert shown(request) == [candidates[i] for i in listwise_order(3, "e2", 3)]
    e4 = details[3]["detail"]["pairs"]
    assert e4 == [{"chosen": 0, "rejected": 0, "chosen_first": "A", "rejected_first": None, "credit": 0.5}]
    assert details[3]["correct"] is False and details[3]["credit"] == 0.0 and details[3]["failed"] == 1


def test_listwise_shuffle_is_independent_of_limit_and_order(judge_server, script):
    script.default = verdicts()
    examples, _ = read_examples(ROWS)
    judge = ListwiseJudge("hosted_vllm/judge", judge_server.base_url, **FAST_RETRIES)
    full = asyncio.run(evaluate_method("listwise", judge, examples, seed=5))
    alone = asyncio.run(evaluate_method("listwise", judge, [examples[3], examples[1]], seed=5))
    assert [v.detail["order"] for v in alone] == [full[3].detail["order"], full[1].detail["order"]]
    assert planned_calls("pairwise", examples) == 14 and planned_calls("flip", examples) == 16


def test_subsets_and_limit(tmp_path, judge_server, script, capsys):
    script.default = verdicts()
    code, out = evaluate(
        tmp_path,
        judge_server,
        write_rows(tmp_path / "rb2.jsonl", ROWS),
        "--methods",
        "pointwise",
        "--subsets",
        "beta,ties",
        "--limit",
        "3",
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())["pointwise"]
    assert results["n"] == 3 and results["per_subset"] == {"Beta": 0.0}
    assert results["excluded"] == {
        "Ties": "left out: no prompt has both its ref: and its tied: row (RewardBench 2's Ties rule needs both)"
    }
    assert "note: pointwise: Ties left out: no prompt has both" in capsys.readouterr().err


BAD_ROWS = [
    row("ok", "Alpha", ["a"], ["b"]),
    {"id": "no-prompt", "chosen": ["a"], "rejected": ["b"], "subset": "Alpha"},
    row("empty-chosen", "Alpha", [], ["b"]),
    row("blank", "Alpha", ["a"], ["  "]),
    {**row("count", "Alpha", ["a"], ["b"]), "num_correct": 2},
    row("bad-ties", "Ties", ["a"], ["b"]),
    row("ok", "Alpha", ["a"], ["b"]),
    {**row("x", "Alpha", ["a"], ["b"]), "subset": None},
    {**row("x", "Alpha", ["a"], ["b"]), "id": None},
]


def test_invalid_rows_stop_before_any_judge_call(tmp_path, judge_server, capsys):
    code, out = evaluate(tmp_path, judge_server, write_rows(tmp_path / "bad.jsonl", BAD_ROWS))
    assert code == 2 and judge_server.requests == [] and not out.exists()
    assert capsys.readouterr().err.splitlines() == [
        "error: row 2: field 'prompt': missing",
        "error: row 3: field 'chosen': must be a non-empty list of strings, got list",
        "error: row 4: field 'rejected': item 0 must be a non-empty string",
        "error: row 5: field 'chosen': holds 1 responses but num_correct is 2",
        "error: row 6: field 'id': a Ties row needs an id 'ref:<n>' or 'tied:<n>' (RewardBench 2's Ties rule)",
        "error: row 7: field 'id': duplicate id 'ok'",
        "error: row 8: field 'subset': missing",
        "error: row 9: field 'id': missing",
        "8 invalid row(s); nothing was evaluated",
    ]


def test_unknown_subset_and_method(tmp_path, judge_server, capsys):
    source = write_rows(tmp_path / "rb2.jsonl", ROWS)
    assert evaluate(tmp_path, judge_server, source, "--subsets", "Gamma")[0] == 2
    assert "error: unknown subset(s) Gamma; the data has Alpha, Beta, Ties" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        evaluate(tmp_path, judge_server, source, "--limit", "0")
    assert stopped.value.code == 2
    assert "flip-reward eval: error: argument --limit: must be at least 1, got 0" in capsys.readouterr().err
    assert judge_server.requests == []
    with pytest.raises(SystemExit):
        evaluate(tmp_path, judge_server, source, "--methods", "flip,oracle")
    assert "unknown method(s) oracle; choose from flip, pointwise, pairwise, listwise" in capsys.readouterr().err


SAMPLE = REPO / "data" / "sample_rewardbench2.jsonl"


def sample_judge() -> Verdicts:
    """Right except where scripted not to be: FLIP cannot tell Focus responses apart (every one reads as the
    prompt), pointwise rates a refusal as high as the chosen answer, pairwise always says A on Math (position
    bias), listwise always picks the first response shown on Precise IF."""
    table = {}
    for r in load_rows(str(SAMPLE)):
        for text in r["chosen"] + r["rejected"]:
            chosen = text in r["chosen"]
            table[text] = (
                r["prompt"] if chosen or r["subset"] == "Focus" else "Something unrelated.",
                8 if chosen or text.startswith("I'm sorry") else 3,
                int(chosen),
            )
    faults = {}
    for r in load_rows(str(SAMPLE)):
        for text in r["chosen"] + r["rejected"]:
            if r["subset"] == "Math":
                faults[("pairwise", text)] = json.dumps({"REASONING": "First.", "BETTER_RESPONSE": "A"})
            if r["subset"] == "Precise IF":
                faults[("listwise", text)] = json.dumps({"REASONING": "First.", "BEST_RESPONSE_INDEX": 0})
    return verdicts(table, faults)


def test_sample_data_report(tmp_path, judge_server, script, monkeypatch):
    """Also the source of docs/sample_eval/ (its report.md is this run's): ``make sample-eval`` rewrites it."""
    script.default = sample_judge()
    monkeypatch.chdir(REPO)
    code, out = evaluate(tmp_path, judge_server, SAMPLE.relative_to(REPO), "--judge", "hosted_vllm/scripted")
    assert code == 0
    if os.environ.get("FLIP_WRITE_SAMPLE_EVAL"):
        for name in ("report.md", "accuracy.png"):
            shutil.copy(out / name, REPO / "docs" / "sample_eval" / name)
    assert (out / "report.md").read_text() == (REPO / "docs" / "sample_eval" / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert results["flip"]["per_subset"] == {
        "Factuality": 1.0,
        "Precise IF": 1.0,
        "Math": 1.0,
        "Safety": 1.0,
        "Focus": 0.0,
        "Ties": pytest.approx(1.01),
    }
    assert results["flip"]["per_subset_tie_split"]["Focus"] == 0.25
    assert results["pointwise"]["per_subset"]["Safety"] == 0.5
    assert results["pointwise"]["per_subset_tie_split"]["Safety"] == 0.75
    assert results["pairwise"]["per_subset"]["Math"] == 0.0
    assert results["pairwise"]["per_subset_tie_split"]["Math"] == 0.125
    assert results["pairwise"]["accuracy"] == 0.8
    first_is_chosen = [listwise_order(0, f"precise-if-{i}", 4)[0] == 0 for i in (1, 2)]
    assert results["listwise"]["per_subset"]["Precise IF"] == sum(first_is_chosen) / 2
    assert all(results[m]["errors"] == 0 for m in results)
    report = (out / "report.md").read_text()
    assert report.startswith("# Reward-model accuracy: FLIP and LLM-as-a-judge baselines")
    assert "| flip | 0.835 | 0.800 | 1.000 | 1.000 | 1.000 | 1.000 | 0.000 | 1.010 |" in report
    assert "| pairwise | 0.800 | 0.800 | 1.000 | 1.000 | 0.000 | 1.000 | 1.000 | – |" in report
    assert (out / "accuracy.png").read_bytes().startswith(b"\x89PNG")
    assert len((out / "details.jsonl").read_text().splitlines()) == 16 + 16 + 12 + 12
