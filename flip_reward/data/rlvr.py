"""RLVR datasets for open-instruct: converting chat or prompt/response rows to the RLVR schema, and validating
RLVR rows by number and field (``flip-reward data convert`` / ``check``).

The RLVR schema open-instruct's ``rlvr_tokenize_v1`` reads: ``messages`` (the prompt as chat messages; a trailing
assistant message is dropped by upstream), ``ground_truth`` (``label`` of the verifier) and ``dataset`` (the
verifier's name, e.g. ``general-flip``). A string ``dataset`` pairs with one ground truth; a list of names pairs
with a list of ground truths of the same length. Converted rows carry the original instruction (the last user
message) as ``ground_truth`` for every verifier, so the FLIP and LLM-judge versions of a dataset differ only in
``dataset``, as in the FLIP authors' datasets.

``--format verl`` writes verl's RL parquet schema instead: ``data_source`` (the verifier name), ``prompt`` (the
same messages), ``reward_model: {"style": "model", "ground_truth": <instruction>}`` and ``extra_info: {"index",
"context"}``, where ``context`` holds the turns before the instruction for ``flip_reward.integrations.verl``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from flip_reward.core.conversation import ROLES, PromptError, message_text, to_turns
from flip_reward.data.loading import RowError, field_value, object_row, read_valid
from flip_reward.data.writing import JsonlFile, whole_file

CONVERT_VERIFIERS = ("general-flip", "general-quality")
CONVERT_FORMATS = ("open-instruct", "verl")
RLVR_FORMATS = (".jsonl", ".parquet")  # what write_rows writes
# Verifier names that upstream open-instruct's build_all_verifiers creates at the pinned commit (checked by
# tests/test_open_instruct_upstream.py), plus this package's general-flip. Rows naming another verifier get no
# reward at all upstream (it logs a warning and skips them), so `check` reports them.
KNOWN_VERIFIERS = frozenset(
    {
        "general-flip",
        "code",
        "code_stdio",
        "flan",
        "gsm8k",
        "ifeval",
        "ifeval_old",
        "math",
        "max_length",
        "passthrough",
        "puzzle",
        "re_search",
        "re_search_f1",
        "rubric",
        "strict_math",
        "string_f1",
        "string_matcher",
        "up_to_max_length",
        "general-quality",
        "general-quality_rubric",
        "general-quality_ref",
        "general-safety",
        "general-factuality",
        "general-creative_writing",
        "general-refusal",
        "general-web_instruct_general_verifier",
    }
)
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


# --- convert ------------------------------------------------------------------------------------------------------


def source_messages(row: object, number: int) -> list[dict]:
    """The chat messages of an input row: ``messages``, ``conversation``/``conversations`` (role/content or
    ShareGPT from/value) or ``prompt`` (a string, or messages); RowError names the row and field otherwise."""
    row = object_row(row, number)
    for field in ("messages", "conversation", "conversations", "prompt"):
        if field in row:
            break
    else:
        raise RowError(number, "messages", "row needs 'messages', 'conversation(s)' or 'prompt'")
    value = field_value(row, field, number)
    try:
        if isinstance(value, str):
            return [{"role": turn.role, "content": turn.content} for turn in to_turns(value)]
        if not isinstance(value, list):
            raise PromptError(f"must be a string or a list of messages, got {type(value).__name__}")
        messages = []
        for index, message in enumerate(value):
            if isinstance(message, Mapping) and "from" in message and "role" not in message:
                role = _SHAREGPT_ROLES.get(str(message["from"]).lower())
                if role is None:
                    raise PromptError(f"message {index} has an unknown 'from': {message['from']!r}")
                message = {"role": role, "content": message.get("value")}
            if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
                raise PromptError(f"message {index} must be an object with a string 'role'")
            messages.append({"role": message["role"], "content": message_text(message.get("content"))})
        return messages
    except PromptError as error:
        raise RowError(number, field, str(error)) from error


def to_rlvr(row: object, number: int, verifier: str) -> dict:
    """One RLVR row: the messages up to the last user message (later turns are responses), that message as
    ``ground_truth``, and ``verifier`` as ``dataset``."""
    messages = source_messages(row, number)
    field = next(name for name in ("messages", "conversation", "conversations", "prompt") if name in row)
    users = [index for index, message in enumerate(messages) if message["role"] == "user"]
    if not users:
        raise RowError(number, field, "no user message")
    prompt = messages[: users[-1] + 1]
    instruction = prompt[-1]["content"].strip()
    if not instruction:
        raise RowError(number, field, "the last user message is empty")
    return {"messages": prompt, "ground_truth": instruction, "dataset": verifier}


def to_verl(row: object, number: int, data_source: str) -> dict:
    """One row of verl's schema: the RLVR row's messages as ``prompt``, its instruction as the ground truth, the
    turns before it as ``extra_info.context``."""
    rlvr = to_rlvr(row, number, data_source)
    prompt = rlvr["messages"]
    return {
        "data_source": data_source,
        "prompt": prompt,
        "reward_model": {"style": "model", "ground_truth": rlvr["ground_truth"]},
        "extra_info": {"index": number - 1, "context": prompt[:-1]},
    }


def verl_schema() -> object:
    """The parquet schema of ``to_verl`` rows, typed even when no row has earlier turns (so that shards concat)."""
    import pyarrow

    messages = pyarrow.list_(pyarrow.struct([("role", pyarrow.string()), ("content", pyarrow.string())]))
    return pyarrow.schema(
        [
            ("data_source", pyarrow.string()),
            ("prompt", messages),
            ("reward_model", pyarrow.struct([("style", pyarrow.string()), ("ground_truth", pyarrow.string())])),
            ("extra_info", pyarrow.struct([("index", pyarrow.int64()), ("context", messages)])),
        ]
    )


def converter(output_format: str) -> Callable[[object, int, str], dict]:
    """The row converter of ``flip-reward data convert --format``."""
    if output_format not in CONVERT_FORMATS:
        raise ValueError(f"--format must be one of {', '.join(CONVERT_FORMATS)}, got {output_format!r}")
    return to_verl if output_format == "verl" else to_rlvr


def write_rows(path: str, rows: list[dict], schema: object = None) -> None:
    """Rows as parquet (with the pyarrow ``schema`` when given) when ``path`` ends with .parquet, else as JSONL (see
    RLVR_FORMATS); OutputError when it cannot be written (JSONL keeps its whole lines, a partial parquet file is
    removed)."""
    target = Path(path)
    if target.suffix == ".parquet":
        import pyarrow
        import pyarrow.parquet

        table = pyarrow.Table.from_pylist(rows, schema=schema)
        whole_file(target, lambda temporary: pyarrow.parquet.write_table(table, temporary))
        return
    with JsonlFile(target) as out:
        for row in rows:
            out.write(row)


# --- check ----------------------------------------------------------------------------------------------------------


def _check_messages(messages: object, number: int) -> None:
    if not isinstance(messages, list) or not messages:
        raise RowError(number, "messages", "must be a non-empty list of chat messages")
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise RowError(number, where, f"must be an object, got {type(message).__name__}")
        if message.get("role") not in ROLES:
            raise RowError(number, f"{where}.role", f"must be one of {', '.join(ROLES)}, got {message.get('role')!r}")
        if not isinstance(message.get("content"), str):
            raise RowError(number, f"{where}.content", "must be a string (open-instruct flattens it as text)")
    prompt = messages[:-1] if len(messages) > 1 and messages[-1]["role"] == "assistant" else messages
    users = [message for message in prompt if message["role"] == "user"]
    if not users:
        raise RowError(number, "messages", "the prompt has no user message (the instruction)")
    if not users[-1]["content"].strip():
        raise RowError(number, "messages", "the last user message (the instruction) is empty")


def check_row(row: object, number: int, allow_unknown: bool = False) -> list[str]:
    """The verifier names of a valid RLVR row; RowError for the first problem found."""
    row = object_row(row, number)
    for field in ("messages", "ground_truth", "dataset"):
        field_value(row, field, number)
    _check_messages(row["messages"], number)
    dataset, ground_truth = row["dataset"], row["ground_truth"]
    if isinstance(dataset, str):
        names = [dataset]
        if not isinstance(ground_truth, (str, list)):
            raise RowError(number, "ground_truth", f"must be a string or a list, got {type(ground_truth).__name__}")
    elif isinstance(dataset, list) and dataset and all(isinstance(name, str) for name in dataset):
        names = dataset
        if not isinstance(ground_truth, list) or len(ground_truth) != len(dataset):
            raise RowError(number, "ground_truth", f"must be a list of {len(dataset)} (one per verifier in 'dataset')")
    else:
        raise RowError(number, "dataset", "must be a verifier name or a non-empty list of names")
    for name in names:
        if not name.strip():
            raise RowError(number, "dataset", "verifier name is empty")
        if not allow_unknown and name.lower() not in KNOWN_VERIFIERS:
            raise RowError(
                number,
                "dataset",
                f"unknown verifier {name!r}: open-instruct would skip the row's reward "
                "(--allow-unknown-verifiers if it comes from another plugin)",
            )
    return [name.lower() for name in names]


def check_rows(rows: list, allow_unknown: bool = False) -> tuple[Counter, list[RowError]]:
    """Verifier counts of the valid rows, and a RowError per invalid row."""
    names, invalid = read_valid(rows, lambda row, number: check_row(row, number, allow_unknown))
    return Counter(name for row_names in names for name in row_names), invalid


def describe_counts(verifiers: Counter) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(verifiers.items())) or "none"
