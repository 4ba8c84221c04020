"""``flip-reward score``: FLIP rewards for (prompt, response) rows, written next to each row, with a summary line."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from flip_reward.cli.common import (
    OrderedJsonlWriter,
    add_input_arguments,
    add_judge_arguments,
    add_restatement_guard_argument,
    add_reward_metric_argument,
    command_epilog,
    judge_failure,
    judging,
    method_options,
    report_errors,
    report_interrupted,
    report_unstored_answers,
)
from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult, FlipReward
from flip_reward.data.loading import RowError
from flip_reward.data.output_checks import check_not_input, check_output
from flip_reward.data.samples import result_fields
from flip_reward.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_JUDGE_DOWN,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WRITE_FAILED,
)
from flip_reward.judge.loops import cancel_pending_tasks

SUMMARY_FAILURES = (ErrorType.PARSE, ErrorType.JUDGE, ErrorType.INPUT)  # the summary's failure counts, in its order
ROWS_HELD_PER_REQUEST = 8  # rows read ahead of the oldest unwritten one, per request in flight (--concurrency)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``score`` to the ``flip-reward`` subcommands."""
    score = commands.add_parser(
        "score",
        help="score (prompt, response) rows with FLIP",
        description="FLIP rewards for (prompt, response) rows, written next to each row, with a summary line.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=(
                "OUTPUT (.jsonl, written as rows finish, in input order): every input row plus "
                + ", ".join(result_fields("", FlipResult(reward=0.0))),
                "stderr: a progress bar, then a summary line: rows, mean and median reward, parse failures, judge "
                "errors, input errors (invalid rows and empty responses), cache hits, rewards/s",
            ),
            notes={
                EXIT_RUN_FAILED: "the judge refused every request (4xx)",
                EXIT_JUDGE_DOWN: "no row was scored",
                EXIT_INTERRUPTED: "OUTPUT keeps the rows finished so far; a rerun with the same --cache resumes",
            },
        ),
    )
    score.add_argument("input", help=".jsonl, .json, .parquet file or a Hugging Face dataset name")
    score.add_argument("--output", "-o", required=True, help="output JSONL: each input row plus its reward fields")
    score.add_argument("--split", default="train", help="split of a Hugging Face dataset (default: %(default)s)")
    add_reward_metric_argument(score)
    score.add_argument("--skip-invalid", action="store_true", help="score valid rows; invalid rows get an error")
    add_input_arguments(score)
    add_restatement_guard_argument(score)
    add_judge_arguments(score)
    score.set_defaults(run=run_score)


def run_score(args: argparse.Namespace) -> int:
    from flip_reward.data.loading import reread_rows, scoring_input

    rows = reread_rows(args.input, args.split, args.max_line_bytes)

    def inputs() -> Iterator[tuple[object, tuple | RowError]]:
        """Each row and its (prompt, response) or RowError, read afresh on each call (a file is never held)."""
        for number, row in rows():
            try:
                yield row, scoring_input(row, number)
            except RowError as error:
                yield row, error

    total, invalid = 0, []
    for _, item in inputs():  # every row is checked before the first judge call
        total += 1
        if isinstance(item, RowError):
            invalid.append(item)
    if not total:
        raise ValueError(f"{args.input} has no rows")
    if invalid and not args.skip_invalid:
        report_errors(
            invalid, f"{len(invalid)} invalid row(s); nothing was scored (use --skip-invalid to score the rest)"
        )
        return EXIT_INVALID_INPUT
    check_output(args.output, (".jsonl",))
    check_not_input(args.input, [args.output])
    flip = FlipReward(reward_metric=args.reward_metric, **method_options(args, "flip"))
    started = time.perf_counter()
    with OrderedJsonlWriter(args.output) as writer:

        def keep(index: int, row: object, item: tuple | RowError, result: FlipResult) -> None:
            writer.put(index, scored_row(row, item, result))

        try:
            window = ROWS_HELD_PER_REQUEST * args.concurrency
            tally = asyncio.run(score_with_progress(flip, inputs(), total, keep, lambda: writer.written, window))
        except KeyboardInterrupt:
            return report_interrupted(writer, total, flip.judge)
    print_summary(tally, time.perf_counter() - started, file=sys.stderr)
    report_unstored_answers(flip.judge)
    failure = None if tally.succeeded else judge_failure(flip.judge)
    if failure:
        print(f"error: {failure[1]}; no row was scored", file=sys.stderr)
        return failure[0]
    return 0


