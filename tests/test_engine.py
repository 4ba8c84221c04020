"""The real engine path: FlipReward and the CLI against ``transformers serve`` running a tiny random model.

The tiny model's answers are gibberish, so these tests check the plumbing (requests accepted, usage reported,
gibberish counted as parse failures rather than crashing), not reward values; those are pinned with the scripted
judge in test_reward.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

from flip_reward import FlipReward

SAMPLE = REPO / "data" / "sample_scoring.jsonl"


def test_flip_reward_through_real_server(tiny_judge, tiny_model_dir):
    model, base_url = tiny_judge
    flip = FlipReward(
        model,
        base_url,
        max_tokens=24,
        max_context_length=1024,
        tokenizer=str(tiny_model_dir),
        disable_thinking=True,
        timeout=120,
    )
    long_response = "The tide rolls in. " * 2000
    results = flip.score(["Write a poem about the sea", "Describe the tide"], ["Waves under the moon.", long_response])
    for result in results:
        assert result.error_type in (None, "parse"), result.error
        assert 0.0 <= result.reward <= 1.0
        assert 0 < result.completion_tokens <= 24
        assert 0 < result.prompt_tokens <= 1024 - 24
        assert result.latency_s > 0


def test_cli_scores_sample_data_with_real_server(tiny_judge, tmp_path):
    model, base_url = tiny_judge
    output = tmp_path / "scored.jsonl"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flip_reward.cli",
            "score",
            str(SAMPLE),
            "--output",
            str(output),
            "--judge",
            model,
            "--api-base",
            base_url,
            "--max-tokens",
            "16",
            "--max-context-length",
            "2048",
            "--concurrency",
            "4",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    inputs = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    assert [row["id"] for row in rows] == [row["id"] for row in inputs]
    assert all(row["error_type"] in (None, "parse") for row in rows)
    assert "rows 12 | mean reward" in completed.stderr
