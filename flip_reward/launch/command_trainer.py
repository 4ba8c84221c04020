"""Launchers of the trainers that take FLIP as a reward named in their own configuration and run as one command
(slime, SkyRL, NeMo-RL, AReaL, ROLL): the settings they share (``CommandTrainerSettings``), DATASETS converted to the
trainer's own rows in one file, the configuration files it reads, and the launch: a dry run prints the plan; a real
run writes the data and files, serves the judge and runs the trainer under supervision (``trainer_run``).

A trainer's module declares only what is its own: a settings class (its knobs over these), and a ``TrainerRecipe``
(the module a real run needs, the FLIP entry point, the row converter, the files and the command). The reward code
in the trainer's processes reaches the judge through the environment the launch adds to the trainer's
(``judge_env``: ``HOSTED_VLLM_API_BASE`` and ``FLIP_JUDGE_*``, read by ``integrations.process_reward``), so no
judge URL is written to a file or a printed command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flip_reward.data.mixes import DatasetError, MixerEntry, parse_mixer, select_indices
from flip_reward.data.rlvr import write_rows
from flip_reward.knobs import SettingsError, resolve
from flip_reward.launch.data_plan import converted_rows, is_local
from flip_reward.launch.run_judge import HOSTED_VLLM, HOSTED_VLLM_API_BASE, run_judge
from flip_reward.launch.run_knobs import GrpoKnobs, RunKnobs
from flip_reward.launch.trainer_run import Trainer, dry_run_report, flip_environment, gpu_env, run_trainer


@dataclass(frozen=True)
class CommandTrainerSettings(GrpoKnobs, RunKnobs):
    """The knobs every command-line trainer's launcher has (its own settings class adds the trainer's), resolved
    from flags > environment > default (these launchers read no preset) and checked in ``__post_init__``."""

    def __post_init__(self) -> None:
        self.check_judge()
        if not self.judge_model.startswith(HOSTED_VLLM):
            raise SettingsError(
                f"JUDGE_MODEL {self.judge_model!r}: the reward in the trainer's processes reaches the judge through "
                f"{HOSTED_VLLM_API_BASE}, so the judge must be a hosted_vllm/ model (any OpenAI-compatible server)"
            )
        if not self.training_gpus():
            raise SettingsError(f"no GPU left for training (NUM_GPUS={self.num_gpus}, JUDGE_GPUS={self.judge_gpus})")
        self.mix()

    @classmethod
    def from_sources(cls, flags: Mapping[str, object], environ: Mapping[str, str] | None = None) -> Any:
        """Every knob: ``flags`` > ``environ`` (default os.environ) > default; SettingsError names a bad value."""
        return resolve(cls, flags, os.environ if environ is None else environ)

    def mix(self) -> list[tuple[MixerEntry, str]]:
        """DATASETS (as every launcher reads it, ``parse_mixer``) with each dataset's split."""
        try:
            entries = parse_mixer(self.datasets)
        except DatasetError as error:
            raise SettingsError(str(error)) from None
        return list(zip(entries, self.splits(len(entries))))


@dataclass(frozen=True)
class RunFiles:
    """Where a run's inputs go: the training rows, and the folder of the configuration files the trainer reads."""

    data: Path
    config_dir: Path


@dataclass(frozen=True)
class TrainerRecipe:
    """What one trainer's launcher renders. ``requires``: the module a real run needs importable (None when the
    trainer runs from a checkout's script); ``reward``: the FLIP entry point it is configured with; ``row``: one
    DATASETS row as the trainer's own (raises RowError naming the row and field); ``command(settings, files, python,
    extra)``: its command (the extra arguments last) and any environment of its own; ``files(settings, files)``:
    the configuration files it reads, path -> text; ``data_name``: the training file's name (.jsonl or .parquet);
    ``min_rows(settings)``: for a trainer that fails on a file too small for one step, the fewest rows it needs (a
    smaller mix is refused up front; None: no such check)."""

    name: str
    requires: str | None
    reward: str
    row: Callable[[object, int], dict]
    command: Callable[[Any, RunFiles, str, Sequence[str]], Trainer]
    files: Callable[[Any, RunFiles], dict[Path, str]] = field(default=lambda settings, files: {})
    data_name: str = "train.jsonl"
    min_rows: Callable[[Any], int] | None = None