def scored_row(row: object, item: tuple | Exception, result: FlipResult) -> dict:
    """An output row: the input row (under ``row`` when it is not an object; nothing for a line that could not be
    read, whose ``error`` names it), every result field (``judged_response`` is what the judge saw) and the response's
    length in characters, as in training traces."""
    fields = row if isinstance(row, Mapping) else {} if isinstance(row, RowError) else {"row": row}
    return {**fields, **result_fields(item[1] if isinstance(item, tuple) else None, result)}


@dataclass
class Tally:
    """What the summary line needs of a run's results, kept as they finish (the results themselves are not)."""

    rewards: array = field(default_factory=lambda: array("d"))
    error_types: Counter = field(default_factory=Counter)
    cached: int = 0
    succeeded: bool = False  # whether any row got a reward without an error

    def add(self, result: FlipResult) -> None:
        self.rewards.append(result.reward)
        self.error_types[result.error_type] += 1
        self.cached += result.cached
        self.succeeded = self.succeeded or result.error is None


async def score_with_progress(
    flip: FlipReward,
    inputs: Iterable[tuple[object, tuple | Exception]],
    total: int,
    done: Callable[[int, object, tuple | Exception, FlipResult], object],
    written: Callable[[], int],
    window: int,
) -> Tally:
    """Score every valid input of ``(row, input)`` pairs with a progress bar, telling ``done(index, row, input,
    result)`` as each finishes; an invalid one becomes an input-error result in place. Rows are read as they are
    started: at most ``window`` rows past the first one not yet ``written()`` are held at any time, so a long input
    costs the memory of that window, not of the file."""

    tally = Tally()

    async def one(index: int, row: object, item: object) -> None:
        if isinstance(item, Exception):
            result = FlipResult(reward=0.0, error=str(item), error_type=ErrorType.INPUT)
        else:
            result = await flip.ascore_one(*item)
        done(index, row, item, result)
        tally.add(result)
        bar.update(1)

    pending: set[asyncio.Task] = set()
    failures: list[BaseException] = []
    finished = asyncio.Event()

    def retire(task: asyncio.Task) -> None:
        pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())
        finished.set()

    async with judging(total, "scoring", "row") as bar:
        try:
            for index, (row, item) in enumerate(inputs):
                while pending and index >= written() + window and not failures:
                    finished.clear()
                    await finished.wait()
                if failures:
                    raise failures[0]
                task = asyncio.ensure_future(one(index, row, item))
                pending.add(task)
                task.add_done_callback(retire)
            await asyncio.gather(*pending)
        except BaseException:  # an output that cannot be written, or Ctrl-C: no task is left pending
            await cancel_pending_tasks()
            raise
    return tally


def summarize(tally: Tally, seconds: float) -> dict:
    """Counts and reward statistics of a run (failed rows count as reward 0.0, as in training)."""
    rewards, kinds = tally.rewards, tally.error_types
    return {
        "rows": len(rewards),
        "mean_reward": statistics.fmean(rewards) if rewards else 0.0,
        "median_reward": statistics.median(rewards) if rewards else 0.0,
        **{kind.counter: kinds[kind] for kind in SUMMARY_FAILURES},
        "cached": tally.cached,
        "rewards_per_s": len(rewards) / seconds if seconds > 0 else 0.0,
    }


def print_summary(tally: Tally, seconds: float, file: TextIO = sys.stdout) -> None:
    summary = summarize(tally, seconds)
    print(
        f"rows {summary['rows']} | mean reward {summary['mean_reward']:.4f} | median {summary['median_reward']:.4f}"
        + "".join(f" | {kind.counter.replace('_', ' ')} {summary[kind.counter]}" for kind in SUMMARY_FAILURES)
        + f" | cached {summary['cached']} | {summary['rewards_per_s']:.1f} rewards/s",
        file=file,
    )
