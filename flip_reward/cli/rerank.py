"""``flip-reward rerank``: best-of-N over rows {prompt, responses} with FLIP, a pointwise or a listwise judge."""

from __future__ import annotations

import argparse
import asyncio
import sys

from flip_reward.cli.common import (
    EXIT_INVALID_INPUT,
    EXIT_JUDGE_DOWN,
    add_judge_arguments,
    add_restatement_guard_argument,
    method_options,
    report_errors,
    write_jsonl,
)
from flip_reward.evaluation.rerank import (
    RERANK_METHODS,
    BestOfN,
    RerankResult,
    rerank_input,
)
from flip_reward.judge.loops import close_clients


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``rerank`` to the ``flip-reward`` subcommands."""
    rerank = commands.add_parser("rerank", help="best-of-N: score N responses per prompt and pick the best")
    rerank.add_argument("input", help="rows {prompt, responses: [...]}: .jsonl, .json, .parquet or a dataset name")
    rerank.add_argument("--output", "-o", required=True, help="output JSONL: each row plus scores and best_index")
    rerank.add_argument("--method", choices=list(RERANK_METHODS), default="flip")
    rerank.add_argument("--split", default="train", help="split of a Hugging Face dataset (default: %(default)s)")
    add_restatement_guard_argument(rerank)
    add_judge_arguments(rerank)
    rerank.set_defaults(run=run_rerank)


def run_rerank(args: argparse.Namespace) -> int:
    from flip_reward.data.loading import load_rows, read_valid

    rows = load_rows(args.input, args.split)
    inputs, invalid = read_valid(rows, rerank_input)
    if invalid:
        report_errors(invalid, f"{len(invalid)} invalid row(s); nothing was reranked")
        return EXIT_INVALID_INPUT
    selector = BestOfN(args.method, **method_options(args, args.method))
    results = asyncio.run(_rerank_with_progress(selector, inputs))
    write_jsonl(args.output, [{**row, **result.to_dict()} for row, result in zip(rows, results)])
    unpicked = sum(result.best_index is None for result in results)
    failed = sum(len(result.errors) for result in results)
    print(
        f"rows {len(results)} | best picked {len(results) - unpicked} | no best {unpicked} | "
        f"failed judgments {failed} | method {args.method}",
        file=sys.stderr,
    )
    if selector.scorer.judge.breaker.times_opened and unpicked == len(results):
        print(
            f"error: judge {selector.scorer.judge.endpoint.description} is down "
            f"({selector.scorer.judge.breaker.last_error}); no row was reranked",
            file=sys.stderr,
        )
        return EXIT_JUDGE_DOWN
    return 0


async def _rerank_with_progress(selector: BestOfN, inputs: list[tuple]) -> list[RerankResult]:
    from tqdm import tqdm

    total = sum(selector.planned_calls(responses) for _, responses in inputs)
    try:
        with tqdm(total=total, desc=f"rerank ({selector.method})", unit="call", file=sys.stderr) as bar:
            return list(
                await asyncio.gather(*(selector.arerank(prompt, responses, bar.update) for prompt, responses in inputs))
            )
    finally:
        await close_clients()
