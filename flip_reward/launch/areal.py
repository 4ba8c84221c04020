"""``flip-reward launch areal``: GRPO with FLIP rewards in AReaL 1.0.4: its knobs (``ArealSettings``), DATASETS as
AReaL rows (``{"messages": [...]}``: RLVRWorkflow templates them and passes each row to the reward as keywords), the
experiment config (``areal_grpo.yaml``, keys of AReaL's ``GRPOConfig``), and the command: ``python -m
flip_reward.integrations.areal_train --reward-timeout-s S ... --config areal_grpo.yaml [key=value ...]``, AReaL's
way of running an experiment (a script calling ``load_expr_config`` and ``PPOTrainer``) with its local scheduler.

The reward is ``flip_reward.integrations.areal.flip_reward_fn`` in ``FlipRLVRWorkflow``, whose reward pool waits
AREAL_REWARD_TIMEOUT per sample (default: the judge's whole budget, JUDGE_TIMEOUT per try for every FLIP_RETRIES
retry, with back-off, and a margin) instead of AReaL's 15 s, and AReaL's controller waits that longer for each
rollout (``rollout.request_timeout``, ``areal_timing``); the judge reaches it through the trainer's environment
(``command_trainer.judge_env``). The training GPUs are split: AREAL_ROLLOUT_GPUS generate (SGLang or vLLM), the
rest train (FSDP); a KL penalty (BETA) adds a reference model beside the actor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from flip_reward.core.settings import FlipSettings
from flip_reward.data.rlvr import to_rlvr
from flip_reward.integrations.areal_timing import reward_budget_s, rollout_timeout_s
from flip_reward.knobs import SettingsError, knob
from flip_reward.launch.command_trainer import CommandTrainerSettings, RunFiles, TrainerRecipe
from flip_reward.launch.trainer_run import Trainer

TRAIN_SCRIPT = "flip_reward.integrations.areal_train"
CONFIG_NAME = "areal_grpo.yaml"
ROLLOUT_BACKENDS = ("sglang", "vllm")
TRIAL = "run"
# What AReaL's local scheduler runs for each worker (its config classes' default; a scheduling_spec given in the
# config replaces the default whole, so each spec written here names it again).
RPC_SERVER = "python -m areal.infra.rpc.rpc_server"


@dataclass(frozen=True)
class ArealSettings(CommandTrainerSettings):
    """One ``flip-reward launch areal`` run: the shared knobs and AReaL's own."""

    areal_rollout_gpus: int | None = knob(
        "AREAL_ROLLOUT_GPUS",
        None,
        "training GPUs that generate (data parallel); the others train",
        minimum=1,
        shown="half the training GPUs",
    )
    areal_rollout_backend: str = knob(
        "AREAL_ROLLOUT_BACKEND", "sglang", "AReaL's generation server", choices=ROLLOUT_BACKENDS
    )
    areal_reward_timeout: float | None = knob(
        "AREAL_REWARD_TIMEOUT",
        None,
        "seconds AReaL waits for one reward (its default is 15)",
        above=0,
        shown="the judge's budget: JUDGE_TIMEOUT x (FLIP_RETRIES + 1) + 50 s",
    )
    areal_reward_workers: int | None = knob(
        "AREAL_REWARD_WORKERS", None, "reward pool processes per rollout worker (one judge request each)", minimum=1,
        shown="AReaL's: (CPUs // GPUs) // 2",
    )  # fmt: skip
    areal_enable_thinking: bool = knob(
        "AREAL_ENABLE_THINKING", False, "enable_thinking for the policy's chat template (Qwen3: it thinks)"
    )
    beta: float = knob("BETA", 0.0, "KL penalty (actor.kl_ctl; >0 adds a reference model)", minimum=0)
    total_epochs: int = knob("TOTAL_EPOCHS", 1, "passes over the data", minimum=1)
    save_freq: int = knob("SAVE_FREQ", 50, "save the model every N steps (AReaL's saver.freq_steps), and at each "
                          "epoch's end")  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        gpus = len(self.training_gpus())
        if gpus < 2:
            raise SettingsError(
                f"AReaL needs 2 training GPUs at least, one to generate and one to train; it has {gpus} "
                f"(NUM_GPUS={self.num_gpus}, JUDGE_GPUS={self.judge_gpus}, TRAIN_GPUS={self.train_gpus!r})"
            )
        if self.rollout_gpus() >= gpus:
            raise SettingsError(
                f"AREAL_ROLLOUT_GPUS={self.areal_rollout_gpus} leaves none of the {gpus} training GPUs to train on"
            )

    def rollout_gpus(self) -> int:
        """AREAL_ROLLOUT_GPUS, else half the training GPUs."""
        return self.areal_rollout_gpus or len(self.training_gpus()) // 2

    def reward_timeout(self) -> float:
        """What FlipRLVRWorkflow waits for one reward in AReaL's processes: AREAL_REWARD_TIMEOUT, else the budget of
        the judge they are given (JUDGE_TIMEOUT per try, FLIP_RETRIES from this environment, which they inherit)."""
        if self.areal_reward_timeout is not None:
            return self.areal_reward_timeout
        return reward_budget_s(dataclasses.replace(FlipSettings.from_env(), judge_timeout=self.judge_timeout))


