"""The docs name only modules and objects that exist: every ``flip_reward/....py`` path and every dotted
``flip_reward.`` name in the README, docs/ and benchmarks/README.md (a module moved or renamed shows here)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from conftest import REPO

import flip_reward

PAGES = sorted([REPO / "README.md", REPO / "benchmarks" / "README.md", *(REPO / "docs").glob("*.md")])
PATH = re.compile(r"flip_reward(?:/\w+)+\.py")
DOTTED = re.compile(r"flip_reward(?:\.\w+)+")


def _module_file(dotted: str) -> Path | None:
    """The source file of module ``dotted`` (found, not imported), or None when there is no such module."""
    try:
        spec = importlib.util.find_spec(dotted)
    except ModuleNotFoundError:
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def missing(name: str) -> bool:
    """Whether ``name`` (a dotted flip_reward name) names nothing: its longest module prefix must exist, and the next
    part must be defined at the top of that module."""
    parts = name.split(".")
    if len(parts) == 2 and parts[1] in flip_reward.__all__:
        return False
    for end in range(len(parts), 0, -1):
        module = _module_file(".".join(parts[:end]))
        if module is not None:
            break
    if end == len(parts):
        return False
    defined = rf"^(?:async def |def |class )?{re.escape(parts[end])}\b"
    return re.search(defined, module.read_text(encoding="utf-8"), re.MULTILINE) is None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_named_modules_exist(page) -> None:
    text = page.read_text(encoding="utf-8")
    paths = [path for path in PATH.findall(text) if not (REPO / path).is_file()]
    names = [name.rstrip(".") for name in DOTTED.findall(text) if missing(name.rstrip("."))]
    assert (paths, names) == ([], [])
