"""What every ``flip-reward`` command shares: its parser class, the end of its help page (outputs and exit
statuses), the judge options, the invalid-row printer, the in-order JSONL writer, the cancellation of a run's tasks
when it stops early, and the one line that says why nothing was judged."""

from __future__ import annotations

import argparse
import asyncio
import copy
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from flip_reward.core.context import DEFAULT_MAX_CONTEXT
from flip_reward.core.reward import REWARD_METRICS
from flip_reward.data.loading import DEFAULT_MAX_LINE_BYTES
from flip_reward.data.writing import JsonlFile
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_JUDGE_DOWN, EXIT_RUN_FAILED, MEANINGS, STOPPED_BY_SIGNAL
from flip_reward.judge.cache import DEFAULT_CACHE_SIZE, check_cache_directory
from flip_reward.judge.client import DEFAULT_JUDGE_MODEL, JUDGE_DEFAULTS, judge_rule
from flip_reward.judge.loops import cancel_pending_tasks, close_clients

if TYPE_CHECKING:
    from tqdm import tqdm

    from flip_reward.judge.client import Judge

MAX_ERRORS_SHOWN = 20
HELP_WIDTH = 100  # the width the outputs of a help page are wrapped to
DEFAULT_SHUFFLE_SEED = 0
T = TypeVar("T")


class CommandParser(argparse.ArgumentParser):
    """The parser of ``flip-reward`` and of each subcommand (argparse makes a subcommand's parser of its parent's
    class): a description and an epilog are printed as written, and an argument that no option matches is an error
    in the usage of the subcommand it was given to (``flip-reward score --bogus`` shows the usage of ``score``, not
    the top-level one), exit status 2, also when a required argument is missing too (the unknown one is the likelier
    typo). A subcommand whose defaults set ``passes_through`` (``flip-reward launch TRAINER``) leaves the arguments
    it does not know to its trainer (``not_passed_through``); one made with ``tail="NAME"`` (``flip-reward judge
    serve MODEL -- SERVER_ARGS``) keeps every argument after the first ``--`` as the tuple NAME, whatever it looks
    like (argparse would mix them with the positionals before it)."""

    def __init__(self, *args: Any, description: str | None = None, tail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, description=description and filled(description), **kwargs)
        self.tail = tail

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        args = sys.argv[1:] if args is None else list(args)
        tail: tuple[str, ...] = ()
        if self.tail and "--" in args:
            args, tail = args[: args.index("--")], tuple(args[args.index("--") + 1 :])
        self._relaxed = [action for action in self._actions if action.required]
        for action in self._relaxed:  # a first pass that finds unknown arguments before any missing one is reported
            action.required = False
        try:
            seen, extras = super().parse_known_args(args, copy.copy(namespace))
        finally:
            self._restore_required()
        unknown = not_passed_through(extras, getattr(seen, "passes_through", False))
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        parsed, extras = super().parse_known_args(args, namespace)
        if self.tail:
            setattr(parsed, self.tail, tail)
        return parsed, extras

    def format_usage(self) -> str:
        self._restore_required()  # --help or an error in the first pass: the usage shows what is required as such
        return super().format_usage()

    def format_help(self) -> str:
        self._restore_required()
        return super().format_help()

    def _restore_required(self) -> None:
        for action in getattr(self, "_relaxed", ()):
            action.required = True
        self._relaxed = []


def not_passed_through(extras: Sequence[str], passes_through: bool | str) -> list[str]:
    """The arguments no option matched that are errors: all of them, unless the command passes them to a trainer
    (``passes_through`` True: every one; "overrides", verl's Hydra overrides: those that are no option, and every one
    after ``--``)."""
    if passes_through is True:
        return []
    if passes_through == "overrides":
        before = extras[: extras.index("--")] if "--" in extras else extras
        return [argument for argument in before if argument.startswith("-")]
    return list(extras)


