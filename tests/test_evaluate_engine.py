"""``flip-reward eval`` through a real ``transformers serve`` running the tiny random model.

The tiny model writes gibberish, so this checks the plumbing (every method's requests accepted, usage reported,
files written, unusable answers counted as failed calls and errors), not accuracies; those are pinned with the
scripted judge in test_evaluate.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

SAMPLE = REPO / "data" / "sample_rewardbench2.jsonl"
# The first two sample rows: 4 candidates each, 1 chosen x 3 rejected pairs each.
PLANNED = {"flip": 8, "pointwise": 8, "pairwise": 12, "listwise": 2}


def test_eval_all_methods_through_real_server(tiny_judge, tmp_path):
    model, base_url = tiny_judge
    out = tmp_path / "eval"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flip_reward.cli",
            "eval",
            str(SAMPLE),
            "--output-dir",
            str(out),
            "--judge",
            model,
            "--api-base",
            base_url,
            "--limit",
            "2",
            "--max-tokens",
            "12",
            "--max-context-length",
            "2048",
            "--concurrency",
            "4",
            "--retries",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads((out / "results.json").read_text())
    details = [json.loads(line) for line in (out / "details.jsonl").read_text().splitlines()]
    assert list(results) == list(PLANNED) and len(details) == 8
    for method, summary in results.items():
        verdicts = [d for d in details if d["method"] == method]
        assert (summary["n"], summary["judge_calls"]) == (2, PLANNED[method])
        assert summary["failed_calls"] == sum(d["failed"] for d in verdicts) <= summary["judge_calls"]
        assert summary["errors"] == sum(d["failed"] > 0 for d in verdicts)
        assert all(not d["correct"] and d["credit"] == 0.0 for d in verdicts if d["failed"])
        assert summary["prompt_tokens"] > 0 and 0 < summary["completion_tokens"] <= 12 * PLANNED[method]
        assert 0.0 <= summary["accuracy"] <= 1.0 and set(summary["per_subset"]) == {"Factuality"}
        judgments = [j for d in verdicts for j in d["detail"].get("judgments", [d["detail"].get("judgment")])]
        assert {j["error_type"] for j in judgments} <= {None, "parse"}
        assert sum(j["error"] is not None for j in judgments) == summary["failed_calls"]
    assert (out / "accuracy.png").stat().st_size > 0 and "## Cost" in (out / "report.md").read_text()
    assert "flip: accuracy" in completed.stdout and "judge calls 12" in completed.stdout
