"""scripts/setup_open_instruct.sh and flip_reward/launch/setup_open_instruct.py: the pinned checkout (against the
local mirror of upstream, since GitHub is out of reach here; OPEN_INSTRUCT_REPO is the documented override), its
report of what the machine lacks, the uv command and the settings, and the run from an installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from open_instruct_support import MIRROR, REPO, write_standin_checkout

from flip_reward.knobs import SettingsError, resolve
from flip_reward.launch.setup_open_instruct import (
    SetupSettings,
    child_environment,
    default_directory,
    prerequisite_lines,
    source_root,
    uv_sync_command,
)

SCRIPT = REPO / "scripts" / "setup_open_instruct.sh"
PIN = (REPO / "open-instruct" / "PIN").read_text().strip()
NEEDS_MIRROR = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no local mirror of upstream at {MIRROR}")


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


@NEEDS_MIRROR
def test_clone_checks_out_the_pinned_commit_and_keeps_our_files(target: Path) -> None:
    ours = (target / "README.md").read_text()
    result = run_setup("--clone-only", OPEN_INSTRUCT_REPO=str(MIRROR), OPEN_INSTRUCT_DIR=str(target))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"setup_open_instruct: cloning {MIRROR} into {target}",
        f"setup_open_instruct: open-instruct checked out at {PIN} in {target}",
    ]
    assert git(target, "rev-parse", "HEAD").strip() == PIN
    assert (target / "open_instruct" / "grpo_fast.py").is_file()
    assert (target / "README.md").read_text() == ours and (target / "PIN").read_text().strip() == PIN
    assert not (target / "docs").exists()
    assert git(target, "status", "--porcelain") == ""  # our README.md and PIN do not show as changes
    again = run_setup("--clone-only", OPEN_INSTRUCT_REPO=str(MIRROR), OPEN_INSTRUCT_DIR=str(target))
    assert (again.returncode, again.stderr) == (0, f"setup_open_instruct: {target} is already at {PIN}\n")

    parent = git(target, "rev-parse", "HEAD^").strip()
    (target / "open_instruct" / "grpo_fast.py").write_text("# edited\n")
    refused = run_setup(
        "--clone-only", OPEN_INSTRUCT_REPO=str(MIRROR), OPEN_INSTRUCT_DIR=str(target), OPEN_INSTRUCT_COMMIT=parent
    )
    assert (refused.returncode, refused.stderr) == (
        1,
        f"setup_open_instruct: error: {target} has local changes; commit or discard them before moving it to "
        f"{parent}\n",
    )


@NEEDS_MIRROR
def test_install_stops_with_what_is_missing(target: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with git but without uv or nvidia-smi
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(shutil.which("git"))
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    virtual_env = Path(sys.executable).parents[1]
    result = run_setup(
        OPEN_INSTRUCT_REPO=str(MIRROR),
        OPEN_INSTRUCT_DIR=str(target),
        PATH=str(bin_dir),
        VIRTUAL_ENV=str(virtual_env),
        PYTHON=sys.executable,
    )
    assert result.returncode == 1
    version = "{}.{}".format(*sys.version_info[:2])
    python_line = [
        f"MISSING Python 3.12: open-instruct requires ==3.12.*, the active virtualenv {virtual_env} has {version} "
        "(deactivate it to let uv create open-instruct/.venv with Python 3.12)"
    ]
    assert result.stderr.splitlines()[2:] == [
        *(python_line if version != "3.12" else []),
        "MISSING uv: open-instruct installs with uv (pip install uv, or https://docs.astral.sh/uv/)",
        "MISSING a CUDA GPU: nvidia-smi lists none, so this machine cannot train (installing still works, e.g. on a "
        "login node)",
        "setup_open_instruct: error: cannot install open-instruct on this machine (see MISSING above); the checkout "
        f"is ready in {target}",
    ]
    assert git(target, "rev-parse", "HEAD").strip() == PIN  # the checkout is done anyway


def test_a_bad_repository_is_reported(target: Path, tmp_path: Path) -> None:
    result = run_setup("--clone-only", OPEN_INSTRUCT_REPO=str(tmp_path / "nowhere"), OPEN_INSTRUCT_DIR=str(target))
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"setup_open_instruct: error: git clone of {tmp_path / 'nowhere'} failed"
    assert sorted(path.name for path in target.iterdir()) == ["PIN", "README.md"]


def test_the_package_and_the_pin_name_the_same_commit() -> None:
    from flip_reward.integrations.open_instruct import UPSTREAM_COMMIT

    assert UPSTREAM_COMMIT == PIN


@NEEDS_MIRROR
def test_from_an_installed_package_it_clones_into_the_working_directory_and_refuses_to_install(tmp_path: Path) -> None:
    """The package copied outside the checkout, as a wheel installs it: no pyproject.toml or open-instruct/PIN beside
    it, so the checkout goes to ./open-instruct at the package's pin, and installing (which needs the source) stops."""
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "flip_reward", site / "flip_reward", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OPEN_INSTRUCT_")}
    environment.update(PYTHONPATH=str(site), OPEN_INSTRUCT_REPO=str(MIRROR))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "flip_reward.launch.setup_open_instruct", *args]
        return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=work, timeout=300)

    refused = run()
    assert refused.returncode == 1
    assert refused.stderr == (
        "setup_open_instruct: error: installing needs flip-reward's source checkout to install from (this is an "
        "installed package): run scripts/setup_open_instruct.sh in a clone of flip-reward, or use --clone-only or "
        "--check here\n"
    )
    assert not (work / "open-instruct").exists()
    cloned = run("--clone-only")
    assert cloned.returncode == 0, cloned.stderr
    assert git(work / "open-instruct", "rev-parse", "HEAD").strip() == PIN


