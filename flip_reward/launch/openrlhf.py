"""``flip-reward launch openrlhf``: GRPO with FLIP rewards in OpenRLHF, which calls a remote reward server. The run
starts the judge and ``flip-reward serve`` (the reward service, on loopback: OpenRLHF sends no Authorization
header) as supervised services, prints the OpenRLHF command that uses them and keeps both up until Ctrl-C or TERM,
then stops them (the service first, its requests in flight finishing)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flip_reward.core.settings import FlipSettings
from flip_reward.data.loading import RowError, load_rows
from flip_reward.data.mixes import DatasetError, parse_mixer
from flip_reward.data.rlvr import check_rows, describe_counts
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_JUDGE_DOWN, EXIT_RUN_FAILED
from flip_reward.knobs import SettingsError, knob
from flip_reward.launch.data_plan import MAX_ERRORS_SHOWN, is_local
from flip_reward.launch.run_judge import RunJudge, run_judge, url_in_environment
from flip_reward.launch.trainer_run import (
    Trainer,
    check_external_judges,
    flip_environment,
    gpu_env,
    start_judge,
)
from flip_reward.launch.verl import VERIFIER, VerlFamily
from flip_reward.serving.connections import SHUTDOWN_MARGIN
from flip_reward.serving.pid_files import PidFileError
from flip_reward.serving.processes import Service, StartError, Supervisor

SERVE_HOST = "127.0.0.1"
TRACKING = ("WITH_TRACKING", "WANDB_PROJECT")  # the verl launcher's W&B knobs; OpenRLHF takes --logger.wandb.*


@dataclass(frozen=True)
class OpenRLHFSettings(VerlFamily):
    """One ``flip-reward launch openrlhf`` run, resolved once and checked in ``__post_init__``."""

    datasets: str = knob(
        "DATASETS",
        "yikeee/rlvr_general_chat_flip 1.0",
        "prompt mix 'NAME PROBABILITY [NAME PROBABILITY ...]': hub datasets or local files of RLVR rows, mixed by "
        "OpenRLHF with probabilities in (0, 1]",
    )
    dataset_splits: str = knob("DATASET_SPLITS", "train", "the split OpenRLHF reads (--data.prompt_split)")
    exp_name: str = knob("EXP_NAME", "openrlhf_grpo_flip", "run name (OUTPUT_DIR's default)")
    seed: int = knob("SEED", 1, "OpenRLHF's --train.seed")
    serve_port: int = knob("SERVE_PORT", 8080, "port of flip-reward serve (loopback)", minimum=1)
    serve_args: str = knob("SERVE_ARGS", "", "more flip-reward serve options, e.g. '--concurrency 128'")
    serve_start_timeout: int = knob("SERVE_START_TIMEOUT", 120, "seconds to wait for flip-reward serve", minimum=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.mix()
        if len(self.dataset_splits.split()) > 1:
            raise SettingsError(
                f"DATASET_SPLITS: OpenRLHF reads one split (--data.prompt_split), got {self.dataset_splits!r}"
            )

    def mix(self) -> list[tuple[str, str]]:
        """DATASETS as OpenRLHF mixes it: (name, probability) pairs, read by ``parse_mixer`` (the syntax every
        launcher shares) with each amount a fraction in (0, 1]; SettingsError otherwise (a row count among them)."""
        try:
            entries = parse_mixer(self.datasets)
        except DatasetError as error:
            raise SettingsError(str(error)) from None
        for entry in entries:
            if not isinstance(entry.amount, float) or entry.amount > 1:
                raise SettingsError(
                    f"DATASETS: OpenRLHF mixes by probability: the amount of '{entry.source}' must be a fraction in "
                    f"(0, 1] such as 0.5 or 1.0, got {entry.amount}"
                )
        return [(entry.source, str(entry.amount)) for entry in entries]


def tracking_note(environ: Mapping[str, str]) -> str | None:
    """One line when WITH_TRACKING or WANDB_PROJECT is set: this launcher does not read them."""
    given = [name for name in TRACKING if environ.get(name)]
    if not given:
        return None
    return (
        f"note: {' and '.join(given)} not read here: OpenRLHF's tracking is set on its own command line "
        "(--logger.wandb.* arguments after the launcher's)"
    )


def flip_serve_options(flip: FlipSettings) -> list[str]:
    """The ``flip-reward serve`` options of the FLIP_* settings that differ from their defaults."""
    default = FlipSettings.from_env({})
    options = []
    for name, flag in (("think_prefilled", "--think-prefilled"), ("structured_output", "--structured-output"),
                       ("disable_thinking", "--no-thinking")):  # fmt: skip
        if getattr(flip, name):
            options.append(flag)
    if not flip.restatement_guard:
        options.append("--no-restatement-guard")
    for name, flag in (("reward_metric", "--reward-metric"), ("concurrency", "--concurrency"),
                       ("retries", "--retries"), ("tokenizer", "--tokenizer"), ("cache_dir", "--cache")):  # fmt: skip
        if getattr(flip, name) != getattr(default, name):
            options += [flag, str(getattr(flip, name))]
    return options


def serve_service(
    settings: OpenRLHFSettings, judge_url: str, flip: FlipSettings, python: str, run_dir: Path
) -> Service:
    """``flip-reward serve`` for the run: the judge's settings, the FLIP_* ones, then SERVE_ARGS (later flags win)."""
    s = settings
    url_env = url_in_environment(s.judge_model, judge_url, "the launcher (and ps)")
    command = (
        python, "-m", "flip_reward", "serve", "--judge", s.judge_model,
        *([] if url_env else ["--api-base", judge_url]),
        "--host", SERVE_HOST, "--port", str(s.serve_port), "--max-tokens", str(s.judge_max_tokens),
        "--max-context-length", str(s.judge_max_context), "--timeout", f"{s.judge_timeout:g}",
        "--temperature", str(s.judge_temperature), "--shutdown-timeout", f"{s.judge_timeout:g}",
        *flip_serve_options(flip), *shlex.split(s.serve_args),
    )  # fmt: skip
    health = f"http://{SERVE_HOST}:{s.serve_port}/health"
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", **url_env}
    return Service("reward service", command, health, run_dir / "serve.log", env)


