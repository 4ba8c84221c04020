"""Checks run before a GRPO launch and by the training scripts' ``--dry-run``.

    python -m flip_reward.integrations.open_instruct.preflight data [--verifier NAME] DATASET...
    python -m flip_reward.integrations.open_instruct.preflight judge BASE_URL... [--model LITELLM_MODEL]
    python -m flip_reward.integrations.open_instruct.preflight flags [--checkout DIR] -- GRPO_ARGS...
    python -m flip_reward.integrations.open_instruct.preflight env
    python -m flip_reward.integrations.open_instruct.preflight dry-run [data, judge and flags options] -- GRPO_ARGS

Each prints one line per finding (prefixed data:, judge:, flags:, env:) and exits 0 when nothing blocks a run, 1
otherwise; ``dry-run`` runs data, judge (when URLs are given) and flags checks, then reports ``env`` for
information, in one process. None needs a GPU, and flags are read from the checkout's source, not imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from flip_reward.integrations.open_instruct.flags import (
    ENTRY,
    grpo_fast_fields,
    unknown_flags,
)

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")

REPO_CHECKOUT = Path(__file__).resolve().parents[3] / "open-instruct"


def find_checkout(explicit: str | None = None) -> Path | None:
    """An open-instruct source tree: ``explicit``, ``$OPEN_INSTRUCT_DIR``, this repo's ``open-instruct/``
    checkout, or the installed ``open_instruct`` package's parent directory."""
    candidates = [explicit, os.environ.get("OPEN_INSTRUCT_DIR"), str(REPO_CHECKOUT)]
    try:
        spec = importlib.util.find_spec("open_instruct")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        candidates.append(str(Path(spec.origin).parents[1]))
    for candidate in candidates:
        if candidate and (Path(candidate) / ENTRY).is_file():
            return Path(candidate)
    return None


def checkout_commit(checkout: Path) -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown commit"
    result = subprocess.run(
        [git, "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown commit"


def check_flags(arguments: list[str], checkout: str | None = None) -> int:
    found = find_checkout(checkout)
    if found is None:
        print(
            "flags: not checked (no open-instruct checkout; run scripts/setup_open_instruct.sh or set "
            "OPEN_INSTRUCT_DIR)"
        )
        return 0
    fields = grpo_fast_fields(found)
    unknown = unknown_flags(arguments, fields)
    used = sum(argument.startswith("--") for argument in arguments)
    if unknown:
        print(f"flags: ERROR grpo_fast.py at {found} ({checkout_commit(found)}) does not accept: {' '.join(unknown)}")
        return 1
    print(f"flags: ok, all {used} flags exist in grpo_fast.py at {found} ({checkout_commit(found)})")
    return 0


def served_name(model: str) -> str:
    """The model name the server knows for a litellm model string (provider prefix removed)."""
    for prefix in ("hosted_vllm/", "openai/"):
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def check_data(names: list[str], verifier: str | None = None) -> int:
    """``flip-reward data check`` for each local dataset file; hub names are listed as not checked offline. With
    ``verifier``, warns about a file with no row for it (rows pick their verifier)."""
    from flip_reward.cli.common import report_errors
    from flip_reward.data.loading import RowError, load_rows
    from flip_reward.data.rlvr import check_rows, describe_counts

    status = 0
    for name in dict.fromkeys(names):
        path = Path(name)
        if not path.is_file():
            if name.endswith(LOCAL_SUFFIXES) or ("/" in name and Path(name.split("/")[0]).exists()):
                print(f"data: ERROR {name}: local file not found")
                status = 1
            else:
                print(
                    f"data: {name}: Hugging Face dataset, not checked offline "
                    f"(flip-reward data check {name} checks it online)"
                )
            continue
        try:
            rows = load_rows(name)
        except (RowError, ValueError) as error:
            print(f"data: ERROR {name}: {error}")
            status = 1
            continue
        verifiers, invalid = check_rows(rows)
        if invalid or not rows:
            summary = f"data: ERROR {name}: {len(invalid)} of {len(rows)} rows invalid (flip-reward data check {name})"
            report_errors(invalid, summary, prefix=f"data: ERROR {name}: ", file=sys.stdout)
            status = 1
            continue
        print(f"data: {name}: {len(rows)} rows ok; verifiers: {describe_counts(verifiers)}")
        if verifier and verifier not in verifiers:
            print(
                f"data: WARNING {name} has no {verifier} rows; rows pick their verifier, so they are not rewarded "
                f"by {verifier}: use the matching file or pass --remap_verifier THEIR_VERIFIER={verifier}"
            )
    return status


def check_judge(base_url: str, model: str | None = None, timeout: float = 5.0) -> int:
    url = base_url.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"judge: ERROR {url} is not reachable ({error})")
        return 1
    served = [entry.get("id") for entry in body.get("data", []) if isinstance(entry, dict)]
    if model and served_name(model) not in served:
        print(f"judge: ERROR {base_url} serves {served}, not {served_name(model)!r} (from {model})")
        return 1
    print(f"judge: ok, {base_url} serves {', '.join(map(str, served)) or 'a model'}")
    return 0


def gpu_count() -> int:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    result = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False)
    return sum(line.startswith("GPU") for line in result.stdout.splitlines()) if result.returncode == 0 else 0


