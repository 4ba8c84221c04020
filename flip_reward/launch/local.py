"""The local backend of the GRPO launchers (``flip-reward launch local``; BACKEND=local of scripts/train/grpo_*.sh):
GRPO on this machine with TRL through ``flip-reward train``, run in this process, and the pick of a backend for
BACKEND=auto.

Its own knobs (``LocalSettings``, docs/knobs.md) become ``flip-reward train`` options: GRPO_VERIFIER general-flip is
``--reward flip``, general-quality ``--reward pointwise``; LOCAL_PRESET (default: 1gpu when a CUDA GPU is visible,
else tiny) is ``--preset``; EXP_NAME (default: the verifier's run name + ``_local``) is ``--exp-name``. The variables
that are ``flip-reward train`` knobs too (its section of docs/knobs.md: DATASETS, LEARNING_RATE, WITH_TRACKING, the
FLIP_* judge settings as second names of its JUDGE_* knobs, ...) are read by it; every FLIP_* value is checked here
first, as the open-instruct backend would. Arguments written for grpo_fast.py (underscores) are mapped by
``flip_reward.training.grpo_args``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flip_reward.core.settings import FlipSettings, FlipSettingsError
from flip_reward.exit_codes import EXIT_INVALID_INPUT
from flip_reward.extras import first_missing, missing_extra_line
from flip_reward.knobs import SettingsError, knob, resolve
from flip_reward.launch.grpo_settings import EXP_NAMES, GrpoReward
from flip_reward.launch.preflight import find_checkout
from flip_reward.serving.judge_fleet import gpu_visible
from flip_reward.training import command as train
from flip_reward.training.grpo_args import UnmappedArgument, translate

REWARDS = {"general-flip": "flip", "general-quality": "pointwise"}  # GRPO verifier -> flip-reward train --reward


@dataclass(frozen=True)
class LocalSettings(GrpoReward):
    """The knobs of ``flip-reward launch local`` (its other settings are ``flip-reward train``'s)."""

    preset: str = knob(
        "LOCAL_PRESET",
        lambda s: "1gpu" if gpu_visible() else "tiny",
        "flip-reward train's preset: configs/local_NAME.env (tiny, 1gpu) or a path",
        shown="1gpu with a CUDA GPU, else tiny",
    )
    exp_name: str = knob(
        "EXP_NAME",
        lambda s: f"{EXP_NAMES[s.verifier]}_local",
        "run name",
        shown="grpo_flip_local or grpo_llmjudge_local (the verifier's)",
    )


def log(message: str) -> None:
    print(f"grpo (local): {message}", file=sys.stderr, flush=True)


def local_train_arguments(arguments: Sequence[str], settings: LocalSettings, environ: Mapping[str, str]) -> list[str]:
    """The ``flip-reward train`` command line (without ``flip-reward``) of the local backend; ValueError (the
    message said as it is) for bad FLIP_* values or a grpo_fast.py argument without an equivalent."""
    try:
        FlipSettings.from_env(environ)  # the FLIP_* values the open-instruct backend refuses are refused here too
    except FlipSettingsError as error:
        raise ValueError(str(error)) from None
    try:
        translated, notes = translate(list(arguments))
    except UnmappedArgument as error:
        raise ValueError(
            f"backend local runs `flip-reward train`, which has no equivalent of the grpo_fast.py argument {error}; "
            "run on a CUDA machine with BACKEND=open-instruct, or drop it (flip-reward train --help lists the local "
            "options)"
        ) from None
    if notes:
        log(f"grpo_fast.py arguments mapped for flip-reward train: {', '.join(notes)}")
    reward = REWARDS[settings.verifier]
    return ["train", "--reward", reward, "--preset", settings.preset, "--exp-name", settings.exp_name, *translated]


def run_local(
    arguments: Sequence[str], flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> int:
    """Run the local backend: ``flip-reward train`` in this process (``flip_reward.training.command``) with
    ``arguments`` (``flip-reward train``'s or grpo_fast.py's, ``--dry-run`` included) after the ones of its knobs
    (``flags`` > ``environ`` > default; later flags win), the knobs of ``flip-reward train`` read from ``environ``
    (default: os.environ). The train command's exit status; 2 for settings refused before it starts."""
    environ = os.environ if environ is None else environ
    try:
        command = local_train_arguments(arguments, resolve(LocalSettings, flags, environ), environ)
    except (SettingsError, ValueError) as error:
        log(f"error: {error}")
        return EXIT_INVALID_INPUT
    log(f"preset {command[4]}, reward {command[2]}: flip-reward {shlex.join(command)}")
    parser = argparse.ArgumentParser(prog="flip-reward train")
    train.add_arguments(parser)
    args = parser.parse_args(command[1:])  # SystemExit(2) for an argument flip-reward train does not know
    missing = first_missing(train.NEEDS)
    if missing:
        print(missing_extra_line("train", missing, train.EXTRAS), file=sys.stderr)
        return EXIT_INVALID_INPUT
    return train.run_train(vars(args), args.preset, args.dry_run, environ)


def pick_backend(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The backend BACKEND=auto runs, and the line that says why: "open-instruct" when a CUDA GPU is visible and
    open_instruct is importable (OPEN_INSTRUCT_DIR counts), else "local"."""
    environ = os.environ if environ is None else environ
    why = None
    if not gpu_visible():
        why = "no CUDA GPU visible (nvidia-smi)"
    elif find_checkout(environ) is None:
        why = "open_instruct is not importable (scripts/setup_open_instruct.sh installs it)"
    if why:
        return (
            "local",
            f"grpo: backend local (TRL GRPO on this machine): {why}; BACKEND=open-instruct forces grpo_fast.py",
        )
    return (
        "open-instruct",
        "grpo: backend open-instruct (grpo_fast.py): CUDA GPU and open_instruct found; BACKEND=local runs TRL",
    )
