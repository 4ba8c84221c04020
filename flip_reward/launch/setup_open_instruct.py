"""Setting up upstream open-instruct for training: the pinned checkout, the report of what this machine lacks, and the
install with ``uv sync`` plus this package (``scripts/setup_open_instruct.sh`` runs this module).

``python -m flip_reward.launch.setup_open_instruct [--clone-only | --check] [KNOB FLAGS]``

1. Checks out OPEN_INSTRUCT_REPO at the pinned commit into OPEN_INSTRUCT_DIR (a blobless clone with a sparse
   checkout: upstream's docs/ and README.md are left out, so this repo's open-instruct/README.md and open-instruct/PIN
   stay; the checkout is git-ignored and never committed). Re-running it moves an existing checkout to the pinned
   commit (it refuses when the checkout has local changes).
2. Says what this machine lacks for training (Python 3.12, uv, a CUDA GPU) and, when Python and uv are there,
   installs open-instruct the way upstream does (``uv sync``, with its cuda12 or cuda13 group) into the active
   virtualenv (or OPEN_INSTRUCT_DIR/.venv, with a uv-managed Python 3.12, when none is active), then this package
   (editable, from its source checkout) into the same environment, and checks that the general-flip verifier
   registers.

Outside a flip-reward source checkout (an installed wheel) OPEN_INSTRUCT_DIR defaults to ./open-instruct, the commit
to the package's pin, and only --clone-only and --check work: the install step needs the source to install from.
The module uses the standard library only, so any Python 3.10+ runs it before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flip_reward.knobs import SettingsError, add_flags, knob, resolve

NAME = "setup_open_instruct"
DEFAULT_REPO_URL = "https://github.com/allenai/open-instruct.git"
CUDA_GROUPS = ("cuda12", "cuda13")
SPARSE_PATTERNS = ("/*", "!/README.md", "!/docs/")  # upstream's README.md and docs/ stay out of the checkout
EXCLUDED = "/PIN\n/.clone.*\n/.venv/\n"  # ours, a clone in progress, uv's environment: never shown as untracked
REGISTER = "import flip_reward.integrations.open_instruct as p; p.register()"
CHECK_ENV = "import sys; from flip_reward.launch.preflight import check_env; sys.exit(check_env())"
EXIT_STATUS = """\
exit status: 0 installed (or checked out, with --clone-only; nothing missing, with --check), 1 missing prerequisites
or a failed step (or an install asked outside a source checkout), 2 a usage error."""
Log = Callable[[str], None]


class SetupError(RuntimeError):
    """A step that failed: its message is the one error line, exit status 1."""


def source_root() -> Path | None:
    """The flip-reward source checkout this module belongs to (pyproject.toml and open-instruct/PIN beside the
    package), None when it runs from an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "open-instruct" / "PIN").is_file() else None


def default_directory(_: object = None) -> str:
    root = source_root()
    return str(root / "open-instruct" if root else Path.cwd() / "open-instruct")


def pinned_commit(_: object = None) -> str:
    """open-instruct/PIN in a source checkout, else the installed package's pin (the same value; a test keeps them
    equal). Imported only here: the integration imports upstream when it is importable."""
    root = source_root()
    if root is not None:
        return (root / "open-instruct" / "PIN").read_text(encoding="utf-8").strip()
    from flip_reward.integrations.open_instruct import UPSTREAM_COMMIT

    return UPSTREAM_COMMIT


@dataclass(frozen=True)
class SetupSettings:
    """Where upstream comes from and goes, and how it is installed."""

    open_instruct_repo: str = knob(
        "OPEN_INSTRUCT_REPO", DEFAULT_REPO_URL, "repository to clone (a local path or mirror works)"
    )
    open_instruct_dir: str = knob(
        "OPEN_INSTRUCT_DIR", default_directory, "the checkout",
        shown="open-instruct/ of the source checkout, or ./open-instruct from an installed package",
    )  # fmt: skip
    open_instruct_commit: str = knob(
        "OPEN_INSTRUCT_COMMIT", pinned_commit, "commit to check out", shown="open-instruct/PIN"
    )
    cuda_group: str = knob("CUDA_GROUP", "cuda12", "open-instruct's uv dependency group", choices=CUDA_GROUPS)
    uv: str = knob("UV", "uv", "the uv executable")

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{40}", self.open_instruct_commit):
            raise SettingsError(f"the pinned commit must be a full 40-hex SHA, got '{self.open_instruct_commit}'")

    @property
    def directory(self) -> Path:
        return Path(self.open_instruct_dir).absolute()


