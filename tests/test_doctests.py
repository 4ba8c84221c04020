"""The test command runs the docstring examples: every flip_reward module with a ``>>>`` example is collected as a
doctest by a plain ``pytest`` (pyproject's addopts), as ``make test`` runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def test_every_docstring_example_is_collected() -> None:
    with_examples = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "flip_reward").rglob("*.py")
        if ">>> " in path.read_text(encoding="utf-8")
    )
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *with_examples],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    collected = {line.split("::")[0] for line in listed.stdout.splitlines() if "::" in line}
    assert len(with_examples) >= 14
    assert sorted(collected) == with_examples, listed.stdout + listed.stderr
