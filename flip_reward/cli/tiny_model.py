"""``flip-reward tiny-model``: a tiny random chat model and tokenizer built locally, for smoke runs (no download)."""

from __future__ import annotations

import argparse

from flip_reward.cli.common import command_epilog
from flip_reward.data.output_checks import check_output
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK, EXIT_WRITE_FAILED


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``tiny-model`` to the ``flip-reward`` subcommands."""
    tiny = commands.add_parser(
        "tiny-model",
        help="build a tiny random chat model + tokenizer locally (no download)",
        description="A tiny random chat model and tokenizer, built locally for smoke runs (no download).",
        epilog=command_epilog(
            (EXIT_OK, EXIT_INVALID_INPUT, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=(
                "OUTPUT_DIR: a two-layer random Qwen3 model, its tokenizer and a ChatML chat template "
                "(transformers' files); a build that fails leaves no part of one",
                "stdout: the model's directory",
            ),
        ),
    )
    tiny.add_argument("output_dir", metavar="OUTPUT_DIR", help="where the model goes (made when missing)")
    tiny.add_argument(
        "--seed", type=int, default=0, help="seed of the random weights: one seed, one model (default: %(default)s)"
    )
    tiny.set_defaults(run=run_tiny_model, extras=("serve", "train"), needs=("torch", "transformers"))  # in both


def run_tiny_model(args: argparse.Namespace) -> int:
    check_output(args.output_dir, None, "output_dir")
    from flip_reward.training.tiny_model import build_tiny_chat_model

    print(build_tiny_chat_model(args.output_dir, seed=args.seed))
    return 0