def areal_row(row: object, number: int) -> dict:
    """One DATASETS row as AReaL's: only ``messages`` (every key reaches the reward as a keyword, and none may be
    one of its arguments, ``prompt`` or ``completions``); RowError names a bad row and field."""
    return {"messages": to_rlvr(row, number, "general-flip")["messages"]}


# Values that AReaL's config repeats are written once and interpolated elsewhere (as in AReaL's own example configs),
# so that an override given on the command line (gconfig.n_samples=4, train_dataset.batch_size=64) reaches each copy.
NAMES = {"experiment_name": "${experiment_name}", "trial_name": "${trial_name}", "fileroot": "${cluster.fileroot}"}


def areal_config(settings: ArealSettings, files: RunFiles) -> dict:
    """AReaL's GRPOConfig for this run (every key is one of its config classes'; the rest keep AReaL's defaults)."""
    gpus = len(settings.training_gpus())
    worker = [{"task_type": "worker", "port_count": 2, "gpu": 1, "mem": 32, "cmd": RPC_SERVER}]
    names = {key: NAMES[key] for key in ("experiment_name", "trial_name")}
    actor = {
        "backend": f"fsdp:d{gpus - settings.rollout_gpus()}p1t1",
        **names,
        "path": settings.model_name_or_path,
        "dtype": "bfloat16",
        "gradient_checkpointing": True,
        # AReaL's default is one micro-batch per minibatch, whatever its tokens: pack up to one longest sequence
        "mb_spec": {"max_tokens_per_mb": settings.max_prompt_length + settings.response_length},
        "optimizer": {"type": "adam", "lr": settings.learning_rate},
        "kl_ctl": settings.beta,
        "temperature": "${gconfig.temperature}",  # the logprobs' temperature is the sampling one
        "max_new_tokens": "${gconfig.max_new_tokens}",
        "reward_norm": {"mean_level": "group", "std_level": "group", "group_size": "${gconfig.n_samples}"},
        "scheduling_spec": worker,
    }
    context = actor["mb_spec"]["max_tokens_per_mb"]
    servers = {
        "sglang": {"model_path": "${actor.path}", "random_seed": "${seed}", "dtype": "${actor.dtype}",
                   "context_length": context},
        "vllm": {"model": "${actor.path}", "seed": "${seed}", "dtype": "${actor.dtype}", "max_model_len": context},
    }  # fmt: skip
    fileroot = files.config_dir.parent / "areal"
    config = {
        "experiment_name": settings.exp_name,
        "trial_name": TRIAL,
        "seed": settings.seed,
        "total_train_epochs": settings.total_epochs,
        "tokenizer_path": "${actor.path}",
        "cluster": {
            "n_nodes": 1,
            "n_gpus_per_node": gpus,
            "fileroot": str(fileroot),
            "name_resolve": {"type": "nfs", "nfs_record_root": "${cluster.fileroot}/name_resolve"},
        },
        "scheduler": {"type": "local"},
        "rollout": {
            **NAMES,
            "backend": f"{settings.areal_rollout_backend}:d{settings.rollout_gpus()}p1t1",
            "tokenizer_path": "${tokenizer_path}",
            "consumer_batch_size": "${train_dataset.batch_size}",
            # AReaL drops a rollout (a group's generations and rewards) after this; its default, 3600 s, is less
            # than one judge request may take
            "request_timeout": rollout_timeout_s(settings.reward_timeout()),
            "scheduling_spec": worker,
        },
        "gconfig": {
            "n_samples": settings.samples_per_prompt,
            "max_new_tokens": settings.response_length,
            "temperature": settings.temperature,
        },
        "actor": actor,
        settings.areal_rollout_backend: servers[settings.areal_rollout_backend],
        "train_dataset": {
            "path": str(files.data),
            "type": "rl",
            "batch_size": settings.prompts_per_step,
            "shuffle": True,
            "max_length": settings.max_prompt_length,
        },
        "saver": {**NAMES, "freq_epochs": 1, "freq_steps": settings.save_freq},  # AReaL's default: never saved
        "recover": {**NAMES, "mode": "disabled"},
        "evaluator": NAMES,
        "stats_logger": {**NAMES, "wandb": {"mode": "disabled"}},
    }
    if settings.beta > 0:
        colocated = {"type": "colocation", "target": "actor"}
        config["ref"] = {"backend": "${actor.backend}", **names, "path": "${actor.path}", "dtype": "${actor.dtype}",
                         "mb_spec": {"max_tokens_per_mb": "${actor.mb_spec.max_tokens_per_mb}"},
                         "scheduling_strategy": colocated,
                         "scheduling_spec": worker}  # fmt: skip
    return config


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors: each section written out where AReaL's config has it."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def areal_files(settings: ArealSettings, files: RunFiles) -> dict[Path, str]:
    """The experiment config AReaL's ``load_expr_config`` reads (``--config``), as YAML."""
    text = yaml.dump(areal_config(settings, files), Dumper=_PlainDumper, sort_keys=False)
    return {files.config_dir / CONFIG_NAME: text}


