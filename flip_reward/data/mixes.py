"""Training prompts for the local GRPO trainer: RLVR datasets mixed with open-instruct's ``dataset_mixer_list`` syntax.

``DATASETS="NAME AMOUNT [NAME AMOUNT ...]"``: NAME is a local .jsonl/.json/.parquet file or a Hugging Face dataset;
AMOUNT follows open-instruct (``load_dataset_configs`` / ``DatasetConfig.select_samples`` at the pinned commit): a
number with a "." is a fraction of the dataset (``int(fraction * size)`` rows), one without is a row count ("1" is
one row, "1.0" all of them). The target is filled with full passes over the rows in order, then a random sample
without replacement (``numpy.random.RandomState(42)``) for the remainder, so counts above the size upsample.

Rows are RLVR rows (``messages``, ``ground_truth``, ``dataset``), validated by ``rlvr.check_row`` (bad rows are
reported by number and field; nothing is dropped silently). The prompt is ``messages`` without a trailing assistant
message, as upstream's ``rlvr_tokenize_v1`` does, and the original instruction FLIP scores against is its last user
message. The local trainer rewards every row with the one reward it runs; ``dataset`` is kept as a column.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from flip_reward.data.loading import RowError, load_rows, numbered
from flip_reward.data.rlvr import check_row

MIXER_SEED = 42
MAX_ERRORS_SHOWN = 20
SAMPLE_DATASETS = {
    "flip": "sample_rlvr_flip.jsonl",
    "pointwise": "sample_rlvr_llmjudge.jsonl",
}  # flip_reward.sample_data
VERIFIERS = {"flip": "general-flip", "pointwise": "general-quality"}


class DatasetError(ValueError):
    """A dataset mix that cannot be used: bad syntax, a missing dataset, or invalid rows (listed)."""


@dataclass(frozen=True)
class MixerEntry:
    """One ``NAME AMOUNT`` pair: ``amount`` is a fraction (float) or a row count (int)."""

    source: str
    amount: int | float

    def target(self, size: int) -> int:
        return int(self.amount * size) if isinstance(self.amount, float) else self.amount


def parse_mixer(spec: str | Sequence[str], knob: str = "DATASETS") -> list[MixerEntry]:
    """``"NAME AMOUNT [NAME AMOUNT ...]"`` (or its tokens) as entries; DatasetError (naming ``knob``, the setting the
    mix came from) for anything else.

    >>> parse_mixer("data/a.jsonl 1.0 org/b 100")
    [MixerEntry(source='data/a.jsonl', amount=1.0), MixerEntry(source='org/b', amount=100)]
    """
    tokens = spec.split() if isinstance(spec, str) else list(spec)
    if len(tokens) < 2 or len(tokens) % 2:
        raise DatasetError(f"{knob} must be 'NAME AMOUNT [NAME AMOUNT ...]', got {' '.join(tokens)!r}")
    entries = []
    for name, text in zip(tokens[::2], tokens[1::2]):
        try:
            amount: int | float = float(text) if "." in text else int(text)
        except ValueError:
            raise DatasetError(
                f"{knob}: {text!r} after {name!r} is not an amount (a fraction like 0.5 or 1.0, "
                "or a row count like 100)"
            ) from None
        if not amount > 0:
            raise DatasetError(f"{knob}: the amount of {name!r} must be > 0, got {text!r}")
        entries.append(MixerEntry(name, amount))
    return entries


def select_indices(size: int, target: int, seed: int = MIXER_SEED) -> list[int]:
    """Row indices for ``target`` rows of a ``size``-row dataset: full passes in order, then a seeded sample."""
    import numpy

    if size == 0:
        return []
    indices = list(range(size)) * (target // size)
    extra = target % size
    if extra:
        indices += numpy.random.RandomState(seed).choice(size, size=extra, replace=False).tolist()
    return indices


def prompt_messages(messages: list[dict]) -> list[dict]:
    """The prompt of an RLVR row: its messages without a trailing assistant message, as plain role/content dicts."""
    if len(messages) > 1 and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return [{"role": message["role"], "content": message["content"]} for message in messages]


def training_row(row: dict, number: int) -> dict:
    """The TRL row of a valid RLVR row: ``prompt`` (chat messages), ``ground_truth`` and ``dataset`` as text."""
    names = check_row(row, number, allow_unknown=True)
    truth = row["ground_truth"]
    return {
        "prompt": prompt_messages(row["messages"]),
        "ground_truth": truth if isinstance(truth, str) else json.dumps(truth, ensure_ascii=False),
        "dataset": ",".join(names),
    }


def load_entry(entry: MixerEntry, split: str) -> tuple[list[dict], int]:
    """The rows an entry selects, as TRL rows, and the dataset's size; DatasetError lists invalid rows."""
    try:
        rows = load_rows(entry.source, split)
    except (FileNotFoundError, RowError, ValueError) as error:
        raise DatasetError(f"{entry.source}: {error}") from error
    except Exception as error:  # the datasets library (hub names) raises many kinds; report each the same way
        raise DatasetError(f"{entry.source}: cannot load split {split!r}: {type(error).__name__}: {error}") from error
    converted, invalid = [], []
    for number, row in numbered(rows):
        try:
            converted.append(training_row(row, number))
        except RowError as error:
            invalid.append(f"{entry.source}: {error}")
    if invalid:
        shown = "\n".join(invalid[:MAX_ERRORS_SHOWN])
        more = f"\n({len(invalid) - MAX_ERRORS_SHOWN} more not shown)" if len(invalid) > MAX_ERRORS_SHOWN else ""
        raise DatasetError(f"{len(invalid)} invalid RLVR row(s) in {entry.source}:\n{shown}{more}")
    if not converted:
        raise DatasetError(f"{entry.source} has no rows")
    target = entry.target(len(converted))
    if target == 0:
        raise DatasetError(f"{entry.source}: amount {entry.amount} of its {len(converted)} rows selects no row")
    return [converted[index] for index in select_indices(len(converted), target)], len(rows)


