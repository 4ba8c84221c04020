"""The checks run before an open-instruct launch and by its dry run: the data mixes, a running judge, the ``FLIP_*``
settings, the trainer's flags against upstream's source, the policy tokenizer's ``</think>``, and the machine
(Python, GPUs, open-instruct, vLLM, DeepSpeed, the CPUs upstream's placement asks for).

Each check writes one line per finding through ``emit`` (prefixed data:, judge:, settings:, flags:, tokenizer:, env:)
and returns 0 when nothing blocks a run, 1 otherwise. None needs a GPU, and flags are read from the checkout's
source, not imported, so a dry run may be made elsewhere than the run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from flip_reward.core.settings import ENV_VARS, FlipSettings, FlipSettingsError
from flip_reward.judge.urls import redact_url
from flip_reward.launch.data_plan import check_mix
from flip_reward.launch.grpo_flags import ENTRY, grpo_fast_fields, unknown_flags
from flip_reward.serving.probe import JudgeProbeError, check_serves, served_models, vllm_endpoint

CPUS_PER_LEARNER_GPU = 10  # upstream's learner placement bundle (grpo_fast_resource_plan at the pin)
FIXED_ACTOR_CPUS = 3  # its data-preparation actor (2) and actor manager (1)
THINK_CLOSE = "</think>"
Emit = Callable[[str], None]


def find_checkout(environ: Mapping[str, str]) -> Path | None:
    """Upstream open-instruct's source tree as the trainer imports it: OPEN_INSTRUCT_DIR of ``environ`` (which the
    plugin launcher puts on PYTHONPATH), else the ``open_instruct`` package this interpreter imports (installed by
    scripts/setup_open_instruct.sh); None when neither holds grpo_fast.py. A clone that is not installed is not
    used: the trainer could not import it."""
    candidates = [environ.get("OPEN_INSTRUCT_DIR")]
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


def check_flags(arguments: list[str], environ: Mapping[str, str], emit: Emit = print) -> int:
    """Whether every ``--flag`` of ``arguments`` is one upstream grpo_fast.py accepts (at ``find_checkout``)."""
    found = find_checkout(environ)
    if found is None:
        emit(
            "flags: not checked (no open-instruct checkout; run scripts/setup_open_instruct.sh or set "
            "OPEN_INSTRUCT_DIR)"
        )
        return 0
    fields = grpo_fast_fields(found)
    unknown = unknown_flags(arguments, fields)
    used = sum(argument.startswith("--") for argument in arguments)
    if unknown:
        emit(f"flags: ERROR grpo_fast.py at {found} ({checkout_commit(found)}) does not accept: {' '.join(unknown)}")
        return 1
    emit(f"flags: ok, all {used} flags exist in grpo_fast.py at {found} ({checkout_commit(found)})")
    return 0


def check_data(
    spec: str, splits: str, verifier: str | None, evals: str = "", eval_splits: str = "train", emit: Emit = print
) -> int:
    """The training mix ``spec`` and the eval mix ``evals`` as upstream will load them (``data_plan``): an error for
    a dataset upstream would refuse or that selects no row; hub datasets are listed as not checked offline."""
    findings = check_mix(spec, splits, verifier, "DATASETS")
    if evals:
        findings += check_mix(evals, eval_splits, None, "LOCAL_EVALS")
    for finding in findings:
        emit(f"data: {'ERROR ' if finding.error else ''}{finding.text}")
    return 1 if any(finding.error for finding in findings) else 0


def check_judge(base_url: str, model: str | None = None, timeout: float = 5.0, emit: Emit = print) -> int:
    """The judge at ``base_url`` answers (and serves ``model``)."""
    try:
        endpoint = vllm_endpoint(base_url, model or "")
        served = check_serves(endpoint, timeout) if model else served_models(endpoint, timeout)
    except (JudgeProbeError, ValueError) as error:  # ValueError: a URL whose credentials cannot be read
        emit(f"judge: ERROR {error}")
        return 1
    emit(f"judge: ok, {redact_url(base_url)} serves {', '.join(served) or 'a model'}")
    return 0


def check_settings(environ: Mapping[str, str] | None = None, emit: Emit = print) -> int:
    """The ``FLIP_*`` variables as the verifier will read them in every actor: an error names a bad one, a warning
    a name the verifier does not know (a typo is otherwise ignored)."""
    env = os.environ if environ is None else environ
    for name in sorted(key for key in env if key.startswith("FLIP_") and key not in ENV_VARS):
        emit(f"settings: WARNING {name} is not a FLIP setting, so nothing reads it (see docs/reference.md)")
    try:
        settings = FlipSettings.from_env(env)
    except FlipSettingsError as error:
        emit(f"settings: ERROR {error}")
        return 1
    emit(f"settings: ok, {settings}")
    return 0


def check_think_token(model: str, emit: Emit = print) -> int:
    """Warn when the policy tokenizer (read from local files only) makes ``</think>`` a special token: upstream
    decodes responses with ``skip_special_tokens=True``, so the end of the reasoning would vanish from the text the
    verifier gets (and with FLIP_THINK_PREFILLED=1 every answer would be empty)."""
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    except Exception as error:  # noqa: BLE001  (not available offline, or no tokenizer: nothing to check)
        emit(f"tokenizer: not checked ({model} is not available locally: {type(error).__name__})")
        return 0
    ids = tokenizer.encode(THINK_CLOSE, add_special_tokens=False)
    if THINK_CLOSE in tokenizer.decode(ids, skip_special_tokens=True):
        emit(f"tokenizer: ok, {THINK_CLOSE} survives decoding with skip_special_tokens ({model})")
        return 0
    emit(
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


@dataclass(frozen=True)
class Placement:
    """Where upstream puts a run: learner GPUs per node, vLLM engines, their tensor parallel size, and whether vLLM
    shares the learners' GPU (single_gpu_mode)."""

    learners: tuple[int, ...]
    engines: int
    tensor_parallel: int = 1
    single_gpu: bool = False