# --- the pure parts --------------------------------------------------------------------------------------------


def test_settings_defaults_in_this_checkout() -> None:
    settings = resolve(SetupSettings, environ={})
    assert source_root() == REPO
    assert settings == SetupSettings(
        open_instruct_repo="https://github.com/allenai/open-instruct.git",
        open_instruct_dir=str(REPO / "open-instruct"),
        open_instruct_commit=PIN,
        cuda_group="cuda12",
        uv="uv",
    )
    assert default_directory() == str(REPO / "open-instruct")


def test_a_flag_wins_over_the_environment() -> None:
    settings = resolve(SetupSettings, flags={"cuda_group": "cuda13"}, environ={"CUDA_GROUP": "cuda12", "UV": "/x/uv"})
    assert (settings.cuda_group, settings.uv) == ("cuda13", "/x/uv")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CUDA_GROUP": "cuda11"}, "CUDA_GROUP (environment): must be one of cuda12, cuda13, got 'cuda11'"),
        ({"OPEN_INSTRUCT_COMMIT": "e6c3044"}, "the pinned commit must be a full 40-hex SHA, got 'e6c3044'"),
        ({"OPEN_INSTRUCT_COMMIT": PIN.upper()}, f"the pinned commit must be a full 40-hex SHA, got '{PIN.upper()}'"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        resolve(SetupSettings, environ=environ)
    assert str(raised.value) == message


def test_a_bad_setting_is_one_error_line_and_status_1() -> None:
    result = run_setup("--check", CUDA_GROUP="cuda11")
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "setup_open_instruct: error: CUDA_GROUP (environment): must be one of cuda12, cuda13, got 'cuda11'\n",
    )


def test_uv_sync_command() -> None:
    settings = resolve(SetupSettings, environ={"UV": "/opt/uv"})
    assert uv_sync_command(settings, active_virtualenv=False) == ["/opt/uv", "sync", "--frozen"]
    cuda13 = resolve(SetupSettings, environ={"CUDA_GROUP": "cuda13"})
    assert uv_sync_command(cuda13, active_virtualenv=True) == [
        "uv", "sync", "--frozen", "--active", "--no-default-groups", "--group", "dev", "--group", "cuda13",
    ]  # fmt: skip


