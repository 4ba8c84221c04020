"""``flip-reward launch TRAINER``: a training run with its judge, planned from knobs (flag > environment > preset >
default) and supervised until it ends; one registration function per trainer."""

from __future__ import annotations

import argparse
import os

from flip_reward.knobs import add_flags

EXIT_CODES = """exit status:
  0    the run (or the dry run's checks) succeeded
  1    the run failed (the trainer's own status is passed on), or a check failed
  2    invalid settings: a knob, a preset, a FLIP_* variable, a trainer argument with no local equivalent
  3    the judge did not start, or does not answer at the address the trainer uses
  130  interrupted (Ctrl-C); 143 and 129 for TERM and HUP"""

OPEN_INSTRUCT = """GRPO with upstream open-instruct's grpo_fast.py (through the plugin launcher, so the general-flip
verifier is registered) and rewards from a judge LLM started here (JUDGE_BASE_URL unset; JUDGE_REPLICAS > 1:
behind vllm-router) or running already (JUDGE_BASE_URL; several: vllm-router in front).

Arguments: every option below is a knob, also read from its environment variable and from the preset
(configs/grpo_NAME.env); any other argument goes to grpo_fast.py after the launcher's own (later flags win), and
everything after `--` goes there too, even an option of this command. --dry-run prints the judge/router and trainer
commands and runs every check (data, judge, FLIP_* settings, grpo_fast flags against an open-instruct checkout,
policy tokenizer, this machine); it needs neither GPUs nor open-instruct, and shows the open-instruct plan on any
machine. BACKEND=auto runs the local TRL backend (`flip-reward train`) on a machine without a CUDA GPU or
open_instruct, said in one line; grpo_fast arguments are then mapped onto train's options."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``launch`` and its trainers to the ``flip-reward`` command line."""
    parser = subparsers.add_parser(
        "launch", help="a training run with its judge (open-instruct, ...)", description=__doc__.split("\n\n")[0]
    )
    trainers = parser.add_subparsers(dest="trainer", required=True, metavar="TRAINER")
    register_open_instruct(trainers)


def register_open_instruct(trainers: argparse._SubParsersAction) -> None:
    """``flip-reward launch open-instruct``."""
    from flip_reward.launch.grpo_settings import VERIFIERS, GrpoFastSettings

    parser = trainers.add_parser(
        "open-instruct",
        help="GRPO with upstream open-instruct's grpo_fast.py",
        description=OPEN_INSTRUCT,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--verifier",
        choices=VERIFIERS,
        default=os.environ.get("GRPO_VERIFIER") or "general-flip",
        help="the reward: general-flip (FLIP) or general-quality (upstream's pointwise judge); picks the default "
        "DATASETS and EXP_NAME (default: general-flip; env GRPO_VERIFIER)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and run every check; start nothing")
    parser.add_argument(
        "--preset", help="configs/grpo_NAME.env (1node, 1gpu, multinode) or a path (default: 1node; env PRESET)"
    )
    add_flags(parser, GrpoFastSettings)
    parser.set_defaults(run=run_open_instruct, passes_through=True)


def run_open_instruct(args: argparse.Namespace) -> int:
    from flip_reward.launch.open_instruct import launch

    return launch(args.verifier, vars(args), args.trainer_args, args.dry_run)
