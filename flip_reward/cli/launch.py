"""``flip-reward launch TRAINER``: a training run of another trainer with FLIP rewards, every knob a flag or its
environment variable (flag > environment > preset > default); one registration function per trainer.

Arguments the launcher does not know go to the trainer, in order (after ``--``, every one does)."""

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
from flip_reward.knobs import add_flags

PASS_THROUGH = "Arguments the launcher does not know go to the trainer, in order (after --, every one does)."
# The launchers of flip_reward.launch.command_trainer: name -> the module holding its SETTINGS, RECIPE and HELP.
COMMAND_TRAINERS: dict[str, str] = {
    "slime": "flip_reward.launch.slime",
    "skyrl": "flip_reward.launch.skyrl",
    "areal": "flip_reward.launch.areal",
    "nemo-rl": "flip_reward.launch.nemo_rl",
    "roll": "flip_reward.launch.roll",
}
JUDGE_FILES = "OUTPUT_DIR/judge: judge.pid and judge.log of a judge started here (and its router's)"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``launch`` and its trainers to the ``flip-reward`` command line."""
    launch = commands.add_parser(
        "launch",
        help="launch GRPO with FLIP rewards in a trainer (open-instruct, verl, OpenRLHF, local)",
        description="GRPO with FLIP rewards in a trainer: every knob a flag or its environment variable (flag > "
        "environment > preset > default), the judge served and every process stopped in order.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            stopped_by_signal=True,
            text="flip-reward launch TRAINER --help: a launcher's knobs, outputs and exit statuses",
        ),
    )
    trainers = launch.add_subparsers(dest="trainer", required=True, metavar="TRAINER", title="trainers")
    register_open_instruct(trainers)
    register_verl(trainers)
    register_openrlhf(trainers)
    register_local(trainers)
    for name in COMMAND_TRAINERS:
        register_command_trainer(trainers, name)


def trainer_parser(
    trainers: argparse._SubParsersAction, name: str, help_text: str, **pages: str
) -> argparse.ArgumentParser:
    """A launcher's parser: ``pages`` are its description and epilog; no abbreviations of its flags, so that one never
    swallows a trainer's argument."""
    return trainers.add_parser(name, help=help_text, allow_abbrev=False, **pages)


def trainer_args(extra: list[str]) -> list[str]:
    """The arguments for the trainer: those the launcher did not know, without the first ``--``."""
    if "--" in extra:
        extra = extra[: extra.index("--")] + extra[extra.index("--") + 1 :]
    return extra


