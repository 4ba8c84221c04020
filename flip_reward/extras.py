"""The optional extras of flip-reward's commands: whether a module is installed (found without importing it), and
the one line saying which extra provides a missing one."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence


def importable(module: str) -> bool:
    """Whether the top-level ``module`` is installed (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def first_missing(modules: Iterable[str]) -> str | None:
    """The first of ``modules`` that is not installed, None when all are."""
    return next((name for name in modules if not importable(name)), None)


def missing_extra_line(command: str, module: str, extras: Sequence[str]) -> str:
    """``error: flip-reward COMMAND needs the module 'MODULE', which is not installed: pip install ...``."""
    install = " or ".join(f"'flip-reward[{extra}]'" for extra in extras)
    return f"error: flip-reward {command} needs the module '{module}', which is not installed: pip install {install}"
