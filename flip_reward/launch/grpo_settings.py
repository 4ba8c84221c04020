"""Settings of ``flip-reward launch open-instruct``: ``GrpoFastSettings``, every knob of a GRPO run with upstream
open-instruct's grpo_fast.py (flag > environment > preset ``configs/grpo_NAME.env`` > default), checked up front,
with the values derived from them (learners and vLLM engines, pack length, backend timeout, the trainer's GPUs)."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flip_reward.data.mixes import DatasetError, parse_mixer
from flip_reward.knobs import SettingsError, knob, resolve
from flip_reward.launch.run_knobs import RunKnobs, TrackingKnobs
from flip_reward.presets import Preset, checked_preset
from flip_reward.serving.judge_fleet import WILDCARD_HOSTS

VERIFIERS = ("general-flip", "general-quality")
DEFAULT_DATASETS = {
    "general-flip": "yikeee/rlvr_general_chat_flip 1.0",
    "general-quality": "yikeee/rlvr_general_chat 1.0",
}
EXP_NAMES = {"general-flip": "grpo_flip", "general-quality": "grpo_llmjudge"}
BACKENDS = ("auto", "local", "open-instruct")
LAUNCHER_MODULE = "flip_reward.integrations.open_instruct.launch"
# Chat templates whose generation prompt opens <think>: a response then starts inside the reasoning.
THINKER_TEMPLATES = (
    "olmo_thinker",
    "olmo_thinker_remove_intermediate_thinking",
    "tulu_thinker",
    "tulu_thinker_r1_style",
)
THINKER_PREFIXES = ("r1_simple_chat_postpend_think",)
MIN_BACKEND_TIMEOUT_MIN = 120  # upstream's default --backend_timeout (minutes)


def _even_if_empty(env: str) -> Any:
    """The reader of a knob whose empty value means "none" (CHAT_TEMPLATE=, STOP_STRINGS=): set, even to "", counts
    (for other knobs an empty value is unset)."""
    return lambda source, partial: source.get(env)


def opens_think(chat_template: str) -> bool:
    """Whether ``chat_template``'s generation prompt opens ``<think>`` (so FLIP_THINK_PREFILLED defaults to 1)."""
    return chat_template in THINKER_TEMPLATES or chat_template.startswith(THINKER_PREFIXES)


def default_backend_timeout(s: Any) -> int:
    """grpo_fast's --backend_timeout (minutes): one judge request (JUDGE_TIMEOUT, seconds) plus an hour, at least
    upstream's 120."""
    return max(math.ceil(s.judge_timeout / 60) + 60, MIN_BACKEND_TIMEOUT_MIN)


@dataclass(frozen=True)
class GrpoReward:
    """The reward of a GRPO run, whatever its backend (``launch open-instruct`` and ``launch local``)."""

    verifier: str = knob(
        "GRPO_VERIFIER",
        "general-flip",
        "the reward: general-flip (FLIP) or general-quality (upstream's pointwise judge); picks the default DATASETS "
        "and EXP_NAME",
        choices=VERIFIERS,
    )


@dataclass(frozen=True)
class GrpoChoice(GrpoReward):
    """What ``launch open-instruct`` settles before its other knobs (flag > environment > default, no preset): the
    reward, the backend, and the preset of grpo_fast.py (read once, by ``read_preset``)."""

    backend: str = knob(
        "BACKEND",
        "auto",
        "open-instruct (grpo_fast.py, CUDA GPUs), local (TRL on this machine), or auto: open-instruct when a CUDA GPU "
        "is visible and open_instruct imports, else local",
        choices=BACKENDS,
    )
    preset: str = knob(
        "PRESET",
        "1node",
        "configs/grpo_NAME.env (1node, 1gpu, multinode) or a path to a .env file; grpo_fast.py's only (the local "
        "backend's is LOCAL_PRESET)",
    )

    def read_preset(self) -> Preset:
        """The preset PRESET names; SettingsError for a typo or a key that is no knob of GrpoFastSettings (whatever
        the backend)."""
        return checked_preset("grpo", self.preset, GrpoFastSettings)


