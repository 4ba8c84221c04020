"""The plots read at a glance: a zero is drawn and labelled (not an empty frame), every value is written out, an
"n/a" says why, and a title names a file, not a long absolute path. The figures' texts are asserted exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_inspect import EN_ANSWER, sample, write_jsonl

from flip_reward.evaluation.evaluate import MethodSummary
from flip_reward.evaluation.inspection import inspect_samples, inspection_figure, summary_lines
from flip_reward.evaluation.report import accuracy_figure


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
    assert [tick.get_text() for tick in axes.get_xticklabels()] == ["overall", "Math", "Ties"]
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
        "failure rates": ["parse failure rate: 0.0000", "judge error rate: 1.0000", "input error rate: 0.0000"],
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
    """10 steps of 8 completions (80 in all): the count axis runs from just below 0 to above 8 (not down to -4), ticks 0 to 8."""
    rows = [sample(step, 0.5, 100 + index, EN_ANSWER) for step in range(10) for index in range(8)]
    figure = inspection_figure(inspect_samples(rows, source=str(write_jsonl(tmp_path / "samples.jsonl", rows))))
    axes = {axes.get_title(): axes for axes in figure.axes}["completions judged"]
    assert axes.get_ylim() == pytest.approx((-0.4, 8.8))
    assert [tick for tick in axes.get_yticks() if -0.4 <= tick <= 8.8] == list(range(9))
