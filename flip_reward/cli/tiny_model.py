"""``flip-reward tiny-model``: a tiny random chat model and tokenizer built locally, for smoke runs (no download)."""

from __future__ import annotations

import argparse

from flip_reward.cli.common import check_output


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``tiny-model`` to the ``flip-reward`` subcommands."""
    tiny = commands.add_parser("tiny-model", help="build a tiny random chat model + tokenizer locally (no download)")
    tiny.add_argument("output_dir")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(run=run_tiny_model, extras=("serve", "train"), needs=("torch", "transformers"))  # in both


def run_tiny_model(args: argparse.Namespace) -> int:
    check_output(args.output_dir, None, "output_dir")
    from flip_reward.training.tiny_model import build_tiny_chat_model

    print(build_tiny_chat_model(args.output_dir, seed=args.seed))
    return 0
