"""Checks run before a GRPO launch and by the training scripts' ``--dry-run``.

    python -m flip_reward.integrations.open_instruct.preflight data --datasets "NAME AMOUNT ..." [--splits S]
                                                                    [--evals "NAME COUNT ..."] [--verifier NAME]
    python -m flip_reward.integrations.open_instruct.preflight judge BASE_URL... [--model LITELLM_MODEL]
    python -m flip_reward.integrations.open_instruct.preflight flags [--checkout DIR] -- GRPO_ARGS...
    python -m flip_reward.integrations.open_instruct.preflight settings
    python -m flip_reward.integrations.open_instruct.preflight env [--learners N... --engines E --tp T]
    python -m flip_reward.integrations.open_instruct.preflight holdout FILE --count N --output-dir DIR [--dry-run]
    python -m flip_reward.integrations.open_instruct.preflight dry-run [every option above] -- GRPO_ARGS

Each prints one line per finding (prefixed data:, judge:, flags:, settings:, tokenizer:, env:) and exits 0 when
nothing blocks a run, 1 otherwise; ``dry-run`` runs the data, judge (when URLs are given), settings and flags
checks, warns about the policy tokenizer when it is available locally, then reports ``env`` (GPUs, CPUs) for
information, in one process: the dry run may be made elsewhere than the run. None needs a GPU, and flags are read
from the checkout's source, not imported.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from flip_reward.core.settings import ENV_VARS, FlipSettings, FlipSettingsError
from flip_reward.data.loading import RowError
from flip_reward.data.mixes import DatasetError
from flip_reward.integrations.open_instruct.data_plan import check_mix, hold_out
from flip_reward.integrations.open_instruct.flags import (
    ENTRY,
    grpo_fast_fields,
    unknown_flags,
)
from flip_reward.judge.urls import redact_url
from flip_reward.serving.probe import JudgeProbeError, check_serves, served_models, vllm_endpoint

CPUS_PER_LEARNER_GPU = 10  # upstream's learner placement bundle (grpo_fast_resource_plan at the pin)
FIXED_ACTOR_CPUS = 3  # its data-preparation actor (2) and actor manager (1)
THINK_CLOSE = "</think>"

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


def check_data(spec: str, splits: str, verifier: str | None, evals: str = "", eval_splits: str = "train") -> int:
    """The training mix ``spec`` and the eval mix ``evals`` as upstream will load them (``data_plan``): an error for
    a dataset upstream would refuse or that selects no row; hub datasets are listed as not checked offline."""
    findings = check_mix(spec, splits, verifier, "DATASETS")
    if evals:
        findings += check_mix(evals, eval_splits, None, "LOCAL_EVALS")
    for finding in findings:
        print(f"data: {'ERROR ' if finding.error else ''}{finding.text}")
    return 1 if any(finding.error for finding in findings) else 0


def check_judge(base_url: str, model: str | None = None, timeout: float = 5.0) -> int:
    try:
        endpoint = vllm_endpoint(base_url, model or "")
        served = check_serves(endpoint, timeout) if model else served_models(endpoint, timeout)
    except (JudgeProbeError, ValueError) as error:  # ValueError: a URL whose credentials cannot be read
        print(f"judge: ERROR {error}")
        return 1
    print(f"judge: ok, {redact_url(base_url)} serves {', '.join(served) or 'a model'}")
    return 0


def check_settings(environ: Mapping[str, str] | None = None) -> int:
    """The ``FLIP_*`` variables as the verifier will read them in every actor: an error names a bad one, a warning
    a name the verifier does not know (a typo is otherwise ignored)."""
    env = os.environ if environ is None else environ
    for name in sorted(key for key in env if key.startswith("FLIP_") and key not in ENV_VARS):
        print(f"settings: WARNING {name} is not a FLIP setting, so nothing reads it (see docs/reference.md)")
    try:
        settings = FlipSettings.from_env(env)
    except FlipSettingsError as error:
        print(f"settings: ERROR {error}")
        return 1
    print(f"settings: ok, {settings}")
    return 0


def check_think_token(model: str) -> int:
    """Warn when the policy tokenizer (read from local files only) makes ``</think>`` a special token: upstream
    decodes responses with ``skip_special_tokens=True``, so the end of the reasoning would vanish from the text the
    verifier gets (and with FLIP_THINK_PREFILLED=1 every answer would be empty)."""
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    except Exception as error:  # noqa: BLE001  (not available offline, or no tokenizer: nothing to check)
        print(f"tokenizer: not checked ({model} is not available locally: {type(error).__name__})")
        return 0
    ids = tokenizer.encode(THINK_CLOSE, add_special_tokens=False)
    if THINK_CLOSE in tokenizer.decode(ids, skip_special_tokens=True):
        print(f"tokenizer: ok, {THINK_CLOSE} survives decoding with skip_special_tokens ({model})")
        return 0
    print(
        f"tokenizer: WARNING {model} makes {THINK_CLOSE} a special token, which upstream's decoding "
        "(skip_special_tokens=True) strips: the judge cannot tell the reasoning from the answer, and with "
        "FLIP_THINK_PREFILLED=1 every answer would be empty; use a chat template/tokenizer where it is plain text"
    )
    return 0


def gpu_count() -> int:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    result = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False)
    return sum(line.startswith("GPU") for line in result.stdout.splitlines()) if result.returncode == 0 else 0


def cpus_needed(learners: list[int], engines: int, tensor_parallel: int, single_gpu: bool) -> int:
    """The CPUs upstream's placement asks of one node running every learner and engine listed (10 per learner GPU,
    one per vLLM GPU unless they share the learners' GPU, 3 for its fixed actors)."""
    vllm = 0 if single_gpu else engines * tensor_parallel
    return CPUS_PER_LEARNER_GPU * sum(learners) + vllm + FIXED_ACTOR_CPUS