def command_epilog(
    exit_codes: Iterable[int],
    outputs: Sequence[str] = (),
    notes: Mapping[int, str] | None = None,
    stopped_by_signal: bool = False,
    text: str = "",
) -> str:
    """The end of a command's help page: ``text``, then what the command writes (``outputs``, one line each), then
    the exit statuses it can return (``exit_codes``, from flip_reward.exit_codes), each with its meaning as
    docs/reference.md words it and the command's own case from ``notes``; ``stopped_by_signal`` adds 128+N for a
    command that stops in order on SIGTERM and SIGHUP."""
    notes = notes or {}
    statuses = [(str(code), MEANINGS[code] + (f": {notes[code]}" if code in notes else "")) for code in exit_codes]
    if stopped_by_signal:
        statuses.append(STOPPED_BY_SIGNAL)
    width = max(len(code) for code, _ in statuses)
    sections = [filled(text)] if text.strip() else []
    if outputs:
        wrapped = (textwrap.fill(line, HELP_WIDTH, initial_indent="  ", subsequent_indent="    ") for line in outputs)
        sections.append("outputs:\n" + "\n".join(wrapped))
    sections.append("exit status:\n" + "\n".join(f"  {code.ljust(width)}  {meaning}" for code, meaning in statuses))
    return "\n\n".join(sections)


def filled(text: str) -> str:
    """``text`` wrapped to HELP_WIDTH columns, paragraph by paragraph (a help page's description and prose)."""
    return "\n\n".join(textwrap.fill(paragraph, HELP_WIDTH) for paragraph in text.strip().split("\n\n"))


def judge_number(kind: type, name: str) -> Callable[[str], object]:
    """An argparse type: ``kind`` (int or float) checked by JudgeConfig's rule for field ``name``
    (``judge_rule``), so that a bad value is refused naming the option, as argparse words it."""
    rule = judge_rule(name)

    def parse(text: str) -> object:
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if "above" in rule and value <= rule["above"]:
            raise argparse.ArgumentTypeError(f"must be > {rule['above']:g}, got {value}")
        if "minimum" in rule and value < rule["minimum"]:
            raise argparse.ArgumentTypeError(f"must be >= {rule['minimum']:g}, got {value}")
        return value

    return parse


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that calls a judge."""
    judge = parser.add_argument_group("judge")
    judge.add_argument("--judge", default=DEFAULT_JUDGE_MODEL, help="litellm model string (default: %(default)s)")
    judge.add_argument("--api-base", help="judge base URL, e.g. http://127.0.0.1:8000/v1 (or HOSTED_VLLM_API_BASE)")
    judge.add_argument(
        "--concurrency",
        type=judge_number(int, "max_concurrency"),
        default=JUDGE_DEFAULTS["max_concurrency"],
        help="judge requests in flight (default: %(default)s)",
    )
    judge.add_argument(
        "--timeout",
        type=judge_number(float, "timeout"),
        default=JUDGE_DEFAULTS["timeout"],
        help="seconds per request (default: %(default)s)",
    )
    judge.add_argument(
        "--retries",
        type=judge_number(int, "retries"),
        default=JUDGE_DEFAULTS["retries"],
        help="retries of a failed request (default: %(default)s)",
    )
    judge.add_argument(
        "--temperature",
        type=judge_number(float, "temperature"),
        default=JUDGE_DEFAULTS["temperature"],
        help="judge sampling temperature (default: %(default)s)",
    )
    judge.add_argument(
        "--max-tokens",
        type=judge_number(int, "max_tokens"),
        default=JUDGE_DEFAULTS["max_tokens"],
        help="judge answer budget (default: %(default)s)",
    )
    judge.add_argument(
        "--max-context-length", type=int, default=DEFAULT_MAX_CONTEXT, help="judge context (default: %(default)s)"
    )
    judge.add_argument(
        "--seed",
        type=int,
        help=f"judge sampling seed, sent with each request; also seeds the listwise shuffle of eval and rerank "
        f"(default: none; the shuffle's: {DEFAULT_SHUFFLE_SEED})",
    )
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


def add_reward_metric_argument(parser: argparse.ArgumentParser) -> None:
    """``--reward-metric``, for every command that gives FLIP rewards."""
    parser.add_argument(
        "--reward-metric",
        choices=REWARD_METRICS,
        default="f1",
        help="FLIP's reward: the F1, precision or recall of the inferred instruction's tokens against the "
        "instruction's (default: %(default)s)",
    )


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-line-bytes``, for every command that reads rows: a longer .jsonl line is a bad row, never read whole."""
    parser.add_argument(
        "--max-line-bytes",
        type=positive_int,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="N",
        help="longest .jsonl line read; a longer one is an invalid row (default: %(default)s, 16 MiB)",
    )


def shuffle_seed(args: argparse.Namespace) -> int:
    """The seed of the listwise shuffle (eval and rerank): ``--seed``, else DEFAULT_SHUFFLE_SEED."""
    return DEFAULT_SHUFFLE_SEED if args.seed is None else args.seed


