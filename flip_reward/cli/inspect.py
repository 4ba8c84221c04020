"""``flip-reward inspect``: reward-hacking diagnostics of a run's samples, a score output or eval details, as a
text summary, inspect.json and inspect.png (flip_reward.evaluation.inspection)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flip_reward.cli.common import add_input_arguments, command_epilog, report_errors
from flip_reward.data.loading import refuse_stream
from flip_reward.data.output_checks import check_not_input, check_output
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK, EXIT_WRITE_FAILED


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``inspect`` to the ``flip-reward`` subcommands."""
    from flip_reward.evaluation.inspection import INSPECT_FILES

    inspect = commands.add_parser(
        "inspect",
        help="diagnostics of judged samples: is the run gaming the judge? (summary, inspect.json/.png)",
        description="Reward-hacking diagnostics of a run's samples, a score output or eval details.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_INVALID_INPUT, EXIT_WRITE_FAILED, EXIT_INTERRUPTED),
            outputs=(
                f"OUTPUT_DIR: {', '.join(INSPECT_FILES)}, written together",
                "stdout: the summary: figures per step and overall, the highest-reward samples, notes",
            ),
            notes={EXIT_INVALID_INPUT: "an unreadable line or field (nothing is written)"},
        ),
    )
    inspect.add_argument(
        "path",
        help="a flip-reward train run directory (samples.jsonl), a samples.jsonl, a flip-reward score output JSONL, "
        "or an eval details.jsonl (or its --output-dir)",
    )
    inspect.add_argument(
        "--output-dir", type=Path, help="where inspect.json and inspect.png go (default: the run dir, or the file's)"
    )
    inspect.add_argument("--top-k", type=int, default=5, help="highest-reward samples shown (default: %(default)s)")
    add_input_arguments(inspect)
    inspect.set_defaults(run=run_inspect)


def run_inspect(args: argparse.Namespace) -> int:
    from flip_reward.evaluation.inspection import INSPECT_FILES, InspectionError, source_file, write_inspection

    if args.top_k < 0:
        print(f"error: --top-k must be 0 or more, got {args.top_k}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    refuse_stream(args.path, "a run directory or a .jsonl file")
    source = source_file(args.path)
    if args.output_dir is None:  # write_inspection's default
        output_dir = source.parent
        subject = f"the input's folder {output_dir} (the default --output-dir)"
        option = subject + ":"
    else:
        output_dir, subject, option = args.output_dir, None, "--output-dir"
    check_output(str(output_dir), None, "--output-dir", INSPECT_FILES, subject)
    check_not_input(str(source), [output_dir / name for name in INSPECT_FILES], option)
    try:
        lines = write_inspection(args.path, args.output_dir, args.top_k, args.max_line_bytes)
    except InspectionError as error:
        report_errors(error.errors, f"{len(error.errors)} problem(s) in {args.path}; nothing was inspected")
        return EXIT_INVALID_INPUT
    print("\n".join(lines))
    return 0
