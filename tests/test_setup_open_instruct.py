"""scripts/setup_open_instruct.sh: the pinned checkout (against the local mirror of upstream, since GitHub is out
of reach here; OPEN_INSTRUCT_REPO is the documented override) and its report of what the machine lacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from open_instruct_support import MIRROR, REPO

SCRIPT = REPO / "scripts" / "setup_open_instruct.sh"
PIN = (REPO / "open-instruct" / "PIN").read_text().strip()


def run_setup(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OPEN_INSTRUCT_")}
    environment.update(env)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=300, check=False
    )


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A directory like this repo's open-instruct/: only our README.md and PIN."""
    directory = tmp_path / "open-instruct"
    directory.mkdir()
    shutil.copy(REPO / "open-instruct" / "README.md", directory / "README.md")
    shutil.copy(REPO / "open-instruct" / "PIN", directory / "PIN")
    return directory


@pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no local mirror of upstream at {MIRROR}")
def test_clone_checks_out_the_pinned_commit_and_keeps_our_files(target: Path) -> None:
    ours = (target / "README.md").read_text()
    result = run_setup("--clone-only", OPEN_INSTRUCT_REPO=str(MIRROR), OPEN_INSTRUCT_DIR=str(target))
    assert result.returncode == 0, result.stderr
    assert git(target, "rev-parse", "HEAD").strip() == PIN
    assert (target / "open_instruct" / "grpo_fast.py").is_file()
    assert (target / "README.md").read_text() == ours and (target / "PIN").read_text().strip() == PIN
    assert not (target / "docs").exists()
    assert git(target, "status", "--porcelain") == ""  # our README.md and PIN do not show as changes
    again = run_setup("--clone-only", OPEN_INSTRUCT_REPO=str(MIRROR), OPEN_INSTRUCT_DIR=str(target))
    assert again.returncode == 0 and "already at" in again.stderr

    parent = git(target, "rev-parse", "HEAD^").strip()
    (target / "open_instruct" / "grpo_fast.py").write_text("# edited\n")
    refused = run_setup(
        "--clone-only", OPEN_INSTRUCT_REPO=str(MIRROR), OPEN_INSTRUCT_DIR=str(target), OPEN_INSTRUCT_COMMIT=parent
    )
    assert refused.returncode == 1 and "has local changes" in refused.stderr


@pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no local mirror of upstream at {MIRROR}")
def test_install_stops_with_what_is_missing(target: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with git but without uv or nvidia-smi
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    for tool in ("bash", "sed", "tr", "grep", "mktemp", "mv", "rmdir", "rm", "mkdir", "printf", "dirname", "cat"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    result = run_setup(
        OPEN_INSTRUCT_REPO=str(MIRROR),
        OPEN_INSTRUCT_DIR=str(target),
        PATH=str(bin_dir),
        VIRTUAL_ENV=str(Path(sys.executable).parents[1]),
    )
    assert result.returncode == 1
    assert "MISSING uv" in result.stderr and "MISSING a CUDA GPU" in result.stderr
    if sys.version_info[:2] != (3, 12):
        assert "MISSING Python 3.12" in result.stderr
    assert "cannot install open-instruct on this machine" in result.stderr
    assert git(target, "rev-parse", "HEAD").strip() == PIN  # the checkout is done anyway


def test_a_bad_repository_is_reported(target: Path, tmp_path: Path) -> None:
    result = run_setup("--clone-only", OPEN_INSTRUCT_REPO=str(tmp_path / "nowhere"), OPEN_INSTRUCT_DIR=str(target))
    assert result.returncode == 1 and "git clone of" in result.stderr and "failed" in result.stderr
    assert sorted(path.name for path in target.iterdir()) == ["PIN", "README.md"]


def test_the_package_and_the_pin_name_the_same_commit() -> None:
    from flip_reward.integrations.open_instruct import UPSTREAM_COMMIT

    assert UPSTREAM_COMMIT == PIN