def git(directory: Path, *args: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """``git -C directory ARGS``, its stdout captured; stderr dropped when ``quiet``, else passed on."""
    return subprocess.run(
        ["git", "-C", str(directory), *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL if quiet else None, text=True, check=False,
    )  # fmt: skip


def must(result: subprocess.CompletedProcess[str], message: str) -> None:
    """SetupError(``message``) when the step of ``result`` failed."""
    if result.returncode != 0:
        raise SetupError(message)


def checkout(settings: SetupSettings, log: Log) -> None:
    """Point an existing or new checkout in the settings' directory at their commit, leaving this repo's README.md and
    PIN in place."""
    if shutil.which("git") is None:
        raise SetupError("git is not installed")
    directory, commit = settings.directory, settings.open_instruct_commit
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / ".git").is_dir():
        clone(settings.open_instruct_repo, directory, log)
    else:
        if git(directory, "rev-parse", "HEAD", quiet=True).stdout.strip() == commit:
            log(f"{directory} is already at {commit}")
            return
        if git(directory, "status", "--porcelain", "--untracked-files=no").stdout.strip():
            raise SetupError(f"{directory} has local changes; commit or discard them before moving it to {commit}")
    if git(directory, "cat-file", "-e", f"{commit}^{{commit}}", quiet=True).returncode != 0:
        log(f"fetching {commit}")
        fetched = git(directory, "fetch", "--quiet", "origin", commit, quiet=True).returncode == 0
        if not fetched:
            must(
                git(directory, "fetch", "--quiet", "origin"),
                f"cannot fetch {commit} from {settings.open_instruct_repo}",
            )
    must(
        git(directory, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit),
        f"cannot check out {commit} in {directory}",
    )
    # Upstream tracks a README.md too: keep ours, and keep git from touching or reporting it.
    git(directory, "update-index", "--skip-worktree", "README.md", quiet=True)
    if git(directory, "rev-parse", "HEAD").stdout.strip() != commit:
        raise SetupError(f"{directory} is not at {commit} after checkout")
    log(f"open-instruct checked out at {commit} in {directory}")


def clone(url: str, directory: Path, log: Log) -> None:
    """A blobless clone of ``url`` without a checkout, its .git moved into ``directory``, with the sparse patterns."""
    staging = Path(tempfile.mkdtemp(prefix=".clone.", dir=directory))
    log(f"cloning {url} into {directory}")
    # --filter=blob:none fetches file contents only for the sparse checkout (git ignores it for local paths).
    result = subprocess.run(
        ["git", "clone", "--quiet", "--no-checkout", "--filter=blob:none", url, str(staging)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )  # fmt: skip
    sys.stderr.writelines(line for line in result.stdout.splitlines(True) if "filter is ignored" not in line)
    if not (staging / ".git").is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        raise SetupError(f"git clone of {url} failed")
    (staging / ".git").rename(directory / ".git")
    staging.rmdir()
    must(git(directory, "sparse-checkout", "set", "--no-cone", *SPARSE_PATTERNS), "git sparse-checkout failed")
    # Our README.md sits where upstream's would: keep git from clearing its skip-worktree bit.
    must(git(directory, "config", "sparse.expectFilesOutsideOfPatterns", "true"), "git config failed")
    with (directory / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
        exclude.write(EXCLUDED)


def environment_dir(settings: SetupSettings, environ: Mapping[str, str]) -> Path:
    """The environment to install into: the active virtualenv, else OPEN_INSTRUCT_DIR/.venv (uv creates it)."""
    return Path(environ["VIRTUAL_ENV"]) if environ.get("VIRTUAL_ENV") else settings.directory / ".venv"


def prerequisite_lines(
    settings: SetupSettings, virtual_env: str | None, python_version: str, has_uv: bool, has_gpu: bool
) -> tuple[list[str], bool]:
    """One line per missing prerequisite (``MISSING ...``; ``NOTE ...`` for what uv will do), and whether installing
    is impossible. ``python_version`` is the active virtualenv's ("none" when it does not run)."""
    lines, blocked = [], False
    if not virtual_env:
        lines.append(
            f"NOTE no active virtualenv: uv will create {settings.directory}/.venv with a uv-managed Python 3.12"
        )
    elif python_version != "3.12":
        lines.append(
            f"MISSING Python 3.12: open-instruct requires ==3.12.*, the active virtualenv {virtual_env} has "
            f"{python_version} (deactivate it to let uv create open-instruct/.venv with Python 3.12)"
        )
        blocked = True
    if not has_uv:
        lines.append("MISSING uv: open-instruct installs with uv (pip install uv, or https://docs.astral.sh/uv/)")
        blocked = True
    if not has_gpu:
        lines.append(
            "MISSING a CUDA GPU: nvidia-smi lists none, so this machine cannot train (installing still works, e.g. "
            "on a login node)"
        )
    return lines, blocked


def prerequisites(settings: SetupSettings, environ: Mapping[str, str]) -> tuple[list[str], bool]:
    """:func:`prerequisite_lines` for this machine."""
    virtual_env = environ.get("VIRTUAL_ENV") or None
    version = "none"
    if virtual_env:
        probe = [
            str(environment_dir(settings, environ) / "bin" / "python"),
            "-c",
            "import sys; print('%d.%d' % sys.version_info[:2])",
        ]
        try:
            result = subprocess.run(probe, capture_output=True, text=True, check=False)
            version = result.stdout.strip() if result.returncode == 0 else "none"
        except OSError:
            pass
    return prerequisite_lines(settings, virtual_env, version, shutil.which(settings.uv) is not None, gpu_listed())


def gpu_listed() -> bool:
    """Whether ``nvidia-smi -L`` lists a GPU."""
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return False
    return any(line.startswith("GPU") for line in listing.splitlines())


def uv_sync_command(settings: SetupSettings, active_virtualenv: bool) -> list[str]:
    """Upstream's install: ``uv sync --frozen`` into the active virtualenv (``--active``) or the checkout's .venv,
    with the cuda13 group instead of the default groups when asked."""
    command = [settings.uv, "sync", "--frozen"] + (["--active"] if active_virtualenv else [])
    if settings.cuda_group == "cuda13":
        command += ["--no-default-groups", "--group", "dev", "--group", "cuda13"]
    return command


def child_environment(environ: Mapping[str, str], root: Path) -> dict[str, str]:
    """``environ`` without ``root`` on PYTHONPATH (scripts/setup_open_instruct.sh puts it there to run this module),
    so the checks in the new environment import flip_reward from what was installed there."""
    child = dict(environ)
    kept = [entry for entry in child.get("PYTHONPATH", "").split(os.pathsep) if entry and Path(entry).resolve() != root]
    child.pop("PYTHONPATH", None)
    if kept:
        child["PYTHONPATH"] = os.pathsep.join(kept)
    return child


def install(settings: SetupSettings, root: Path, environ: Mapping[str, str], log: Log) -> None:
    """``uv sync`` in the checkout, this package (editable) into the same environment, and the verifier's check."""
    active = bool(environ.get("VIRTUAL_ENV"))
    target = environment_dir(settings, environ)
    python = str(target / "bin" / "python")
    child = child_environment(environ, root)
    log(f"installing open-instruct ({settings.cuda_group}) with uv sync into {target}")
    synced = subprocess.run(uv_sync_command(settings, active), cwd=settings.directory, env=child, check=False)
    must(synced, f"uv sync failed in {settings.directory}")
    log("installing flip-reward (editable) into the same environment")
    installed = subprocess.run(
        [settings.uv, "pip", "install", "--python", python, "-e", str(root)], env=child, check=False
    )
    must(installed, f"installing {root} failed")
    registered = subprocess.run([python, "-c", REGISTER], env=child, check=False)
    must(registered, "the general-flip verifier does not register with the installed open-instruct")
    log("installed; the general-flip verifier registers with open-instruct")
    if subprocess.run([python, "-c", CHECK_ENV], stdout=sys.stderr.fileno(), env=child, check=False).returncode:
        log("installed, but this machine cannot train (see MISSING above)")
    if not active:
        log(f"activate the environment with: source {target}/bin/activate")


def check(settings: SetupSettings, environ: Mapping[str, str]) -> int:
    """--check: what is missing, on stdout; 0 when nothing is."""
    lines, _ = prerequisites(settings, environ)
    for line in lines:
        print(line)
    if any(line.startswith("MISSING") for line in lines):
        return 1
    print("ready: Python 3.12, uv and a CUDA GPU are there")
    return 0


def setup(mode: str, settings: SetupSettings, environ: Mapping[str, str], log: Log) -> int:
    """Check out, then (mode ``install``) report and install; SetupError for a failed step."""
    root = source_root()
    if mode == "install" and root is None:
        raise SetupError(
            "installing needs flip-reward's source checkout to install from (this is an installed package): run "
            "scripts/setup_open_instruct.sh in a clone of flip-reward, or use --clone-only or --check here"
        )
    checkout(settings, log)
    if mode == "clone":
        return 0
    lines, blocked = prerequisites(settings, environ)
    sys.stderr.writelines(line + "\n" for line in lines)
    if blocked:
        raise SetupError(
            f"cannot install open-instruct on this machine (see MISSING above); the checkout is ready in "
            f"{settings.directory}"
        )
    install(settings, root, environ, log)
    return 0


def log_line(message: str) -> None:
    print(f"{NAME}: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=NAME, description=__doc__, epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--clone-only", dest="mode", action="store_const", const="clone", help="stop after step 1")
    modes.add_argument(
        "--check",
        dest="mode",
        action="store_const",
        const="check",
        help="only report what is missing (exit 1 if anything is)",
    )
    add_flags(parser, SetupSettings)
    args = parser.parse_args(argv)
    mode = args.mode or "install"
    try:
        settings = resolve(SetupSettings, flags=vars(args), environ=os.environ)
        if mode == "check":
            return check(settings, os.environ)
        return setup(mode, settings, os.environ, log_line)
    except (SettingsError, SetupError) as error:
        log_line(f"error: {error}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
