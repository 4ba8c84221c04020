"""``flip-reward score``: FLIP rewards for (prompt, response) rows, written next to each row, with a summary line."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from flip_reward.cli.common import (
    EXIT_INVALID_INPUT,
    OrderedJsonlWriter,
    add_judge_arguments,
    add_restatement_guard_argument,
    check_output,
    judge_failure,
    judging,
    method_options,
    report_errors,
    report_interrupted,
)
from flip_reward.core.reward import REWARD_METRICS, FlipResult, FlipReward
from flip_reward.data.samples import result_fields


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``score`` to the ``flip-reward`` subcommands."""
    score = commands.add_parser("score", help="score (prompt, response) rows with FLIP")
    score.add_argument("input", help=".jsonl, .json, .parquet file or a Hugging Face dataset name")
    score.add_argument("--output", "-o", required=True, help="output JSONL: each input row plus its reward fields")
    score.add_argument("--split", default="train", help="split of a Hugging Face dataset (default: %(default)s)")
    score.add_argument("--reward-metric", choices=REWARD_METRICS, default="f1")
    score.add_argument("--skip-invalid", action="store_true", help="score valid rows; invalid rows get an error")
    add_restatement_guard_argument(score)
    add_judge_arguments(score)
    score.set_defaults(run=run_score)


def run_score(args: argparse.Namespace) -> int:
    from flip_reward.data.loading import RowError, numbered, read_input, scoring_input

    rows = read_input(args.input, args.split)
    inputs: list[tuple | RowError] = []
    for number, row in numbered(rows):
        try:
            inputs.append(scoring_input(row, number))
        except RowError as error:
            inputs.append(error)
    invalid = [item for item in inputs if isinstance(item, RowError)]
    if invalid and not args.skip_invalid:
        report_errors(
            invalid, f"{len(invalid)} invalid row(s); nothing was scored (use --skip-invalid to score the rest)"
        )
        return EXIT_INVALID_INPUT
    check_output(args.output, (".jsonl",))
    flip = FlipReward(reward_metric=args.reward_metric, **method_options(args, "flip"))
    started = time.perf_counter()
    with OrderedJsonlWriter(args.output) as writer:

        def keep(index: int, result: FlipResult) -> None:
            writer.put(index, scored_row(rows[index], inputs[index], result))

        try:
            results = asyncio.run(score_with_progress(flip, inputs, keep))
        except KeyboardInterrupt:
            return report_interrupted(writer, len(rows), args.cache)
    print_summary(results, time.perf_counter() - started, file=sys.stderr)
    failure = None if any(result.error is None for result in results) else judge_failure(flip.judge)
    if failure:
        print(f"error: {failure[1]}; no row was scored", file=sys.stderr)
        return failure[0]
    return 0


def scored_row(row: object, item: tuple | Exception, result: FlipResult) -> dict:
    """An output row: the input row (under ``row`` when it is not an object), every result field
    (``judged_response`` is what the judge saw) and the response's length in characters, as in training traces."""
    fields = row if isinstance(row, Mapping) else {"row": row}
    return {**fields, **result_fields(item[1] if isinstance(item, tuple) else None, result)}


async def score_with_progress(
    flip: FlipReward, inputs: list, done: Callable[[int, FlipResult], object]
) -> list[FlipResult]:
    """Score every valid input with a progress bar, telling ``done(index, result)`` as each finishes; an invalid
    one becomes an input-error result in place."""

    async def one(index: int, item: object) -> FlipResult:
        if isinstance(item, Exception):
            result = FlipResult(reward=0.0, error=str(item), error_type="input")
        else:
            result = await flip.ascore_one(*item)
        done(index, result)
        bar.update(1)
        return result

    async with judging(len(inputs), "scoring", "row") as bar:
        return list(await asyncio.gather(*(one(index, item) for index, item in enumerate(inputs))))


def summarize(results: list[FlipResult], seconds: float) -> dict:
    """Counts and reward statistics of a run (failed rows count as reward 0.0, as in training)."""
    rewards = [result.reward for result in results]
    kinds = [result.error_type for result in results]
    return {
        "rows": len(results),
        "mean_reward": statistics.fmean(rewards) if rewards else 0.0,
        "median_reward": statistics.median(rewards) if rewards else 0.0,
        "parse_failures": kinds.count("parse"),
        "judge_errors": kinds.count("judge"),
        "invalid_rows": kinds.count("input"),
        "cached": sum(result.cached for result in results),
        "rewards_per_s": len(results) / seconds if seconds > 0 else 0.0,
    }


def print_summary(results: list[FlipResult], seconds: float, file: TextIO = sys.stdout) -> None:
    summary = summarize(results, seconds)
    print(
        f"rows {summary['rows']} | mean reward {summary['mean_reward']:.4f} | median {summary['median_reward']:.4f} | "
        f"parse failures {summary['parse_failures']} | judge errors {summary['judge_errors']} | "
        f"invalid {summary['invalid_rows']} | cached {summary['cached']} | {summary['rewards_per_s']:.1f} rewards/s",
        file=file,
    )
