"""``flip-reward launch skyrl``: GRPO with FLIP rewards in SkyRL: ``python -m flip_reward.integrations.skyrl
KEY=VALUE...`` (SkyRL's training entrypoint with ``FlipEnv`` registered as ``flip`` in its trainer's Ray task), the
DATASETS rows in SkyRL's dataset format in one parquet file, and SkyRL's knobs (``SkyRLSettings``).

The overrides are SkyRL 0.4's config keys as ``SkyRLTrainConfig.from_cli_overrides`` reads them (OmegaConf dotlist,
every key checked against its config dataclasses), the user's extra arguments last so that they win. The judge
reaches ``FlipEnv`` through the environment (``command_trainer.judge_env``), which the entrypoint hands to the
trainer's task; paths are absolute because SkyRL reads them in Ray workers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flip_reward.data.rlvr import to_rlvr
from flip_reward.knobs import SettingsError, knob
from flip_reward.launch.command_trainer import CommandTrainerSettings, RunFiles, TrainerRecipe
from flip_reward.launch.run_knobs import TrackingKnobs
from flip_reward.launch.trainer_run import Trainer

ENTRYPOINT = "flip_reward.integrations.skyrl"
ENV_ID = "flip"  # FlipEnv's id there (ENV_ID), not imported: that module needs skyrl-gym, the CLI must not
HELP = "GRPO in SkyRL (its entrypoint with the flip environment registered)"
DESCRIPTION = (
    "Serve the judge (or use JUDGE_BASE_URL), convert DATASETS to SkyRL's parquet rows (env_class flip, the "
    "instruction in reward_spec.ground_truth), and run SkyRL's GRPO through python -m flip_reward.integrations.skyrl, "
    "SkyRL's entrypoint with FlipEnv registered. --dry-run prints the plan and the command."
)


@dataclass(frozen=True)
class SkyRLSettings(TrackingKnobs, CommandTrainerSettings):
    """One ``flip-reward launch skyrl`` run, resolved once and checked in ``__post_init__``."""

    exp_name: str = knob("EXP_NAME", "skyrl_grpo_flip", "run name")
    beta: float = knob("BETA", 0.0, "KL loss coefficient (0: no KL loss, no reference model)", minimum=0)
    total_epochs: int = knob("TOTAL_EPOCHS", 1, "passes over the data", minimum=1)
    save_freq: int = knob("SAVE_FREQ", 50, "checkpoint every N steps (SkyRL's trainer.ckpt_interval)")
    env_workers: int = knob(
        "ENV_WORKERS",
        64,
        "SkyRL's environment threads (environment.skyrl_gym.max_env_workers): the judgments in flight at once",
        minimum=1,
    )
    vllm_tensor_parallel_size: int = knob("VLLM_TENSOR_PARALLEL_SIZE", 1, "tensor parallel size of vLLM", minimum=1)
    vllm_gpu_memory_utilization: float = knob("VLLM_GPU_MEMORY_UTILIZATION", 0.6, "vLLM's share of GPU memory")

    def __post_init__(self) -> None:
        super().__post_init__()
        gpus = len(self.training_gpus())
        if gpus % self.vllm_tensor_parallel_size:
            raise SettingsError(
                f"VLLM_TENSOR_PARALLEL_SIZE ({self.vllm_tensor_parallel_size}) must divide the {gpus} training GPU(s)"
            )
        per_step = self.prompts_per_step * self.samples_per_prompt
        if per_step % gpus:
            raise SettingsError(
                f"PROMPTS_PER_STEP x SAMPLES_PER_PROMPT ({per_step}) must divide by the {gpus} training GPU(s)"
            )


def skyrl_row(row: object, number: int) -> dict:
    """One row of SkyRL's dataset format: the chat up to its last user message as ``prompt``, that message as
    ``reward_spec.ground_truth``, ``env_class`` ``flip``; RowError naming the row and field."""
    rlvr = to_rlvr(row, number, ENV_ID)
    return {
        "data_source": ENV_ID,
        "prompt": rlvr["messages"],
        "env_class": ENV_ID,
        "reward_spec": {"method": ENV_ID, "ground_truth": rlvr["ground_truth"]},
        "extra_info": {"index": number - 1},
    }


def skyrl_overrides(s: SkyRLSettings, files: RunFiles) -> list[str]:
    """SkyRL's config overrides for the run (its GRPO on FSDP, policy and vLLM colocated on the training GPUs)."""
    gpus = len(s.training_gpus())
    output = Path(s.output_dir).absolute()
    return [
        f"environment.env_class={ENV_ID}", f"environment.skyrl_gym.max_env_workers={s.env_workers}",
        f"data.train_data={json.dumps([str(files.data)])}", "data.val_data=[]",
        "trainer.algorithm.advantage_estimator=grpo",
        f"trainer.algorithm.use_kl_loss={str(s.beta > 0).lower()}", f"trainer.algorithm.kl_loss_coef={s.beta}",
        f"trainer.policy.model.path={s.model_name_or_path}", f"trainer.policy.optimizer_config.lr={s.learning_rate}",
        "trainer.strategy=fsdp", "trainer.placement.colocate_all=true",
        f"trainer.placement.policy_num_gpus_per_node={gpus}", f"trainer.placement.ref_num_gpus_per_node={gpus}",
        f"generator.inference_engine.num_engines={gpus // s.vllm_tensor_parallel_size}",
        f"generator.inference_engine.tensor_parallel_size={s.vllm_tensor_parallel_size}",
        f"generator.inference_engine.gpu_memory_utilization={s.vllm_gpu_memory_utilization}",
        "generator.batched=false", f"generator.n_samples_per_prompt={s.samples_per_prompt}",
        f"generator.sampling_params.max_generate_length={s.response_length}",
        f"generator.sampling_params.temperature={s.temperature}",
        f"trainer.max_prompt_length={s.max_prompt_length}",
        f"trainer.train_batch_size={s.prompts_per_step}", f"trainer.policy_mini_batch_size={s.prompts_per_step}",
        f"trainer.epochs={s.total_epochs}", f"trainer.seed={s.seed}", f"trainer.ckpt_interval={s.save_freq}",
        "trainer.eval_interval=-1", "trainer.eval_before_train=false",
        f"trainer.ckpt_path={output / 'checkpoints'}", f"trainer.export_path={output / 'exports'}",
        f"trainer.log_path={output / 'logs'}",
        f"trainer.logger={'wandb' if s.with_tracking else 'console'}", f"trainer.project_name={s.wandb_project}",
        f"trainer.run_name={s.exp_name}",
    ]  # fmt: skip


def skyrl_command(settings: SkyRLSettings, files: RunFiles, python: str, extra: Sequence[str]) -> Trainer:
    """``python -m flip_reward.integrations.skyrl OVERRIDES EXTRA``; nothing of its own in the environment."""
    return Trainer([python, "-m", ENTRYPOINT, *skyrl_overrides(settings, files), *extra], {})


SETTINGS = SkyRLSettings
RECIPE = TrainerRecipe(
    name="skyrl",
    requires="skyrl",
    reward=f"{ENTRYPOINT}:FlipEnv (env_class {ENV_ID})",
    row=skyrl_row,
    command=skyrl_command,
    data_name="train.parquet",
)
