"""The plots read at a glance: a zero is drawn and labelled (not an empty frame), every value is written out, an
"n/a" says why, and a title names a file, not a long absolute path. The figures' texts are asserted exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO
from test_inspect import EN_ANSWER, sample, write_jsonl

from flip_reward.evaluation.evaluate import Example, MethodSummary, Verdict, summarize
from flip_reward.evaluation.inspection import inspect_samples, inspection_figure, summary_lines
from flip_reward.evaluation.report import accuracy_figure
from flip_reward.serving.scripted_judge import Reply, ScriptedJudgeServer


def summary(method: str, accuracy: float | None, per_subset: dict[str, float]) -> MethodSummary:
    return MethodSummary(method, accuracy, accuracy, per_subset, per_subset, 4, 4, 0, 0, 10, 2, 0, {})


def texts(axes) -> list[str]:
    return [text.get_text() for text in axes.texts]


def test_accuracy_bars_of_zero_are_drawn_and_every_bar_is_labelled():
    summaries = {
        "flip": summary("flip", 0.0, {"Math": 0.0, "Ties": 0.0}),
        "pairwise": summary("pairwise", 0.5, {"Math": 1.0}),
    }
    figure = accuracy_figure(summaries, "hosted_vllm/judge")
    axes = figure.axes[0]
    assert axes.get_title() == "Reward-model accuracy — judge hosted_vllm/judge"
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["overall", "Math", "Ties\n(RB2 Ties score, ≤ 1.01)"]
    assert texts(axes) == ["0.000", "0.000", "0.000", "0.500", "1.000", "n/a"]
    assert axes.get_ylim()[0] < 0  # the zero line is inside the frame, not on it
    strokes = [collection for collection in axes.collections if collection.get_linewidth()[0] == 3]
    assert len(strokes) == 3  # one stroke per bar of 0, none for n/a


def test_inspect_plot_of_all_zero_rewards(tmp_path):
    run = tmp_path / "run-3"
    run.mkdir()
    rows = [sample(step, 0.0, 100, EN_ANSWER, error_type="judge", inferred=None) for step in (0, 1) for _ in "ab"]
    report = inspect_samples(rows, source=str(write_jsonl(run / "samples.jsonl", rows)))
    figure = inspection_figure(report)
    assert figure._suptitle.get_text() == "flip-reward inspect: run-3/samples.jsonl (samples)"
    panels = {axes.get_title(): axes for axes in figure.axes}
    legends = {
        title: [text.get_text() for text in axes.get_legend().get_texts()]
        for title, axes in panels.items()
        if axes.get_legend()
    }
    assert legends == {
        "mean reward": ["0.0000"],
        "failure rates": ["input error rate: 0.0000", "judge error rate: 1.0000", "parse failure rate: 0.0000"],
        "share restatement-masked": ["0.0000"],
        "share not in the instruction's language": ["0.0000"],
        "completions judged": ["4"],
    }
    assert texts(panels["corr(reward, response chars)"]) == ["n/a: every response has the same length (100 characters)"]
    assert all(axes.get_ylim()[0] < 0 for axes in figure.axes)  # lines at 0 sit above the frame
    assert "n/a: length_reward_correlation: every response has the same length (100 characters)" in summary_lines(
        report
    )


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([sample(0, 0.5, 100, EN_ANSWER)], "fewer than 2 samples with a response (1)"),
        ([sample(0, 0.5, 100, EN_ANSWER), sample(0, 0.5, 90, EN_ANSWER)], "every reward is the same (0.5000)"),
    ],
)
def test_an_undefined_length_correlation_says_why(rows, reason):
    report = inspect_samples(rows, source="/very/long/absolute/path/to/some/run/samples.jsonl")
    assert report.not_applicable == {"length_reward_correlation": reason}
    figure = inspection_figure(report)
    assert texts(next(a for a in figure.axes if a.get_title().startswith("corr"))) == [f"n/a: {reason}"]
    assert figure._suptitle.get_text() == "flip-reward inspect: run/samples.jsonl (samples)"
    assert Path(report.source).is_absolute()


def test_a_constant_count_of_completions_is_drawn_on_a_sane_axis(tmp_path):
    """10 steps of 8 completions (80 in all): the count axis runs from just below 0 to above 8 (not down to -4),
    ticks 0 to 8."""
    rows = [sample(step, 0.5, 100 + index, EN_ANSWER) for step in range(10) for index in range(8)]
    figure = inspection_figure(inspect_samples(rows, source=str(write_jsonl(tmp_path / "samples.jsonl", rows))))
    axes = {axes.get_title(): axes for axes in figure.axes}["completions judged"]
    assert axes.get_ylim() == pytest.approx((-0.4, 8.8))
    assert [tick for tick in axes.get_yticks() if -0.4 <= tick <= 8.8] == list(range(9))


def test_a_method_whose_every_call_failed_shows_failed_not_zero():
    """flip's calls all failed (a 0 that is no accuracy); pointwise judged Math and got it all wrong (a real 0)."""
    summaries = {
        "flip": replace(summary("flip", 0.0, {"Math": 0.0, "Safety": 0.0}), failed_subsets=("Math", "Safety")),
        "pointwise": replace(summary("pointwise", 0.5, {"Math": 0.0, "Safety": 1.0}), failed_subsets=()),
    }
    figure = accuracy_figure(summaries)
    axes = figure.axes[0]
    assert texts(axes) == ["failed", "failed", "failed", "0.500", "0.000", "1.000"]
    assert [text.get_text() for text in figure.texts] == ["failed: every judge call failed, so there is no accuracy"]
    strokes = [collection for collection in axes.collections if collection.get_linewidth()[0] == 3]
    assert len(strokes) == 1  # the zero stroke is pointwise's Math only


def test_summarize_names_the_subsets_whose_every_call_failed():
    examples = [Example("a", "p", ("yes",), ("no",), "Math"), Example("b", "p", ("yes",), ("no",), "Safety")]
    verdicts = [
        Verdict("flip", "a", "Math", False, 0.0, calls=2, failed=2, prompt_tokens=0, completion_tokens=0, cached=0),
        Verdict("flip", "b", "Safety", False, 0.0, calls=2, failed=1, prompt_tokens=9, completion_tokens=9, cached=0),
    ]
    assert summarize("flip", verdicts, examples).failed_subsets == ("Math",)


def test_eval_against_a_judge_that_refuses_everything_marks_every_subset_failed(tmp_path):
    """A real ``flip-reward eval`` whose judge (the scripted OpenAI-compatible server, a test double) answers every
    request with HTTP 422: results.json names every subset in failed_subsets, which accuracy.png draws as failed."""
    rows = [
        {"id": "m1", "prompt": "Add 2 and 2", "chosen": ["4"], "rejected": ["5"], "subset": "Math"},
        {"id": "s1", "prompt": "Say hi", "chosen": ["Hi."], "rejected": ["No."], "subset": "Safety"},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    with ScriptedJudgeServer(lambda request: Reply(content="no", status=422)) as server:
        run = subprocess.run(
            [sys.executable, "-m", "flip_reward.cli", "eval", str(source), "--output-dir", str(tmp_path / "out"),
             "--methods", "flip", "--judge", "hosted_vllm/judge", "--api-base", server.base_url, "--retries", "0"],
            capture_output=True, text=True, cwd=REPO, env={**os.environ, "TQDM_DISABLE": "1"}, timeout=120,
        )  # fmt: skip
    assert run.returncode == 1, run.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["flip"]["failed_subsets"] == ["Math", "Safety"]
