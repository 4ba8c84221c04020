"""``flip-reward rerank``: best-of-N over rows {prompt, responses} with FLIP, a pointwise or a listwise judge."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import fields

from flip_reward.cli.common import (
    OrderedJsonlWriter,
    add_input_arguments,
    add_judge_arguments,
    add_restatement_guard_argument,
    command_epilog,
    gather_or_cancel,
    judge_failure,
    judging,
    method_options,
    report_errors,
    report_interrupted,
    report_unstored_answers,
    shuffle_seed,
)
from flip_reward.data.output_checks import check_not_input, check_output
from flip_reward.evaluation.rerank import (
    RERANK_METHODS,
    BestOfN,
    RerankResult,
    rerank_input,
)
from flip_reward.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_JUDGE_DOWN,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WRITE_FAILED,
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``rerank`` to the ``flip-reward`` subcommands."""
    rerank = commands.add_parser(
        "rerank",
        help="best-of-N: score N responses per prompt and pick the best",
        description="Best-of-N over rows {prompt, responses} with FLIP, a pointwise or a listwise judge.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=(
                "OUTPUT (.jsonl, written as rows finish, in input order): every input row plus "
                + ", ".join(field.name for field in fields(RerankResult)),
                "stderr: progress bars, then a summary line: rows, best picked, no best, failed judgments, method",
            ),
            notes={
                EXIT_RUN_FAILED: "the judge refused every request (4xx)",
                EXIT_JUDGE_DOWN: "no row was reranked",
                EXIT_INTERRUPTED: "OUTPUT keeps the rows finished so far; a rerun with the same --cache resumes",
            },
        ),
    )
    rerank.add_argument("input", help="rows {prompt, responses: [...]}: .jsonl, .json, .parquet or a dataset name")
    rerank.add_argument("--output", "-o", required=True, help="output JSONL: each row plus scores and best_index")
    rerank.add_argument(
        "--method",
        choices=list(RERANK_METHODS),
        default="flip",
        help="flip: each response's FLIP reward; pointwise: a 1-10 judge score each; listwise: the judge picks one "
        "of the N (default: %(default)s)",
    )
    rerank.add_argument("--split", default="train", help="split of a Hugging Face dataset (default: %(default)s)")
    add_input_arguments(rerank)
    add_restatement_guard_argument(rerank)
    add_judge_arguments(rerank)
    rerank.set_defaults(run=run_rerank)


def run_rerank(args: argparse.Namespace) -> int:
    from flip_reward.data.loading import read_input, read_valid

    rows = read_input(args.input, args.split, args.max_line_bytes)
    inputs, invalid = read_valid(rows, rerank_input)
    if invalid:
        report_errors(invalid, f"{len(invalid)} invalid row(s); nothing was reranked")
        return EXIT_INVALID_INPUT
    check_output(args.output, (".jsonl",))
    check_not_input(args.input, [args.output])
    selector = BestOfN(args.method, shuffle_seed=shuffle_seed(args), **method_options(args, args.method))
    with OrderedJsonlWriter(args.output) as writer:

        def keep(index: int, result: RerankResult) -> None:
            writer.put(index, {**rows[index], **result.to_dict()})

        try:
            results = asyncio.run(_rerank_with_progress(selector, inputs, keep))
        except KeyboardInterrupt:
            return report_interrupted(writer, len(rows), selector.scorer.judge)
    unpicked = sum(result.best_index is None for result in results)
    failed = sum(len(result.errors) for result in results)
    print(
        f"rows {len(results)} | best picked {len(results) - unpicked} | no best {unpicked} | "
        f"failed judgments {failed} | method {args.method}",
        file=sys.stderr,
    )
    report_unstored_answers(selector.scorer.judge)
    failure = judge_failure(selector.scorer.judge) if unpicked == len(results) else None
    if failure:
        print(f"error: {failure[1]}; no row was reranked", file=sys.stderr)
        return failure[0]
    return 0


async def _rerank_with_progress(
    selector: BestOfN, inputs: list[tuple], done: Callable[[int, RerankResult], object]
) -> list[RerankResult]:
    """Rerank every row with a progress bar of judge calls, telling ``done(index, result)`` as each row finishes."""

    async def one(index: int, prompt: object, responses: list[str]) -> RerankResult:
        result = await selector.arerank(prompt, responses, bar.update)
        done(index, result)
        return result

    total = sum(selector.planned_calls(responses) for _, responses in inputs)
    async with judging(total, f"rerank ({selector.method})", "call") as bar:
        return await gather_or_cancel(one(index, *item) for index, item in enumerate(inputs))