def load_mix(spec: str | Sequence[str], splits: str | Sequence[str] = "train") -> tuple[list[dict], list[str]]:
    """The mixed training rows of ``spec`` and one report line per dataset ("NAME: SIZE -> N rows").

    ``splits`` is one split for every dataset or one per dataset (open-instruct's dataset_mixer_list_splits)."""
    entries = parse_mixer(spec)
    split_list = splits.split() if isinstance(splits, str) else list(splits)
    if len(split_list) == 1:
        split_list *= len(entries)
    if len(split_list) != len(entries):
        raise DatasetError(f"DATASET_SPLITS: {len(split_list)} splits for {len(entries)} datasets")
    rows, report = [], []
    for entry, split in zip(entries, split_list):
        selected, size = load_entry(entry, split)
        rows.extend(selected)
        report.append(f"{entry.source}: {size} -> {len(selected)} rows (amount {entry.amount})")
    return rows, report


def verifier_note(rows: list[dict], reward: str) -> str | None:
    """A note when rows name verifiers other than the reward's own (they are rewarded by ``reward`` all the same)."""
    expected = VERIFIERS.get(reward)
    others = Counter(row["dataset"] for row in rows if expected not in row["dataset"].split(","))
    if not others:
        return None
    names = ", ".join(f"{name} ({count})" for name, count in others.most_common())
    return (
        f"note: {sum(others.values())} row(s) name verifier(s) {names}, not {expected}; the local trainer "
        f"rewards every row with {reward}"
    )


def default_datasets(reward: str) -> str:
    """The bundled sample for ``reward`` (24 RLVR prompts, shipped as flip_reward.sample_data), as a mixer spec."""
    return f"{sample_path(SAMPLE_DATASETS[reward])} 1.0"


def sample_path(name: str) -> Path:
    """The path of the bundled sample file ``name`` (data/NAME in a checkout, flip_reward/sample_data in a wheel)."""
    return Path(str(files("flip_reward.sample_data") / name))
