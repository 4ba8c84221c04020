"""``flip-reward data convert`` and ``flip-reward data check``: RLVR datasets for open-instruct."""

from __future__ import annotations

import argparse

from flip_reward.cli.common import (
    add_input_arguments,
    command_epilog,
    positive_int,
    report_errors,
)
from flip_reward.data.loading import read_input, read_valid
from flip_reward.data.output_checks import check_not_input, check_output
from flip_reward.data.rlvr import (
    CONVERT_FORMATS,
    CONVERT_VERIFIERS,
    RLVR_FORMATS,
    check_rows,
    converter,
    describe_counts,
    verl_schema,
    write_rows,
)
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK, EXIT_WRITE_FAILED

CONVERT_EXIT_CODES = (EXIT_OK, EXIT_INVALID_INPUT, EXIT_WRITE_FAILED, EXIT_INTERRUPTED)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data convert`` and ``data check`` to the ``flip-reward`` command line."""
    data = subparsers.add_parser(
        "data",
        help="RLVR datasets for open-instruct (and verl): convert and check",
        description="RLVR datasets for open-instruct (and verl): convert rows to them, and check them.",
        epilog=command_epilog(
            CONVERT_EXIT_CODES, text="flip-reward data COMMAND --help: a command's options, outputs and exit statuses"
        ),
    )
    commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND", title="commands")
    convert = commands.add_parser(
        "convert",
        help="chat or prompt/response rows -> RLVR rows (messages, ground_truth, dataset)",
        description="Chat or prompt/response rows to RLVR rows for open-instruct (or verl's parquet schema).",
        epilog=command_epilog(
            CONVERT_EXIT_CODES,
            outputs=(
                "OUTPUT (.jsonl or .parquet): one RLVR row per input row: messages, ground_truth (the instruction), "
                "dataset (the verifier); --format verl: verl's parquet schema, data_source = the verifier",
                "stdout: how many rows were written; stderr: each invalid row by number and field",
            ),
            notes={EXIT_INVALID_INPUT: "invalid rows (without --skip-invalid nothing is written)"},
        ),
    )
    convert.add_argument("input", help=".jsonl, .json, .parquet file or a Hugging Face dataset name")
    convert.add_argument("--output", "-o", required=True, help=f"output {' or '.join(RLVR_FORMATS)}")
    convert.add_argument(
        "--verifier",
        choices=CONVERT_VERIFIERS,
        default="general-flip",
        help="value of 'dataset', i.e. the open-instruct verifier (default: %(default)s)",
    )
    convert.add_argument(
        "--format",
        choices=CONVERT_FORMATS,
        default="open-instruct",
        help="open-instruct's RLVR rows, or verl's parquet schema (data_source = the verifier) (default: %(default)s)",
    )
    convert.add_argument("--split", default="train", help="split of a Hugging Face dataset (default: %(default)s)")
    convert.add_argument("--limit", type=positive_int, help="convert only the first N rows")
    convert.add_argument("--skip-invalid", action="store_true", help="convert valid rows, report and drop the rest")
    add_input_arguments(convert)
    convert.set_defaults(run=run_convert)
    check = commands.add_parser(
        "check",
        help="validate an RLVR file; bad rows are reported by number and field",
        description="Validate an RLVR file for open-instruct: every row's fields and its verifier names.",
        epilog=command_epilog(
            (EXIT_OK, EXIT_INVALID_INPUT, EXIT_INTERRUPTED),
            outputs=("stdout: the row count and the rows per verifier; stderr: each invalid row by number and field",),
            notes={EXIT_INVALID_INPUT: "invalid rows"},
        ),
    )
    check.add_argument("input", help=".jsonl, .json, .parquet file or a Hugging Face dataset name")
    check.add_argument("--split", default="train", help="split of a Hugging Face dataset (default: %(default)s)")
    check.add_argument(
        "--allow-unknown-verifiers",
        action="store_true",
        help="accept 'dataset' names open-instruct does not define at the pinned commit",
    )
    add_input_arguments(check)
    check.set_defaults(run=run_check)


def run_convert(args: argparse.Namespace) -> int:
    check_output(args.output, (".parquet",) if args.format == "verl" else RLVR_FORMATS)
    check_not_input(args.input, [args.output])
    rows = read_input(args.input, args.split, args.max_line_bytes)[: args.limit]
    convert = converter(args.format)
    converted, invalid = read_valid(rows, lambda row, number: convert(row, number, args.verifier))
    if invalid and not args.skip_invalid:
        report_errors(
            invalid, f"{len(invalid)} invalid row(s); nothing was written (use --skip-invalid to convert the rest)"
        )
        return EXIT_INVALID_INPUT
    if invalid:
        report_errors(invalid, f"{len(invalid)} invalid row(s) skipped")
    write_rows(args.output, converted, verl_schema() if args.format == "verl" else None)
    field = "data_source" if args.format == "verl" else "dataset"
    print(f"wrote {len(converted)} rows to {args.output} ({args.format}, {field} {args.verifier})")
    return 0


def run_check(args: argparse.Namespace) -> int:
    rows = read_input(args.input, args.split, args.max_line_bytes)
    verifiers, invalid = check_rows(rows, args.allow_unknown_verifiers)
    if invalid:
        report_errors(invalid, f"{args.input}: {len(invalid)} of {len(rows)} rows invalid")
        return EXIT_INVALID_INPUT
    print(f"{args.input}: {len(rows)} rows ok; verifiers: {describe_counts(verifiers)}")
    return 0