def check_cpus(learners: list[int], engines: int, tensor_parallel: int, single_gpu: bool) -> int:
    """Whether this node has the CPUs upstream's placement will ask for (without them it waits 20 minutes for a
    placement group that never schedules, then fails); with several nodes, the learners of this (the first) one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    if len(learners) > 1:
        needed, what = CPUS_PER_LEARNER_GPU * learners[0], f"its {learners[0]} learner GPU(s)"
    else:
        needed = cpus_needed(learners, engines, tensor_parallel, single_gpu)
        what = f"{sum(learners)} learner GPU(s) x {CPUS_PER_LEARNER_GPU}, the vLLM engines and upstream's actors"
    if cpus < needed:
        print(
            f"env: MISSING {needed} CPUs on this node for {what}; it has {cpus} (upstream's placement would time "
            "out after 20 minutes): fewer learners per node, or a machine with more CPUs"
        )
        return 1
    print(f"env: {cpus} CPUs, enough for {what} ({needed})")
    return 0


def check_env(placement: argparse.Namespace | None = None) -> int:
    """Can this machine run grpo_fast.py? Lists every missing piece, not just the first; with ``placement``
    (learners, engines, ...) its CPUs are checked too."""
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
    status = 1 if missing else 0
    if placement is not None and placement.learners:
        status = max(status, check_cpus(placement.learners, placement.engines, placement.tp, placement.single_gpu))
    if not status:
        print("env: ok, this machine can run grpo_fast.py")
    return status


def print_holdout(source: str, count: int, output_dir: Path, write: bool) -> int:
    """``TRAIN_FILE EVAL_FILE COUNT`` of ``hold_out`` on one line (for the scripts), or one error line."""
    try:
        plan = hold_out(source, count, output_dir, write)
    except (DatasetError, RowError, OSError, ValueError) as error:
        print(f"data: ERROR {error}", file=sys.stderr)
        return 1
    print(f"{plan.train} {plan.eval} {plan.count}")
    return 0


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verifier", help="the verifier the run is about (warns on files without it)")
    parser.add_argument("--datasets", default="", help="the training mix, 'NAME AMOUNT [NAME AMOUNT ...]'")
    parser.add_argument("--splits", default="train", help="its split, or one per dataset")
    parser.add_argument("--evals", default="", help="the eval mix, 'NAME COUNT [...]'")
    parser.add_argument("--eval-splits", default="train")


def add_placement_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--learners", type=int, nargs="*", default=[], help="learner GPUs per node")
    parser.add_argument("--engines", type=int, default=0, help="vLLM engines")
    parser.add_argument("--tp", type=int, default=1, help="vLLM tensor parallel size")
    parser.add_argument("--single-gpu", action="store_true", help="vLLM shares the learners' GPU")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flip_reward.integrations.open_instruct.preflight", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="check the dataset mixes as upstream will load them")
    judge = commands.add_parser("judge", help="check that judge servers answer and serve the model")
    flags = commands.add_parser("flags", help="check grpo_fast.py flags against an open-instruct checkout")
    commands.add_parser("settings", help="check the FLIP_* variables")
    holdout = commands.add_parser("holdout", help="split a local training file into train and held-out eval rows")
    holdout.add_argument("source")
    holdout.add_argument("--count", type=int, required=True, help="eval rows wanted (at most a tenth are held out)")
    holdout.add_argument("--output-dir", required=True, type=Path)
    holdout.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    env = commands.add_parser("env", help="check Python, CUDA, open-instruct, vLLM, DeepSpeed and CPUs")
    dry_run = commands.add_parser("dry-run", help="every check; the environment is reported, not required")
    for command in (data, dry_run):
        add_data_arguments(command)
    for command in (env, dry_run):
        add_placement_arguments(command)
    for command in (judge, dry_run):
        command.add_argument("--model", help="litellm model string the trainer will request")
    judge.add_argument("base_urls", nargs="+")
    dry_run.add_argument("--judge", action="append", default=[], help="a judge base URL (repeatable)")
    for command in (env, dry_run):
        command.add_argument("--policy", help="policy model: its tokenizer is checked when it is available locally")
    for command in (flags, dry_run):
        command.add_argument("--checkout", help="open-instruct checkout (default: found automatically)")
        command.add_argument("arguments", nargs=argparse.REMAINDER, help="-- then the grpo_fast.py arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    arguments = getattr(args, "arguments", [])
    arguments = arguments[1:] if arguments[:1] == ["--"] else arguments
    if args.command == "data":
        return check_data(args.datasets, args.splits, args.verifier, args.evals, args.eval_splits)
    if args.command == "judge":
        return max(check_judge(url, args.model) for url in args.base_urls)
    if args.command == "flags":
        return check_flags(arguments, args.checkout)
    if args.command == "settings":
        return check_settings()
    if args.command == "env":
        if args.policy:
            check_think_token(args.policy)
        return check_env(args)
    if args.command == "holdout":
        return print_holdout(args.source, args.count, args.output_dir, not args.dry_run)
    status = check_data(args.datasets, args.splits, args.verifier, args.evals, args.eval_splits)
    for url in args.judge:
        status = max(status, check_judge(url, args.model))
    status = max(status, check_settings(), check_flags(arguments, args.checkout))
    if args.policy:
        check_think_token(args.policy)
    check_env(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
