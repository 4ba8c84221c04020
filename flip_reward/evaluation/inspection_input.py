"""Reading the input of ``flip-reward inspect``: a run's samples.jsonl, ``flip-reward score`` output or eval
details.jsonl, told apart by the keys of the first row, checked line by line into Samples (InspectionError naming
every bad line and field; nothing is dropped)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flip_reward.core.conversation import PromptError, split_prompt
from flip_reward.core.results import ErrorType
from flip_reward.data.loading import DEFAULT_MAX_LINE_BYTES, RowError, jsonl_rows, scoring_input

KINDS = ("samples", "score", "eval")
ERROR_TYPE_VALUES = frozenset(kind.value for kind in ErrorType)
*_FIRST_TYPES, _LAST_TYPE = (f"'{kind.value}'" for kind in ErrorType)
ERROR_TYPE_CHOICES = f"{', '.join(_FIRST_TYPES)} or {_LAST_TYPE}"
SAMPLE_FILES = ("samples.jsonl", "details.jsonl")  # what a directory is searched for, in order


class LineError(RowError):
    """An input line that cannot be inspected, with its 1-based line number and the field at fault."""

    def __init__(self, line: int, field: str, message: str):
        ValueError.__init__(self, f"line {line}: field '{field}': {message}")
        self.row, self.field, self.message = line, field, message


class InspectionError(ValueError):
    """Input that cannot be inspected; ``errors`` holds every problem found (nothing is inspected then)."""

    def __init__(self, errors: Sequence[object]):
        self.errors = list(errors)
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{self.errors[0]}{more}")


@dataclass(frozen=True)
class Sample:
    """One judged completion, as the figures need it (``response`` and ``instruction`` None where unknown)."""

    line: int
    step: int | None
    reward: float
    error_type: ErrorType | None
    inferred_instruction: str | None = None
    response: str | None = None
    instruction: str | None = None
    response_chars: int | None = None
    restatement_masked: int | None = None
    label: str | None = None  # eval: "<example id> chosen|rejected <index>"


def source_file(path: str | Path) -> Path:
    """The JSONL file behind ``path``: the file itself, or a directory's samples.jsonl (else its details.jsonl)."""
    path = Path(path)
    if path.is_dir():
        for name in SAMPLE_FILES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"{path} holds neither {' nor '.join(SAMPLE_FILES)}")
    if not path.is_file():
        raise FileNotFoundError(f"input not found: {path}")
    return path


def read_lines(path: str | Path, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple[int, object]]:
    """``(line number, parsed JSON)`` of every non-blank line, read a line at a time (``loading.jsonl_rows``); a line
    that cannot be read (too long, not UTF-8, not JSON, nested too deep) is its LineError in place of the row."""
    for number, row in jsonl_rows(Path(path), max_line_bytes):
        yield number, LineError(number, row.field, row.message) if isinstance(row, RowError) else row


def detect_kind(row: object, line: int = 1) -> str:
    """The kind of input a row belongs to ("samples", "score" or "eval"), from its keys; LineError when none."""
    if isinstance(row, Mapping):
        if "method" in row and "example_id" in row:
            return "eval"
        if "step" in row:
            return "samples"
        if "prompt" in row or "messages" in row or row.get("error_type") == ErrorType.INPUT:
            return "score"  # a row of score --skip-invalid for an unreadable line holds only the result fields
    raise LineError(
        line,
        "step",
        "cannot tell the input: expected samples.jsonl rows (step, prompt, response, ...), flip-reward score output "
        "(prompt and response, or messages) or eval details.jsonl rows (method, example_id, detail)",
    )


