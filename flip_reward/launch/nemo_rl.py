"""``flip-reward launch nemo-rl``: GRPO with FLIP rewards in NeMo-RL, with the FLIP resources server as its NeMo Gym
environment: NeMo-RL's knobs, DATASETS as NeMo Gym rows, the files it reads and its command.

How NeMo-RL runs it (``examples/nemo_gym/run_grpo_nemo_gym.py`` of a NeMo-RL checkout, read at its main of 2026-08):
``--config`` names a YAML file whose ``defaults:`` inherits another (``nemo_rl.utils.config.load_config``), later
arguments are Hydra overrides; ``data.train.data_path`` is a JSONL file of NeMo Gym rows (``NemoGymDataset``: each
row's ``responses_create_params`` and its ``agent_ref``, the Gym agent that runs it); ``env.nemo_gym`` is NeMo Gym's
initial global config, which NeMo-RL's ``NemoGym`` Ray actor (started with the driver's environment) hands to Gym's
``RunHelper``: each path of ``config_paths`` is found under ``NEMO_GYM_EXTRA_ROOTS`` (here the run's own Gym
root, where this launcher writes the FLIP server's folder) or Gym's own tree (the policy's vLLM server config), and
each server is started from its folder. The simple agent ``flip_simple_agent`` asks the policy, then POSTs the
answer to the FLIP server's ``/verify`` (``flip_reward.integrations.nemo_gym``), whose reward NeMo-RL trains on.
The policy's tensor-parallel size is written (NEMO_RL_TENSOR_PARALLEL) and checked against the training GPUs and the
step's samples here, since NeMo-RL checks its layout only once Ray and its workers are up.

The judge reaches the FLIP server through the environment (``HOSTED_VLLM_API_BASE``, ``FLIP_JUDGE_*``), which NeMo-RL
forwards to its Gym actor and Gym to each server; no judge URL is written to a file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import flip_reward
from flip_reward.data.rlvr import to_rlvr
from flip_reward.knobs import SettingsError, knob
from flip_reward.launch.command_trainer import CommandTrainerSettings, RunFiles, TrainerRecipe
from flip_reward.launch.trainer_run import Trainer

SERVER = "flip"  # the FLIP server's folder, resources_servers/flip, and its server type
SERVER_INSTANCE = "flip_resources_server"
AGENT = "flip_simple_agent"  # the agent_ref of every row
POLICY_MODEL = "policy_model"  # the policy's server instance, defined by Gym's vllm_model_for_training.yaml
POLICY_CONFIG = "responses_api_models/vllm_model/configs/vllm_model_for_training.yaml"
SERVER_CONFIG = f"resources_servers/{SERVER}/configs/{SERVER}.yaml"
APP = '''"""NeMo Gym entrypoint of the FLIP resources server (flip_reward.integrations.nemo_gym)."""

from flip_reward.integrations.nemo_gym import FlipResourcesServer

if __name__ == "__main__":
    FlipResourcesServer.run_webserver()
'''


@dataclass(frozen=True)
class NemoRlSettings(CommandTrainerSettings):
    """One ``flip-reward launch nemo-rl`` run: the shared knobs and NeMo-RL's own."""

    exp_name: str = knob("EXP_NAME", "nemo_rl_grpo_flip", "run name")
    nemo_rl_dir: str = knob("NEMO_RL_DIR", "RL", "a NeMo-RL checkout (github.com/NVIDIA-NeMo/RL); NeMo-RL runs in it")
    nemo_rl_config: str = knob(
        "NEMO_RL_CONFIG",
        "examples/nemo_gym/grpo_workplace_assistant_nemotron_nano_v2_9b.yaml",
        "NeMo-RL's GRPO config the run's config inherits (its `defaults:`), relative to NEMO_RL_DIR",
    )
    nemo_rl_tensor_parallel: int = knob(
        "NEMO_RL_TENSOR_PARALLEL",
        1,
        "the policy's tensor-parallel size in training (Megatron's, or DTensor's); it divides the training GPUs",
        minimum=1,
    )

    def __post_init__(self) -> None:
        """NeMo-RL's own checks on the policy's layout, before anything starts (it makes them only once Ray and the
        workers are up): the training GPUs split into tensor-parallel groups (the inherited config's pipeline and
        context parallel sizes are taken as 1, as in NeMo-RL's Gym examples), and a step's samples split evenly over
        the data-parallel ranks."""
        super().__post_init__()
        gpus, tp = len(self.training_gpus()), self.nemo_rl_tensor_parallel
        if gpus % tp:
            raise SettingsError(
                f"NEMO_RL_TENSOR_PARALLEL={tp} does not divide the {gpus} training GPU(s): NeMo-RL needs their number "
                "divisible by the policy's tensor-parallel size"
            )
        samples = self.prompts_per_step * self.samples_per_prompt
        if samples % (gpus // tp):
            raise SettingsError(
                f"PROMPTS_PER_STEP x SAMPLES_PER_PROMPT = {samples} samples per step do not split evenly over "
                f"NeMo-RL's {gpus // tp} data-parallel rank(s) (training GPUs / NEMO_RL_TENSOR_PARALLEL)"
            )


def gym_row(row: object, number: int) -> dict:
    """One NeMo Gym row: the messages up to the last user message as ``responses_create_params.input`` (that message
    is FLIP's instruction), run by the simple agent ``AGENT``; RowError names the row and field."""
    messages = to_rlvr(row, number, "general-flip")["messages"]
    return {
        "responses_create_params": {"input": messages},
        "agent_ref": {"type": "responses_api_agents", "name": AGENT},
    }


def gym_config(server: Mapping[str, Any] | None = None) -> dict:
    """The Gym config of the FLIP server (instance ``SERVER_INSTANCE``, with ``server``'s keys) and of the simple
    agent ``AGENT`` that asks ``POLICY_MODEL`` and verifies with it."""
    return {
        SERVER_INSTANCE: {"resources_servers": {SERVER: {"entrypoint": "app.py", "domain": "rlhf", **(server or {})}}},
        AGENT: {
            "responses_api_agents": {
                "simple_agent": {
                    "entrypoint": "app.py",
                    "resources_server": {"type": "resources_servers", "name": SERVER_INSTANCE},
                    "model_server": {"type": "responses_api_models", "name": POLICY_MODEL},
                }
            }
        },
    }


def flip_requirement() -> str:
    """What the FLIP server's venv installs: this checkout of flip-reward, or the installed release."""
    root = Path(flip_reward.__file__).resolve().parents[1]
    if (root / "pyproject.toml").exists():
        return f"flip-reward @ {root.as_uri()}"
    from importlib.metadata import version

    return f"flip-reward=={version('flip-reward')}"


def server_files(gym_root: Path, requirement: str, config: Mapping[str, Any]) -> dict[Path, str]:
    """The FLIP server's folder under Gym root ``gym_root``, path -> text: ``app.py`` (the entrypoint), the
    ``requirements.txt`` Gym builds its venv from, and ``configs/flip.yaml`` (the Gym ``config``)."""
    folder = gym_root / "resources_servers" / SERVER
    return {
        folder / "app.py": APP,
        folder / "requirements.txt": f"{requirement}\n",
        gym_root / SERVER_CONFIG: yaml.safe_dump(dict(config), sort_keys=False),
    }


def nemo_rl_config(settings: NemoRlSettings, files: RunFiles) -> dict:
    """The run's NeMo-RL config: NEMO_RL_CONFIG inherited, the knobs, the data, the Gym config paths; absolute
    paths throughout, since NeMo-RL runs in NEMO_RL_DIR."""
    output = Path(settings.output_dir).absolute()
    return {
        "defaults": str(Path(settings.nemo_rl_dir).absolute() / settings.nemo_rl_config),
        "grpo": {
            "num_prompts_per_step": settings.prompts_per_step,
            "num_generations_per_prompt": settings.samples_per_prompt,
            "seed": settings.seed,
            "val_period": 0,  # no validation set: NeMo-RL needs val_period 0 then
            "val_at_start": False,
            "val_at_end": False,
        },
        "policy": {
            "model_name": settings.model_name_or_path,
            "max_total_sequence_length": settings.max_prompt_length + settings.response_length,
            "generation": {
                "temperature": settings.temperature,
                # NeMo-RL gives each Gym row this as max_output_tokens (the examples': the whole sequence length)
                "max_new_tokens": settings.response_length,
                # NeMo-RL's own default (no tool parser): the Nemotron example's `nemotron_json` is no vLLM parser but
                # a plugin file of that model, and its policy server would not start for another model without it
                "vllm_cfg": {"http_server_serving_chat_kwargs": {"tool_parser": None}},
            },
            "megatron_cfg": {
                "tensor_model_parallel_size": settings.nemo_rl_tensor_parallel,
                "optimizer": {"lr": settings.learning_rate},
            },
            "dtensor_cfg": {"tensor_parallel_size": settings.nemo_rl_tensor_parallel},
        },
        "data": {"train": {"data_path": str(files.data)}, "validation": None},
        "env": {"nemo_gym": {"config_paths": [POLICY_CONFIG, SERVER_CONFIG]}},
        "checkpointing": {"checkpoint_dir": str(output / "checkpoints"), "metric_name": None},
        "logger": {"log_dir": str(output / "logs"), "wandb_enabled": False},
        "cluster": {"gpus_per_node": len(settings.training_gpus()), "num_nodes": 1},
    }


def config_path(files: RunFiles) -> Path:
    """NeMo-RL's ``--config``: the run's GRPO config, inheriting NEMO_RL_CONFIG."""
    return files.config_dir / "grpo_flip.yaml"


def gym_root(files: RunFiles) -> Path:
    """The run's NeMo Gym root (``NEMO_GYM_EXTRA_ROOTS``), which holds the FLIP server's folder."""
    return files.config_dir / "gym"


def run_files(settings: NemoRlSettings, files: RunFiles) -> dict[Path, str]:
    """NeMo-RL's config and the FLIP server's folder."""
    config = yaml.safe_dump(nemo_rl_config(settings, files), sort_keys=False)
    return {config_path(files): config, **server_files(gym_root(files), flip_requirement(), gym_config())}


def nemo_rl_command(settings: NemoRlSettings, files: RunFiles, python: str, extra: Sequence[str]) -> Trainer:
    """``uv run`` of NeMo-RL's NeMo Gym GRPO script in NEMO_RL_DIR, with the run's config; the Gym root in
    ``NEMO_GYM_EXTRA_ROOTS``."""
    script = ["python", "examples/nemo_gym/run_grpo_nemo_gym.py", "--config", str(config_path(files))]
    command = ["uv", "run", "--directory", str(Path(settings.nemo_rl_dir).absolute()), *script, *extra]
    return Trainer(command, {"NEMO_GYM_EXTRA_ROOTS": str(gym_root(files))})


SETTINGS = NemoRlSettings
RECIPE = TrainerRecipe(
    name="nemo-rl",
    requires=None,
    reward="flip_reward.integrations.nemo_gym.FlipResourcesServer",
    row=gym_row,
    command=nemo_rl_command,
    files=run_files,
)
HELP = "GRPO in NeMo-RL with FLIP as its NeMo Gym resources server"
DESCRIPTION = (
    "GRPO with FLIP rewards in NeMo-RL (examples/nemo_gym/run_grpo_nemo_gym.py of a NEMO_RL_DIR checkout, run with "
    "uv): DATASETS converted to NeMo Gym rows here, the FLIP resources server's folder and NeMo-RL's config written, "
    "the judge started (unless JUDGE_BASE_URL), NeMo-RL run as its own process group, then NeMo-RL and the judge "
    "stopped in order on its end, a failure, Ctrl-C, SIGTERM or SIGHUP."
)
