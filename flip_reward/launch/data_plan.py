"""What upstream open-instruct will load from a dataset mix, checked before a launch, and the held-out eval set.

Upstream at the pin (``DatasetConfig`` and ``load_dataset_configs`` in ``open_instruct/dataset_transformation.py``)
reads a local file only when its name ends in ``.jsonl`` or ``.parquet`` (anything else is taken for a hub dataset
and fails to download), accepts only the ``train`` split of a local file (an assertion), and takes ``int(fraction x
size)`` rows for an amount with a "." and that many rows for one without. Each rule is checked here, with the same
amount arithmetic as the local trainer (``data.mixes``), so that a mix that would select no row, or that upstream
would refuse, fails in the dry run and before a launch, naming the dataset. Hub datasets are not read offline.

``hold_out`` splits a local training file into the rows to train on and an eval set that the run never trains on,
since upstream's in-loop eval otherwise reuses training prompts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flip_reward.data.loading import RowError, load_rows, read_input, read_valid
from flip_reward.data.mixes import DatasetError, MixerEntry, parse_mixer
from flip_reward.data.rlvr import check_rows, describe_counts, write_rows

UPSTREAM_LOCAL_SUFFIXES = (".jsonl", ".parquet")
MAX_ERRORS_SHOWN = 3  # invalid rows named in a dataset's error
HOLDOUT_SEED = 1234
HOLDOUT_SHARE = 10  # at most one row in ten is held out, so a small file keeps most of its rows for training


@dataclass(frozen=True)
class Finding:
    """One line of a data check: ``error`` blocks a launch, a warning or a note does not."""

    text: str
    error: bool = False


def is_local(name: str) -> bool:
    """Whether upstream, or the user, means ``name`` as a local file rather than a hub dataset."""
    path = Path(name)
    return path.exists() or path.suffix in (".jsonl", ".json", ".parquet") or name.startswith((".", "/", "~"))


def check_mix(spec: str, splits: str, verifier: str | None, role: str) -> list[Finding]:
    """The findings for every dataset of the mix ``spec`` (``role`` names it: DATASETS or LOCAL_EVALS)."""
    try:
        entries = parse_mixer(spec)
    except DatasetError as error:
        return [Finding(f"{role}: {error}", error=True)]
    split_list = splits.split() or ["train"]
    if len(split_list) == 1:
        split_list *= len(entries)
    if len(split_list) != len(entries):
        return [Finding(f"{role}: {len(split_list)} splits ({splits!r}) for {len(entries)} datasets", error=True)]
    findings: list[Finding] = []
    for entry, split in zip(entries, split_list):
        findings += check_entry(entry, split, verifier, role)
    return findings


def check_entry(entry: MixerEntry, split: str, verifier: str | None, role: str) -> list[Finding]:
    """What upstream will do with one ``NAME AMOUNT`` of a mix, read with split ``split``."""
    name = entry.source
    if not is_local(name):
        return [Finding(f"{role}: {name}: Hugging Face dataset, not checked offline (flip-reward data check {name})")]
    refusal = upstream_refusal(name, split)
    if refusal:
        return [Finding(f"{role}: {name}: {refusal}", error=True)]
    try:
        rows = load_rows(name, split)
    except (FileNotFoundError, RowError, ValueError, UnicodeDecodeError) as error:
        return [Finding(f"{role}: {name}: {error}", error=True)]
    verifiers, invalid = check_rows(rows)
    if invalid:
        shown = "; ".join(str(error) for error in invalid[:3])
        return [Finding(f"{role}: {name}: {len(invalid)} of {len(rows)} rows invalid ({shown})", error=True)]
    selected = entry.target(len(rows))
    if selected == 0:
        return [Finding(f"{role}: {name}: amount {entry.amount} of its {len(rows)} rows selects no row", error=True)]
    findings = [
        Finding(
            f"{role}: {name}: {len(rows)} rows -> {selected} (amount {entry.amount}); verifiers: "
            f"{describe_counts(verifiers)}"
        )
    ]
    if verifier and verifier not in verifiers:
        findings.append(
            Finding(
                f"{role}: WARNING {name} has no {verifier} rows; rows pick their verifier, so they are not rewarded "
                f"by {verifier}: use the matching file or pass --remap_verifier THEIR_VERIFIER={verifier}"
            )
        )
    return findings


def upstream_refusal(name: str, split: str) -> str | None:
    """Why upstream open-instruct would refuse the local dataset ``name`` (read with ``split``), or None."""
    path = Path(name)
    if not path.is_file():
        return "local file not found"
    if path.suffix not in UPSTREAM_LOCAL_SUFFIXES:
        return (
            f"upstream open-instruct reads local {' and '.join(UPSTREAM_LOCAL_SUFFIXES)} files only (it would look "
            f"for a hub dataset named {name!r}); convert it: flip-reward data convert {name} {path.stem}.jsonl"
        )
    if split != "train":
        return f"upstream open-instruct reads only the 'train' split of a local file, not {split!r}"
    return None


@dataclass(frozen=True)
class HeldOut:
    """A local training file split in two: ``train`` (the rest) and ``eval`` (``count`` rows the run never trains
    on), both written as JSONL under the run's directory."""

    train: Path
    eval: Path
    count: int


