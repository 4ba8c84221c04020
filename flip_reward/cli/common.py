"""What every ``flip-reward`` command shares: the judge options, exit codes, the invalid-row printer, JSONL output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from flip_reward.judge.cache import DEFAULT_CACHE_SIZE
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL

EXIT_RUN_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_JUDGE_DOWN = 3
EXIT_INTERRUPTED = 130
MAX_ERRORS_SHOWN = 20


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that calls a judge."""
    judge = parser.add_argument_group("judge")
    judge.add_argument("--judge", default=DEFAULT_JUDGE_MODEL, help="litellm model string (default: %(default)s)")
    judge.add_argument("--api-base", help="judge base URL, e.g. http://127.0.0.1:8000/v1 (or HOSTED_VLLM_API_BASE)")
    judge.add_argument("--concurrency", type=int, default=64, help="judge requests in flight (default: %(default)s)")
    judge.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: %(default)s)")
    judge.add_argument("--retries", type=int, default=3, help="retries of a failed request (default: %(default)s)")
    judge.add_argument("--temperature", type=float, default=0.0)
    judge.add_argument("--max-tokens", type=int, default=2048, help="judge answer budget (default: %(default)s)")
    judge.add_argument("--max-context-length", type=int, default=8192, help="judge context (default: %(default)s)")
    judge.add_argument("--seed", type=int)
    judge.add_argument("--tokenizer", help="local path or cached name of the judge tokenizer (context guard)")
    judge.add_argument("--cache", metavar="DIR", help="on-disk cache of judge answers, shared across runs")
    judge.add_argument(
        "--cache-size",
        type=int,
        default=DEFAULT_CACHE_SIZE,
        help="judge answers kept in memory, 0 for none (default: %(default)s)",
    )
    judge.add_argument("--structured-output", action="store_true", help="ask the server for JSON-schema output")
    judge.add_argument("--no-thinking", action="store_true", help="chat_template_kwargs enable_thinking=false")


def add_restatement_guard_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-restatement-guard``, for every command that can score with FLIP (baselines see the prompt anyway)."""
    parser.add_argument(
        "--no-restatement-guard",
        dest="restatement_guard",
        action="store_false",
        help="FLIP: let the judge see spans of a response that restate the instruction (masked by default)",
    )


def method_options(args: argparse.Namespace, method: str) -> dict:
    """Keyword arguments of the scorer of ``method`` from the shared judge options and the FLIP-only ones."""
    flip_only = {"restatement_guard": args.restatement_guard} if method == "flip" else {}
    return {**judge_options(args), **flip_only}


def judge_options(args: argparse.Namespace) -> dict:
    """FlipReward keyword arguments from the shared judge options."""
    return {
        "judge_model": args.judge,
        "api_base": args.api_base,
        "max_concurrency": args.concurrency,
        "timeout": args.timeout,
        "retries": args.retries,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "max_context_length": args.max_context_length,
        "seed": args.seed,
        "tokenizer": args.tokenizer,
        "cache_dir": args.cache,
        "cache_size": args.cache_size,
        "structured_output": args.structured_output,
        "disable_thinking": args.no_thinking,
    }


def report_errors(errors: Sequence[object], summary: str, prefix: str = "error: ", file: TextIO | None = None) -> None:
    """The first MAX_ERRORS_SHOWN errors, one line each after ``prefix``, then ``summary`` saying how many were not
    shown; on stderr unless ``file`` says otherwise."""
    file = file or sys.stderr
    for error in errors[:MAX_ERRORS_SHOWN]:
        print(f"{prefix}{error}", file=file)
    hidden = len(errors) - MAX_ERRORS_SHOWN
    print(summary + (f" ({hidden} more not shown)" if hidden > 0 else ""), file=file)


def write_jsonl(path: str, rows: list[dict]) -> None:
    """``rows`` as JSON lines at ``path`` (its directory made as needed)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