def openrlhf_trainer(settings: OpenRLHFSettings, python: str, extra: Sequence[str] = ()) -> Trainer:
    """OpenRLHF's command (printed for the user to run) and its environment."""
    s = settings
    training = len(s.training_gpus())
    pairs = s.mix()
    command = [
        python, "-m", "openrlhf.cli.train_ppo_ray", "--actor.model_name_or_path", s.model_name_or_path,
        "--reward.remote_url", f"http://{SERVE_HOST}:{s.serve_port}/get_reward",
        "--algo.advantage.estimator", "group_norm", "--rollout.n_samples_per_prompt", str(s.samples_per_prompt),
        "--rollout.batch_size", str(s.prompts_per_step),
        "--train.batch_size", str(s.prompts_per_step * s.samples_per_prompt),
        "--data.prompt_dataset", ",".join(name for name, _ in pairs),
        "--data.prompt_probs", ",".join(probability for _, probability in pairs),
        "--data.prompt_split", s.splits(1)[0],
        "--data.input_key", "messages", "--data.label_key", "ground_truth", "--data.apply_chat_template",
        "--rollout.max_new_tokens", str(s.response_length),
        "--data.max_len", str(s.max_prompt_length + s.response_length),
        "--rollout.temperature", str(s.temperature), "--actor.adam.lr", str(s.learning_rate),
        "--actor.num_gpus_per_node", str(training), "--vllm.num_engines", str(max(1, (training + 1) // 2)),
        "--vllm.tensor_parallel_size", str(s.vllm_tensor_parallel_size),
        "--vllm.gpu_memory_utilization", str(s.vllm_gpu_memory_utilization), "--train.colocate_all",
        "--ds.zero_stage", "3", "--train.seed", str(s.seed), "--ckpt.output_dir", f"{s.output_dir}/checkpoints", *extra,
    ]  # fmt: skip
    return Trainer(command, gpu_env(s))


def data_lines(settings: OpenRLHFSettings) -> list[str]:
    """One line per dataset: a local file's RLVR rows checked (OpenRLHF reads ``messages`` and ``ground_truth``);
    DatasetError naming the dataset and its first invalid rows. Hub datasets are not read."""
    lines = []
    split = settings.splits(1)[0]
    for name, probability in settings.mix():
        if not is_local(name):
            lines.append(f"data: {name}: Hugging Face dataset, not checked offline (flip-reward data check {name})")
            continue
        try:
            rows = load_rows(name, split)
        except (FileNotFoundError, RowError, ValueError, UnicodeDecodeError) as error:
            raise DatasetError(f"DATASETS: {name}: {error}") from None
        verifiers, invalid = check_rows(rows)
        if invalid or not rows:
            shown = "; ".join(str(error) for error in invalid[:MAX_ERRORS_SHOWN]) or "no rows"
            raise DatasetError(f"DATASETS: {name}: {len(invalid)} of {len(rows)} rows invalid ({shown})")
        lines.append(f"data: {name}: {len(rows)} RLVR rows (probability {probability}); verifiers: "
                     f"{describe_counts(verifiers)}")  # fmt: skip
        if VERIFIER not in verifiers:
            lines.append(f"data: note: {name} has no {VERIFIER} rows; the reward service scores every row with FLIP")
    return lines


def log(message: str) -> None:
    print(f"openrlhf_grpo: {message}", file=sys.stderr, flush=True)


def launch_openrlhf(
    settings: OpenRLHFSettings, extra: Sequence[str], dry_run: bool, environ: Mapping[str, str] | None = None
) -> int:
    """Print the plan (``dry_run``), or start the judge and the reward service, print the trainer command and keep
    both up until Ctrl-C or TERM. ``environ`` (default os.environ) is read for the tracking note only."""
    note = tracking_note(os.environ if environ is None else environ)
    if note:
        log(note)
    flip = flip_environment()
    python = sys.executable
    run_dir = Path(settings.output_dir) / "judge"
    judge = run_judge(settings, run_dir, python, dry_run)
    serve = serve_service(settings, judge.url, flip, python, run_dir)
    trainer = openrlhf_trainer(settings, python, extra)
    lines = data_lines(settings)
    if dry_run:
        print(f"openrlhf_grpo: preset {settings.preset} ({settings.preset_origin}); {len(settings.training_gpus())} "
              f"training GPU(s); reward service on {SERVE_HOST}:{settings.serve_port}")  # fmt: skip
        serve_line = Trainer(list(serve.command), dict(serve.env)).line()
        print("\n".join([*judge.lines(settings), f"serve: {serve_line}", *lines, f"trainer: {trainer.line()}"]),
              flush=True)  # fmt: skip
        return EXIT_JUDGE_DOWN if check_external_judges(settings, print) else 0
    for line in lines:
        log(line)
    try:
        return serve_until_stopped(settings, judge, serve, trainer)
    except (OSError, PidFileError) as error:
        log(f"error: {error}")
        return EXIT_RUN_FAILED


def serve_until_stopped(settings: OpenRLHFSettings, judge: RunJudge, serve: Service, trainer: Trainer) -> int:
    """The judge, then the reward service (each under its own supervisor and PID file); the trainer command printed;
    0 on Ctrl-C or TERM (the service stopped, then the judge), 3 when the judge did not start or does not answer,
    1 when the reward service did not start or one exited meanwhile."""
    with Supervisor(judge.pid_file, settings.judge_start_timeout, log) as judges:
        status = start_judge(judges, judge, settings, log)
        if status:
            return status
        # the service ends by itself once its requests in flight finish (at the latest after --shutdown-timeout)
        grace = settings.judge_timeout + SHUTDOWN_MARGIN
        pid_file = serve.log_file.with_name("serve.pid")
        with Supervisor(pid_file, settings.serve_start_timeout, log, stop_grace=grace) as services:
            try:
                services.start([serve])
            except StartError as error:
                log(f"error: flip-reward serve did not start: {error}")
                return EXIT_RUN_FAILED
            log(f"reward service: http://{SERVE_HOST}:{settings.serve_port} (log: {serve.log_file}); Ctrl-C stops "
                "it and the judge")  # fmt: skip
            try:  # from here, Ctrl-C and TERM are how the launcher ends, even before wait() has begun
                print(f"trainer: {trainer.line()}", flush=True)
                status = services.wait()
            except (KeyboardInterrupt, SystemExit):
                status = EXIT_INTERRUPTED
            if status != EXIT_RUN_FAILED:
                log("stopping flip-reward serve (requests in flight finish first) and the judge")
        return 0 if status != EXIT_RUN_FAILED else status
