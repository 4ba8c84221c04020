"""``flip-reward launch slime``: GRPO with FLIP rewards in slime (THUDM/slime, not on PyPI: its ``train.py`` run from
a checkout, read at 624b824a) with ``flip_reward.integrations.slime.flip_rm`` as its ``--custom-rm-path``: slime's
knobs (``SlimeSettings``), DATASETS as slime's prompt rows (``slime_row``) and its command (``slime_command``).

slime's ``train.py`` parses Megatron's arguments, slime's (``slime/utils/arguments.py``) and SGLang's (``--sglang-*``)
from one command line. Megatron cannot read a model's architecture from a checkpoint, so slime ships it per model
as a bash array, ``MODEL_ARGS`` in ``scripts/models/NAME.sh``: the command holds that array as the checkout's
script sets it (read with bash). The rows are ``{"prompt": messages, "label": instruction}``: slime templates the
messages with the policy's tokenizer (``--apply-chat-template``) and hands the label to the reward as the
instruction. Training and rollout share the GPUs (``--colocate``); ``train.py`` starts a local Ray cluster, whose
actors (slime's rollout manager, where the reward runs) inherit the environment the launch adds: the judge's URL and
the ``FLIP_JUDGE_*`` knobs (``command_trainer.judge_env``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flip_reward.data.rlvr import to_rlvr
from flip_reward.knobs import SettingsError, knob
from flip_reward.launch.command_trainer import CommandTrainerSettings, RunFiles, TrainerRecipe
from flip_reward.launch.run_knobs import TrackingKnobs
from flip_reward.launch.trainer_run import Trainer

REWARD = "flip_reward.integrations.slime.flip_rm"
MODEL_ARGS_READ_S = 30  # how long reading a model's MODEL_ARGS with bash may take


@dataclass(frozen=True)
class SlimeSettings(TrackingKnobs, CommandTrainerSettings):
    """One ``flip-reward launch slime`` run, resolved once and checked in ``__post_init__``."""

    exp_name: str = knob("EXP_NAME", "slime_grpo_flip", "run name")
    slime_dir: str = knob("SLIME_DIR", ".", "the checkout of THUDM/slime: its train.py and scripts/models")
    slime_model_args: str = knob(
        "SLIME_MODEL_ARGS",
        "qwen3-4B",
        "the policy's Megatron architecture: NAME of the checkout's scripts/models/NAME.sh, or a path to a script "
        "like it (it sets the bash array MODEL_ARGS)",
    )
    slime_ref_load: str = knob(
        "SLIME_REF_LOAD",
        "",
        "the policy as a Megatron checkpoint (slime's tools/convert_hf_to_torch_dist.py), the reference and the "
        "start of training; unset: slime loads the Hugging Face weights of MODEL_NAME_OR_PATH, a local directory",
    )
    total_epochs: int = knob("TOTAL_EPOCHS", 1, "passes over the data (slime's --num-epoch)", minimum=1)
    save_freq: int = knob("SAVE_FREQ", 50, "checkpoint every N rollouts (slime's --save-interval)")
    slime_gpus_per_engine: int = knob(
        "SLIME_GPUS_PER_ENGINE", 1, "GPUs of one SGLang engine (--rollout-num-gpus-per-engine)", minimum=1
    )
    slime_sglang_mem_fraction: float = knob(
        "SLIME_SGLANG_MEM_FRACTION", 0.7, "SGLang's static share of GPU memory beside training", above=0
    )
    slime_max_tokens_per_gpu: int = knob(
        "SLIME_MAX_TOKENS_PER_GPU", 9216, "tokens per GPU in a training micro-batch (dynamic batch size)", minimum=1
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (Path(self.slime_dir) / "train.py").is_file():
            raise SettingsError(
                f"SLIME_DIR: no train.py in {self.slime_dir!r}: give the checkout of THUDM/slime "
                "(git clone https://github.com/THUDM/slime)"
            )
        if not self.model_args_script().is_file():
            raise SettingsError(f"SLIME_MODEL_ARGS: no script {self.model_args_script()} (slime's scripts/models)")
        if not self.slime_ref_load and not (Path(self.model_name_or_path) / "config.json").is_file():
            raise SettingsError(
                f"MODEL_NAME_OR_PATH {self.model_name_or_path!r} is no local Hugging Face directory, whose weights "
                "slime could load: give one, or SLIME_REF_LOAD (a Megatron checkpoint of it)"
            )
        if self.temperature <= 0:
            raise SettingsError(f"TEMPERATURE must be > 0 for slime (0 is greedy decoding), got {self.temperature:g}")

    def model_args_script(self) -> Path:
        """SLIME_MODEL_ARGS as a path: a name is the checkout's scripts/models/NAME.sh."""
        value = self.slime_model_args
        if "/" in value or value.endswith(".sh"):
            return Path(value)
        return Path(self.slime_dir) / "scripts" / "models" / f"{value}.sh"


