"""The plan of an open-instruct GRPO run, rendered from ``GrpoFastSettings``: the grpo_fast.py command (through the
plugin launcher), the trainer's environment, the judge or router services to start, and the held-out eval split.

Everything here is a pure function of the settings, the environment given and the trainer arguments, except that
the held-out split reads the training file (``hold_out`` without writing) and the judge's services are found on
this machine (``run_judge``: the vllm executable; a JUDGE_SERVER of ``auto`` asks for a GPU).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from flip_reward.data.loading import RowError
from flip_reward.data.mixes import DatasetError
from flip_reward.judge.urls import redact_url
from flip_reward.knobs import SettingsError
from flip_reward.launch.data_plan import HeldOut, hold_out, is_local
from flip_reward.launch.grpo_settings import GrpoFastSettings
from flip_reward.launch.preflight import Placement
from flip_reward.launch.run_judge import RunJudge, run_judge

# The FLIP authors' settings, explicit so the recipe does not drift with upstream's defaults (docs/open-instruct.md).
FIXED_ARGS = (
    "--ground_truths_key", "ground_truth", "--sft_messages_key", "messages",
    "--num_mini_batches", "1", "--num_epochs", "1", "--per_device_train_batch_size", "1",
    "--apply_verifiable_reward", "true", "--non_stop_penalty", "false", "--mask_truncated_completions", "true",
    "--advantage_normalization_type", "standard", "--inflight_updates", "false", "--fused_optimizer", "false",
)  # fmt: skip


@dataclass(frozen=True)
class GrpoPlan:
    """What a run does: ``judge`` (the services to start, if any, and the URL the trainer reaches); then
    ``trainer_command`` with ``trainer_env`` added to the environment. ``held_out`` is the eval split to write before
    the trainer starts; ``eval_note`` says where the eval comes from."""

    settings: GrpoFastSettings
    grpo_args: tuple[str, ...]
    trainer_command: tuple[str, ...]
    trainer_env: dict[str, str]
    judge: RunJudge
    run_dir: Path
    held_out: HeldOut | None
    eval_note: str

    @property
    def placement(self) -> Placement:
        s = self.settings
        return Placement(s.learners, s.engines or 0, s.vllm_tensor_parallel_size, s.single_gpu_mode)

    def shown_trainer(self) -> str:
        """The trainer command as printed: ``env VAR=... LAUNCHER ARGS``, credentials hidden."""
        assignments = [f"{name}={value}" for name, value in self.trainer_env.items()]
        return shlex.join(redact_url(word) for word in ["env", *assignments, *self.trainer_command])


def plan(
    settings: GrpoFastSettings, trainer_args: Sequence[str], environ: Mapping[str, str], dry_run: bool = False
) -> GrpoPlan:
    """The run of ``settings`` with ``trainer_args`` passed to grpo_fast.py last (later flags win); ``environ``
    gives the FLIP_* variables; a dry run settles for bare executable names. SettingsError for a judge fleet that
    cannot work or an eval split that cannot be made."""
    run_dir = Path(settings.output_dir) / "judge"
    datasets, evals, held_out, eval_note = eval_plan(settings)
    args = (*grpo_args(settings, datasets, evals), *trainer_args)
    judge = run_judge(settings, run_dir, settings.python, dry_run)
    return GrpoPlan(
        settings=settings,
        grpo_args=args,
        trainer_command=(*shlex.split(settings.launcher), *args),
        trainer_env=trainer_env(settings, judge.url, environ),
        judge=judge,
        run_dir=run_dir,
        held_out=held_out,
        eval_note=eval_note,
    )


def eval_plan(settings: GrpoFastSettings) -> tuple[list[str], list[str], HeldOut | None, str]:
    """(training mix, eval mix, held-out split or None, note): LOCAL_EVALS as given (a warning when it is trained on
    too; "none": no eval), else LOCAL_EVAL_COUNT rows of the first dataset, held out of training when it is a local
    file (and evaluated on while trained on, said in a warning, when it is a hub dataset)."""
    datasets = settings.datasets.split()
    if settings.local_evals:
        if settings.local_evals.lower() == "none":
            return datasets, [], None, ""
        evals = settings.local_evals.split()
        trained = [name for name in evals[::2] if name in datasets[::2]]
        note = f"warning: LOCAL_EVALS evaluates on {trained[-1]}, which this run also trains on (DATASETS)"
        return datasets, evals, None, note if trained else ""
    first = datasets[0]
    if is_local(first):
        try:
            held = hold_out(first, settings.local_eval_count, Path(settings.output_dir) / "data", write=False)
        except (DatasetError, RowError, OSError, ValueError) as error:
            raise SettingsError(
                f"cannot hold eval prompts out of {first}: {error}; set LOCAL_EVALS='NAME COUNT' or LOCAL_EVALS=none"
            ) from None
        note = f"eval: {held.count} prompts of {first} held out of training ({held.eval}; the rest: {held.train})"
        return [str(held.train), *datasets[1:]], [str(held.eval), str(held.count)], held, note
    note = (
        f"warning: the in-loop eval takes {settings.local_eval_count} prompts of {first}, which this run also trains "
        "on (a hub dataset is not split here): set LOCAL_EVALS='EVAL_DATASET COUNT' for a separate eval set, or "
        "LOCAL_EVALS=none"
    )
    return datasets, [first, str(settings.local_eval_count)], None, note


def grpo_args(settings: GrpoFastSettings, datasets: Sequence[str], evals: Sequence[str]) -> list[str]:
    """The grpo_fast.py arguments of ``settings`` (the user's own arguments come after them)."""
    s = settings
    args = ["--exp_name", s.exp_name, "--output_dir", s.output_dir, "--seed", str(s.seed)]
    args += ["--model_name_or_path", s.model_name_or_path]
    if s.chat_template:
        args += ["--chat_template_name", s.chat_template]
    args += ["--dataset_mixer_list", *datasets, "--dataset_mixer_list_splits", s.dataset_splits]
    if evals:
        args += ["--dataset_mixer_eval_list", *evals, "--dataset_mixer_eval_list_splits", s.local_eval_splits]
        args += ["--local_eval_every", str(s.local_eval_every)]
    else:
        args += ["--local_eval_every", "-1"]
    args += [
        *FIXED_ARGS[:4],
        "--max_prompt_token_length", str(s.max_prompt_length), "--response_length", str(s.response_length),
        "--pack_length", str(s.pack_length),
        "--num_unique_prompts_rollout", str(s.prompts_per_step),
        "--num_samples_per_prompt_rollout", str(s.samples_per_prompt),
        *FIXED_ARGS[4:10],
        "--learning_rate", repr(s.learning_rate), "--lr_scheduler_type", s.lr_scheduler, "--beta", repr(s.beta),
        "--load_ref_policy", str(s.load_ref_policy).lower(), "--kl_estimator", str(s.kl_estimator),
        "--clip_higher", repr(s.clip_higher), "--rho_clamp_upper_bound", repr(s.truncated_is_cap),
        "--async_steps", str(s.async_steps), "--temperature", repr(s.temperature),
        "--total_episodes", str(s.total_episodes), "--save_freq", str(s.save_freq),
        *FIXED_ARGS[10:],
        "--backend_timeout", str(s.backend_timeout),
        "--deepspeed_stage", str(s.deepspeed_stage), "--deepspeed_zpg", str(s.zpg),
        "--num_learners_per_node", *map(str, s.learners),
        "--vllm_num_engines", str(s.engines), "--vllm_tensor_parallel_size", str(s.vllm_tensor_parallel_size),
        "--vllm_gpu_memory_utilization", repr(s.vllm_gpu_memory_utilization),
        "--vllm_sync_backend", s.vllm_sync_backend, "--vllm_enable_prefix_caching",
        "--llm_judge_model", s.judge_model, "--llm_judge_max_tokens", str(s.judge_max_tokens),
        "--llm_judge_max_context_length", str(s.judge_max_context),
        "--llm_judge_timeout", str(math.ceil(s.judge_timeout)), "--llm_judge_temperature", repr(s.judge_temperature),
        "--push_to_hub", "false", "--try_auto_save_to_beaker", "false",
    ]  # fmt: skip
    if s.stop_strings:
        args += ["--stop_strings", s.stop_strings]
    switches = (
        (s.vllm_enforce_eager, ["--vllm_enforce_eager"]),
        (s.single_gpu_mode, ["--single_gpu_mode"]),
        (s.gradient_checkpointing, ["--gradient_checkpointing"]),
        (s.with_tracking, ["--with_tracking", "--wandb_project", s.wandb_project]),
    )
    for on, switch in switches:
        args += switch if on else []
    return args


def trainer_env(settings: GrpoFastSettings, judge_url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """What the trainer gets added to its environment: its GPUs (one node), the Ray cluster, the one judge URL both
    verifiers read (HOSTED_VLLM_API_BASE), and every FLIP_* variable (FLIP_THINK_PREFILLED as resolved)."""
    env = {}
    if settings.trainer_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, settings.trainer_gpus))
    if settings.ray_address:
        env["RAY_ADDRESS"] = settings.ray_address
    env["HOSTED_VLLM_API_BASE"] = judge_url
    flip = {name: value for name, value in environ.items() if name.startswith("FLIP_")}
    flip["FLIP_THINK_PREFILLED"] = "1" if settings.think_prefilled else "0"
    return env | dict(sorted(flip.items()))
