"""``flip-reward launch roll``: GRPO with FLIP rewards in ROLL (alibaba/ROLL, run from a checkout): its RLVR pipeline
``python ROLL_DIR/examples/start_rlvr_pipeline.py --config_path PATH --config_name flip_rlvr``, where the pipeline
YAML written here has one reward domain, ``flip``, whose ``worker_cls`` is
``flip_reward.integrations.roll.FlipRewardWorker``; DATASETS become ROLL's jsonl rows (``roll_row``).

How ROLL reads it (alibaba/ROLL 8eb27cc): the script composes the YAML with Hydra (``--config_path`` relative to
``examples/``, so it is written that way) and reads it into ``RLVRConfig`` with dacite; rows are routed to a reward
domain by their ``domain`` (else their ``tag`` through the domain's ``tag_included``); ``messages`` (a JSON string)
is templated with ``data_args.template`` for the policy. ROLL starts its Ray cluster itself (``ray start --head``)
from this command's environment, so the reward actors read the judge's URL and the ``FLIP_*`` settings from the
environment the launch adds (``command_trainer.judge_env``): no URL is written to the YAML.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flip_reward.data.rlvr import to_rlvr
from flip_reward.knobs import SettingsError, knob
from flip_reward.launch.command_trainer import CommandTrainerSettings, RunFiles, TrainerRecipe
from flip_reward.launch.trainer_run import Trainer

DOMAIN = "flip"  # the reward domain, the rows' tag and domain
WORKER_CLS = "flip_reward.integrations.roll.FlipRewardWorker"
CONFIG_NAME = "flip_rlvr"
PIPELINE_SCRIPT = Path("examples", "start_rlvr_pipeline.py")
TRAIN_STRATEGIES = ("fsdp2_train", "megatron_train")


@dataclass(frozen=True)
class RollSettings(CommandTrainerSettings):
    """One ``flip-reward launch roll`` run: the shared knobs and ROLL's own."""

    exp_name: str = knob("EXP_NAME", "roll_grpo_flip", "run name")
    roll_dir: str = knob("ROLL_DIR", "ROLL", "a checkout of alibaba/ROLL (its examples/start_rlvr_pipeline.py is run)")
    roll_template: str = knob(
        "ROLL_TEMPLATE", "qwen3", "ROLL's chat template of the policy (data_args.template: qwen3, qwen2_5, native...)"
    )
    roll_strategy: str = knob(
        "ROLL_STRATEGY", "fsdp2_train", "ROLL's training strategy of the policy", choices=TRAIN_STRATEGIES
    )
    roll_max_steps: int = knob("ROLL_MAX_STEPS", 500, "pipeline steps (ROLL's max_steps)", minimum=1)
    roll_save_steps: int = knob("ROLL_SAVE_STEPS", 100, "checkpoint every N steps (ROLL's save_steps)", minimum=1)
    roll_reward_workers: int = knob(
        "ROLL_REWARD_WORKERS",
        1,
        "FLIP reward actors (CPU; each judges FLIP_CONCURRENCY requests at once)",
        minimum=1,
    )
    vllm_gpu_memory_utilization: float = knob("VLLM_GPU_MEMORY_UTILIZATION", 0.6, "vLLM's share of GPU memory")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (Path(self.roll_dir) / PIPELINE_SCRIPT).is_file():
            raise SettingsError(
                f"ROLL_DIR {self.roll_dir!r}: no {PIPELINE_SCRIPT} there (a checkout of github.com/alibaba/ROLL; "
                "ROLL is not on PyPI)"
            )


def roll_row(row: object, number: int) -> dict:
    """One DATASETS row as ROLL's: the chat up to the last user message as a JSON string (as ROLL's data files hold
    it), that message as ``ground_truth``, the FLIP domain as ``tag`` and ``domain``; RowError names a bad field."""
    rlvr = to_rlvr(row, number, DOMAIN)
    return {
        "id": str(number),
        "tag": DOMAIN,
        "domain": DOMAIN,
        "messages": json.dumps(rlvr["messages"], ensure_ascii=False),
        "ground_truth": rlvr["ground_truth"],
    }


def strategy(settings: RollSettings, gpus: int) -> dict[str, Any]:
    """The policy's training strategy, as ROLL's examples configure it."""
    if settings.roll_strategy == "megatron_train":
        config = {"tensor_model_parallel_size": 1, "pipeline_model_parallel_size": 1, "use_distributed_optimizer": True}
    else:
        config = {"fsdp_size": gpus, "param_dtype": "bf16", "reduce_dtype": "float32", "reshard_after_forward": True}
    return {"strategy_name": settings.roll_strategy, "strategy_config": config}


