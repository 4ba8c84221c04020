"""``flip-reward launch open-instruct``: GRPO with upstream open-instruct's grpo_fast.py and a judge started (or
routed) here, or, on a machine without CUDA or open-instruct, the local TRL backend.

``launch`` checks the ``FLIP_*`` settings (for every backend), picks the backend (said in one line), then either
prints the plan and runs every check (``--dry-run``: always the open-instruct plan, whatever a real run here would
pick), or runs: the checks, the judge (or vllm-router) through a ``Supervisor``, a check that it answers at the
address the trainer uses, then grpo_fast as a supervised process group; everything is stopped in order on success,
failure, Ctrl-C and TERM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from flip_reward.core.settings import ENV_VARS, FlipSettings, FlipSettingsError
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_JUDGE_DOWN, EXIT_RUN_FAILED
from flip_reward.judge.urls import redact_url
from flip_reward.knobs import SettingsError, convert, declared, resolve
from flip_reward.launch import preflight
from flip_reward.launch.data_plan import hold_out
from flip_reward.launch.grpo_fast import GrpoPlan, plan
from flip_reward.launch.grpo_settings import LAUNCHER_MODULE, GrpoChoice, GrpoFastSettings
from flip_reward.launch.local import LocalSettings, pick_backend, run_local
from flip_reward.serving.pid_files import PidFileError
from flip_reward.serving.processes import StartError, Supervisor
from flip_reward.training.config import TrainSettings


def log(message: str) -> None:
    print(f"grpo: {message}", file=sys.stderr, flush=True)


def check_flip_settings(environ: Mapping[str, str]) -> FlipSettings:
    """The FLIP_* variables as the verifier will read them; SettingsError naming a bad one (for every backend)."""
    try:
        return FlipSettings.from_env({name: value for name, value in environ.items() if name.startswith("FLIP_")})
    except FlipSettingsError as error:
        raise SettingsError(str(error)) from None


def launch(
    flags: Mapping[str, object],
    trainer_args: Sequence[str],
    dry_run: bool = False,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run (or, with ``dry_run``, show and check) the GRPO run of knob ``flags`` (field name -> value or None;
    ``verifier`` among them) and ``trainer_args`` for grpo_fast.py; the exit status (0, 1, 2 for invalid settings,
    3 for a judge that does not answer, 130 interrupted)."""
    environ = dict(os.environ if environ is None else environ)
    try:
        check_flip_settings(environ)
        choice = resolve(GrpoChoice, flags, environ)
        preset = choice.read_preset()  # a typo is refused whatever the backend
        if choice.backend == "auto":
            backend, why = pick_backend(environ)
        else:
            backend, why = choice.backend, f"grpo: backend {choice.backend} (BACKEND={choice.backend})"
        if backend == "local" and not (dry_run and choice.backend == "auto"):
            say(why)
            return hand_over(choice, flags, trainer_args, dry_run, environ)
        if backend == "local":  # a dry run shows the plan asked for, and says what a real run here would do
            why = why.replace("grpo: backend local", "grpo: a real run here would use backend local", 1)
            say(f"{why}; this dry run shows the open-instruct plan")
        else:
            say(why)
        settings = GrpoFastSettings.from_choice(choice, preset, flags, environ)
        run_plan = plan(settings, trainer_args, environ, dry_run)
    except SettingsError as error:
        log(f"error: {error}")
        return EXIT_INVALID_INPUT
    if dry_run:
        return show(run_plan, environ)
    return run(run_plan, environ)


# --- the dry run -------------------------------------------------------------------------------------------------


