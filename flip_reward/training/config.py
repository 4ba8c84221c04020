"""Settings of ``flip-reward train``: every option with its flag, environment variable, preset value and default,
resolved in that order (flag > environment > preset > default) and checked up front."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from flip_reward.core.reward import REWARD_METRICS
from flip_reward.data.mixes import REPO, default_datasets
from flip_reward.judge.urls import redact_url

TINY = "tiny:"
REWARDS = ("flip", "pointwise")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class SettingsError(ValueError):
    """An option (flag, environment variable or preset value) that cannot be used."""


@dataclass(frozen=True)
class Option:
    """A ``flip-reward train`` option: its flag, environment variable, default (a value, or a function of the
    settings resolved before it), type ("str", "int", "float", "bool") and help."""

    flag: str
    env: str | None
    default: object
    kind: str
    help: str
    read: Callable[[Mapping[str, str], SimpleNamespace], str | None] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def lookup(self, source: Mapping[str, str], s: SimpleNamespace) -> str | None:
        """This option's raw value in one source (the environment or a preset), None when it has none."""
        if self.read is not None:
            return self.read(source, s)
        raw = source.get(self.env, "") if self.env else ""
        return raw if raw != "" else None


def _steps_from(source: Mapping[str, str], s: SimpleNamespace) -> str | None:
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