def judge_env(settings: RunKnobs, judge_url: str) -> dict[str, str]:
    """How the reward in the trainer's processes learns the judge: its URL and the judge knobs, as the variables
    ``FlipSettings`` reads."""
    return {
        HOSTED_VLLM_API_BASE: judge_url,
        "FLIP_JUDGE_MODEL": settings.judge_model,
        "FLIP_JUDGE_TIMEOUT": f"{settings.judge_timeout:g}",
        "FLIP_JUDGE_MAX_TOKENS": str(settings.judge_max_tokens),
        "FLIP_JUDGE_TEMPERATURE": str(settings.judge_temperature),
        "FLIP_JUDGE_MAX_CONTEXT": str(settings.judge_max_context),
    }


def trace_env() -> dict[str, str]:
    """``FLIP_SAMPLE_LOG`` made absolute for the trainer (when set): its reward code may run in another working
    directory (NeMo Gym runs each server in the server's own folder)."""
    path = os.environ.get("FLIP_SAMPLE_LOG")
    return {"FLIP_SAMPLE_LOG": str(Path(path).absolute())} if path else {}


def mixed_rows(recipe: TrainerRecipe, settings: CommandTrainerSettings, write_to: Path | None) -> list[str]:
    """DATASETS as the trainer's rows, each dataset's amount selected as open-instruct reads it (``data.mixes``),
    written to ``write_to`` in one file (None, a dry run: local files are converted and checked, hub datasets noted,
    nothing written); one line per dataset. DatasetError for a dataset that cannot be used, or for a mix of fewer
    rows than the trainer needs (``recipe.min_rows``; checked once every dataset was read)."""
    lines, rows, unread = [], [], 0
    for entry, split in settings.mix():
        if write_to is None and not is_local(entry.source):
            lines.append(f"data: {entry.source}: Hugging Face dataset, not read by a dry run; converted at the start")
            unread += 1
            continue
        converted = converted_rows(entry.source, split, recipe.row)
        target = entry.target(len(converted))
        if target == 0:
            raise DatasetError(f"DATASETS: {entry.source}: amount {entry.amount} of its {len(converted)} rows "
                               "selects no row")  # fmt: skip
        rows += [converted[index] for index in select_indices(len(converted), target)]
        lines.append(f"data: {entry.source}: {len(converted)} rows -> {target} training rows")
    needed = recipe.min_rows(settings) if recipe.min_rows else 0
    if not unread and len(rows) < needed:
        raise DatasetError(
            f"DATASETS gives {len(rows)} training rows; {recipe.name} needs at least {needed} "
            f"(PROMPTS_PER_STEP={settings.prompts_per_step})"
        )
    if write_to is not None:
        write_to.parent.mkdir(parents=True, exist_ok=True)
        write_rows(str(write_to), rows)
    return lines


def launch_command_trainer(
    recipe: TrainerRecipe, settings: CommandTrainerSettings, extra: Sequence[str], dry_run: bool
) -> int:
    """Plan the run and print it (``dry_run``: the judge, the data, each file with its text, the command), or write
    the data and files, start the judge and run the trainer; the exit status (docs/reference.md)."""
    flip_environment()
    python = sys.executable
    output = Path(settings.output_dir)
    judge = run_judge(settings, output / "judge", python, dry_run)
    # absolute: a trainer's workers (Ray actors, Hydra's run folder) need not share the launcher's working directory
    files = RunFiles(output.absolute() / "data" / recipe.data_name, output.absolute() / "config")
    own = recipe.command(settings, files, python, extra)
    trainer = Trainer(own.command, {**gpu_env(settings), **judge_env(settings, judge.url), **trace_env(), **own.env})
    configs = recipe.files(settings, files)

    def log(message: str) -> None:
        print(f"{recipe.name}: {message}", file=sys.stderr, flush=True)

    def prepare() -> list[str]:
        lines = mixed_rows(recipe, settings, files.data)
        for path, text in configs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return [*lines, f"data: {files.data}", *(f"config: {path}" for path in configs)]

    if dry_run:
        headline = f"{recipe.name}: {len(settings.training_gpus())} training GPU(s); reward {recipe.reward}"
        lines = [*mixed_rows(recipe, settings, None), f"data: -> {files.data}"]
        for path, text in configs.items():
            lines += [f"config: {path}", *(f"    {line}" for line in text.splitlines())]
        return dry_run_report(headline, judge, settings, lines, trainer)
    return run_trainer(recipe.requires, prepare, judge, settings, trainer, log)
