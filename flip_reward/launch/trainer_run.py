"""Running a trainer's command under the run's judge, for every launcher that runs one (verl, slime, SkyRL, NeMo-RL,
AReaL, ROLL; OpenRLHF prints its command and keeps the services up instead): the command and its environment as
printed (``Trainer``), the FLIP_* settings checked before anything starts, the dry run's report, and the real run
(the trainer importable, its data written, the judge's services started, the trainer run as a process group, both
stopped in order on its end, a failure, Ctrl-C, TERM or HUP)."""

from __future__ import annotations

import importlib.util
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flip_reward.core.settings import FlipSettings, FlipSettingsError
from flip_reward.data.writing import OutputError
from flip_reward.exit_codes import EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_RUN_FAILED
from flip_reward.judge.urls import redact_url
from flip_reward.knobs import SettingsError
from flip_reward.launch.preflight import check_judge
from flip_reward.launch.run_judge import HOSTED_VLLM, RunJudge
from flip_reward.launch.run_knobs import RunKnobs
from flip_reward.serving.pid_files import PidFileError
from flip_reward.serving.processes import StartError, Supervisor

Log = Callable[[str], None]


@dataclass(frozen=True)
class Trainer:
    """A trainer's command and what is added to its environment."""

    command: list[str]
    env: dict[str, str]

    def line(self) -> str:
        """The command as printed: ``env VAR=value ... COMMAND``, every URL's credentials hidden."""
        words = ["env", *(f"{name}={value}" for name, value in self.env.items()), *self.command]
        return redact_url(shlex.join(words)) or ""


def gpu_env(settings: RunKnobs) -> dict[str, str]:
    """The trainer's GPUs (``CUDA_VISIBLE_DEVICES``): those of NUM_GPUS that the judge does not hold."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(gpu) for gpu in settings.training_gpus())}


def flip_environment() -> FlipSettings:
    """The FLIP_* settings (the trainers' reward code and flip-reward serve read them); SettingsError for a value the
    reward would refuse, before anything starts."""
    try:
        return FlipSettings.from_env()
    except FlipSettingsError as error:
        raise SettingsError(str(error)) from None


def dry_run_report(headline: str, judge: RunJudge, settings: RunKnobs, lines: Sequence[str], trainer: Trainer) -> int:
    """Print a dry run's plan (``headline``, the judge, ``lines`` about data and files, the trainer's command) and
    ask each running judge of JUDGE_BASE_URL; ``EXIT_JUDGE_DOWN`` when one does not answer, else 0."""
    print(headline)
    print("\n".join([*judge.lines(settings), *lines, f"trainer: {trainer.line()}"]), flush=True)
    return EXIT_JUDGE_DOWN if check_external_judges(settings, print) else 0


def run_trainer(
    requires: str | None,
    prepare: Callable[[], Sequence[str]],
    judge: RunJudge,
    settings: RunKnobs,
    trainer: Trainer,
    log: Log,
) -> int:
    """A real run: ``requires`` (a module) importable by this interpreter, ``prepare`` (the data and files the
    trainer reads, written; the lines it returns said), then ``supervised``; ``EXIT_INVALID_INPUT`` when the trainer
    is not importable, ``EXIT_RUN_FAILED`` when a folder, file or PID file cannot be made (a data file cut short by
    a full disk raises OutputError, exit status 4, said by the CLI)."""
    if requires and importlib.util.find_spec(requires) is None:
        log(f"error: {requires} is not importable by {trainer.command[0]} (install it; --dry-run shows the command)")
        return EXIT_INVALID_INPUT
    try:
        for line in prepare():
            log(line)
        return supervised(judge, settings, trainer, log)
    except OutputError:
        raise
    except (OSError, PidFileError) as error:
        log(f"error: {error}")
        return EXIT_RUN_FAILED


def supervised(judge: RunJudge, settings: RunKnobs, trainer: Trainer, log: Log) -> int:
    """Start the judge's services (when any), run ``trainer`` as a process group, stop it and then the judge on
    every way out (its end, a failure, Ctrl-C, TERM); the trainer's exit status."""
    with Supervisor(judge.pid_file, settings.judge_start_timeout, log) as supervisor:
        status = start_judge(supervisor, judge, settings, log)
        if status:
            return status
        log(f"trainer: {trainer.line()}")
        try:
            return supervisor.run_trainer(trainer.command, {"LITELLM_LOCAL_MODEL_COST_MAP": "True", **trainer.env})
        finally:
            if judge.services:
                log("stopping the judge")


def check_external_judges(settings: RunKnobs, emit: Log) -> int:
    """Ask each running judge of JUDGE_BASE_URL whether it answers and serves JUDGE_MODEL (one line each,
    ``preflight.check_judge``); 1 when one does not."""
    return max((check_judge(url, settings.judge_model, emit=emit) for url in settings.judge_urls), default=0)


def start_judge(supervisor: Supervisor, judge: RunJudge, settings: RunKnobs, log: Log) -> int:
    """Check the running judges of JUDGE_BASE_URL, start the judge's services and say so; 0, or
    ``EXIT_JUDGE_DOWN`` (said in one line) when a running judge does not answer or the services did not start."""
    if check_external_judges(settings, log):
        log("error: the judge is not usable (see above)")
        return EXIT_JUDGE_DOWN
    if not judge.services:
        return 0
    where = f"GPU(s) {settings.judge_gpus}" if settings.starts_judge else "vllm-router"
    log(f"starting the judge {settings.judge_model.removeprefix(HOSTED_VLLM)} on {where} (log: {judge.log_file})")
    try:
        supervisor.start(judge.services)
    except StartError as error:
        log(f"error: the judge did not start: {error}")
        return EXIT_JUDGE_DOWN
    return 0