def method_options(args: argparse.Namespace, method: str) -> dict:
    """Keyword arguments of the scorer of ``method`` from the shared judge options and the FLIP-only ones."""
    flip_only = {"restatement_guard": args.restatement_guard} if method == "flip" else {}
    return {**judge_options(args), **flip_only}


def judge_options(args: argparse.Namespace) -> dict:
    """FlipReward keyword arguments from the shared judge options. ValueError for a ``--cache`` another user could
    write (``check_cache_directory``) and for a ``--tokenizer`` that cannot be loaded: given explicitly, each is
    refused rather than skipped (the library would fall back quietly: no cache, token counts estimated)."""
    if args.cache:
        try:
            check_cache_directory(args.cache)
        except ValueError as error:
            raise ValueError(f"--cache {args.cache}: {error}; use a directory only you can write") from None
        except OSError as error:
            raise ValueError(f"--cache {args.cache}: {error.strerror or error}") from None
    if args.tokenizer:
        from flip_reward.core.context import tokenizer_unavailable

        why = tokenizer_unavailable(args.tokenizer)
        if why:
            raise ValueError(f"--tokenizer {args.tokenizer} cannot be used: {why}")
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
    """The progress bar (on stderr) of a command's judge calls; log records meanwhile are written above it
    (``tqdm.write``), not onto its line. On the way out, whatever ended them (done, an error,
    Ctrl-C), the event loop's judge clients are closed and tqdm's monitor thread is joined, so that the process ends
    with its main thread alone: a client left to ``__del__`` at interpreter exit imports modules there, which hangs
    when a thread died holding the import lock."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm(), tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) as bar:
            yield bar  # a warning logged meanwhile gets a line of its own, above the bar
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


class OrderedJsonlWriter:
    """Writes rows that finish in any order to a JSONL file in input order: row i goes to disk as soon as rows 0..i
    are done, each line whole or not at all (flip_reward.data.writing.JsonlFile), so that an interrupted or failed run
    leaves the completed prefix in the file. A context manager; OutputError when the file cannot be written."""

    def __init__(self, path: str):
        self.path = path
        self._finished: dict[int, dict] = {}
        self._out = JsonlFile(path)

    @property
    def written(self) -> int:
        """How many rows are in the file."""
        return self._out.lines

    def put(self, index: int, row: dict) -> None:
        """Row ``index`` (0-based) is done; write it and every finished row after it that it was holding back."""
        self._finished[index] = row
        while self.written in self._finished:
            self._out.write(self._finished.pop(self.written))

    def __enter__(self) -> OrderedJsonlWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._out.close()


async def gather_or_cancel(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """The results of ``coroutines``, run as concurrent tasks, in order. When one raises (e.g. an output that cannot
    be written) or the run is cancelled (Ctrl-C), every other task is cancelled and awaited before the error goes on
    (``cancel_pending_tasks``), so that none is left pending when the loop closes."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        await cancel_pending_tasks()
        raise


def report_interrupted(writer: OrderedJsonlWriter, total: int, judge: Judge) -> int:
    """The line a Ctrl-C'd command ends with (what it kept, what its judge cache keeps for a rerun) and its exit
    status."""
    store = judge.cache.disk if judge.cache is not None else None
    if store is None:
        resume = "with --cache DIR a rerun would reuse the usable answers received"
    elif store.unstored and not store.stored:
        resume = f"the judge cache {store.directory} could not be written ({store.failure}): a rerun asks again"
    elif store.unstored:
        resume = (
            f"run the same command again to resume: the judge cache {store.directory} keeps the usable answers "
            f"received but {store.unstored} it could not write ({store.failure}), which a rerun asks again"
        )
    else:
        resume = (
            f"run the same command again to resume: the judge cache {store.directory} keeps every usable answer "
            "received (an unparsable or cut-off answer is asked again)"
        )
    print(f"interrupted: {writer.written} of {total} rows written to {writer.path}; {resume}", file=sys.stderr)
    return EXIT_INTERRUPTED


def report_unstored_answers(judge: Judge) -> None:
    """After a command's summary: a warning line when its judge cache could not write answers (a full disk)."""
    store = judge.cache.disk if judge.cache is not None else None
    if store is not None and store.unstored:
        print(
            f"warning: the judge cache {store.directory} could not write {store.unstored} of the answers "
            f"({store.failure}): a rerun asks the judge about them again",
            file=sys.stderr,
        )


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