OPTIONS = (
    Option("--reward", "REWARD", "flip", "str", "flip, or pointwise (the LLM-judge baseline: 1-10 score / 10)"),
    Option("--reward-metric", "FLIP_REWARD_METRIC", "f1", "str", "FLIP's reward: f1, precision or recall"),
    Option(
        "--restatement-guard",
        "FLIP_RESTATEMENT_GUARD",
        True,
        "bool",
        "mask restatements of the instruction before the judge sees a response",
    ),
    Option("--model", "MODEL_NAME_OR_PATH", "tiny:1", "str", "policy: hub name, directory, or tiny:SEED"),
    Option(
        "--datasets",
        "DATASETS",
        lambda s: default_datasets(s.reward),
        "str",
        "RLVR mix 'NAME AMOUNT [NAME AMOUNT ...]' (default: the bundled sample)",
    ),
    Option("--dataset-splits", "DATASET_SPLITS", "train", "str", "one split, or one per dataset"),
    Option("--exp-name", "EXP_NAME", lambda s: f"{s.reward}_local", "str", "run name"),
    Option("--output-dir", "OUTPUT_DIR", lambda s: f"output/{s.exp_name}", "str", "where outputs go"),
    Option("--num-generations", "SAMPLES_PER_PROMPT", 4, "int", "completions per prompt (the GRPO group)"),
    Option("--prompts-per-step", "PROMPTS_PER_STEP", 2, "int", "prompts per optimizer step"),
    Option(
        "--per-device-batch-size",
        "PER_DEVICE_BATCH_SIZE",
        lambda s: s.prompts_per_step * s.num_generations,
        "int",
        "completions per forward pass; gradient accumulation covers the rest of the step",
    ),
    Option("--steps", "STEPS", 10, "int", "optimizer steps (or TOTAL_EPISODES / completions per step)", _steps_from),
    Option("--max-prompt-length", "MAX_PROMPT_LENGTH", 512, "int", "prompts longer than this (tokens) are left out"),
    Option("--max-completion-length", "RESPONSE_LENGTH", 256, "int", "completion budget (tokens)"),
    Option("--learning-rate", "LEARNING_RATE", 1e-6, "float", "learning rate"),
    Option("--beta", "BETA", 0.0, "float", "KL coefficient (0: no reference model)"),
    Option("--temperature", "TEMPERATURE", 1.0, "float", "policy sampling temperature"),
    Option("--seed", "SEED", 1, "int", "training seed"),
    Option(
        "--policy-no-thinking",
        "POLICY_NO_THINKING",
        False,
        "bool",
        "render prompts with enable_thinking=false (Qwen3-style templates)",
    ),
    Option("--use-cpu", "USE_CPU", lambda s: not _cuda_available(), "bool", "train on CPU (default: when no CUDA)"),
    Option(
        "--gradient-checkpointing",
        "GRADIENT_CHECKPOINTING",
        lambda s: not s.use_cpu,
        "bool",
        "trade compute for memory (default: on GPU)",
    ),
    Option("--use-vllm", "USE_VLLM", False, "bool", "generate with vLLM colocated with the trainer (GPU)"),
    Option("--vllm-gpu-memory-utilization", "VLLM_GPU_MEMORY_UTILIZATION", 0.3, "float", "with --use-vllm"),
    Option("--save-model", "SAVE_MODEL", True, "bool", "save the trained policy to OUTPUT_DIR/model"),
    Option("--report-to", "REPORT_TO", "none", "str", "trackers for TRL's logs: none, or e.g. wandb,tensorboard"),
    Option("--judge", "JUDGE_MODEL", "tiny:0", "str", "litellm judge model (hosted_vllm/NAME), or tiny:SEED"),
    Option("--judge-base-url", "JUDGE_BASE_URL", None, "str", "a running judge (else one is started here)"),
    Option("--judge-port", "JUDGE_PORT", None, "int", "port of a judge started here (default: a free one)"),
    Option(
        "--judge-server-args",
        "JUDGE_SERVER_ARGS",
        "",
        "str",
        "extra server arguments, e.g. --judge-server-args='--max-model-len 8192'",
    ),
    Option("--judge-start-timeout", "JUDGE_START_TIMEOUT", 900, "int", "seconds to wait for a judge started here"),
    Option("--judge-max-tokens", "JUDGE_MAX_TOKENS", 2048, "int", "judge answer budget"),
    Option(
        "--judge-max-context", "JUDGE_MAX_CONTEXT", 8192, "int", "judge context (longer responses lose their middle)"
    ),
    Option("--judge-timeout", "JUDGE_TIMEOUT", 60.0, "float", "seconds per judge request"),
    Option("--judge-retries", "JUDGE_RETRIES", 3, "int", "retries of a failed judge request"),
    Option("--judge-temperature", "JUDGE_TEMPERATURE", 0.0, "float", "judge sampling temperature"),
    Option("--judge-concurrency", "JUDGE_CONCURRENCY", 64, "int", "judge requests in flight"),
    Option("--judge-tokenizer", "JUDGE_TOKENIZER", None, "str", "judge tokenizer for the context guard (local)"),
    Option("--judge-cache", "JUDGE_CACHE", None, "str", "on-disk cache of judge answers"),
    Option("--judge-no-thinking", "JUDGE_NO_THINKING", False, "bool", "chat_template_kwargs enable_thinking=false"),
    Option("--judge-structured-output", "JUDGE_STRUCTURED_OUTPUT", False, "bool", "JSON-schema output (vLLM only)"),
)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a preset (comments and blank lines skipped, one level of quotes removed)."""
    values = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SettingsError(f"{path}:{number}: expected KEY=value, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def preset_values(preset: str | None) -> dict[str, str]:
    if not preset:
        return {}
    path = Path(preset) if Path(preset).is_file() else REPO / "configs" / f"local_{preset}.env"
    if not path.is_file():
        if "/" in preset or preset.endswith(".env"):  # a path: say it as the user gave it
            raise SettingsError(f"no preset file {preset}")
        names = sorted(p.stem.removeprefix("local_") for p in (REPO / "configs").glob("local_*.env"))
        raise SettingsError(f"no preset {preset!r} (configs/local_{preset}.env); available: {', '.join(names)}")
    return read_env_file(path)


def convert(option: Option, value: object, origin: str) -> object:
    if not isinstance(value, str):
        return value
    try:
        if option.kind == "int":
            return int(value)
        if option.kind == "float":
            return float(value)
    except ValueError:
        raise SettingsError(
            f"{origin}: expected {'an integer' if option.kind == 'int' else 'a number'}, got {value!r}"
        ) from None
    if option.kind == "bool":
        if value.lower() not in TRUE + FALSE:
            raise SettingsError(f"{origin}: expected 1/0, true/false, yes/no or on/off, got {value!r}")
        return value.lower() in TRUE
    return value


def from_sources(option: Option, s: SimpleNamespace, sources: tuple[tuple[str, Mapping[str, str]], ...]) -> object:
    """The option's value from the first of ``sources`` (name, mapping) that has one, else its default."""
    for origin, source in sources:
        raw = option.lookup(source, s)
        if raw is not None:
            return convert(option, raw, f"{option.env} ({origin})")
    return option.default(s) if callable(option.default) else option.default