def check_env() -> int:
    """Can this machine run grpo_fast.py? Lists every missing piece, not just the first."""
    missing = []
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] != (3, 12):
        missing.append(f"Python 3.12 (open-instruct requires ==3.12.*; this is {version} at {sys.executable})")
    gpus = gpu_count()
    if gpus == 0:
        missing.append("a CUDA GPU (nvidia-smi lists none)")
    for module, why in (
        ("open_instruct", "upstream open-instruct (scripts/setup_open_instruct.sh)"),
        ("vllm", "vLLM (installed with open-instruct's cuda12/cuda13 group)"),
        ("deepspeed", "DeepSpeed (installed with open-instruct)"),
    ):
        try:
            present = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            present = False
        if not present:
            missing.append(why)
    print(f"env: Python {version}, {gpus} CUDA GPU(s)")
    for item in missing:
        print(f"env: MISSING {item}")
    if not missing:
        print("env: ok, this machine can run grpo_fast.py")
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flip_reward.integrations.open_instruct.preflight", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="check local RLVR dataset files")
    judge = commands.add_parser("judge", help="check that judge servers answer and serve the model")
    flags = commands.add_parser("flags", help="check grpo_fast.py flags against an open-instruct checkout")
    commands.add_parser("env", help="check Python, CUDA, open-instruct, vLLM and DeepSpeed")
    dry_run = commands.add_parser("dry-run", help="data, judge and flags checks, then the environment report")
    for command in (data, dry_run):
        command.add_argument("--verifier", help="the verifier the run is about (warns on files without it)")
    data.add_argument("datasets", nargs="+")
    dry_run.add_argument("--data", action="append", default=[], help="a dataset name or file (repeatable)")
    for command in (judge, dry_run):
        command.add_argument("--model", help="litellm model string the trainer will request")
    judge.add_argument("base_urls", nargs="+")
    dry_run.add_argument("--judge", action="append", default=[], help="a judge base URL (repeatable)")
    for command in (flags, dry_run):
        command.add_argument("--checkout", help="open-instruct checkout (default: found automatically)")
        command.add_argument("arguments", nargs=argparse.REMAINDER, help="-- then the grpo_fast.py arguments")
    args = parser.parse_args(argv)
    arguments = getattr(args, "arguments", [])
    arguments = arguments[1:] if arguments[:1] == ["--"] else arguments
    if args.command == "data":
        return check_data(args.datasets, args.verifier)
    if args.command == "judge":
        return max(check_judge(url, args.model) for url in args.base_urls)
    if args.command == "flags":
        return check_flags(arguments, args.checkout)
    if args.command == "env":
        return check_env()
    status = check_data(args.data, args.verifier)
    for url in args.judge:
        status = max(status, check_judge(url, args.model))
    status = max(status, check_flags(arguments, args.checkout))
    check_env()
    return status


if __name__ == "__main__":
    sys.exit(main())