def show(run_plan: GrpoPlan, environ: Mapping[str, str], emit: preflight.Emit = print) -> int:
    """The dry run: the plan's commands, the eval note, then every check (the machine's is reported, not
    required: the dry run may be made elsewhere than the run); EXIT_INVALID_INPUT when the data, the FLIP settings
    or the flags would stop a run, else EXIT_JUDGE_DOWN when a running judge does not answer, else 0."""
    s = run_plan.settings
    emit(
        f"grpo: preset {s.preset} ({s.preset_origin}); verifier {s.verifier}; {sum(s.learners)} learner(s), "
        f"{s.engines} vLLM engine(s)"
    )
    for line in run_plan.judge.lines(s):
        emit(line)
    emit(f"trainer: {run_plan.shown_trainer()}")
    if run_plan.eval_note:
        emit(run_plan.eval_note)
    invalid = check_data(run_plan, emit)
    if s.starts_judge:
        emit("judge: not checked (started by the launcher on a real run)")
    judge_down = 0
    for url in s.judge_urls:
        judge_down |= preflight.check_judge(url, s.judge_model, emit=emit)
    invalid |= check_settings(run_plan, environ, emit)
    invalid |= preflight.check_flags(list(run_plan.grpo_args), environ, emit=emit)
    preflight.check_think_token(s.model_name_or_path, emit=emit)
    preflight.check_env(run_plan.placement, emit=emit)
    return EXIT_INVALID_INPUT if invalid else EXIT_JUDGE_DOWN if judge_down else 0


def check_data(run_plan: GrpoPlan, emit: preflight.Emit) -> int:
    """The mixes as the user gave them (a held-out eval file is made of DATASETS)."""
    s = run_plan.settings
    evals = "" if s.local_evals.lower() == "none" else s.local_evals
    return preflight.check_data(s.datasets, s.dataset_splits, s.verifier, evals, s.local_eval_splits, emit=emit)


def check_settings(run_plan: GrpoPlan, environ: Mapping[str, str], emit: preflight.Emit) -> int:
    """The FLIP settings the trainer gets (its FLIP_* variables and judge URL); unknown FLIP_* names warned about."""
    env = {name: value for name, value in run_plan.trainer_env.items() if name != "CUDA_VISIBLE_DEVICES"}
    for name in sorted(name for name in environ if name.startswith("FLIP_") and name not in ENV_VARS):
        env.setdefault(name, environ[name])
    return preflight.check_settings(env, emit=emit)


# --- a real run --------------------------------------------------------------------------------------------------


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(run_plan: GrpoPlan, environ: Mapping[str, str]) -> int:
    """The checks, then the judge (or router) and the trainer under one Supervisor; the trainer's exit status."""
    s = run_plan.settings
    if check_settings(run_plan, environ, say):
        log("error: fix the setting above first")
        return EXIT_INVALID_INPUT
    if s.launcher == f"{s.python} -m {LAUNCHER_MODULE}" and preflight.check_env(run_plan.placement, emit=say):
        log("error: this machine cannot run open-instruct's grpo_fast.py (see above); --dry-run shows the command")
        return EXIT_RUN_FAILED
    if check_data(run_plan, say):
        log("error: fix the datasets above first")
        return EXIT_INVALID_INPUT
    if run_plan.eval_note:
        log(run_plan.eval_note)
    try:
        write_held_out(run_plan)
        with Supervisor(
            run_plan.judge.pid_file,
            s.judge_start_timeout,
            log,
            trainer_int_grace=s.trainer_int_grace_s,
            trainer_term_grace=s.trainer_term_grace_s,
        ) as supervisor:
            try:
                return supervise(run_plan, supervisor)
            finally:
                if supervisor.services:
                    log("stopping the judge")
    except (OSError, PidFileError) as error:
        log(f"error: {error}")
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SystemExit as stop:  # TERM or HUP (the Supervisor turns them into SystemExit(128 + N))
        return stop.code if isinstance(stop.code, int) else EXIT_RUN_FAILED


def supervise(run_plan: GrpoPlan, supervisor: Supervisor) -> int:
    """The judge (checked or started), then the trainer; the trainer's exit status."""
    status = start_judge(run_plan, supervisor)
    if status:
        return status
    log(f"judge: {redact_url(run_plan.judge.url)}")
    log(f"trainer: {run_plan.shown_trainer()}")
    status = supervisor.run_trainer(run_plan.trainer_command, run_plan.trainer_env)
    if not supervisor.service_down:
        log("training finished" if status == 0 else f"the trainer exited with status {status}")
    return status


def write_held_out(run_plan: GrpoPlan) -> None:
    """Write the held-out eval split the plan names (training rows and eval rows, disjoint)."""
    held = run_plan.held_out
    if held is None:
        return
    hold_out(run_plan.settings.datasets.split()[0], run_plan.settings.local_eval_count, held.train.parent)