def areal_command(settings: ArealSettings, files: RunFiles, python: str, extra: Sequence[str]) -> Trainer:
    """The training script's command: its reward options, AReaL's ``--config``, then the overrides given."""
    own = []
    if settings.areal_reward_timeout is not None:
        own += ["--reward-timeout-s", f"{settings.areal_reward_timeout:g}"]
    if settings.areal_reward_workers is not None:
        own += ["--reward-workers", str(settings.areal_reward_workers)]
    if settings.areal_enable_thinking:
        own.append("--enable-thinking")
    config = files.config_dir / CONFIG_NAME
    return Trainer([python, "-m", TRAIN_SCRIPT, *own, "--config", str(config), *extra], {})


SETTINGS = ArealSettings
RECIPE = TrainerRecipe(
    "areal",
    "areal",
    "flip_reward.integrations.areal.flip_reward_fn",
    areal_row,
    areal_command,
    areal_files,
)
HELP = "GRPO in AReaL (key=value overrides go to AReaL's config)"
DESCRIPTION = (
    "GRPO with FLIP rewards in AReaL 1.0.4 (python -m flip_reward.integrations.areal_train, AReaL's PPOTrainer with "
    "FlipRLVRWorkflow: the reward function flip_reward.integrations.areal.flip_reward_fn in a reward pool that waits "
    "AREAL_REWARD_TIMEOUT per sample, not AReaL's 15 s): DATASETS converted to AReaL rows, the experiment config "
    "written (OUTPUT_DIR/config/areal_grpo.yaml), the judge started (unless JUDGE_BASE_URL), AReaL run with its local "
    "scheduler as its own process group, then AReaL and the judge stopped in order."
)