def slime_row(row: object, number: int) -> dict:
    """One DATASETS row as slime reads it with ``--input-key prompt --label-key label``: the messages up to the
    instruction, and the instruction."""
    rlvr = to_rlvr(row, number, "general-flip")
    return {"prompt": rlvr["messages"], "label": rlvr["ground_truth"]}


def model_args(script: Path) -> list[str]:
    """The ``MODEL_ARGS`` array that ``script`` sets, as bash expands it; SettingsError when it cannot be read."""
    read = 'source "$1" >/dev/null && [ "${#MODEL_ARGS[@]}" -gt 0 ] && printf "%s\\0" "${MODEL_ARGS[@]}"'
    try:
        done = subprocess.run(
            ["bash", "-c", read, "model-args", str(script)],
            capture_output=True,
            text=True,
            timeout=MODEL_ARGS_READ_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SettingsError(f"SLIME_MODEL_ARGS: cannot read {script}: {error}") from None
    words = done.stdout.split("\0")[:-1]
    if done.returncode != 0 or not words:
        reason = done.stderr.strip().splitlines()[-1:] or ["it sets no MODEL_ARGS"]
        raise SettingsError(f"SLIME_MODEL_ARGS: cannot read MODEL_ARGS from {script}: {reason[0]}")
    return words


def checkpoint_args(settings: SlimeSettings, checkpoints: Path) -> list[str]:
    """Where the policy starts and is saved: from SLIME_REF_LOAD (resumed from the run's own checkpoints when there
    are any, as slime does), else from MODEL_NAME_OR_PATH's Hugging Face weights."""
    saving = ["--save", str(checkpoints), "--save-interval", str(settings.save_freq)]
    if settings.slime_ref_load:
        return ["--ref-load", absolute(settings.slime_ref_load), "--load", str(checkpoints), *saving]
    return ["--load", absolute(settings.model_name_or_path), *saving]


def absolute(name: str) -> str:
    """A local path made absolute (slime's Ray actors need not share the launcher's working directory); a hub
    name as it is."""
    return str(Path(name).absolute()) if Path(name).exists() else name


def slime_arguments(settings: SlimeSettings, files: RunFiles) -> list[str]:
    """slime's own arguments for the run (and the Megatron and SGLang ones its scripts pass), model args apart."""
    s = settings
    tracking = (
        ["--use-wandb", "--wandb-project", s.wandb_project, "--wandb-group", s.exp_name] if s.with_tracking else []
    )
    return [
        "--actor-num-nodes", "1", "--actor-num-gpus-per-node", str(len(s.training_gpus())), "--colocate",
        "--rollout-num-gpus-per-engine", str(s.slime_gpus_per_engine),
        "--hf-checkpoint", absolute(s.model_name_or_path),
        *checkpoint_args(s, files.config_dir.parent / "checkpoints"),
        "--prompt-data", str(files.data), "--input-key", "prompt", "--label-key", "label", "--apply-chat-template",
        "--rollout-shuffle", "--custom-rm-path", REWARD,
        "--num-epoch", str(s.total_epochs), "--rollout-batch-size", str(s.prompts_per_step),
        "--n-samples-per-prompt", str(s.samples_per_prompt),
        "--global-batch-size", str(s.prompts_per_step * s.samples_per_prompt),
        "--rollout-max-prompt-len", str(s.max_prompt_length), "--rollout-max-response-len", str(s.response_length),
        "--rollout-temperature", f"{s.temperature:g}",
        "--advantage-estimator", "grpo", "--lr", f"{s.learning_rate:g}", "--seed", str(s.seed),
        "--use-dynamic-batch-size", "--max-tokens-per-gpu", str(s.slime_max_tokens_per_gpu),
        "--attention-dropout", "0.0", "--hidden-dropout", "0.0",
        "--sglang-mem-fraction-static", f"{s.slime_sglang_mem_fraction:g}",
        *tracking,
    ]  # fmt: skip


def slime_command(settings: SlimeSettings, files: RunFiles, python: str, extra: Sequence[str]) -> Trainer:
    """``python SLIME_DIR/train.py``, the model's MODEL_ARGS, slime's arguments, then ``extra``; unbuffered output and
    one CUDA connection per device, as slime's run scripts set them."""
    train = Path(settings.slime_dir).absolute() / "train.py"
    command = [python, str(train), *model_args(settings.model_args_script()), *slime_arguments(settings, files)]
    return Trainer([*command, *extra], {"PYTHONUNBUFFERED": "1", "CUDA_DEVICE_MAX_CONNECTIONS": "1"})


SETTINGS = SlimeSettings
RECIPE = TrainerRecipe("slime", None, REWARD, slime_row, slime_command)
HELP = "GRPO in slime (a checkout's train.py)"
DESCRIPTION = (
    "GRPO with FLIP rewards in slime (SLIME_DIR/train.py, the reward flip_reward.integrations.slime.flip_rm as its "
    "--custom-rm-path): DATASETS converted to slime's prompt rows here, the judge started (unless JUDGE_BASE_URL), "
    "slime run as its own process group, then slime and the judge stopped in order on its end, a failure, Ctrl-C, "
    "SIGTERM or SIGHUP."
)
