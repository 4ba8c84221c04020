"""What ``flip-reward train`` does once its arguments are parsed, for the CLI and the local GRPO backend alike:
resolve the settings, load the mix, check the outputs and the reward settings, print the plan, then the dry run's
judge check or the run, each outcome as an exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from flip_reward.data.mixes import DatasetError, load_mix, parse_mixer, verifier_note
from flip_reward.data.output_checks import check_not_input, check_output
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_RUN_FAILED
from flip_reward.knobs import SettingsError, add_flags
from flip_reward.os_errors import reason
from flip_reward.training.config import TrainSettings, plan_lines
from flip_reward.training.job import RUN_FILES, log

NEEDS = ("torch", "transformers", "trl")  # the modules of the [train] extra
EXTRAS = ("train",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``flip-reward train``'s options: ``--dry-run`` and a flag for every knob of TrainSettings (``--preset``
    included)."""
    parser.add_argument("--dry-run", action="store_true", help="resolve the settings, check the data, print the plan")
    add_flags(parser, TrainSettings)


def run_train(
    flags: Mapping[str, object],
    preset: str | None = None,
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> int:
    """``flip-reward train`` with the knob values ``flags`` gives (None: not given), ``preset`` and the knob
    variables of ``environ`` (default: os.environ): 0 on success,
    2 for bad settings or data (nothing made), 3 for a judge given by URL that is unusable, 1 for a run that failed,
    130 for Ctrl-C; SIGTERM/SIGHUP end it with SystemExit(128 + N) after its outputs are written."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        settings = TrainSettings.from_sources(flags, preset, environ)
        rows, report = load_mix(settings.datasets, settings.dataset_splits)
        if not dry_run:  # a dry run writes nothing
            check_output_dir(settings.output_dir, settings.datasets)
        check_reward_settings(settings)
        if not dry_run:
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

    if dry_run:
        return dry_run_judge(settings) if settings.judge_base_url else 0
    from flip_reward.serving.judge_server import JudgeServerError
    from flip_reward.serving.process_signals import exit_on_signals

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