def _value(row: Mapping, name: str, line: int, kinds: tuple[type, ...], nullable: bool = False, path: str = ""):
    label = path + name
    if name not in row:
        raise LineError(line, label, "missing")
    value = row[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        wanted = " or ".join(kind.__name__ for kind in kinds) + (" or null" if nullable else "")
        raise LineError(line, label, f"must be {wanted}, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise LineError(line, label, f"must be a finite number, got {value}")
    if kinds == (int,) and value < 0:
        raise LineError(line, label, f"must not be negative, got {value}")
    return value


def _result_fields(row: Mapping, line: int, optional: set[str], path: str = "") -> dict:
    """The judged-result fields every input kind shares, checked (the optional ones only when the file has them)."""
    values = {
        "reward": float(_value(row, "reward", line, (int, float), path=path)),
        "error_type": _error_type(row, line, path),
    }
    if "inferred_instruction" in optional:
        values["inferred_instruction"] = _value(row, "inferred_instruction", line, (str,), nullable=True, path=path)
    if "restatement_masked" in optional:
        values["restatement_masked"] = _value(row, "restatement_masked", line, (int,), path=path)
    return values


def _error_type(row: Mapping, line: int, path: str) -> ErrorType | None:
    """The row's ``error_type``: null or the value of an ErrorType."""
    if "error_type" not in row:
        raise LineError(line, path + "error_type", "missing")
    value = row["error_type"]
    if value is None:
        return None
    if isinstance(value, str) and value in ERROR_TYPE_VALUES:
        return ErrorType(value)
    raise LineError(line, path + "error_type", f"must be null, {ERROR_TYPE_CHOICES}, got {value!r}")


def _judged(row: Mapping, line: int, optional: set[str], path: str = "") -> str | None:
    """The text the judge saw, when the file has a ``judged_response`` column (null where the judge saw nothing)."""
    if "judged_response" not in optional:
        return None
    return _value(row, "judged_response", line, (str,), nullable=True, path=path)


def _instruction(prompt: object, line: int, name: str = "prompt") -> str:
    try:
        return split_prompt(prompt).instruction
    except PromptError as error:
        raise LineError(line, name, str(error)) from error


def sample_row(row: Mapping, line: int, optional: set[str]) -> Sample:
    """A trace line; for a failed sample the prompt and response may be unusable (perhaps why it failed: a trainer
    plugin traces what it was given), and are then unknown."""
    fields = _result_fields(row, line, optional)
    texts = {}
    for name, read in (
        ("response", lambda: _value(row, "response", line, (str,))),
        ("instruction", lambda: _instruction(_value(row, "prompt", line, (str, list)), line)),
    ):
        try:
            texts[name] = read()
        except LineError:
            if fields["error_type"] is None:
                raise
            texts[name] = None
    return Sample(
        line,
        _value(row, "step", line, (int,), nullable=True),
        **fields,
        **texts,
        response_chars=_value(row, "response_chars", line, (int,)),
    )


def score_row(row: Mapping, line: int, optional: set[str]) -> Sample:
    """A score output row; one that ``score --skip-invalid`` wrote for an invalid input row (``error_type``
    "input", without a usable prompt and response) is an input error whose text and length are unknown."""
    try:
        prompt, response = scoring_input(row, line)
    except RowError as error:
        if row.get("error_type") != ErrorType.INPUT:
            raise LineError(line, error.field, error.message) from error
        return Sample(line, 0, **_result_fields(row, line, optional))
    chars = _value(row, "response_chars", line, (int,)) if "response_chars" in optional else len(response)
    return Sample(
        line,
        0,
        **_result_fields(row, line, optional),
        response=_judged(row, line, optional) or response,  # null when the judge saw nothing: the response as given
        instruction=prompt.instruction,
        response_chars=chars,
    )


def eval_rows(row: Mapping, line: int, optional: set[str]) -> list[Sample]:
    """The flip row's candidates as samples (step 0); [] for another method's row."""
    if _value(row, "method", line, (str,)) != "flip":
        return []
    example_id = _value(row, "example_id", line, (str, int))
    chosen = len(_value(row, "chosen_scores", line, (list, tuple)))
    rejected = len(_value(row, "rejected_scores", line, (list, tuple)))
    detail = _value(row, "detail", line, (dict,))
    judgments = _value(detail, "judgments", line, (list, tuple), path="detail.")
    if len(judgments) != chosen + rejected:
        raise LineError(
            line, "detail.judgments", f"holds {len(judgments)} judgments for {chosen} chosen + {rejected} rejected"
        )
    samples = []
    for index, judgment in enumerate(judgments):
        path = f"detail.judgments[{index}]."
        if not isinstance(judgment, Mapping):
            raise LineError(line, path[:-1], f"must be an object, got {type(judgment).__name__}")
        side = f"chosen {index}" if index < chosen else f"rejected {index - chosen}"
        fields = _result_fields(judgment, line, optional, path)
        seen = _judged(judgment, line, optional, path)
        chars = None if seen is None else len(seen)
        samples.append(Sample(line, 0, **fields, response=seen, response_chars=chars, label=f"{example_id} {side}"))
    return samples


READERS: dict[str, Callable[[Mapping, int, set[str]], object]] = {
    "samples": sample_row,
    "score": score_row,
    "eval": eval_rows,
}
RESULT_COLUMNS = ("inferred_instruction", "restatement_masked")  # absent from a baseline's results
OPTIONAL_COLUMNS = {
    "samples": RESULT_COLUMNS,
    "score": (*RESULT_COLUMNS, "judged_response", "response_chars"),
    "eval": (*RESULT_COLUMNS, "judged_response"),
}


def _columns_in(kind: str, row: Mapping) -> set[str]:
    """The optional columns ``row`` (for eval: any of its judgments) has."""
    records = [row]
    if kind == "eval":
        detail = row.get("detail")
        judgments = detail.get("judgments") if isinstance(detail, Mapping) else None
        records = (
            [item for item in judgments if isinstance(item, Mapping)] if isinstance(judgments, (list, tuple)) else []
        )
    return {name for name in OPTIONAL_COLUMNS[kind] if any(name in record for record in records)}


@dataclass(frozen=True)
class Survey:
    """What a first pass over the rows tells: their kind (from the first row) and the optional columns present (a
    column any row has is required in every one, so that no row is left out silently)."""

    kind: str
    columns: frozenset[str]


def survey(rows: Iterable[tuple[int, object]]) -> Survey:
    """The Survey of numbered rows; InspectionError listing every line that could not be read, or naming the first
    row when its kind cannot be told."""
    kind, present, errors, unknown = None, set(), [], None
    for line, row in rows:
        if isinstance(row, LineError):
            errors.append(row)
        elif kind is None and unknown is None:
            try:
                kind = detect_kind(row, line)
            except LineError as error:
                unknown = error
        if kind is not None and isinstance(row, Mapping):
            present |= _columns_in(kind, row)
    if errors or unknown:
        raise InspectionError(errors or [unknown])
    if kind is None:
        raise InspectionError(["no rows to inspect"])
    return Survey(kind, frozenset(present))


def read_samples(
    rows: Iterable[tuple[int, object]], surveyed: Survey, errors: list[LineError], ignored: Counter
) -> Iterator[Sample]:
    """The samples of numbered rows of a surveyed input, in order; each bad line goes to ``errors`` and each row of
    another method than flip (eval) to ``ignored``, counted by method."""
    for line, row in rows:
        try:
            if isinstance(row, LineError):
                raise row
            if not isinstance(row, Mapping):
                raise LineError(line, "<row>", f"expected a JSON object, got {type(row).__name__}")
            read = READERS[surveyed.kind](row, line, surveyed.columns)
        except LineError as error:
            errors.append(error)
            continue
        if surveyed.kind == "eval" and row.get("method") != "flip":
            ignored[str(row.get("method"))] += 1
        yield from read if isinstance(read, list) else [read]
