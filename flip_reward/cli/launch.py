"""``flip-reward launch TRAINER``: a training run of another trainer with FLIP rewards, every knob a flag or its
environment variable (flag > environment > preset > default); one registration function per trainer.

Arguments the launcher does not know go to the trainer, in order (after ``--``, every one does)."""

from __future__ import annotations

import argparse

from flip_reward.knobs import SettingsError, add_flags

VERL_FLAGS = "flip-reward launch verl --help lists the launcher's flags"
EXIT_CODES = "exit status: 0 ok, 1 the run failed, 2 invalid settings or data, 130 interrupted (docs/reference.md)"


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``launch`` and its trainers to the ``flip-reward`` command line."""
    launch = commands.add_parser(
        "launch", help="launch GRPO with FLIP rewards in a trainer (open-instruct, verl, OpenRLHF, local)"
    )
    trainers = launch.add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    register_open_instruct(trainers)
    register_verl(trainers)
    register_openrlhf(trainers)
    register_local(trainers)


def trainer_parser(
    trainers: argparse._SubParsersAction, name: str, doc: str, help_text: str
) -> argparse.ArgumentParser:
    return trainers.add_parser(
        name,
        help=help_text,
        description=doc.split("\n\n")[0],
        epilog=EXIT_CODES,
        allow_abbrev=False,  # an abbreviation of a launcher flag never swallows a trainer's argument
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def trainer_args(extra: list[str]) -> list[str]:
    """The arguments for the trainer: those the launcher did not know, without the first ``--``."""
    if "--" in extra:
        extra = extra[: extra.index("--")] + extra[extra.index("--") + 1 :]
    return extra


OPEN_INSTRUCT_EXIT_CODES = """exit status:
  0    the run (or every check of the dry run) succeeded
  1    the run failed (the trainer's own non-zero status is passed on), or a check failed
  2    invalid settings: a knob, a preset, a FLIP_* variable, a trainer argument with no local equivalent
  3    the judge did not start, or does not answer at the address the trainer uses
  130  interrupted (Ctrl-C); 143 and 129: TERM and HUP"""

OPEN_INSTRUCT = """GRPO with upstream open-instruct's grpo_fast.py (through the plugin launcher, so the general-flip
verifier is registered) and rewards from a judge LLM started here (JUDGE_BASE_URL unset; JUDGE_REPLICAS > 1:
behind vllm-router) or running already (JUDGE_BASE_URL; several: vllm-router in front).

Arguments: every option below is a knob, also read from its environment variable and from the preset
(configs/grpo_NAME.env); any other argument goes to grpo_fast.py after the launcher's own (later flags win), and
everything after `--` goes there too, even an option of this command. --dry-run prints the judge/router and trainer
commands and runs every check (data, judge, FLIP_* settings, grpo_fast flags against an open-instruct checkout,
policy tokenizer, this machine); it needs neither GPUs nor open-instruct, and shows the open-instruct plan on any
machine. BACKEND=auto runs the local TRL backend (flip-reward launch local) on a machine without a CUDA GPU or
open_instruct, said in one line; grpo_fast arguments are then mapped onto flip-reward train's options."""


def register_open_instruct(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch.grpo_settings import VERIFIERS, GrpoFastSettings

    parser = trainer_parser(trainers, "open-instruct", OPEN_INSTRUCT, "GRPO with upstream open-instruct's grpo_fast.py")
    parser.description, parser.epilog = OPEN_INSTRUCT, OPEN_INSTRUCT_EXIT_CODES
    parser.usage = "%(prog)s [--verifier V] [--dry-run] [KNOB FLAGS] [GRPO_FAST_ARGS...] [-- GRPO_FAST_ARGS...]"
    parser.add_argument(
        "--verifier",
        choices=VERIFIERS,
        help="the reward: general-flip (FLIP) or general-quality (upstream's pointwise judge); picks the default "
        "DATASETS and EXP_NAME (default: env GRPO_VERIFIER, else general-flip)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and run every check; start nothing")
    parser.add_argument(
        "--preset", help="configs/grpo_NAME.env (1node, 1gpu, multinode) or a path (default: 1node; env PRESET)"
    )
    add_flags(parser, GrpoFastSettings)
    parser.set_defaults(run=run_open_instruct, passes_through=True)


def run_open_instruct(args: argparse.Namespace) -> int:
    import os

    from flip_reward.launch.open_instruct import launch

    verifier = args.verifier or os.environ.get("GRPO_VERIFIER") or "general-flip"
    return launch(verifier, vars(args), trainer_args(args.extra), args.dry_run)


def register_verl(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch import verl

    parser = trainer_parser(trainers, "verl", verl.__doc__ or "", "GRPO in verl (HYDRA_OVERRIDES go to verl)")
    parser.add_argument("--dry-run", action="store_true", help="check settings and data, print every command")
    add_flags(parser, verl.VerlSettings)
    parser.set_defaults(run=run_verl, passes_through=True)


def run_verl(args: argparse.Namespace) -> int:
    from flip_reward.launch.verl import VerlSettings, launch_verl

    overrides = trainer_args(args.extra)
    options = [argument for argument in overrides if argument.startswith("-")]
    if options:  # verl takes Hydra overrides (key=value): an option here is a mistyped launcher flag
        raise SettingsError(f"unknown option {options[0]}: verl takes Hydra overrides (key=value); {VERL_FLAGS}")
    return launch_verl(VerlSettings.from_sources(vars(args)), overrides, args.dry_run)


def register_openrlhf(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch import openrlhf

    parser = trainer_parser(trainers, "openrlhf", openrlhf.__doc__ or "", "GRPO in OpenRLHF through flip-reward serve")
    parser.add_argument("--dry-run", action="store_true", help="check settings and data, print every command")
    add_flags(parser, openrlhf.OpenRLHFSettings)
    parser.set_defaults(run=run_openrlhf, passes_through=True)


def run_openrlhf(args: argparse.Namespace) -> int:
    from flip_reward.launch.openrlhf import OpenRLHFSettings, launch_openrlhf

    return launch_openrlhf(OpenRLHFSettings.from_sources(vars(args)), trainer_args(args.extra), args.dry_run)


def register_local(trainers: argparse._SubParsersAction) -> None:
    from flip_reward.launch import local

    parser = trainer_parser(trainers, "local", local.__doc__ or "", "GRPO on this machine with TRL (flip-reward train)")
    parser.epilog = (local.__doc__ or "").split("\n\n", 1)[1] + "\n" + EXIT_CODES
    parser.add_argument(
        "--verifier", choices=tuple(local.REWARDS), help="the reward (default: env GRPO_VERIFIER, else general-flip)"
    )
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
    return run_local(trainer_args(args.extra), verifier=args.verifier)
