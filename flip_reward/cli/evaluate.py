"""``flip-reward eval``: accuracy of FLIP and the LLM-as-a-judge baselines on RewardBench-2 rows, with progress
bars, one summary line per method, report files and exit codes around flip_reward.evaluation."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from flip_reward.cli.common import (
    add_input_arguments,
    add_judge_arguments,
    add_restatement_guard_argument,
    command_epilog,
    judge_failure,
    judging,
    method_options,
    positive_int,
    report_errors,
    report_unstored_answers,
    shuffle_seed,
)
from flip_reward.data.output_checks import check_not_input, check_output
from flip_reward.evaluation.evaluate import (
    METHODS,
    SCORERS,
    Example,
    MethodSummary,
    Verdict,
    evaluate_method,
    planned_calls,
    read_examples,
    select,
    summarize,
)
from flip_reward.evaluation.report import OUTPUT_FILES
from flip_reward.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_JUDGE_DOWN,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WRITE_FAILED,
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the ``flip-reward`` subcommands."""
    evaluate = commands.add_parser(
        "eval",
        help="accuracy of FLIP and LLM-as-a-judge baselines on RewardBench-2 data",
        description="Accuracy of FLIP and the LLM-as-a-judge baselines on RewardBench-2 rows.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=(
                f"OUTPUT_DIR: {', '.join(OUTPUT_FILES)}, written together once every method is done",
                "stdout: one line per method: accuracy (strict and tie-split), examples, judge calls, failed calls, "
                "examples with errors, tokens; then a 'wrote' line per file",
            ),
            notes={
                EXIT_RUN_FAILED: "the judge refused every request (4xx)",
                EXIT_JUDGE_DOWN: "no example was judged for any method",
            },
        ),
    )
    evaluate.add_argument(
        "input", help=".jsonl, .json, .parquet file or a Hugging Face dataset (allenai/reward-bench-2)"
    )
    evaluate.add_argument(
        "--methods",
        type=method_list,
        default=list(METHODS),
        help=f"comma-separated, from {','.join(METHODS)} (default: all)",
    )
    evaluate.add_argument("--output-dir", required=True, help=f"where {', '.join(OUTPUT_FILES)} go")
    evaluate.add_argument("--split", default="test", help="split of a Hugging Face dataset (default: %(default)s)")
    evaluate.add_argument("--limit", type=positive_int, help="evaluate the first N examples (after --subsets)")
    evaluate.add_argument("--subsets", nargs="+", help="subsets to evaluate (names or comma-separated lists)")
    add_input_arguments(evaluate)
    add_restatement_guard_argument(evaluate)
    add_judge_arguments(evaluate)
    evaluate.set_defaults(run=run_eval)


def method_list(text: str) -> list[str]:
    """``--methods`` value: known method names, comma-separated, without duplicates."""
    methods = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}"
        )
    return methods


def run_eval(args: argparse.Namespace) -> int:
    from flip_reward.data.loading import read_input
    from flip_reward.evaluation.report import write_outputs

    examples, invalid = read_examples(read_input(args.input, args.split, args.max_line_bytes))
    if invalid:
        report_errors(invalid, f"{len(invalid)} invalid row(s); nothing was evaluated")
        return EXIT_INVALID_INPUT
    subsets = [name.strip() for item in args.subsets or [] for name in item.split(",") if name.strip()]
    examples = select(examples, subsets, args.limit)
    check_output(args.output_dir, None, "--output-dir", OUTPUT_FILES)
    check_not_input(args.input, [Path(args.output_dir, name) for name in OUTPUT_FILES], "--output-dir")
    scorers = {method: SCORERS[method](**method_options(args, method)) for method in args.methods}
    seed = shuffle_seed(args)
    summaries, verdicts, failures = {}, {}, []
    for method, scorer in scorers.items():
        verdicts[method] = asyncio.run(_with_progress(method, scorer, examples, seed))
        summaries[method] = summary = summarize(method, verdicts[method], examples, seed)
        print(summary_line(summary))
        report_unstored_answers(scorer.judge)
        for subset, reason in summary.excluded.items():
            print(f"note: {method}: {subset} {reason}", file=sys.stderr)
        if summary.judge_calls and summary.failed_calls == summary.judge_calls:
            failures.append(judge_failure(scorer.judge))
    meta = {
        "data": f"`{args.input}` ({len(examples)} examples)",
        "judge": f"`{args.judge}`",
        "methods": ", ".join(args.methods),
        "listwise shuffle seed": seed,
    }
    for path in write_outputs(args.output_dir, summaries, verdicts, meta):
        print(f"wrote {path}")
    if len(failures) == len(args.methods) and all(failures):
        print(f"error: {failures[0][1]}; no example was judged", file=sys.stderr)
        return failures[0][0]
    return 0


async def _with_progress(method: str, scorer: object, examples: list[Example], seed: int) -> list[Verdict]:
    async with judging(planned_calls(method, examples), method, "call") as bar:
        return await evaluate_method(method, scorer, examples, seed, bar.update)


def summary_line(summary: MethodSummary) -> str:
    """One line per method: accuracy (strict and tie-split), examples, calls, failures, tokens."""

    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    return (
        f"{summary.method}: accuracy {figure(summary.accuracy)} (tie-split {figure(summary.accuracy_tie_split)})"
        f" | examples {summary.n} | judge calls {summary.judge_calls} | failed calls {summary.failed_calls} | "
        f"examples with errors {summary.errors} | tokens {summary.prompt_tokens} prompt + "
        f"{summary.completion_tokens} completion"
    )
