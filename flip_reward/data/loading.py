"""Reading input rows (JSONL, JSON, parquet or a Hugging Face dataset, saved with ``save_to_disk`` or not) for every
command, numbered as the messages name them, and checking rows to score before any judge call.

A row's number is its physical line in a .jsonl file (blank lines are skipped but counted) and its 1-based position
in any other input. A .jsonl file is read a line at a time: a line that cannot be read (over the line limit, not
UTF-8, not JSON, nested too deep) stands in its row's place as its RowError, so that it is reported, skipped and
counted like any other bad row. A row to score has ``messages`` (the last assistant message is the response, the
messages before it the prompt) or ``prompt`` (string or messages) plus ``response``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, TypeVar

from flip_reward.core.conversation import PromptError, SplitPrompt, message_text, split_prompt
from flip_reward.data.hub import load_hub_dataset
from flip_reward.json_text import JsonTextError, parse_json

LOCAL_FORMATS = (".jsonl", ".json", ".parquet")
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024  # a .jsonl line (one row) past this is a bad row, never read into memory
STANDARD_INPUT_NAMES = ("/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # owner/name: the only names looked up on the Hugging Face Hub
_SKIP_CHUNK = 1 << 20


T = TypeVar("T")


class RowError(ValueError):
    """A row that cannot be used, with its number (see the module) and the field at fault."""

    def __init__(self, row: int, field: str, message: str):
        super().__init__(f"row {row}: field '{field}': {message}")
        self.row, self.field, self.message = row, field, message


class Rows(list):
    """Input rows that know their numbers: ``numbers[i]`` is the physical line of row i in a .jsonl file, its
    1-based position in any other input. A slice keeps its rows' numbers. A .jsonl line that could not be read is
    its RowError (see ``iter_rows``)."""

    def __init__(self, rows: Iterable[object] = (), numbers: Iterable[int] | None = None):
        super().__init__(rows)
        self.numbers = list(numbers) if numbers is not None else list(range(1, len(self) + 1))

    def __getitem__(self, index: int | slice) -> object:
        if isinstance(index, slice):
            return Rows(super().__getitem__(index), self.numbers[index])
        return super().__getitem__(index)


def numbered(rows: Sequence[object]) -> Iterator[tuple[int, object]]:
    """``(number, row)`` pairs: the numbers of Rows, 1-based positions for any other sequence."""
    return zip(rows.numbers if isinstance(rows, Rows) else range(1, len(rows) + 1), rows)


def read_input(source: str, split: str = "train", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Rows:
    """The rows of a command's input (see ``load_rows``); ValueError when it has none, since a run over nothing
    is a mistake (a wrong file or split), not a result."""
    rows = load_rows(source, split, max_line_bytes)
    if not rows:
        raise ValueError(f"{source} has no rows")
    return rows


def load_rows(source: str, split: str = "train", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Rows:
    """The rows of ``iter_rows``, held in memory."""
    numbers, rows = [], []
    for number, row in iter_rows(source, split, max_line_bytes):
        numbers.append(number)
        rows.append(row)
    return Rows(rows, numbers)


def reread_rows(
    source: str, split: str = "train", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Callable[[], Iterator[tuple[int, object]]]:
    """A function giving ``iter_rows(source, ...)`` afresh on each call, for a command that reads its input twice
    (checks every row, then uses them): a .jsonl file is read again each time, so that it is never held in memory;
    any other input is loaded once."""
    if Path(source).suffix == ".jsonl":
        iter_rows(source, split, max_line_bytes)  # a missing file is an error now, not at the first read
        return lambda: iter_rows(source, split, max_line_bytes)
    rows = load_rows(source, split, max_line_bytes)
    return lambda: numbered(rows)


def iter_rows(
    source: str, split: str = "train", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, object]]:
    """``(number, row)`` of every row of a local .jsonl/.json/.parquet file, or of split ``split`` of a Hugging Face
    dataset: a local dataset directory, a directory written by ``Dataset.save_to_disk`` or
    ``DatasetDict.save_to_disk``, or a hub name, which has the form ``owner/name`` (any other name that is no local
    path, or an ``owner`` that is a local folder, is refused at once, without a hub lookup). A .jsonl file is read a
    line at a time; a line that cannot be read (over ``max_line_bytes`` bytes, not UTF-8, not JSON, nested too deep)
    is a RowError in place of its row, which ``object_row`` raises, so that every row check reports it like any other
    bad row. A missing input raises here, not on the first ``next``."""
    path = Path(source)
    refuse_stream(source, f"a {', '.join(LOCAL_FORMATS)} file or a dataset name")
    if path.suffix in LOCAL_FORMATS and not path.is_file():
        raise FileNotFoundError(f"input file not found: {source}")
    if path.suffix == ".jsonl":
        return jsonl_rows(path, max_line_bytes)
    if path.suffix in LOCAL_FORMATS:
        return numbered(_read_local(path))
    if path.is_file():
        raise ValueError(f"unsupported input {source}: expected a {', '.join(LOCAL_FORMATS)} file or a dataset name")
    return numbered(_dataset_rows(source, split))


def refuse_stream(source: str, expected: str) -> None:
    """ValueError when ``source`` is standard input, a pipe or a device (``_stream_input``), saying what input is
    ``expected`` instead."""
    unreadable = _stream_input(source)
    if unreadable:
        raise ValueError(
            f"unsupported input {source}: {unreadable}; expected {expected} (save the rows to a .jsonl file first)"
        )


def _stream_input(source: str) -> str | None:
    """What ``source`` is when it is standard input (``-``, /dev/stdin, piped or redirected), a pipe or a device:
    inputs that cannot be read twice or hold no file format; None for anything else."""
    if source == "-" or os.path.abspath(source) in STANDARD_INPUT_NAMES:
        return "standard input is not read"
    try:
        mode = os.stat(source).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file (a pipe or a device)"


def _dataset_rows(source: str, split: str) -> Rows:
    import datasets

    path = Path(source)
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return Rows(dict(row) for row in _saved_split(datasets.load_from_disk(str(path)), source, split))
    if path.exists():
        return Rows(dict(row) for row in datasets.load_dataset(source, split=split))
    if not HUB_NAME.fullmatch(source):
        raise FileNotFoundError(
            f"input not found: {source} (no local file or directory of that name; only a name of the form owner/name "
            "is looked up on the Hugging Face Hub)"
        )
    if path.parent.is_dir():
        raise FileNotFoundError(
            f"input not found: {source} (no such file or directory in the local folder {path.parent}/; a Hugging Face "
            "dataset owner/name is looked up on the hub only when no local folder has the owner's name)"
        )
    try:
        return Rows(dict(row) for row in load_hub_dataset(source, split))
    except (ConnectionError, FileNotFoundError) as error:
        raise FileNotFoundError(
            f"input not found: {source} is no local file or directory, and as a Hugging Face dataset: {error}"
        ) from error


def _saved_split(saved: object, source: str, split: str) -> object:
    """The Dataset a ``save_to_disk`` directory holds: itself, or split ``split`` of a DatasetDict."""
    import datasets

    if isinstance(saved, datasets.Dataset):
        return saved
    if split not in saved:
        raise ValueError(f"{source} has no split {split!r}; it has {', '.join(saved)}")
    return saved[split]


def _read_local(path: Path) -> Rows:
    if path.suffix == ".parquet":
        import pyarrow.parquet

        return Rows(pyarrow.parquet.read_table(path).to_pylist())
    return _read_json(path)


def _undecodable(raw: bytes, error: UnicodeDecodeError) -> tuple[int, str]:
    """Where ``raw`` (a line, or a whole file) stops being UTF-8: its 1-based line, and what is wrong there."""
    line_start = raw.rfind(b"\n", 0, error.start) + 1
    column = error.start - line_start + 1
    return raw.count(b"\n", 0, line_start) + 1, f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {column})"


def _read_json(path: Path) -> Rows:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, problem = _undecodable(raw, error)
        raise ValueError(f"{path}: line {line}: {problem}") from None
    try:
        rows = parse_json(text)
    except JsonTextError as error:
        raise ValueError(f"{path}: {error}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: a .json input must hold a list of row objects")
    return Rows(rows)


def jsonl_rows(path: Path, max_line_bytes: int) -> Iterator[tuple[int, object]]:
    """``(line number, row)`` of every non-blank line of a .jsonl file, a RowError for a line that cannot be read."""
    with path.open("rb") as lines:
        for number, raw in enumerate(_bounded_lines(lines, max_line_bytes), start=1):
            if raw is None:
                yield number, RowError(number, "<line>", f"longer than {max_line_bytes} bytes (--max-line-bytes)")
                continue
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                yield number, RowError(number, "<line>", _undecodable(raw, error)[1])
                continue
            if not line.strip():
                continue
            try:
                yield number, parse_json(line)
            except JsonTextError as error:
                yield number, RowError(number, "<line>", error.describe())


def _bounded_lines(lines: BinaryIO, max_bytes: int) -> Iterator[bytes | None]:
    """Every line of ``lines``, or None for a line of more than ``max_bytes`` bytes (its line ending aside), which is
    skipped without being held in memory."""
    while raw := lines.readline(max_bytes + 1):
        if len(raw.removesuffix(b"\n")) <= max_bytes:
            yield raw
            continue
        while not raw.endswith(b"\n") and (raw := lines.readline(_SKIP_CHUNK)):
            pass
        yield None


def scoring_input(row: object, number: int) -> tuple[SplitPrompt, str]:
    """``(prompt, response)`` of a row, the prompt split once (what FlipReward takes as it is), or RowError naming the
    row and field."""
    row = object_row(row, number)
    if "messages" in row:
        prompt, response = _from_messages(row["messages"], number)
    elif "prompt" in row:
        prompt, response = field_value(row, "prompt", number), _response_field(row, number)
    else:
        raise RowError(number, "messages", "row needs 'messages', or 'prompt' and 'response'")
    return check_prompt(prompt, number, "messages" if "messages" in row else "prompt"), response


def read_valid(rows: Sequence[object], read: Callable[[object, int], T]) -> tuple[list[T], list[RowError]]:
    """``read(row, number)`` of every row (numbered as ``numbered`` does) that it accepts, and the RowError of every
    other one."""
    values, invalid = [], []
    for number, row in numbered(rows):
        try:
            values.append(read(row, number))
        except RowError as error:
            invalid.append(error)
    return values, invalid


def object_row(row: object, number: int) -> Mapping:
    """``row`` when it is a JSON object, else RowError naming it (the RowError itself for a line that could not be
    read, see ``iter_rows``)."""
    if isinstance(row, RowError):
        raise row
    if not isinstance(row, Mapping):
        raise RowError(number, "<row>", f"expected a JSON object, got {type(row).__name__}")
    return row


def field_value(row: Mapping, field: str, number: int) -> object:
    """``row[field]``, or RowError saying the field is missing (absent, or null)."""
    if row.get(field) is None:
        raise RowError(number, field, "missing")
    return row[field]


def check_prompt(prompt: object, number: int, field: str = "prompt") -> SplitPrompt:
    """``prompt`` split (``split_prompt``), or RowError naming the row and ``field`` when it is no usable prompt; the
    one prompt check of scoring, evaluation and best-of-N input."""
    try:
        return split_prompt(prompt)
    except PromptError as error:
        raise RowError(number, field, str(error)) from error


def _from_messages(messages: object, number: int) -> tuple[list, str]:
    if not isinstance(messages, list) or len(messages) < 2:
        raise RowError(number, "messages", "must be a list of at least a user and an assistant message")
    last = messages[-1]
    if not isinstance(last, Mapping) or last.get("role") != "assistant":
        raise RowError(number, "messages", "the last message must be the assistant's response")
    try:
        return list(messages[:-1]), message_text(last.get("content"))
    except PromptError as error:
        raise RowError(number, "messages", f"last message: {error}") from error


def _response_field(row: Mapping, number: int) -> str:
    response = field_value(row, "response", number)
    if not isinstance(response, str):
        raise RowError(number, "response", f"must be a string, got {type(response).__name__}")
    return response
