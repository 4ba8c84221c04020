"""What every ``flip-reward`` command shares: the judge options, exit codes, the invalid-row printer, the output
check made before any judge call, the in-order JSONL writer, and the one line that says why nothing was judged."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from flip_reward.judge.cache import DEFAULT_CACHE_SIZE
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL
from flip_reward.judge.loops import close_clients
from flip_reward.text import json_line

if TYPE_CHECKING:
    from tqdm import tqdm

    from flip_reward.judge.client import Judge

EXIT_RUN_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_JUDGE_DOWN = 3
EXIT_INTERRUPTED = 130
MAX_ERRORS_SHOWN = 20
DEFAULT_SHUFFLE_SEED = 0


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


def shuffle_seed(args: argparse.Namespace) -> int:
    """The seed of the listwise shuffle (eval and rerank): ``--seed``, else DEFAULT_SHUFFLE_SEED."""
    return DEFAULT_SHUFFLE_SEED if args.seed is None else args.seed


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


@asynccontextmanager
async def judging(total: int, desc: str, unit: str) -> AsyncIterator[tqdm]:
    """The progress bar (on stderr) of a command's judge calls. On the way out, whatever ended them (done, an error,
    Ctrl-C), the event loop's judge clients are closed and tqdm's monitor thread is joined, so that the process ends
    with its main thread alone: a client left to ``__del__`` at interpreter exit imports modules there, which hangs
    when a thread died holding the import lock."""
    from tqdm import tqdm

    try:
        with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) as bar:
            yield bar
    finally:
        await close_clients()
        if tqdm.monitor is not None:
            tqdm.monitor.exit()
            tqdm.monitor = None


def report_errors(errors: Sequence[object], summary: str, prefix: str = "error: ", file: TextIO | None = None) -> None:
    """The first MAX_ERRORS_SHOWN errors, one line each after ``prefix``, then ``summary`` saying how many were not
    shown; on stderr unless ``file`` says otherwise."""
    file = file or sys.stderr
    for error in errors[:MAX_ERRORS_SHOWN]:
        print(f"{prefix}{error}", file=file)
    hidden = len(errors) - MAX_ERRORS_SHOWN
    print(summary + (f" ({hidden} more not shown)" if hidden > 0 else ""), file=file)


def positive_int(text: str) -> int:
    """argparse type of a count that must be at least 1 (``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def check_output(path: str, suffixes: Sequence[str] | None, option: str = "--output") -> None:
    """ValueError naming ``option`` unless a command can write ``path``: a file ending in one of ``suffixes``, or a
    directory when ``suffixes`` is None, whose folder exists or can be made and is writable. Commands call it before
    their first judge call, so that a bad path costs nothing."""
    target = Path(path)
    if suffixes is None:
        if target.exists() and not target.is_dir():
            raise ValueError(f"{option} {path}: is a file, expected a directory")
        folder = target
    else:
        if target.suffix not in suffixes:
            written = f"'{target.suffix}' files" if target.suffix else "a file without an extension"
            raise ValueError(f"{option} {path}: cannot write {written}; use {' or '.join(suffixes)}")
        if target.is_dir():
            raise ValueError(f"{option} {path}: is a directory, expected a file")
        if target.exists() and not os.access(target, os.W_OK):
            raise ValueError(f"{option} {path}: not writable")
        folder = target.parent
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: cannot create {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: {existing} is not writable")


class OrderedJsonlWriter:
    """Writes rows that finish in any order to a JSONL file in input order: row i goes to disk (flushed) as soon as
    rows 0..i are done, so an interrupted run leaves the completed prefix in the file. A context manager."""

    def __init__(self, path: str):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.written = 0
        self._finished: dict[int, dict] = {}
        self._out = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by __exit__

    def put(self, index: int, row: dict) -> None:
        """Row ``index`` (0-based) is done; write it and every finished row after it that it was holding back."""
        self._finished[index] = row
        while self.written in self._finished:
            self._out.write(json_line(self._finished.pop(self.written)) + "\n")
            self.written += 1
        self._out.flush()

    def __enter__(self) -> OrderedJsonlWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._out.close()


def report_interrupted(writer: OrderedJsonlWriter, total: int, cache: str | None) -> int:
    """The line a Ctrl-C'd command ends with (what it kept, how to resume) and its exit status."""
    resume = (
        f"run the same command again to resume: the judge cache {cache} has every answer received"
        if cache
        else "with --cache DIR a rerun would reuse the answers already received"
    )
    print(f"interrupted: {writer.written} of {total} rows written to {writer.path}; {resume}", file=sys.stderr)
    return EXIT_INTERRUPTED


def judge_failure(judge: Judge) -> tuple[int, str] | None:
    """For a command that judged nothing: its exit status and why, when the cause will not heal by itself: the judge
    is down (the circuit breaker opened, or the last attempts could not connect; EXIT_JUDGE_DOWN) or it refused
    requests with a client error such as a wrong model name or a base URL without /v1 (4xx; EXIT_RUN_FAILED). None
    for anything else (5xx, timeouts, unparsable answers: a rerun may do better)."""
    if judge.breaker.times_opened or judge.breaker.consecutive_failures:
        return EXIT_JUDGE_DOWN, f"judge {judge.endpoint.description} is down ({judge.breaker.last_error})"
    if judge.last_refusal:
        hint = (
            ": check that the server serves the model named by --judge and that --api-base ends in /v1"
            if judge.last_refusal.startswith("HTTP 404")
            else ""
        )
        return EXIT_RUN_FAILED, f"judge {judge.endpoint.description} refused the requests ({judge.last_refusal}){hint}"
    return None