def cpus_needed(placement: Placement) -> int:
    """The CPUs upstream's placement asks of one node running every learner and engine listed (10 per learner GPU,
    one per vLLM GPU unless they share the learners' GPU, 3 for its fixed actors)."""
    vllm = 0 if placement.single_gpu else placement.engines * placement.tensor_parallel
    return CPUS_PER_LEARNER_GPU * sum(placement.learners) + vllm + FIXED_ACTOR_CPUS


def check_cpus(placement: Placement, emit: Emit = print) -> int:
    """Whether this node has the CPUs upstream's placement will ask for (without them it waits 20 minutes for a
    placement group that never schedules, then fails); with several nodes, the learners of this (the first) one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    learners = placement.learners
    if len(learners) > 1:
        needed, what = CPUS_PER_LEARNER_GPU * learners[0], f"its {learners[0]} learner GPU(s)"
    else:
        needed = cpus_needed(placement)
        what = f"{sum(learners)} learner GPU(s) x {CPUS_PER_LEARNER_GPU}, the vLLM engines and upstream's actors"
    if cpus < needed:
        emit(
            f"env: MISSING {needed} CPUs on this node for {what}; it has {cpus} (upstream's placement would time "
            "out after 20 minutes): fewer learners per node, or a machine with more CPUs"
        )
        return 1
    emit(f"env: {cpus} CPUs, enough for {what} ({needed})")
    return 0


def check_env(placement: Placement | None = None, emit: Emit = print) -> int:
    """Can this machine (this interpreter) run grpo_fast.py? Lists every missing piece, not just the first; with
    ``placement`` its CPUs are checked too."""
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
    emit(f"env: Python {version}, {gpus} CUDA GPU(s)")
    for item in missing:
        emit(f"env: MISSING {item}")
    status = 1 if missing else 0
    if placement is not None and placement.learners:
        status = max(status, check_cpus(placement, emit))
    if not status:
        emit("env: ok, this machine can run grpo_fast.py")
    return status