def register_verl(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch import verl

    parser = trainer_parser(
        trainers,
        "verl",
        "GRPO in verl (HYDRA_OVERRIDES go to verl)",
        description="GRPO with FLIP rewards in verl (python -m verl.trainer.main_ppo, the reward function "
        "flip_reward.integrations.verl.compute_score): DATASETS converted to verl's parquet here, a validation set "
        "held out of the first dataset, the judge started (unless JUDGE_BASE_URL), verl run as its own process "
        "group, then verl and the judge stopped in order on its end, a failure, Ctrl-C, SIGTERM or SIGHUP.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_INTERRUPTED),
            outputs=(
                "OUTPUT_DIR/data: train_<i>.parquet (one per dataset) and val.parquet (the held-out validation set)",
                JUDGE_FILES,
                "OUTPUT_DIR/checkpoints: verl's; stdout (--dry-run): the plan, the judge, data and trainer lines, then "
                "one judge: line per JUDGE_BASE_URL judge asked",
            ),
            notes={
                EXIT_RUN_FAILED: "verl's own non-zero exit status, or a folder or PID file that could not be made",
                EXIT_JUDGE_DOWN: "the judge did not start, a JUDGE_BASE_URL judge does not answer (also --dry-run), or "
                "the judge exited during training (verl is stopped)",
            },
            stopped_by_signal=True,
            text="Every argument the launcher does not know is a Hydra override for verl (key=value), after the "
            "launcher's own (later ones win); an option there is refused as a mistyped flag, unless after --.",
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="check settings and data, print every command")
    add_flags(parser, verl.VerlSettings)
    parser.set_defaults(run=run_verl, passes_through="overrides")


def run_verl(args: argparse.Namespace) -> int:
    from flip_reward.launch.verl import VerlSettings, launch_verl

    return launch_verl(VerlSettings.from_sources(vars(args)), trainer_args(args.extra), args.dry_run)


def register_openrlhf(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch import openrlhf

    parser = trainer_parser(
        trainers,
        "openrlhf",
        "GRPO in OpenRLHF through flip-reward serve",
        description="GRPO with FLIP rewards in OpenRLHF: the judge and flip-reward serve (the reward service, on "
        "loopback) started as services, the OpenRLHF command that uses them printed, both kept up until Ctrl-C or "
        "SIGTERM, then stopped (the service first, its requests in flight finishing).",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_INTERRUPTED),
            outputs=(
                "stdout: the OpenRLHF command (trainer: ...), once both services are up; --dry-run: the plan, then "
                "one judge: line per JUDGE_BASE_URL judge asked",
                f"{JUDGE_FILES}; serve.pid and serve.log of flip-reward serve",
            ),
            notes={
                EXIT_OK: "also its end by Ctrl-C or SIGTERM",
                EXIT_RUN_FAILED: "flip-reward serve did not start, a service exited while the launcher waited, or a "
                "folder or PID file could not be made",
                EXIT_JUDGE_DOWN: "the judge did not start, or a JUDGE_BASE_URL judge does not answer (also --dry-run)",
                EXIT_INTERRUPTED: "Ctrl-C before the services were up",
            },
            text=f"{PASS_THROUGH} Here: appended to the printed OpenRLHF command.",
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="check settings and data, print every command")
    add_flags(parser, openrlhf.OpenRLHFSettings)
    parser.set_defaults(run=run_openrlhf, passes_through=True)


def run_openrlhf(args: argparse.Namespace) -> int:
    from flip_reward.launch.openrlhf import OpenRLHFSettings, launch_openrlhf

    return launch_openrlhf(OpenRLHFSettings.from_sources(vars(args)), trainer_args(args.extra), args.dry_run)


def register_local(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch import local

    parser = trainer_parser(
        trainers,
        "local",
        "GRPO on this machine with TRL (flip-reward train)",
        description="The local backend of the GRPO launchers (BACKEND=local): flip-reward train, run in this "
        "process, with its knobs below mapped onto it: GRPO_VERIFIER general-flip is --reward flip, general-quality "
        "--reward pointwise; LOCAL_PRESET is --preset, EXP_NAME --exp-name. The variables that are flip-reward "
        "train knobs too are read by it (docs/knobs.md). The FLIP_* variables are checked first.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=("those of flip-reward train (flip-reward train --help); --detect: the backend on stdout",),
            notes={EXIT_INVALID_INPUT: "also a grpo_fast.py argument with no local equivalent, or a bad FLIP_* value"},
            stopped_by_signal=True,
            text=f"{PASS_THROUGH} Here: to flip-reward train (--dry-run included), grpo_fast.py's underscore "
            "arguments mapped onto its options.",
        ),
    )
    add_flags(parser, local.LocalSettings)
    parser.add_argument("--detect", action="store_true", help="print the backend BACKEND=auto picks, and why")
    parser.set_defaults(run=run_local_backend, passes_through=True)


def run_local_backend(args: argparse.Namespace) -> int:
    import sys

    from flip_reward.launch.local import pick_backend, run_local

    if args.detect:
        backend, why = pick_backend()
        print(backend)
        print(why, file=sys.stderr)
        return 0
    return run_local(trainer_args(args.extra), vars(args))


def register_open_instruct(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch.grpo_settings import GrpoChoice, GrpoFastSettings

    parser = trainer_parser(
        trainers,
        "open-instruct",
        "GRPO with upstream open-instruct's grpo_fast.py (scripts/train/grpo_flip.sh, grpo_llmjudge.sh)",
        description="GRPO with upstream open-instruct's grpo_fast.py, run through the plugin launcher (the "
        "general-flip verifier registered), and rewards from a judge LLM started here (JUDGE_BASE_URL unset; "
        "JUDGE_REPLICAS > 1: behind vllm-router) or running already (JUDGE_BASE_URL; several: vllm-router in front); "
        "the trainer runs as its own process group once the judge answers at the address the trainer uses, and the "
        "trainer, then the judge, are stopped in order on its end, a failure, Ctrl-C, SIGTERM or SIGHUP.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_INTERRUPTED),
            outputs=(
                "OUTPUT_DIR: grpo_fast's own outputs (checkpoints, logs); OUTPUT_DIR/data: NAME.train.jsonl and "
                "NAME.eval.jsonl, the eval prompts held out of a local first dataset",
                JUDGE_FILES,
                "stdout (--dry-run): the plan (grpo:, judge:, trainer: lines), then one line per check (data:, "
                "judge:, settings:, flags:, tokenizer:, env:)",
            ),
            notes={
                EXIT_RUN_FAILED: "this machine cannot run grpo_fast.py, or the trainer's own non-zero exit status",
                EXIT_INVALID_INPUT: "a knob, preset or FLIP_* value, for every backend; invalid datasets or grpo_fast "
                "flags (also --dry-run)",
                EXIT_JUDGE_DOWN: "the judge did not start, does not answer at the trainer's address (--dry-run: a "
                "JUDGE_BASE_URL judge does not answer), or exited while the trainer ran (the trainer is stopped)",
            },
            stopped_by_signal=True,
            text="Every option below is a knob, also read from its environment variable and, but for --verifier, "
            "--backend and --preset, from the preset (configs/grpo_NAME.env). Any other argument goes to grpo_fast.py "
            "after the launcher's own (later flags win), and everything after -- does, even an option of this "
            "command. --dry-run prints the plan and runs every check, needs neither GPUs nor open-instruct, and shows "
            "the open-instruct plan on any machine. BACKEND=auto runs the local backend (flip-reward launch local) on "
            "a machine without a CUDA GPU or open_instruct, said in one line.",
        ),
    )
    parser.usage = "%(prog)s [-h] [--verifier V] [--dry-run] [KNOB FLAGS] [GRPO_FAST_ARGS...] [-- GRPO_FAST_ARGS...]"
    parser.add_argument("--dry-run", action="store_true", help="print the plan and run every check; start nothing")
    add_flags(parser, GrpoChoice)
    add_flags(parser, GrpoFastSettings)
    parser.set_defaults(run=run_open_instruct, passes_through=True)


def run_open_instruct(args: argparse.Namespace) -> int:
    from flip_reward.launch.open_instruct import launch

    return launch(vars(args), trainer_args(args.extra), args.dry_run)


def register_command_trainer(trainers: argparse._SubParsersAction, name: str) -> None:
    """A command-line trainer's launcher (``launch.command_trainer``): its module's HELP (one line), DESCRIPTION,
    SETTINGS (the knobs) and RECIPE."""
    import importlib

    module = importlib.import_module(COMMAND_TRAINERS[name])
    parser = trainer_parser(
        trainers,
        name,
        module.HELP,
        description=module.DESCRIPTION,
        epilog=command_epilog(
            (EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=(
                f"OUTPUT_DIR/data/{module.RECIPE.data_name}: DATASETS as {name}'s rows; OUTPUT_DIR/config: the files "
                f"{name} reads",
                JUDGE_FILES,
                "stdout (--dry-run): the plan, the judge, data and config lines (each file's text), the trainer line, "
                "then one judge: line per JUDGE_BASE_URL judge asked",
            ),
            notes={
                EXIT_RUN_FAILED: f"{name}'s own non-zero exit status, or a folder or PID file that could not be made",
                EXIT_INVALID_INPUT: f"a knob or FLIP_* value, invalid DATASETS rows (also --dry-run), or {name} not "
                "importable for a real run",
                EXIT_JUDGE_DOWN: "the judge did not start, a JUDGE_BASE_URL judge does not answer (also --dry-run), or "
                f"the judge exited during training ({name} is stopped)",
            },
            stopped_by_signal=True,
            text=f"{PASS_THROUGH} Here: appended to {name}'s command.",
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="check settings and data, print every command and file")
    add_flags(parser, module.SETTINGS)
    parser.set_defaults(run=lambda args: run_command_trainer(module, args), passes_through=True)


def run_command_trainer(module: object, args: argparse.Namespace) -> int:
    """A command-line trainer's launch: its SETTINGS from the flags and environment, then its RECIPE run."""
    from flip_reward.launch.command_trainer import launch_command_trainer

    settings = module.SETTINGS.from_sources(vars(args))
    return launch_command_trainer(module.RECIPE, settings, trainer_args(args.extra), args.dry_run)
