"""Reading input rows (JSONL, JSON, parquet or a Hugging Face dataset, saved with ``save_to_disk`` or not) for every
command, numbered as the messages name them, and checking rows to score before any judge call.

A row's number is its physical line in a .jsonl file (blank lines are skipped but counted) and its 1-based position
in any other input. A row to score has ``messages`` (the last assistant message is the response, the messages before
it the prompt) or ``prompt`` (string or messages) plus ``response``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from flip_reward.core.conversation import PromptError, message_text, split_conversation

LOCAL_FORMATS = (".jsonl", ".json", ".parquet")


T = TypeVar("T")


class RowError(ValueError):
    """A row that cannot be used, with its number (see the module) and the field at fault."""

    def __init__(self, row: int, field: str, message: str):
        super().__init__(f"row {row}: field '{field}': {message}")
        self.row, self.field, self.message = row, field, message


class Rows(list):
    """Input rows that know their numbers: ``numbers[i]`` is the physical line of row i in a .jsonl file, its
    1-based position in any other input. A slice keeps its rows' numbers."""

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


def read_input(source: str, split: str = "train") -> Rows:
    """The rows of a command's input (see ``load_rows``); ValueError when it has none, since a run over nothing
    is a mistake (a wrong file or split), not a result."""
    rows = load_rows(source, split)
    if not rows:
        raise ValueError(f"{source} has no rows")
    return rows


def load_rows(source: str, split: str = "train") -> Rows:
    """Rows of a local .jsonl/.json/.parquet file, or of split ``split`` of a Hugging Face dataset: a hub name, a
    local dataset directory, or a directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    path = Path(source)
    if path.suffix in LOCAL_FORMATS:
        if not path.is_file():
            raise FileNotFoundError(f"input file not found: {source}")
        return _read_local(path)
    if path.is_file():
        raise ValueError(f"unsupported input {source}: expected a {', '.join(LOCAL_FORMATS)} file or a dataset name")
    import datasets

    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return Rows(dict(row) for row in _saved_split(datasets.load_from_disk(str(path)), source, split))
    return Rows(dict(row) for row in datasets.load_dataset(source, split=split))


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
    if path.suffix == ".json":
        return _read_json(path)
    return _read_jsonl(path)


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
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: a .json input must hold a list of row objects")
    return Rows(rows)


def _read_jsonl(path: Path) -> Rows:
    rows, numbers = [], []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise RowError(number, "<line>", _undecodable(raw, error)[1]) from None
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise RowError(number, "<line>", f"not valid JSON ({error.msg} at column {error.colno})") from error
            numbers.append(number)
    return Rows(rows, numbers)


def scoring_input(row: object, number: int) -> tuple[str | list, str]:
    """``(prompt, response)`` of a row, or RowError naming the row and field."""
    row = object_row(row, number)
    if "messages" in row:
        prompt, response = _from_messages(row["messages"], number)
    elif "prompt" in row:
        prompt, response = field_value(row, "prompt", number), _response_field(row, number)
    else:
        raise RowError(number, "messages", "row needs 'messages', or 'prompt' and 'response'")
    check_prompt(prompt, number, "messages" if "messages" in row else "prompt")
    return prompt, response


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
    """``row`` when it is a JSON object, else RowError naming it."""
    if not isinstance(row, Mapping):
        raise RowError(number, "<row>", f"expected a JSON object, got {type(row).__name__}")
    return row


def field_value(row: Mapping, field: str, number: int) -> object:
    """``row[field]``, or RowError saying the field is missing (absent, or null)."""
    if row.get(field) is None:
        raise RowError(number, field, "missing")
    return row[field]


def check_prompt(prompt: object, number: int, field: str = "prompt") -> None:
    """RowError naming the row and ``field`` when ``prompt`` is no usable prompt (see ``split_conversation``); the one
    prompt check of scoring, evaluation and best-of-N input."""
    try:
        split_conversation(prompt)
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
