"""What a local GRPO run reports: ``metrics.jsonl`` (one row per step), a progress bar, ``reward_curve.png`` and the
closing summary. The callbacks read what ``GRPOTrainer`` logs: ``reward``/``reward_std`` (the reward the policy was
trained on) and the judge counts ``rewards/<name>/judge_errors|parse_failures|input_errors`` that the reward
functions of ``flip_reward.integrations.trl`` log per batch.

``metrics.jsonl`` is the run's record, not its product (the policy is): a row that cannot be written (a full disk)
never stops training. One warning, the file keeps its whole lines and gets no more, the rows stay in memory for the
reward curve and the summary, and ``MetricsFileCallback.failure`` says what happened, so that the command can end with
exit status 4 once the policy is trained and saved.
"""

from __future__ import annotations

import logging
import math
import statistics
import sys
import time
from pathlib import Path

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from flip_reward.core.results import ErrorType
from flip_reward.data.writing import JsonlFile, OutputError, whole_file

logger = logging.getLogger("flip_reward")
# The reward's counts TRL logs per batch, in the order metrics.jsonl and the plot show them.
COUNTS = tuple(kind.counter for kind in (ErrorType.JUDGE, ErrorType.PARSE, ErrorType.INPUT))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def step_row(step: int, logs: dict, seconds: float) -> dict:
    """One metrics.jsonl row: the required keys first, then every other numeric value the trainer logged.

    Counts are summed over the reward functions (each logs its own); a step without a generation batch has None
    for the reward fields."""
    has_reward = _number(logs.get("reward")) is not None
    row: dict = {
        "step": step,
        "reward_mean": _number(logs.get("reward")),
        "reward_std": _number(logs.get("reward_std")),
    }
    for count in COUNTS:
        values = [_number(value) for key, value in logs.items() if key.endswith(f"/{count}")]
        row[count] = int(round(sum(v for v in values if v is not None))) if has_reward else None
    row["seconds"] = round(seconds, 3)
    for key, value in logs.items():
        if key not in row and key not in ("reward", "reward_std") and _number(value) is not None:
            row[key] = value
    return row


class MetricsFileCallback(TrainerCallback):
    """Writes ``path`` (JSONL) with one row per logged training step (see ``step_row``); ``seconds`` is the wall time
    since the previous row (or the start of training): generation, judging and the update. Keeps ``rows``, every one
    of them also when the file could not be written: then ``failure`` is the OutputError, logged once as a warning,
    and the file keeps the whole lines written before it (flip_reward.data.writing.JsonlFile)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []
        self.failure: OutputError | None = None
        self._file: JsonlFile | None = None
        self._last = time.perf_counter()

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        self._last = time.perf_counter()
        try:
            self._file = JsonlFile(self.path)
        except OutputError as error:
            self._stop(error)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict | None = None,
        **kwargs: object,
    ) -> None:
        logs = logs or {}
        if "train_runtime" in logs or any(key.startswith("eval_") for key in logs):
            return
        now = time.perf_counter()
        row = step_row(state.global_step, logs, now - self._last)
        self._last = now
        self.rows.append(row)
        if self._file is not None:
            try:
                self._file.write(row)
            except OutputError as error:
                self._stop(error)

    def _stop(self, error: OutputError) -> None:
        """The file could not be written: keep its whole lines, write no more, say so once."""
        self.failure = error
        self.close()
        logger.warning("metrics log stopped (training goes on): %s", error)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ProgressBarCallback(TrainerCallback):
    """A tqdm bar over the optimizer steps showing the latest reward and judge failure counts (replaces the
    default ProgressCallback, which prints every log dict)."""

    def __init__(self, description: str = "GRPO"):
        self.description = description
        self.bar = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=state.max_steps, desc=self.description, unit="step", file=sys.stderr, dynamic_ncols=True)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict | None = None,
        **kwargs: object,
    ) -> None:
        if self.bar is None or not logs or _number(logs.get("reward")) is None:
            return
        row = step_row(state.global_step, logs, 0.0)
        self.bar.set_postfix(
            {
                "reward": f"{row['reward_mean']:.3f}",
                "judge errors": row["judge_errors"],
                "parse failures": row["parse_failures"],
            },
            refresh=False,
        )

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def plot_reward_curve(rows: list[dict], path: str | Path, title: str = "GRPO reward") -> Path:
    """``path`` (PNG): the mean reward per step with a ±1 std band, and failed judgments per step below it; replaces an
    earlier curve whole or not at all (OutputError)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in rows if row.get("reward_mean") is not None]
    steps = [row["step"] for row in rows]
    mean = [row["reward_mean"] for row in rows]
    std = [row.get("reward_std") or 0.0 for row in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=(3, 1))
    top.plot(steps, mean, marker="o", markersize=3, label="mean reward")
    top.fill_between(
        steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.2, label="±1 std"
    )
    top.set_ylabel("reward")
    top.set_ylim(-0.05, max([1.05, *[m + s for m, s in zip(mean, std)]]))
    top.set_title(title)
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    base = [0] * len(rows)
    for count in COUNTS:
        values = [row.get(count) or 0 for row in rows]
        bottom.bar(steps, values, bottom=base, label=count.replace("_", " "))
        base = [b + v for b, v in zip(base, values)]
    bottom.set_xlabel("step")
    bottom.set_ylabel("failed")
    bottom.set_ylim(0, max([1, *base]) * 1.1)
    bottom.legend(loc="lower left", bbox_to_anchor=(0, 1), fontsize="small", ncols=3, frameon=False)
    figure.tight_layout()
    try:
        return whole_file(path, lambda temporary: figure.savefig(temporary, dpi=100))
    finally:
        plt.close(figure)


def summary_lines(rows: list[dict], seconds: float, completions: int, outputs: list[str]) -> list[str]:
    """The closing summary: steps and time, reward over the run, judge failures, where the outputs are."""
    scored = [row for row in rows if row.get("reward_mean") is not None]
    lines = [f"GRPO: {len(rows)} step(s) in {seconds:.1f}s" + (f" ({seconds / len(rows):.2f}s/step)" if rows else "")]
    if scored:
        means = [row["reward_mean"] for row in scored]
        lines.append(
            f"reward: mean {statistics.fmean(means):.4f} | first {means[0]:.4f} | last {means[-1]:.4f} | "
            f"best {max(means):.4f}"
        )
    totals = {count: sum(row.get(count) or 0 for row in scored) for count in COUNTS}
    lines.append(
        f"judge: {completions} completion(s) scored | judge errors {totals['judge_errors']} | "
        f"parse failures {totals['parse_failures']} | input errors {totals['input_errors']}"
    )
    judged = completions - totals["input_errors"]
    if judged and totals["parse_failures"] == judged:
        lines.append(
            "note: no judge answer could be parsed (rewards 0.0): expected from a tiny random judge, which "
            "writes gibberish; give a real judge (--judge / --judge-base-url) for real rewards"
        )
    elif judged and totals["judge_errors"] == judged:
        lines.append("note: every judge request failed (rewards 0.0): is the judge running? (see the warnings above)")
    if outputs:
        lines.append("outputs: " + ", ".join(outputs))
    return lines