def test_prerequisite_lines(tmp_path: Path) -> None:
    settings = resolve(SetupSettings, environ={"OPEN_INSTRUCT_DIR": str(tmp_path / "oi")})
    assert prerequisite_lines(settings, None, "none", has_uv=True, has_gpu=True) == (
        [f"NOTE no active virtualenv: uv will create {tmp_path / 'oi'}/.venv with a uv-managed Python 3.12"],
        False,
    )
    assert prerequisite_lines(settings, "/venv", "3.12", has_uv=True, has_gpu=False) == (
        [
            "MISSING a CUDA GPU: nvidia-smi lists none, so this machine cannot train (installing still works, e.g. on "
            "a login node)"
        ],
        False,
    )
    lines, blocked = prerequisite_lines(settings, "/venv", "none", has_uv=False, has_gpu=True)
    assert blocked and lines == [
        "MISSING Python 3.12: open-instruct requires ==3.12.*, the active virtualenv /venv has none (deactivate it to "
        "let uv create open-instruct/.venv with Python 3.12)",
        "MISSING uv: open-instruct installs with uv (pip install uv, or https://docs.astral.sh/uv/)",
    ]


def test_child_environment_drops_only_the_source_checkout(tmp_path: Path) -> None:
    environ = {"PATH": "/bin", "PYTHONPATH": os.pathsep.join([str(REPO), "/other", str(REPO) + "/"])}
    assert child_environment(environ, REPO) == {"PATH": "/bin", "PYTHONPATH": "/other"}
    assert child_environment({"PYTHONPATH": str(REPO)}, REPO) == {}


def test_install_with_a_fake_uv_and_the_standin_upstream(tmp_path: Path) -> None:
    """The install step end to end without the network: a fake `uv` (records its arguments; `sync` makes a .venv whose
    python sees the stand-in upstream of open_instruct_support, a test double, and this checkout), a checkout that is
    a local git repository already at the commit asked for, no virtualenv active."""
    target = tmp_path / "open-instruct"
    target.mkdir()
    (target / "setup.py").write_text("")
    for command in (
        ["init", "--quiet"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        git(target, *command)
    commit = git(target, "rev-parse", "HEAD").strip()
    standin = write_standin_checkout(tmp_path / "standin")
    uv_log = tmp_path / "uv.log"
    uv = tmp_path / "bin" / "uv"
    uv.parent.mkdir()
    uv.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" >> {uv_log}\n'
        "if [[ $1 == sync ]]; then\n"
        "  mkdir -p .venv/bin\n"
        f"  printf '#!/bin/sh\\nPYTHONPATH={standin}:{REPO} exec {sys.executable} \"$@\"\\n' > .venv/bin/python\n"
        "  chmod +x .venv/bin/python\n"
        "fi\n"
    )
    uv.chmod(0o755)
    environment = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    environment.update(PYTHON=sys.executable, UV=str(uv), CUDA_GROUP="cuda13", OPEN_INSTRUCT_COMMIT=commit)
    environment.update(OPEN_INSTRUCT_DIR=str(target))
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    assert uv_log.read_text().splitlines() == [
        "sync --frozen --no-default-groups --group dev --group cuda13",
        f"pip install --python {target}/.venv/bin/python -e {REPO}",
    ]
    ours = [line for line in result.stderr.splitlines() if line.startswith(("setup_open_instruct: ", "NOTE"))]
    assert ours == [
        f"setup_open_instruct: {target} is already at {commit}",
        f"NOTE no active virtualenv: uv will create {target}/.venv with a uv-managed Python 3.12",
        f"setup_open_instruct: installing open-instruct (cuda13) with uv sync into {target}/.venv",
        "setup_open_instruct: installing flip-reward (editable) into the same environment",
        "setup_open_instruct: installed; the general-flip verifier registers with open-instruct",
        "setup_open_instruct: installed, but this machine cannot train (see MISSING above)",
        f"setup_open_instruct: activate the environment with: source {target}/.venv/bin/activate",
    ]
    assert "env: MISSING vLLM (installed with open-instruct's cuda12/cuda13 group)" in result.stderr.splitlines()
