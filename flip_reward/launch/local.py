"""The local backend of the GRPO launchers (``flip-reward launch local``; BACKEND=local of scripts/train/grpo_*.sh):
GRPO on this machine with TRL through ``flip-reward train``, run in this process, with the GRPO scripts' environment
mapped onto it, and the pick of a backend for BACKEND=auto.

How the scripts' environment maps onto ``flip-reward train`` (every other knob of ``flip-reward train --help`` is
read from the environment by the trainer itself, same names):

- GRPO_VERIFIER (or ``verifier``): general-flip -> ``--reward flip``; general-quality -> ``--reward pointwise``
- LOCAL_PRESET: default 1gpu when a CUDA GPU is visible, else tiny
- EXP_NAME: default ``{GRPO_DEFAULT_EXP_NAME or grpo_REWARD}_local``; OUTPUT_DIR: default output/EXP_NAME
- WITH_TRACKING=1: ``--report-to wandb`` (unless REPORT_TO is set)
- arguments written for grpo_fast.py (underscores) are mapped by ``flip_reward.training.grpo_args``
- the FLIP_* judge settings (FLIP_CONCURRENCY, FLIP_RETRIES, FLIP_TOKENIZER, FLIP_CACHE_DIR, FLIP_DISABLE_THINKING,
  FLIP_STRUCTURED_OUTPUT) are read by ``flip-reward train`` itself, as second names of its JUDGE_* knobs; every
  FLIP_* value is checked here first, as the open-instruct backend would
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Mapping, Sequence

from flip_reward.core.settings import FlipSettings, FlipSettingsError
from flip_reward.exit_codes import EXIT_INVALID_INPUT
from flip_reward.extras import first_missing, missing_extra_line
from flip_reward.knobs import TRUE
from flip_reward.serving.judge_fleet import gpu_visible
from flip_reward.training import command as train
from flip_reward.training.grpo_args import UnmappedArgument, translate

REWARDS = {"general-flip": "flip", "general-quality": "pointwise"}  # GRPO verifier -> flip-reward train --reward
BACKENDS = ("auto", "local", "open-instruct")


def log(message: str) -> None:
    print(f"grpo (local): {message}", file=sys.stderr, flush=True)


def local_train_arguments(
    arguments: Sequence[str], verifier: str, default_exp_name: str | None, environ: Mapping[str, str]
) -> list[str]:
    """The ``flip-reward train`` command line (without ``flip-reward``) of the local backend; ValueError (the
    message said as it is) for a verifier without a local reward, bad FLIP_* values or a grpo_fast.py argument
    without an equivalent."""
    if verifier not in REWARDS:
        raise ValueError(f"GRPO_VERIFIER '{verifier}' has no local reward (general-flip or general-quality)")
    reward = REWARDS[verifier]
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
    preset = environ.get("LOCAL_PRESET") or ("1gpu" if gpu_visible() else "tiny")
    exp_name = (
        environ.get("EXP_NAME")
        or f"{default_exp_name or environ.get('GRPO_DEFAULT_EXP_NAME') or 'grpo_' + reward}_local"
    )
    output_dir = environ.get("OUTPUT_DIR") or f"output/{exp_name}"
    tracking = environ.get("WITH_TRACKING", "0").strip().lower() in TRUE and not environ.get("REPORT_TO")
    return [
        "train", "--reward", reward, "--preset", preset, "--exp-name", exp_name, "--output-dir", output_dir,
        *(["--report-to", "wandb"] if tracking else []), *translated,
    ]  # fmt: skip


def run_local(
    arguments: Sequence[str],
    *,
    verifier: str | None = None,
    default_exp_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run the local backend: ``flip-reward train`` in this process (``flip_reward.training.command``) with
    ``arguments`` (``flip-reward train``'s or grpo_fast.py's, ``--dry-run`` included) after the ones mapped from the
    environment (later flags win).
    ``verifier`` defaults to GRPO_VERIFIER (general-flip), ``default_exp_name`` to GRPO_DEFAULT_EXP_NAME; ``environ``
    to os.environ. The train command's exit status; 2 for settings refused before it starts."""
    environ = os.environ if environ is None else environ
    try:
        command = local_train_arguments(
            arguments, verifier or environ.get("GRPO_VERIFIER") or "general-flip", default_exp_name, environ
        )
    except ValueError as error:
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
    return train.run_train(vars(args), args.preset, args.dry_run)


def pick_backend(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The backend BACKEND=auto runs, and the line that says why: "open-instruct" when a CUDA GPU is visible and
    open_instruct is importable (OPEN_INSTRUCT_DIR counts), else "local"."""
    environ = os.environ if environ is None else environ
    why = None
    if not gpu_visible():
        why = "no CUDA GPU visible (nvidia-smi)"
    elif not open_instruct_importable(environ):
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


def open_instruct_importable(environ: Mapping[str, str]) -> bool:
    from importlib.machinery import PathFinder

    checkout = environ.get("OPEN_INSTRUCT_DIR")
    return PathFinder.find_spec("open_instruct", [checkout, *sys.path] if checkout else None) is not None