@dataclass(frozen=True)
class GrpoFastSettings(TrackingKnobs, RunKnobs):
    """One GRPO run with upstream grpo_fast.py, resolved once (``from_choice``), checked in ``__post_init__``.

    ``verifier`` and ``preset`` are those of the ``GrpoChoice`` it is resolved with, ``preset_origin`` where the
    preset was read from; ``trainer_gpus`` is the single-node trainer's CUDA_VISIBLE_DEVICES (None when Ray brings
    its own: several nodes, or RAY_ADDRESS)."""

    verifier: str
    preset: str
    preset_origin: str
    model_name_or_path: str = knob(
        "MODEL_NAME_OR_PATH", "allenai/Olmo-3-7B-Think-DPO", "policy (hub name or directory)"
    )
    datasets: str = knob(
        "DATASETS",
        lambda s: DEFAULT_DATASETS[s.verifier],
        "training mix for --dataset_mixer_list, 'NAME AMOUNT [NAME AMOUNT ...]': hub datasets or local "
        ".jsonl/.parquet files in the RLVR schema",
        shown="the verifier's: yikeee/rlvr_general_chat_flip 1.0 or yikeee/rlvr_general_chat 1.0",
    )
    exp_name: str = knob(
        "EXP_NAME", lambda s: EXP_NAMES[s.verifier], "run name", shown="grpo_flip or grpo_llmjudge (the verifier's)"
    )
    judge_server_args: str = knob(
        "JUDGE_SERVER_ARGS",
        lambda s: f"--max-model-len {s.judge_max_context}",
        "more judge server arguments (set empty: none)",
        shown="--max-model-len JUDGE_MAX_CONTEXT",
        read=_even_if_empty("JUDGE_SERVER_ARGS"),
    )
    judge_router_args: str = knob(
        "JUDGE_ROUTER_ARGS",
        lambda s: f"--request-timeout-secs {math.ceil(s.judge_timeout)}",
        "more vllm-router arguments (set empty: none)",
        shown="--request-timeout-secs JUDGE_TIMEOUT",
        read=_even_if_empty("JUDGE_ROUTER_ARGS"),
    )
    chat_template: str = knob(
        "CHAT_TEMPLATE",
        "olmo_thinker",
        "open-instruct chat template (--chat_template_name; set empty: the tokenizer's)",
        read=_even_if_empty("CHAT_TEMPLATE"),
    )
    think_prefilled: bool = knob(
        "FLIP_THINK_PREFILLED",
        lambda s: opens_think(s.chat_template),
        "the chat template opens <think> in the generation prompt (a response that never closes it shows the judge "
        "nothing)",
        shown="on for olmo_thinker, tulu_thinker, ... (templates that open <think>)",
    )
    local_evals: str = knob(
        "LOCAL_EVALS",
        "",
        "eval mix 'NAME COUNT ...' or none; unset: LOCAL_EVAL_COUNT prompts of the first dataset, held out of "
        "training when it is a local file",
    )
    local_eval_count: int = knob("LOCAL_EVAL_COUNT", 16, "eval prompts taken from the first dataset", minimum=0)
    local_eval_splits: str = knob("LOCAL_EVAL_SPLITS", "train", "split(s) of the eval mix")
    local_eval_every: int = knob("LOCAL_EVAL_EVERY", 25, "steps between in-loop evals")
    num_nodes: int = knob("NUM_NODES", 1, "nodes of the run", minimum=1)
    ray_address: str = knob("RAY_ADDRESS", "", "an existing Ray cluster (its nodes bring the GPUs)")
    single_gpu_mode: bool = knob("SINGLE_GPU_MODE", False, "learner and vLLM share one GPU (--single_gpu_mode)")
    vllm_tensor_parallel_size: int = knob("VLLM_TENSOR_PARALLEL_SIZE", 1, "GPUs per vLLM engine", minimum=1)
    num_learners_per_node: str = knob(
        "NUM_LEARNERS_PER_NODE",
        "",
        "DeepSpeed learners, one count per node ('8' or '8 8')",
        shown="half of the training GPUs, rounded up; 1 with SINGLE_GPU_MODE (several nodes: must be set)",
    )
    vllm_num_engines: int | None = knob(
        "VLLM_NUM_ENGINES",
        None,
        "vLLM engines",
        shown="the training GPUs the learners leave / VLLM_TENSOR_PARALLEL_SIZE (several nodes: must be set)",
    )
    vllm_gpu_memory_utilization: float = knob("VLLM_GPU_MEMORY_UTILIZATION", 0.9, "vLLM's share of GPU memory")
    vllm_enforce_eager: bool = knob("VLLM_ENFORCE_EAGER", False, "vLLM without CUDA graphs (--vllm_enforce_eager)")
    vllm_sync_backend: str = knob("VLLM_SYNC_BACKEND", "nccl", "weight sync backend (--vllm_sync_backend)")
    deepspeed_stage: int = knob("DEEPSPEED_STAGE", 3, "DeepSpeed ZeRO stage", minimum=0)
    deepspeed_zpg: int | None = knob(
        "DEEPSPEED_ZPG", None, "DeepSpeed ZeRO++ partition group", shown="the learners of one node", minimum=1
    )
    gradient_checkpointing: bool = knob("GRADIENT_CHECKPOINTING", True, "trade compute for memory")
    max_prompt_length: int = knob("MAX_PROMPT_LENGTH", 2048, "prompt budget (tokens)", minimum=1)
    response_length: int = knob("RESPONSE_LENGTH", 16384, "response budget (tokens)", minimum=1)
    pack_length: int = knob(
        "PACK_LENGTH",
        lambda s: s.max_prompt_length + s.response_length,
        "packed sequence length",
        shown="MAX_PROMPT_LENGTH + RESPONSE_LENGTH",
        minimum=1,
    )
    prompts_per_step: int = knob("PROMPTS_PER_STEP", 24, "prompts per step (--num_unique_prompts_rollout)", minimum=1)
    samples_per_prompt: int = knob(
        "SAMPLES_PER_PROMPT", 8, "samples per prompt (--num_samples_per_prompt_rollout)", minimum=1
    )
    learning_rate: float = knob("LEARNING_RATE", 1e-6, "learning rate")
    lr_scheduler: str = knob("LR_SCHEDULER", "constant", "learning rate schedule (--lr_scheduler_type)")
    beta: float = knob("BETA", 0.0, "KL coefficient (0: no reference policy is loaded)", minimum=0)
    kl_estimator: int = knob("KL_ESTIMATOR", 2, "KL estimator (--kl_estimator)")
    clip_higher: float = knob("CLIP_HIGHER", 0.272, "upper clip range (--clip_higher)")
    truncated_is_cap: float = knob(
        "TRUNCATED_IS_CAP", 2.0, "truncated importance sampling cap (--rho_clamp_upper_bound)"
    )
    async_steps: int = knob("ASYNC_STEPS", 1, "steps generation may run ahead (--async_steps)", minimum=0)
    temperature: float = knob("TEMPERATURE", 1.0, "policy sampling temperature", minimum=0)
    stop_strings: str = knob(
        "STOP_STRINGS", "</answer>", "stop string (set empty: none)", read=_even_if_empty("STOP_STRINGS")
    )
    total_episodes: int = knob("TOTAL_EPISODES", 96000, "episodes (prompts x samples) of the run", minimum=1)
    save_freq: int = knob("SAVE_FREQ", 50, "steps between checkpoints")
    backend_timeout: int = knob(
        "BACKEND_TIMEOUT",
        default_backend_timeout,
        "grpo_fast's --backend_timeout (minutes); must exceed JUDGE_TIMEOUT",
        shown="JUDGE_TIMEOUT + 60 min, at least 120",
        minimum=1,
    )
    python: str = knob("PYTHON", sys.executable, "interpreter of the trainer", shown="this interpreter")
    launcher: str = knob(
        "LAUNCHER",
        lambda s: f"{s.python} -m {LAUNCHER_MODULE}",
        "the trainer command (grpo_fast's arguments follow)",
        shown=f"PYTHON -m {LAUNCHER_MODULE}",
    )
    trainer_int_grace_s: float = knob(
        "TRAINER_INT_GRACE_S", 30.0, "seconds from SIGINT to TERM when the trainer is stopped", minimum=0
    )
    trainer_term_grace_s: float = knob(
        "TRAINER_TERM_GRACE_S", 15.0, "seconds from TERM to KILL when the trainer is stopped", minimum=0
    )

    def __post_init__(self) -> None:
        self.check_judge()
        try:
            parse_mixer(self.datasets)
            if self.local_evals and self.local_evals.lower() != "none":
                parse_mixer(self.local_evals, "LOCAL_EVALS")
        except DatasetError as error:
            raise SettingsError(str(error)) from None
        if self.backend_timeout * 60 <= self.judge_timeout:
            raise SettingsError(
                f"BACKEND_TIMEOUT ({self.backend_timeout} min) must be above JUDGE_TIMEOUT ({self.judge_timeout:g} s)"
            )
        needed = self.max_prompt_length + self.response_length
        if self.pack_length < needed:
            raise SettingsError(
                f"PACK_LENGTH ({self.pack_length}) must be >= MAX_PROMPT_LENGTH + RESPONSE_LENGTH ({needed})"
            )
        self._check_placement()
        if self.serves_here and self.num_nodes > 1 and self.judge_host not in WILDCARD_HOSTS:
            raise SettingsError(
                f"JUDGE_HOST={self.judge_host} is served on this node only, but the vLLM actors of a multi-node run "
                "reach the judge over the network: set JUDGE_HOST=0.0.0.0 (advertised as JUDGE_ADVERTISE_HOST or "
                "this host's first address)"
            )

    def _check_placement(self) -> None:
        gpus = self.trainer_gpus
        if gpus is not None and not gpus:
            raise SettingsError(f"no GPU left for training (NUM_GPUS={self.num_gpus}, JUDGE_GPUS={self.judge_gpus})")
        if gpus is not None and not self.single_gpu_mode and len(gpus) < 2:
            raise SettingsError(
                f"{len(gpus)} training GPU(s): GRPO needs one for learners and one for vLLM (or PRESET=1gpu)"
            )
        if not all(count.isdigit() for count in self.num_learners_per_node.split()):
            raise SettingsError(
                f"NUM_LEARNERS_PER_NODE must be whole numbers (one per node), got {self.num_learners_per_node!r}"
            )
        if not self.learners or self.engines is None:
            raise SettingsError(
                "set NUM_LEARNERS_PER_NODE and VLLM_NUM_ENGINES for a multi-node run (PRESET=multinode sets them)"
            )
        if self.engines < 1:
            raise SettingsError(f"VLLM_NUM_ENGINES must be >= 1, got {self.engines}")
        if gpus is not None and not self.single_gpu_mode:
            needed = sum(self.learners) + self.engines * self.vllm_tensor_parallel_size
            if needed > len(gpus):
                raise SettingsError(
                    f"{sum(self.learners)} learner(s) + {self.engines} vLLM engine(s) x TP "
                    f"{self.vllm_tensor_parallel_size} need {needed} GPUs; {len(gpus)} left for training"
                )

    @property
    def trainer_gpus(self) -> tuple[int, ...] | None:
        """The single-node trainer's CUDA_VISIBLE_DEVICES; None when Ray brings the GPUs (several nodes, or
        RAY_ADDRESS)."""
        if self.num_nodes > 1 or self.ray_address:
            return None
        return tuple(self.training_gpus())

    @property
    def learners(self) -> tuple[int, ...]:
        """DeepSpeed learners per node: NUM_LEARNERS_PER_NODE, else half the training GPUs (rounded up), 1 with
        SINGLE_GPU_MODE; () for several nodes without it."""
        if self.num_learners_per_node:
            return tuple(int(count) for count in self.num_learners_per_node.split() if count.isdigit())
        gpus = self.trainer_gpus
        if gpus is None:
            return ()
        return (1,) if self.single_gpu_mode else ((len(gpus) + 1) // 2,)

    @property
    def engines(self) -> int | None:
        """vLLM engines: VLLM_NUM_ENGINES, else the training GPUs the learners leave (1 with SINGLE_GPU_MODE)."""
        if self.vllm_num_engines is not None:
            return self.vllm_num_engines
        gpus = self.trainer_gpus
        if gpus is None or not self.learners:
            return None
        if self.single_gpu_mode:
            return 1
        return (len(gpus) - self.learners[0]) // self.vllm_tensor_parallel_size

    @property
    def zpg(self) -> int:
        """DEEPSPEED_ZPG, else the learners of one node."""
        return self.deepspeed_zpg or self.learners[0]

    @property
    def serves_here(self) -> bool:
        """Whether this launcher starts a judge or a router (JUDGE_BASE_URL unset, or several URLs)."""
        return self.starts_judge or len(self.judge_urls) > 1

    @property
    def routed(self) -> bool:
        """Whether the trainer reaches the judges through vllm-router started here."""
        return (self.starts_judge and self.judge_replicas > 1) or len(self.judge_urls) > 1

    @property
    def load_ref_policy(self) -> bool:
        """A reference policy is needed only for a KL term (BETA > 0)."""
        return self.beta > 0

    @classmethod
    def from_choice(
        cls, choice: GrpoChoice, preset: Preset, flags: Mapping[str, object], environ: Mapping[str, str]
    ) -> GrpoFastSettings:
        """Every knob: ``flags`` (field name -> value, None when not given) > ``environ`` > ``preset`` (read by
        ``choice.read_preset``) > default; SettingsError names a bad one."""
        fixed = {"verifier": choice.verifier, "preset": preset.name, "preset_origin": preset.origin}
        return resolve(cls, flags, environ, preset.values, fixed)

    @classmethod
    def from_sources(cls, flags: Mapping[str, object], environ: Mapping[str, str] | None = None) -> GrpoFastSettings:
        """``from_choice`` with the choice (and its preset) resolved from the same ``flags`` and ``environ`` (default
        os.environ)."""
        environ = os.environ if environ is None else environ
        choice = resolve(GrpoChoice, flags, environ)
        return cls.from_choice(choice, choice.read_preset(), flags, environ)
