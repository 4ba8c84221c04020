"""Helpers for the slime tests: the checkout named by ``SLIME_DIR`` (slime is not on PyPI), slime's own argument
declarations, and ``SampleShape``, the fields of slime's ``Sample`` that a reward function reads and writes.

slime's ``slime/utils/arguments.py`` imports SGLang (a GPU serving stack) and wandb at its top, so it does not import
here. Its argument declarations do not use them: ``slime_parser`` compiles the two functions that declare slime's
own arguments (``reset_arg`` and ``get_slime_extra_args_provider``, read from the checkout's source, never copied)
and applies them to an ``argparse.ArgumentParser``, as ``parse_args`` applies them to Megatron's parser.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SLIME_FUNCTIONS = ("reset_arg", "get_slime_extra_args_provider")
SKIP_REASON = "SLIME_DIR is not set: the tests through slime's own code need a checkout of THUDM/slime"
# Skips a test before its fixtures are built (the tiny model's tokenizer takes seconds) when SLIME_DIR is unset.
NEEDS_SLIME = pytest.mark.skipif(not os.environ.get("SLIME_DIR"), reason=SKIP_REASON)


def slime_dir() -> Path:
    """The slime checkout named by ``SLIME_DIR``, put on ``sys.path``; the test is skipped when it is not set."""
    value = os.environ.get("SLIME_DIR")
    if not value:
        pytest.skip(SKIP_REASON)
    path = Path(value)
    if not (path / "slime" / "rollout" / "rm_hub" / "__init__.py").is_file():
        pytest.fail(f"SLIME_DIR={value} is not a checkout of THUDM/slime (no slime/rollout/rm_hub)")
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    return path


def slime_parser(checkout: Path) -> argparse.ArgumentParser:
    """An ArgumentParser with slime's own arguments, declared by the checkout's ``get_slime_extra_args_provider``."""
    source = (checkout / "slime" / "utils" / "arguments.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in SLIME_FUNCTIONS]
    namespace: dict = {"argparse": argparse, "json": json}
    exec(compile(tree, "slime/utils/arguments.py", "exec"), namespace)  # noqa: S102  (slime's own declarations)
    parser = argparse.ArgumentParser(allow_abbrev=False)
    return namespace["get_slime_extra_args_provider"]()(parser)


def slime_script_flags(checkout: Path) -> set[str]:
    """Every ``--flag`` slime's own run scripts pass (scripts/*.sh, scripts/models/*.sh): Megatron's and SGLang's
    arguments that slime's launch commands use, which ``slime_parser`` does not declare."""
    flags = set()
    for script in [*checkout.glob("scripts/*.sh"), *checkout.glob("scripts/models/*.sh")]:
        for word in script.read_text(encoding="utf-8").split():
            if word.startswith("--") and len(word) > 2:
                flags.add(word.split("=")[0])
    return flags


@dataclass
class SampleShape:
    """The fields of slime's ``Sample`` (slime/utils/types.py) that a reward function reads and writes."""

    prompt: str | list = ""
    response: str = ""
    label: str | None = None
    reward: float | dict | None = None
    metadata: dict = field(default_factory=dict)