def start_judge(run_plan: GrpoPlan, supervisor: Supervisor) -> int:
    """Check a running judge, or start the services and check that they answer at the trainer's address; 0 when
    the trainer may start."""
    s = run_plan.settings
    for url in s.judge_urls:
        if preflight.check_judge(url, s.judge_model, emit=say):
            log("error: the judge is not usable (see above)")
            return EXIT_JUDGE_DOWN
    if not run_plan.judge.services:
        return 0
    if s.starts_judge:
        model = s.judge_model.removeprefix("hosted_vllm/")
        log(
            f"starting the judge {model} on GPU(s) {s.judge_gpus}, {s.judge_replicas} server(s) "
            f"(log: {run_plan.run_dir})"
        )
    else:
        log(f"starting vllm-router in front of {redact_url(' '.join(s.judge_urls))} (log: {run_plan.run_dir})")
    try:
        supervisor.start(run_plan.judge.services)
    except StartError as error:
        log(f"error: the judge did not start (logs: {run_plan.run_dir}): {error}")
        return EXIT_JUDGE_DOWN
    # The actors reach the judge at the advertised address, not at localhost: it must answer there, from here.
    if preflight.check_judge(run_plan.judge.url, s.judge_model, emit=say):
        log(
            f"error: the judge runs but does not answer at {run_plan.judge.url}, the address the trainer uses "
            f"(JUDGE_HOST={s.judge_host}; set JUDGE_ADVERTISE_HOST to an address of this node that the other nodes "
            "reach)"
        )
        return EXIT_JUDGE_DOWN
    return 0


# --- the local backend -------------------------------------------------------------------------------------------


def hand_over(
    choice: GrpoChoice,
    flags: Mapping[str, object],
    trainer_args: Sequence[str],
    dry_run: bool,
    environ: Mapping[str, str],
) -> int:
    """The local backend (``flip-reward launch local``) in this process: the knob flags given here that are
    ``flip-reward train``'s too become its options, before the grpo_fast.py arguments (mapped onto its options); the
    settings given here (flags, or variables of this command's knobs) that it does not use are named in one line."""
    arguments, unused = train_options(flags)
    unused += [f"{env} (environment)" for env in open_instruct_only(environ)]
    if unused:
        hint = " (LOCAL_PRESET picks the local preset)" if any("preset" in name.lower() for name in unused) else ""
        say(f"grpo (local): not used by the local backend: {', '.join(unused)}{hint}")
    local_flags = {"verifier": choice.verifier, "exp_name": flags.get("exp_name")}
    arguments += [*trainer_args, *(["--dry-run"] if dry_run else [])]
    return run_local(arguments, local_flags, environ)


def train_options(flags: Mapping[str, object]) -> tuple[list[str], list[str]]:
    """(``flip-reward train`` options of the knob ``flags`` given here that are its knobs too, the flags of the
    others); EXP_NAME is left to the local backend's own knob."""
    train = {item.knob.env: item for item in declared(TrainSettings) if item.knob.env}
    options, unused = [], []
    for item in [*declared(GrpoChoice), *declared(GrpoFastSettings)]:
        value = flags.get(item.name)
        if value is None or item.name in ("verifier", "backend", "exp_name"):
            continue
        target = train.get(item.knob.env or "")
        if target is None:
            unused.append(item.flag)
        elif target.kind is bool:
            options.append(target.flag if convert(target, value, item.flag) else f"--no-{target.flag[2:]}")
        else:
            options += [target.flag, str(value)]
    return options, unused


def open_instruct_only(environ: Mapping[str, str]) -> list[str]:
    """The variables set in ``environ`` that are knobs of this command only (nothing of the local backend reads
    them; WANDB_PROJECT is read by W&B itself, PYTHON by the scripts, which run this command with it)."""
    local = {item.knob.env for cls in (LocalSettings, TrainSettings) for item in declared(cls)}
    local |= {"BACKEND", "WANDB_PROJECT", "PYTHON"}
    ours = [item.knob.env for cls in (GrpoChoice, GrpoFastSettings) for item in declared(cls) if item.knob.env]
    return [env for env in ours if environ.get(env) and env not in local]