def resolve(args: argparse.Namespace) -> SimpleNamespace:
    """Every option's value: flag > environment > preset > default; SettingsError names the source of a bad one."""
    preset_name = args.preset or os.environ.get("LOCAL_PRESET") or None
    preset = preset_values(preset_name)
    settings = SimpleNamespace(preset=preset_name)
    for option in OPTIONS:
        flag_value = getattr(args, option.dest)
        if flag_value is not None:
            value = convert(option, flag_value, option.flag)
        else:
            value = from_sources(option, settings, (("environment", os.environ), ("preset", preset)))
        setattr(settings, option.dest, value)
    check(settings)
    return settings


def check(s: SimpleNamespace) -> None:
    if s.reward not in REWARDS:
        raise SettingsError(f"--reward must be one of {', '.join(REWARDS)}, got {s.reward!r}")
    if s.reward_metric not in REWARD_METRICS:
        raise SettingsError(f"--reward-metric must be one of {', '.join(REWARD_METRICS)}, got {s.reward_metric!r}")
    for name in (
        "num_generations",
        "prompts_per_step",
        "per_device_batch_size",
        "steps",
        "max_prompt_length",
        "max_completion_length",
        "judge_max_tokens",
        "judge_max_context",
        "judge_concurrency",
    ):
        if getattr(s, name) < 1:
            raise SettingsError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(s, name)}")
    if s.num_generations < 2:
        raise SettingsError("--num-generations must be >= 2: GRPO compares completions within a group")
    per_step = s.prompts_per_step * s.num_generations
    if per_step % s.per_device_batch_size:
        raise SettingsError(
            f"--per-device-batch-size {s.per_device_batch_size} must divide the completions per "
            f"step ({s.prompts_per_step} prompts x {s.num_generations} generations = {per_step})"
        )
    if s.judge.startswith(TINY) and s.judge_base_url:
        raise SettingsError(f"judge {s.judge} is built and served by this command: drop --judge-base-url")
    if s.use_vllm and s.use_cpu:
        raise SettingsError("--use-vllm needs a GPU (it is off with --use-cpu)")


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


def plan_lines(s: SimpleNamespace, report: list[str], rows: int) -> list[str]:
    judge = redact_url(s.judge_base_url) or "a server started here (scripts/serve_judge.sh)"
    lines = [
        f"preset: {s.preset or 'none (built-in defaults)'}",
        *([CPU_HINT] if s.preset is None and s.use_cpu else []),
        f"policy: {s.model}" + (" (a tiny random model built locally)" if s.model.startswith(TINY) else ""),
        f"reward: {s.reward}"
        + (f" ({s.reward_metric})" if s.reward == "flip" else "")
        + f" | judge {s.judge} at {judge}",
        *(f"data: {line}" for line in report),
        f"GRPO: {s.steps} steps | {s.prompts_per_step} prompts x {s.num_generations} generations per step "
        f"(batch {s.per_device_batch_size}) | {rows} prompts | lr {s.learning_rate:g} | beta {s.beta:g} | "
        f"temperature {s.temperature:g} | prompt <= {s.max_prompt_length}, completion <= "
        f"{s.max_completion_length} tokens | {'cpu' if s.use_cpu else 'gpu'} | seed {s.seed}",
        f"output: {s.output_dir}",
    ]
    return lines