def pipeline_config(settings: RollSettings, files: RunFiles) -> dict[str, Any]:
    """ROLL's RLVR pipeline config (``RLVRConfig``'s fields) for the run: GRPO without KL, one optimizer step per
    rollout batch, the policy trained and served (vLLM) on the training GPUs, the FLIP reward domain on CPU."""
    gpus = len(settings.training_gpus())
    devices = f"list(range(0,{gpus}))"  # ROLL evaluates it; indices into CUDA_VISIBLE_DEVICES
    output = Path(settings.output_dir).absolute()
    samples = settings.prompts_per_step * settings.samples_per_prompt
    return {
        "exp_name": settings.exp_name,
        "seed": settings.seed,
        "output_dir": str(output),
        "logging_dir": str(output / "logs"),
        "checkpoint_config": {"type": "file_system", "output_dir": str(output / "checkpoints")},
        "track_with": "tensorboard",
        "tracker_kwargs": {"log_dir": str(output / "tensorboard")},
        "num_gpus_per_node": gpus,
        "max_steps": settings.roll_max_steps,
        "save_steps": settings.roll_save_steps,
        "logging_steps": 1,
        "rollout_batch_size": settings.prompts_per_step,
        "prompt_length": settings.max_prompt_length,
        "response_length": settings.response_length,
        "num_return_sequences_in_group": settings.samples_per_prompt,
        "ppo_epochs": 1,
        "adv_estimator": "grpo",
        "init_kl_coef": 0.0,
        "use_kl_loss": False,
        "pretrain": settings.model_name_or_path,
        "actor_train": {
            "model_args": {"dtype": "bf16", "disable_gradient_checkpointing": False},
            "training_args": {
                "learning_rate": settings.learning_rate,
                "weight_decay": 0,
                "per_device_train_batch_size": 1,
                "gradient_accumulation_steps": max(1, samples // gpus),
            },
            "data_args": {
                "template": settings.roll_template,
                "file_name": [str(files.data)],
                "messages": "messages",
                "domain_interleave_probs": {DOMAIN: 1.0},
            },
            "strategy_args": strategy(settings, gpus),
            "device_mapping": devices,
            "infer_batch_size": 1,
        },
        "actor_infer": {
            "model_args": {"dtype": "bf16", "disable_gradient_checkpointing": True},
            "generating_args": {
                "max_new_tokens": settings.response_length,
                "temperature": settings.temperature,
                "top_p": 1.0,
                "num_beams": 1,
                "num_return_sequences": settings.samples_per_prompt,
            },
            "data_args": {"template": settings.roll_template},
            "strategy_args": {
                "strategy_name": "vllm",
                "strategy_config": {
                    "gpu_memory_utilization": settings.vllm_gpu_memory_utilization,
                    "max_model_len": settings.max_prompt_length + settings.response_length,
                },
            },
            "device_mapping": devices,
            "infer_batch_size": 1,
        },
        "rewards": {
            DOMAIN: {
                "worker_cls": WORKER_CLS,
                "model_args": {"model_name_or_path": settings.model_name_or_path},  # decodes the policy's tokens
                "data_args": {"template": settings.roll_template},
                "tag_included": [DOMAIN],
                "world_size": settings.roll_reward_workers,
            }
        },
    }


def config_file(files: RunFiles) -> Path:
    return files.config_dir / f"{CONFIG_NAME}.yaml"


def config_files(settings: RollSettings, files: RunFiles) -> dict[Path, str]:
    return {config_file(files): yaml.safe_dump(pipeline_config(settings, files), sort_keys=False)}


def roll_command(settings: RollSettings, files: RunFiles, python: str, extra: Sequence[str]) -> Trainer:
    """ROLL's RLVR pipeline on the written YAML (Hydra wants its folder relative to the script's), ROLL_DIR on
    PYTHONPATH; the script takes no other argument, so none is passed on."""
    if extra:
        raise SettingsError(
            f"ROLL's {PIPELINE_SCRIPT} takes only --config_path and --config_name, not {' '.join(extra)!r}: its "
            f"settings are the launcher's knobs (or edit OUTPUT_DIR/config/{CONFIG_NAME}.yaml and run the printed "
            "command)"
        )
    roll_dir = Path(settings.roll_dir).absolute()
    config_path = os.path.relpath(files.config_dir, roll_dir / PIPELINE_SCRIPT.parent)
    command = [python, str(roll_dir / PIPELINE_SCRIPT), "--config_path", config_path, "--config_name", CONFIG_NAME]
    paths = [str(roll_dir), os.environ.get("PYTHONPATH", "")]
    return Trainer(command, {"PYTHONPATH": os.pathsep.join(filter(None, paths))})


SETTINGS = RollSettings
# ROLL asserts that its domain has more rows than rollout_batch_size (rlvr_pipeline.py) once its workers are up
RECIPE = TrainerRecipe(
    "roll", None, WORKER_CLS, roll_row, roll_command, config_files, min_rows=lambda s: s.prompts_per_step + 1
)
HELP = "GRPO in ROLL (its RLVR pipeline, from a checkout)"
DESCRIPTION = (
    "GRPO with FLIP rewards in ROLL (alibaba/ROLL, from the checkout ROLL_DIR): DATASETS converted to ROLL's jsonl "
    f"rows here, the RLVR pipeline YAML written with the FLIP reward domain (worker_cls {WORKER_CLS}), the judge "
    f"started (unless JUDGE_BASE_URL), python ROLL_DIR/{PIPELINE_SCRIPT} run as its own process group, then it and "
    "the judge stopped in order on its end, a failure, Ctrl-C, SIGTERM or SIGHUP."
)
