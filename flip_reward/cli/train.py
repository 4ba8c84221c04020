"""``flip-reward train``: GRPO with FLIP (or the pointwise LLM-judge baseline) on one machine, with TRL.

The policy trains with ``trl.GRPOTrainer`` (CPU when no CUDA, else one GPU); rewards come from a judge over HTTP
through ``flip_reward.integrations.trl`` (the one reward path). The judge is ``--judge-base-url`` when given, else a
server this command starts as ``flip-reward judge serve`` does (vLLM on a GPU, transformers serve on CPU) and stops
on exit, failure, Ctrl-C or SIGTERM. Writes OUTPUT_DIR/metrics.jsonl (one row per step), OUTPUT_DIR/reward_curve.png and
OUTPUT_DIR/model, with a progress bar and a closing summary.

Every option has an environment variable (the names scripts/train/grpo_*.sh use) and may come from a preset
(``--preset tiny`` = configs/local_tiny.env, or a path): flag > environment > preset > built-in default.
``tiny:SEED`` as policy or judge is a tiny random chat model built locally (flip_reward.training.tiny_model), no
download.
"""

from __future__ import annotations

import argparse

from flip_reward.cli.common import command_epilog
from flip_reward.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_JUDGE_DOWN,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WRITE_FAILED,
)
from flip_reward.training import command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` to the ``flip-reward`` command line."""
    parser = subparsers.add_parser(
        "train",
        help="GRPO with FLIP (or the pointwise baseline) on this machine (TRL)",
        description="GRPO with FLIP (or the pointwise LLM-judge baseline) on one machine, with TRL: the policy trains "
        "on CPU without CUDA, else on one GPU; the judge is --judge-base-url, else a server this command starts "
        "(vLLM on a GPU, transformers serve on CPU) and stops on success, failure, Ctrl-C, SIGTERM or SIGHUP.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=(
                "OUTPUT_DIR: metrics.jsonl (one row per step), samples.jsonl (every judged completion), "
                "reward_curve.png, inspect.json and inspect.png (the flip-reward inspect report), model (unless "
                "--no-save-model), judge/judge.log (a judge started here)",
                "stdout: the closing summary (steps, reward, judge failures, the outputs written); stderr: the plan "
                "and a progress bar",
            ),
            notes={
                EXIT_RUN_FAILED: "e.g. its judge server could not be started",
                EXIT_JUDGE_DOWN: "the judge given by URL does not answer, or every judge request failed",
                EXIT_INTERRUPTED: "the summary of the steps done is printed",
            },
            stopped_by_signal=True,
            text="Every option also comes from its environment variable (the names scripts/train/grpo_*.sh use) "
            "or a preset: flag > environment > preset > built-in default. tiny:SEED as --model or --judge is a tiny "
            "random chat model built locally (no download).",
        ),
    )
    command.add_arguments(parser)
    parser.set_defaults(run=run_train, extras=command.EXTRAS, needs=command.NEEDS)


def run_train(args: argparse.Namespace) -> int:
    return command.run_train(vars(args), args.preset, args.dry_run)
