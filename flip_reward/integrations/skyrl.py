"""FLIP as a SkyRL environment: ``FlipEnv``, a skyrl_gym ``BaseTextEnv`` that ``register_flip_env()`` registers as
``flip``, and ``python -m flip_reward.integrations.skyrl KEY=VALUE...``, SkyRL's training entrypoint with ``flip``
registered in the Ray task that runs the trainer (SkyRL's documented way for a custom environment).

How SkyRL 0.4 calls it (``skyrl.train.generators.skyrl_gym_generator.SkyRLGymGenerator``, skyrl-gym 0.4.0): for
each trajectory, ``skyrl_gym.make(env_class, env_config=..., extras=...)`` builds the environment named by the row's
``env_class`` column (else ``environment.env_class``); ``extras`` holds the row's other columns (``reward_spec``,
``extra_info``, ...) and ``max_turns``; ``env_config`` is the config's ``environment.skyrl_gym.<env_class>``
section, which SkyRL's config has none of for ``flip`` (so ``{}``: the judge comes from ``HOSTED_VLLM_API_BASE`` and
the ``FLIP_*`` variables). The generator then calls ``init(prompt)`` with the row's chat messages and ``step(text)``
with the response decoded without special tokens, both through ``_run_in_executor_if_available``: on a thread of its
env pool (``environment.skyrl_gym.max_env_workers`` threads, 32 by default), or on its own event-loop thread when
``max_env_workers=0``. ``step`` is synchronous and waits for ``score_sample_sync``, which judges on this process's
judging loop thread, so it works on either thread. With ``generator.batched=true`` SkyRL steps the batch's
environments one after another; with ``batched=false`` (one agent loop per trajectory) up to ``max_env_workers``
judgments run at once.

The instruction FLIP recovers is ``extras["reward_spec"]["ground_truth"]`` when the row has one, with the prompt's
turns before its last user message as context; else the prompt's last user message. One step: observations ``[]``,
the reward, ``done=True``, and ``result_info`` as metadata (the F1, the inferred instruction, the error and its
type). SkyRL does not read step metadata; it logs ``get_metrics()``, averaged over the batch, as
``environment/flip_f1``, ``environment/flip_judge_error`` and the other failure rates. A judge failure is reward 0.0
with its error, never an exception into the trainer. With ``FLIP_SAMPLE_LOG`` each process traces its samples.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput, ConversationType
from skyrl_gym.envs.registration import register, registry

from flip_reward.core.conversation import with_instruction
from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult
from flip_reward.integrations.process_reward import result_info, score_sample_sync
from flip_reward.judge.urls import redact_url

ENV_ID = "flip"
ENTRY_POINT = "flip_reward.integrations.skyrl:FlipEnv"
JUDGE_ENVIRONMENT = ("HOSTED_VLLM_API_BASE",)  # with every FLIP_* variable: what the trainer's task must see
PATH_VARIABLES = ("FLIP_SAMPLE_LOG", "FLIP_CACHE_DIR", "FLIP_TOKENIZER")  # read relative to the process's directory


def register_flip_env(env_id: str = ENV_ID) -> None:
    """Register ``FlipEnv`` with skyrl_gym as ``env_id`` in this process (again is a no-op); skyrl_gym refuses an
    id that another environment holds."""
    spec = registry.get(env_id)
    if spec is None or spec.entry_point != ENTRY_POINT:
        register(id=env_id, entry_point=ENTRY_POINT)


def flip_prompt(prompt: object, extras: Mapping[str, Any]) -> object:
    """What FLIP scores against: the prompt messages, their last user message replaced by the row's
    ``reward_spec.ground_truth`` when it has one (anything but a string is passed on for FlipReward to report)."""
    reward_spec = extras.get("reward_spec")
    ground_truth = reward_spec.get("ground_truth") if isinstance(reward_spec, Mapping) else None
    if ground_truth is None:
        return prompt
    if not isinstance(ground_truth, str):
        return ground_truth
    messages = prompt if isinstance(prompt, Sequence) and not isinstance(prompt, str) else []
    return with_instruction(messages, ground_truth)


def flip_metrics(result: FlipResult) -> dict[str, float]:
    """One episode's numbers for SkyRL's ``environment/`` metrics: the F1, a 0/1 flag per failure kind, the tokens
    the restatement guard masked (the same keys every time)."""
    flags = {f"flip_{kind.failure}": float(result.error_type == kind) for kind in ErrorType}
    return {"flip_f1": float(result.f1), **flags, "flip_restatement_masked": float(result.restatement_masked)}


class FlipEnv(BaseTextEnv):
    """One-step FLIP environment: the reward of the response is the FLIP reward for the row's instruction."""

    def __init__(self, env_config: object = None, extras: Mapping[str, Any] | None = None):
        """``env_config``: SkyRL's config has no section for ``flip`` (it passes ``{}``); the judge comes from the
        environment. ``extras``: the row's columns but ``prompt`` and ``env_class``."""
        super().__init__()
        self.extras = dict(extras or {})
        self.prompt: object = None
        self.result: FlipResult | None = None

    def init(self, prompt: ConversationType) -> tuple[ConversationType, dict[str, Any]]:
        """The prompt as it is, kept as a copy: SkyRL extends the list it gets back with the response right after
        ``step``, while that step's trace line may still wait to be written."""
        self.prompt = copy.copy(prompt)
        return prompt, {}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """The one step: ``action`` (the response) scored by FLIP, the episode done; never raises."""
        self.turns += 1
        self.result = score_sample_sync(flip_prompt(self.prompt, self.extras), action)
        return BaseTextEnvStepOutput(
            observations=[], reward=float(self.result.reward), done=True, metadata=result_info(self.result)
        )

    def get_metrics(self) -> dict[str, float]:
        """The episode's ``flip_metrics`` (none before the step), which SkyRL averages over the batch."""
        return {} if self.result is None else flip_metrics(self.result)


