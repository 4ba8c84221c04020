"""The evaluation's files: results.json (figures per method), report.md (accuracy and cost tables), accuracy.png
(grouped bar chart, methods x subsets) and details.jsonl (every verdict with its raw judgments)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from flip_reward.data.writing import FileSet
from flip_reward.evaluation.evaluate import TIES_SUBSET, MethodSummary, Verdict
from flip_reward.text import json_line

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STRICT_RULE = (
    "flip/pointwise: every chosen score > every rejected score; pairwise: chosen preferred in both "
    "orders against every rejected response; listwise: the pick is a chosen response"
)
SPLIT_RULE = (
    "ties broken uniformly at random (1/k for a chosen response tied with k-1 others at the top; a pair "
    "won in one order only counts 1/2)"
)


OUTPUT_FILES = ("results.json", "report.md", "accuracy.png", "details.jsonl")


def write_outputs(
    output_dir: str | Path,
    summaries: Mapping[str, MethodSummary],
    verdicts: Mapping[str, Sequence[Verdict]],
    meta: Mapping[str, object],
) -> list[Path]:
    """Write the four OUTPUT_FILES into ``output_dir`` (created if needed) and return their paths. They land
    together or not at all (FileSet): OutputError when one cannot be written, and then the files of an earlier run
    there are untouched."""
    directory = Path(output_dir)
    paths = [directory / name for name in OUTPUT_FILES]
    results = {method: summary.to_dict() for method, summary in summaries.items()}
    with FileSet() as files:
        files.write(paths[0], lambda path: path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8"))
        files.write(paths[1], lambda path: path.write_text(report_markdown(summaries, meta), encoding="utf-8"))
        files.write(paths[2], lambda path: plot_accuracy(summaries, path, str(meta.get("judge", "")).strip("`")))
        files.write(paths[3], lambda path: write_details(path, verdicts))
        return files.commit()


def write_details(path: Path, verdicts: Mapping[str, Sequence[Verdict]]) -> None:
    """details.jsonl: every verdict, one line each."""
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json_line(verdict.to_dict()) + "\n" for method in verdicts.values() for verdict in method)


def subsets_of(summaries: Mapping[str, MethodSummary]) -> list[str]:
    """Every subset any method scored or left out, in order of first appearance."""
    names: dict[str, None] = {}
    for summary in summaries.values():
        names.update(dict.fromkeys([*summary.per_subset, *summary.excluded]))
    return list(names)


def common_subsets(summaries: Mapping[str, MethodSummary]) -> list[str]:
    """The subsets every method scored: an overall over these compares methods that left different ones out."""
    return [name for name in subsets_of(summaries) if all(name in s.per_subset for s in summaries.values())]


def _mean_over(per_subset: Mapping[str, float], names: Sequence[str]) -> float | None:
    return sum(per_subset[name] for name in names) / len(names) if names else None


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def accuracy_table(summaries: Mapping[str, MethodSummary], tie_split: bool) -> list[str]:
    """Markdown table: one row per method, overall, the overall over common subsets when methods left different
    subsets out, then one column per subset ("–" where left out)."""
    subsets, common = subsets_of(summaries), common_subsets(summaries)
    with_common = common != subsets
    rows = []
    for method, summary in summaries.items():
        per_subset = summary.per_subset_tie_split if tie_split else summary.per_subset
        overall = summary.accuracy_tie_split if tie_split else summary.accuracy
        extra = [_figure(_mean_over(per_subset, common))] if with_common else []
        rows.append([method, _figure(overall), *extra, *(_figure(per_subset.get(subset)) for subset in subsets)])
    header = ["method", "overall", *(["overall (common subsets)"] if with_common else []), *subsets]
    return _table(header, rows)


def cost_table(summaries: Mapping[str, MethodSummary]) -> list[str]:
    """Markdown table of examples, judge calls, failures and tokens per method."""
    rows = []
    for method, s in summaries.items():
        per_example = (s.prompt_tokens + s.completion_tokens) / s.n if s.n else 0.0
        rows.append(
            [
                method,
                str(s.n),
                str(s.judge_calls),
                str(s.failed_calls),
                str(s.errors),
                str(s.prompt_tokens),
                str(s.completion_tokens),
                f"{per_example:.0f}",
            ]
        )
    header = [
        "method",
        "examples",
        "judge calls",
        "failed calls",
        "examples with errors",
        "prompt tokens",
        "completion tokens",
        "tokens per example",
    ]
    return _table(header, rows)


def notes(summaries: Mapping[str, MethodSummary]) -> list[str]:
    """Left-out subsets and RewardBench 2 Ties components, one bullet each."""
    lines = [
        f"- {method}: {subset} {reason}."
        for method, summary in summaries.items()
        for subset, reason in summary.excluded.items()
    ]
    for method, summary in summaries.items():
        if summary.ties:
            parts = ", ".join(f"{name} {value:.3f}" for name, value in summary.ties.items())
            lines.append(f"- {method}: Ties by RewardBench 2's rule: {parts}.")
    return lines


def report_markdown(summaries: Mapping[str, MethodSummary], meta: Mapping[str, object]) -> str:
    """The report: run description, strict and tie-split accuracy tables, cost table, notes."""
    lines = ["# Reward-model accuracy: FLIP and LLM-as-a-judge baselines", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    common = common_subsets(summaries)
    lines += [
        "",
        "## Accuracy (strict)",
        "",
        f"Correct iff {STRICT_RULE}. Overall: mean of the subset columns "
        "(RewardBench 2's overall). A failed judge call makes its example incorrect.",
    ]
    if common != subsets_of(summaries):
        lines[-1] += f" Overall (common subsets): mean over {', '.join(common) or 'none'}, scored by every method."
    lines += [""]
    lines += accuracy_table(summaries, tie_split=False)
    lines += ["", "## Accuracy (tie-split)", "", f"Credit with {SPLIT_RULE}.", ""]
    lines += accuracy_table(summaries, tie_split=True)
    lines += [
        "",
        "## Cost",
        "",
        "Judge calls and the tokens the judge reported (cached answers counted at their original cost).",
        "",
    ]
    lines += cost_table(summaries)
    extra = notes(summaries)
    if extra:
        lines += ["", "## Notes", "", *extra]
    return "\n".join(lines) + "\n"


def plot_accuracy(summaries: Mapping[str, MethodSummary], path: str | Path, judge: str = "") -> None:
    """Write ``accuracy_figure`` to ``path`` (PNG)."""
    figure = accuracy_figure(summaries, judge)
    from matplotlib import pyplot

    figure.savefig(path, dpi=120)
    pyplot.close(figure)


def accuracy_figure(summaries: Mapping[str, MethodSummary], judge: str = "") -> Figure:
    """Grouped bar chart of strict accuracy: one group per subset (overall first), one bar per method, each bar
    labelled with its value ("n/a" where the method did not score the subset, "failed" where every judge call of it
    failed: no accuracy, not a 0). The axis starts below 0 and a bar of 0 is drawn as a thick stroke on the zero
    line, so that a zero reads as a zero, not as a missing bar. RewardBench 2's Ties figure is a score of its own
    (up to 1.01), and its group label says so."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    groups = ["overall", *subsets_of(summaries)]
    width = 0.8 / max(len(summaries), 1)
    figure, axes = pyplot.subplots(figsize=(max(6.0, 1.8 * len(groups)), 4.2))
    axes.axhline(0, color="0.3", linewidth=0.8)
    any_failed = False
    for offset, (method, summary) in enumerate(summaries.items()):
        values = [summary.accuracy, *(summary.per_subset.get(group) for group in groups[1:])]
        failed = [_all_failed(summary), *(group in summary.failed_subsets for group in groups[1:])]
        any_failed = any_failed or any(failed)
        positions = [index + (offset - (len(summaries) - 1) / 2) * width for index in range(len(groups))]
        bars = axes.bar(positions, [value or 0.0 for value in values], width, label=method)
        color = bars.patches[0].get_facecolor()
        for position, value, lost in zip(positions, values, failed):
            if value == 0 and not lost:
                axes.hlines(0, position - width / 2, position + width / 2, colors=[color], linewidth=3)
        labels = [_bar_label(value, lost) for value, lost in zip(values, failed)]
        axes.bar_label(bars, labels=labels, fontsize=6.5, padding=2)
    axes.set_xticks(range(len(groups)), [_group_label(group) for group in groups])
    axes.set_ylim(-0.05, 1.12)  # below 0 for the zero strokes; RewardBench 2's Ties can exceed 1 by its 0.01 margin
    axes.set_ylabel("accuracy (strict)")
    axes.set_title(f"Reward-model accuracy{f' — judge {judge}' if judge else ''}", fontsize=10)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if any_failed:
        figure.text(0.01, 0.01, "failed: every judge call failed, so there is no accuracy", fontsize=7)
    figure.tight_layout()
    return figure


def _all_failed(summary: MethodSummary) -> bool:
    """Whether every subset the method scored failed (then so did its overall)."""
    return bool(summary.per_subset) and set(summary.per_subset) <= set(summary.failed_subsets)


def _bar_label(value: float | None, failed: bool) -> str:
    """A bar's label: its value as report.md writes it, "n/a" when not scored, "failed" when every call failed."""
    if failed:
        return "failed"
    return "n/a" if value is None else f"{value:.3f}"


def _group_label(group: str) -> str:
    """A group's tick label; Ties says it is RewardBench 2's score (accuracy terms plus a margin term, up to 1.01)."""
    return f"{group}\n(RB2 Ties score, ≤ 1.01)" if group.casefold() == TIES_SUBSET else group
