"""Reading rows to score (JSONL, JSON, parquet or a Hugging Face dataset) and checking them before any judge call.

Rows are numbered from 1 in every message, matching JSONL line numbers. A row to score has ``messages`` (the last
assistant message is the response, the messages before it the prompt) or ``prompt`` (string or messages) plus
``response``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from flip_reward.core.conversation import PromptError, message_text, split_conversation

LOCAL_FORMATS = (".jsonl", ".json", ".parquet")


T = TypeVar("T")


class RowError(ValueError):
    """A row that cannot be scored, with its 1-based number and the field at fault."""

    def __init__(self, row: int, field: str, message: str):
        super().__init__(f"row {row}: field '{field}': {message}")
        self.row, self.field, self.message = row, field, message


def load_rows(source: str, split: str = "train") -> list[dict]:
    """Rows of a local .jsonl/.json/.parquet file, or of split ``split`` of a Hugging Face dataset (a hub name or a
    local dataset directory)."""
    path = Path(source)
    if path.suffix in LOCAL_FORMATS:
        if not path.is_file():
            raise FileNotFoundError(f"input file not found: {source}")
        return _read_local(path)
    if path.is_file():
        raise ValueError(f"unsupported input {source}: expected a {', '.join(LOCAL_FORMATS)} file or a dataset name")
    import datasets

    return [dict(row) for row in datasets.load_dataset(source, split=split)]


def _read_local(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet

        return pyarrow.parquet.read_table(path).to_pylist()
    if path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ValueError(f"{path}: a .json input must hold a list of row objects")
        return rows
    return _read_jsonl(path)


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise RowError(number, "<line>", f"not valid JSON ({error.msg} at column {error.colno})") from error
    return rows


def scoring_input(row: object, number: int) -> tuple[str | list, str]:
    """``(prompt, response)`` of a row, or RowError naming the row and field."""
    row = object_row(row, number)
    if "messages" in row:
        prompt, response = _from_messages(row["messages"], number)
    elif "prompt" in row:
        prompt, response = row["prompt"], _response_field(row, number)
    else:
        raise RowError(number, "messages", "row needs 'messages', or 'prompt' and 'response'")
    check_prompt(prompt, number, "messages" if "messages" in row else "prompt")
    return prompt, response


def read_valid(rows: Sequence[object], read: Callable[[object, int], T]) -> tuple[list[T], list[RowError]]:
    """``read(row, number)`` of every row (numbered from 1) that it accepts, and the RowError of every other one."""
    values, invalid = [], []
    for number, row in enumerate(rows, start=1):
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
    response = row.get("response")
    if not isinstance(response, str):
        raise RowError(number, "response", f"must be a string, got {type(response).__name__}")
    return response