def judge_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The judge's variables (``FLIP_*`` and ``HOSTED_VLLM_API_BASE``) of this process for the trainer's Ray task,
    their paths made absolute (a Ray worker need not start in this directory): ``FLIP_SAMPLE_LOG``,
    ``FLIP_CACHE_DIR``, and ``FLIP_TOKENIZER`` when it names a local directory (not a Hub id). A judge URL that
    holds credentials is left out (Ray shows a task's runtime_env in its logs and dashboard): the workers of the local
    Ray cluster SkyRL starts inherit it from this process."""
    environ = os.environ if environ is None else environ
    forwarded = {
        name: value for name, value in environ.items() if name.startswith("FLIP_") or name in JUDGE_ENVIRONMENT
    }
    if redact_url(forwarded.get("HOSTED_VLLM_API_BASE")) != forwarded.get("HOSTED_VLLM_API_BASE"):
        del forwarded["HOSTED_VLLM_API_BASE"]
    for name in PATH_VARIABLES:
        if forwarded.get(name) and (name != "FLIP_TOKENIZER" or Path(forwarded[name]).exists()):
            forwarded[name] = str(Path(forwarded[name]).absolute())
    return forwarded


def run_experiment(cfg: Any) -> None:
    """The body of the trainer's Ray task, as SkyRL's ``main_base.skyrl_entrypoint``, with ``flip`` registered
    first: the generator (and so every ``skyrl_gym.make``) lives in this task's process."""
    from skyrl.train.entrypoints.main_base import BasePPOExp

    register_flip_env()
    BasePPOExp(cfg).run()


def main(argv: Sequence[str] | None = None) -> None:
    """SkyRL's ``main_base.main`` with ``run_experiment`` as the task: ``KEY=VALUE`` overrides of SkyRL's config."""
    import ray
    from skyrl.train.config import SkyRLTrainConfig
    from skyrl.train.entrypoints.main_base import validate_cfg
    from skyrl.train.utils import initialize_ray

    cfg = SkyRLTrainConfig.from_cli_overrides(list(sys.argv[1:] if argv is None else argv))
    validate_cfg(cfg)
    initialize_ray(cfg)
    task = ray.remote(num_cpus=1)(run_experiment).options(runtime_env={"env_vars": judge_environment()})
    ray.get(task.remote(cfg))


if __name__ == "__main__":
    from flip_reward.integrations.skyrl import (
        main as skyrl_main,
    )  # the module by name, so Ray pickles its task by reference

    skyrl_main()
