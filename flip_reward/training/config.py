"""Settings of ``flip-reward train``: ``TrainSettings``, every knob with its flag, environment variable, preset value
and default (flip_reward.knobs: flag > environment > preset > default), checked up front."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flip_reward.core.context import DEFAULT_MAX_CONTEXT
from flip_reward.core.reward import REWARD_METRICS
from flip_reward.data.mixes import default_datasets
from flip_reward.judge.client import JUDGE_DEFAULTS, judge_rule
from flip_reward.judge.urls import redact_url
from flip_reward.knobs import SettingsError, knob, resolve, resolve_knob
from flip_reward.presets import checked_preset

TINY = "tiny:"
REWARDS = ("flip", "pointwise")


def _steps_from(source: Mapping[str, str], s: Any) -> str | None:
    """STEPS, else open-instruct's TOTAL_EPISODES / (prompts per step x generations), from one source: so
    TOTAL_EPISODES in the environment beats STEPS in a preset, as every environment value beats a preset."""
    if source.get("STEPS", "") != "":
        return source["STEPS"]
    episodes = source.get("TOTAL_EPISODES", "")
    if episodes == "":
        return None
    try:
        return str(math.ceil(int(episodes) / (s.prompts_per_step * s.num_generations)))
    except ValueError:
        raise SettingsError(f"TOTAL_EPISODES: expected an integer, got {episodes!r}") from None


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@dataclass(frozen=True)
class TrainSettings:
    """One ``flip-reward train`` run, resolved once (``from_sources``) and checked in ``__post_init__``."""

    preset: str | None = knob(
        "LOCAL_PRESET", None, "configs/local_NAME.env (tiny, 1gpu) or a path", shown="none (built-in defaults)"
    )
    reward: str = knob(
        "REWARD", "flip", "the reward: FLIP, or the LLM-judge baseline (pointwise: 1-10 score / 10)", choices=REWARDS
    )
    reward_metric: str = knob("FLIP_REWARD_METRIC", "f1", "FLIP's reward", choices=REWARD_METRICS)
    restatement_guard: bool = knob(
        "FLIP_RESTATEMENT_GUARD", True, "mask restatements of the instruction before the judge sees a response"
    )
    model: str = knob("MODEL_NAME_OR_PATH", "tiny:1", "policy: hub name, directory, or tiny:SEED")
    datasets: str = knob(
        "DATASETS",
        lambda s: default_datasets(s.reward),
        "RLVR mix 'NAME AMOUNT [NAME AMOUNT ...]'",
        shown="the bundled sample of the reward",
    )
    dataset_splits: str = knob("DATASET_SPLITS", "train", "one split, or one per dataset")
    exp_name: str = knob("EXP_NAME", lambda s: f"{s.reward}_local", "run name", shown="REWARD_local")
    output_dir: str = knob("OUTPUT_DIR", lambda s: f"output/{s.exp_name}", "where outputs go", shown="output/EXP_NAME")
    num_generations: int = knob("SAMPLES_PER_PROMPT", 4, "completions per prompt (the GRPO group)", minimum=1)
    prompts_per_step: int = knob("PROMPTS_PER_STEP", 2, "prompts per optimizer step", minimum=1)
    per_device_batch_size: int = knob(
        "PER_DEVICE_BATCH_SIZE",
        lambda s: s.prompts_per_step * s.num_generations,
        "completions per forward pass; gradient accumulation covers the rest of the step",
        minimum=1,
        shown="PROMPTS_PER_STEP x SAMPLES_PER_PROMPT",
    )
    steps: int = knob(
        "STEPS", 10, "optimizer steps (or TOTAL_EPISODES / completions per step)", minimum=1, read=_steps_from
    )
    max_prompt_length: int = knob("MAX_PROMPT_LENGTH", 512, "prompts longer than this (tokens) are left out", minimum=1)
    max_completion_length: int = knob("RESPONSE_LENGTH", 256, "completion budget (tokens)", minimum=1)
    learning_rate: float = knob("LEARNING_RATE", 1e-6, "learning rate")
    beta: float = knob("BETA", 0.0, "KL coefficient (0: no reference model)", minimum=0)
    temperature: float = knob("TEMPERATURE", 1.0, "policy sampling temperature", minimum=0)
    seed: int = knob("SEED", 1, "training seed (data order, sampling, tiny models)")
    policy_no_thinking: bool = knob(
        "POLICY_NO_THINKING", False, "render prompts with enable_thinking=false (Qwen3-style templates)"
    )
    use_cpu: bool = knob("USE_CPU", lambda s: not _cuda_available(), "train on CPU", shown="on when no CUDA")
    gradient_checkpointing: bool = knob(
        "GRADIENT_CHECKPOINTING", lambda s: not s.use_cpu, "trade compute for memory", shown="on with a GPU"
    )
    use_vllm: bool = knob("USE_VLLM", False, "generate with vLLM colocated with the trainer (GPU)")
    vllm_gpu_memory_utilization: float = knob(
        "VLLM_GPU_MEMORY_UTILIZATION", 0.3, "vLLM's share of GPU memory (--use-vllm)"
    )
    save_model: bool = knob("SAVE_MODEL", True, "save the trained policy to OUTPUT_DIR/model")
    with_tracking: bool = knob("WITH_TRACKING", False, "log to Weights & Biases (REPORT_TO's default)")
    report_to: str = knob(
        "REPORT_TO",
        lambda s: "wandb" if s.with_tracking else "none",
        "trackers for TRL's logs: none, or e.g. wandb,tensorboard",
        shown="wandb with WITH_TRACKING, else none",
    )
    judge: str = knob("JUDGE_MODEL", "tiny:0", "litellm judge model (hosted_vllm/NAME), or tiny:SEED")
    judge_base_url: str | None = knob("JUDGE_BASE_URL", None, "a running judge (unset: one is started here)")
    judge_port: int | None = knob("JUDGE_PORT", None, "port of a judge started here", shown="a free one", minimum=1)
    judge_server_args: str = knob(
        "JUDGE_SERVER_ARGS", "", "extra server arguments, e.g. --judge-server-args='--max-model-len 8192'"
    )
    judge_start_timeout: int = knob("JUDGE_START_TIMEOUT", 900, "seconds to wait for a judge started here", minimum=1)
    judge_max_tokens: int = knob(
        "JUDGE_MAX_TOKENS", JUDGE_DEFAULTS["max_tokens"], "judge answer budget (tokens)", **judge_rule("max_tokens")
    )
    judge_max_context: int = knob(
        "JUDGE_MAX_CONTEXT",
        DEFAULT_MAX_CONTEXT,
        "judge context (tokens; longer responses lose their middle); the judge client's default here (the GRPO "
        "launchers default to the FLIP authors' run: 25000)",
        minimum=1,
    )
    judge_timeout: float = knob(
        "JUDGE_TIMEOUT",
        JUDGE_DEFAULTS["timeout"],
        "seconds per judge request; the judge client's default here (the GRPO launchers default to the FLIP authors' "
        "run: 3600, as a whole fleet's requests queue at one judge)",
        **judge_rule("timeout"),
    )
    judge_retries: int = knob(
        "JUDGE_RETRIES",
        JUDGE_DEFAULTS["retries"],
        "retries of a failed judge request",
        aliases=("FLIP_RETRIES",),
        **judge_rule("retries"),
    )
    judge_temperature: float = knob(
        "JUDGE_TEMPERATURE",
        JUDGE_DEFAULTS["temperature"],
        "judge sampling temperature; the judge client's default (greedy) here (the GRPO launchers default to the "
        "FLIP authors' run: 1.0)",
        **judge_rule("temperature"),
    )
    judge_concurrency: int = knob(
        "JUDGE_CONCURRENCY",
        JUDGE_DEFAULTS["max_concurrency"],
        "judge requests in flight",
        aliases=("FLIP_CONCURRENCY",),
        **judge_rule("max_concurrency"),
    )
    judge_tokenizer: str | None = knob(
        "JUDGE_TOKENIZER", None, "judge tokenizer for the context guard (local)", aliases=("FLIP_TOKENIZER",)
    )
    judge_cache: str | None = knob(
        "JUDGE_CACHE", JUDGE_DEFAULTS["cache_dir"], "on-disk cache of judge answers", aliases=("FLIP_CACHE_DIR",)
    )
    judge_no_thinking: bool = knob(
        "JUDGE_NO_THINKING",
        JUDGE_DEFAULTS["disable_thinking"],
        "chat_template_kwargs enable_thinking=false",
        aliases=("FLIP_DISABLE_THINKING",),
    )
    judge_structured_output: bool = knob(
        "JUDGE_STRUCTURED_OUTPUT", False, "JSON-schema output (vLLM only)", aliases=("FLIP_STRUCTURED_OUTPUT",)
    )

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise SettingsError(
                f"--num-generations must be >= 2, got {self.num_generations}: GRPO compares completions within a group"
            )
        per_step = self.prompts_per_step * self.num_generations
        if per_step % self.per_device_batch_size:
            raise SettingsError(
                f"--per-device-batch-size {self.per_device_batch_size} must divide the completions per "
                f"step ({self.prompts_per_step} prompts x {self.num_generations} generations = {per_step})"
            )
        if self.judge.startswith(TINY) and self.judge_base_url:
            raise SettingsError(f"judge {self.judge} is built and served by this command: drop --judge-base-url")
        if self.use_vllm and self.use_cpu:
            raise SettingsError("--use-vllm needs a GPU (it is off with --use-cpu)")
        for name in (self.model, self.judge):
            tiny_seed(name)

    @classmethod
    def from_sources(
        cls, flags: Mapping[str, object], preset: str | None = None, environ: Mapping[str, str] | None = None
    ) -> TrainSettings:
        """Every knob: ``flags`` > ``environ`` (default: os.environ) > the preset (``preset``, else the knob
        LOCAL_PRESET) > default; SettingsError names the source of a bad one."""
        environ = os.environ if environ is None else environ
        name = resolve_knob(cls, "preset", {"preset": preset or flags.get("preset")}, environ)
        values = checked_preset("local", str(name), cls, also=("TOTAL_EPISODES",)).values if name else {}
        return resolve(cls, {**flags, "preset": name}, environ, values)


def tiny_seed(name: str) -> int | None:
    """N of ``tiny:N`` (None for any other model name); SettingsError for a malformed one."""
    if not name.startswith(TINY):
        return None
    try:
        return int(name[len(TINY) :])
    except ValueError:
        raise SettingsError(f"{name!r}: a tiny model is tiny:SEED with an integer seed, e.g. tiny:0") from None


CPU_HINT = (
    "note: the built-in defaults (256-token completions, 2048-token judge answers) take about 50 s a step on a CPU; "
    "--preset tiny is the CPU smoke run (make demo), --preset 1gpu a GPU run"
)


def plan_lines(s: TrainSettings, report: list[str], rows: int) -> list[str]:
    judge = redact_url(s.judge_base_url) or "a server started here (as flip-reward judge serve does)"
    lines = [
        f"preset: {s.preset or 'none (built-in defaults)'}",
        *([CPU_HINT] if s.preset is None and s.use_cpu else []),
        f"policy: {s.model}" + (" (a tiny random model built locally)" if s.model.startswith(TINY) else ""),
        f"reward: {s.reward}"
        + (f" ({s.reward_metric})" if s.reward == "flip" else "")
        + f" | judge {s.judge} at {judge} ({s.judge_concurrency} requests in flight, {s.judge_retries} retries, "
        f"{s.judge_timeout:g} s each)",
        *(f"data: {line}" for line in report),
        f"GRPO: {s.steps} steps | {s.prompts_per_step} prompts x {s.num_generations} generations per step "
        f"(batch {s.per_device_batch_size}) | {rows} prompts | lr {s.learning_rate:g} | beta {s.beta:g} | "
        f"temperature {s.temperature:g} | prompt <= {s.max_prompt_length}, completion <= "
        f"{s.max_completion_length} tokens | {'cpu' if s.use_cpu else 'gpu'} | seed {s.seed}",
        f"output: {s.output_dir}",
    ]
    return lines
