"""``flip-reward train``: GRPO with FLIP (or the pointwise LLM-judge baseline) on one machine, with TRL.

The policy trains with ``trl.GRPOTrainer`` (CPU when no CUDA, else one GPU); rewards come from a judge over HTTP
through ``flip_reward.integrations.trl`` (the one reward path). The judge is ``--judge-base-url`` when given, else a
server this command starts with scripts/serve_judge.sh (vLLM on a GPU, transformers serve on CPU) and stops on exit,
failure, Ctrl-C or SIGTERM. Writes OUTPUT_DIR/metrics.jsonl (one row per step), OUTPUT_DIR/reward_curve.png and
OUTPUT_DIR/model, with a progress bar and a closing summary.

Every option has an environment variable (the names scripts/train/grpo_*.sh use) and may come from a preset
(``--preset tiny`` = configs/local_tiny.env, or a path): flag > environment > preset > built-in default.
``tiny:SEED`` as policy or judge is a tiny random chat model built locally (flip_reward.training.tiny_model), no
download.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flip_reward.cli.common import check_not_input, check_output, command_epilog
from flip_reward.data.mixes import DatasetError, load_mix, parse_mixer, verifier_note
from flip_reward.exit_codes import (
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    EXIT_JUDGE_DOWN,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_WRITE_FAILED,
)
from flip_reward.knobs import SettingsError, add_flags
from flip_reward.os_errors import reason
from flip_reward.training.config import TrainSettings, plan_lines
from flip_reward.training.job import RUN_FILES, log


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
    parser.add_argument("--preset", help="configs/local_NAME.env (tiny, 1gpu) or a path (env LOCAL_PRESET)")
    parser.add_argument("--dry-run", action="store_true", help="resolve the settings, check the data, print the plan")
    add_flags(parser, TrainSettings, skip=("preset",))
    parser.set_defaults(run=run_train, extras=("train",), needs=("torch", "transformers", "trl"))  # the [train] extra


def run_train(args: argparse.Namespace) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        settings = TrainSettings.from_sources(vars(args), args.preset)
        rows, report = load_mix(settings.datasets, settings.dataset_splits)
        if not args.dry_run:  # a dry run writes nothing
            check_output_dir(settings.output_dir, settings.datasets)
        check_reward_settings(settings)
        if not args.dry_run:
            make_output_dir(settings.output_dir)
    except (SettingsError, DatasetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    for line in plan_lines(settings, report, len(rows)):
        log(line)
    note = verifier_note(rows, settings.reward)
    if note:
        log(note)
    from flip_reward.training.job import JudgeUnusable, run_job

    if args.dry_run:
        return dry_run_judge(settings) if settings.judge_base_url else 0
    from flip_reward.serving.judge_server import JudgeServerError
    from flip_reward.serving.processes import exit_on_signals

    exit_on_signals()
    try:
        return run_job(settings, rows)
    except JudgeUnusable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_JUDGE_DOWN
    except (SettingsError, JudgeServerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:
        log("interrupted")
        return EXIT_INTERRUPTED
    except SystemExit as stop:  # SIGTERM/SIGHUP, turned into SystemExit by exit_on_signals
        log(f"stopped by a signal (exit status {stop.code})")
        raise


def check_reward_settings(settings: TrainSettings) -> None:
    """Build the run's reward once, offline, before anything starts, so that its judge settings are checked up front
    (e.g. --judge-max-tokens leaving the prompt no room in --judge-max-context); SettingsError says why."""
    from flip_reward.training.job import served_judge_model
    from flip_reward.training.loop import make_reward

    try:
        make_reward(settings, served_judge_model(settings), "http://127.0.0.1/v1", None, None)
    except ValueError as error:
        raise SettingsError(str(error)) from None


def check_output_dir(output_dir: str, datasets: str) -> None:
    """SettingsError naming --output-dir unless the run could write there (``check_output``; the folder is made when
    the run starts), or when a file the run writes there is one of its ``datasets``: before any model is built or
    judge started, so that a bad path costs nothing."""
    try:
        check_output(output_dir, None, "--output-dir")
        for entry in parse_mixer(datasets):
            check_not_input(entry.source, [Path(output_dir, name) for name in RUN_FILES], "--output-dir")
    except ValueError as error:
        raise SettingsError(str(error)) from None


def make_output_dir(output_dir: str) -> None:
    """The run's --output-dir, made once every check passed (a dry run or bad settings make nothing); SettingsError
    naming --output-dir when it cannot be made (under /proc, where even root can make nothing)."""
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(f"--output-dir {output_dir}: cannot create {output_dir}: {reason(error)}") from None


def dry_run_judge(settings: TrainSettings) -> int:
    """The dry run's check of a judge given by URL: it answers and serves the --judge model (exit 3 otherwise)."""
    from flip_reward.judge.urls import redact_url
    from flip_reward.training.job import JudgeUnusable, given_judge

    try:
        log(f"judge: ok, {redact_url(given_judge(settings))} serves {settings.judge}")
    except JudgeUnusable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_JUDGE_DOWN
    return 0
