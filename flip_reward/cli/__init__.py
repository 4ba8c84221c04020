"""The ``flip-reward`` command line: all argparse lives here, one module per command (score, eval, rerank, data,
train, tiny-model, inspect, serve, judge, launch); each registers its subcommand and calls into the library."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys

from flip_reward.cli import data, evaluate, inspect, judge, launch, rerank, score, serve, tiny_model, train
from flip_reward.cli.common import CommandParser, command_epilog
from flip_reward.data.writing import OutputError
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_WRITE_FAILED, MEANINGS
from flip_reward.extras import first_missing, missing_extra_line


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``flip-reward`` subcommand."""
    parser = CommandParser(
        prog="flip-reward",
        description="FLIP reward modeling for RL training of LMs.",
        epilog=command_epilog(
            MEANINGS,
            stopped_by_signal=True,
            text="flip-reward COMMAND --help: the options, outputs and exit statuses of a command",
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for command in (score, tiny_model, evaluate, rerank, data, train, inspect, serve, judge, launch):
        command.register(commands)
    return parser


def installed_version() -> str:
    """The version of the installed flip-reward distribution (its metadata)."""
    try:
        return importlib.metadata.version("flip-reward")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown: the flip-reward distribution is not installed)"


def main(argv: list[str] | None = None) -> int:
    """Run a command; input it cannot use (a missing file, a broken row, a bad option value) is one ``error:``
    line and exit status 2, not a traceback, and so is a missing optional extra (a command's ``needs``, checked
    before it starts; a module it imports later, when it fails); an output that cannot be written
    midway (a full disk) is one line naming the file and exit status 4; Ctrl-C is one ``interrupted`` line and exit
    status 130 (commands that keep partial results say what they kept)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # only a launcher leaves arguments for its trainer (CommandParser)
    args.extra = extra
    missing = first_missing(getattr(args, "needs", ()))
    if missing:  # before any work: no model built, no judge started
        return missing_extra(args, missing)
    try:
        return args.run(args)
    except OutputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    except (OSError, ValueError) as error:  # RowError, PromptError and JudgeConfig's checks are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except ModuleNotFoundError as error:
        if not getattr(args, "extras", ()) or (error.name or "flip_reward").partition(".")[0] == "flip_reward":
            raise
        return missing_extra(args, error.name)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def missing_extra(args: argparse.Namespace, module: str) -> int:
    """The one line saying which extra provides the missing ``module`` of a command, and exit status 2."""
    print(missing_extra_line(args.command, module, args.extras), file=sys.stderr)
    return EXIT_INVALID_INPUT