def hold_out(source: str, count: int, output_dir: Path, write: bool = True) -> HeldOut:
    """Hold ``min(count, rows // HOLDOUT_SHARE)`` rows of ``source`` out of training (a seeded sample, at least one
    row); DatasetError when the file has fewer than 2 rows. With ``write=False`` (a dry run) nothing is written."""
    rows = load_rows(source)
    unreadable = next((row for row in rows if isinstance(row, RowError)), None)
    if unreadable is not None:
        raise unreadable
    held = held_out_indices(len(rows), count, source)
    stem = Path(source).stem
    plan = HeldOut(output_dir / f"{stem}.train.jsonl", output_dir / f"{stem}.eval.jsonl", len(held))
    if write:
        write_rows(str(plan.train), [row for index, row in enumerate(rows) if index not in held])
        write_rows(str(plan.eval), [row for index, row in enumerate(rows) if index in held])
    return plan


def held_out_indices(size: int, count: int, source: str) -> set[int]:
    """The indices of the rows of ``source`` (``size`` rows) held out of training: a seeded sample of
    ``min(count, size // HOLDOUT_SHARE)`` rows, at least one; DatasetError when it has fewer than 2 rows."""
    if size < 2:
        raise DatasetError(f"{source} has {size} row(s): nothing can be held out for evaluation")
    return set(random.Random(HOLDOUT_SEED).sample(range(size), min(count, size // HOLDOUT_SHARE) or 1))


def converted_rows(source: str, split: str, convert: Callable[[object, int], dict]) -> list[dict]:
    """The rows of dataset ``source`` (a local file or a hub dataset; chat or RLVR rows), each ``convert``ed to a
    trainer's own row (``convert(row, number)`` raises RowError naming the row and field); DatasetError naming the
    dataset, and its first invalid rows by number and field."""
    try:
        rows = read_input(source, split)
    except (FileNotFoundError, RowError, ValueError, UnicodeDecodeError) as error:
        raise DatasetError(f"DATASETS: {source}: {error}") from None
    except Exception as error:  # the datasets library (hub names) raises many kinds; report each the same way
        raise DatasetError(
            f"DATASETS: {source}: cannot load split {split!r}: {type(error).__name__}: {error}"
        ) from None
    converted, invalid = read_valid(rows, convert)
    if invalid:
        shown = "; ".join(str(error) for error in invalid[:MAX_ERRORS_SHOWN])
        raise DatasetError(f"DATASETS: {source}: {len(invalid)} of {len(rows)} rows invalid ({shown})")
    return converted
