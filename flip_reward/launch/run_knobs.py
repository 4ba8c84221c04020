"""The knobs the launchers of ``flip-reward launch`` share: the judge of a run (served here, routed, or given), the
policy, the data, the output and the GPUs of one node, and the GRPO shape (``GrpoKnobs``). The settings of ``launch
open-instruct``, ``verl``, ``openrlhf`` and of the command-line trainers (``launch.command_trainer``) inherit them
(``flip-reward train``'s TrainSettings declares its own) and redeclare a field whose default differs for it (a
redeclared field keeps its place); ``TrackingKnobs`` only those whose trainer is told to log to Weights & Biases by
the launcher (open-instruct, verl)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from flip_reward.judge.client import JUDGE_DEFAULTS, judge_rule
from flip_reward.judge.urls import split_credentials
from flip_reward.knobs import SettingsError, knob

GPU_IDS = re.compile(r"^[0-9]+(,[0-9]+)*$")
SERVERS = ("auto", "vllm", "transformers")


@dataclass(frozen=True)
class JudgeKnobs:
    """The judge a training run reaches: started here on JUDGE_GPUS (JUDGE_BASE_URL unset; JUDGE_REPLICAS servers
    behind vllm-router when > 1), or running already at JUDGE_BASE_URL (several: vllm-router in front)."""

    judge_model: str = knob("JUDGE_MODEL", "hosted_vllm/Qwen/Qwen3-4B", "litellm model string of the judge")
    judge_base_url: str = knob(
        "JUDGE_BASE_URL",
        "",
        "running judge(s), comma-separated (several: vllm-router in front); unset: the judge is started here",
    )
    judge_max_tokens: int = knob(
        "JUDGE_MAX_TOKENS", JUDGE_DEFAULTS["max_tokens"], "judge answer budget (tokens)", **judge_rule("max_tokens")
    )
    judge_max_context: int = knob(
        "JUDGE_MAX_CONTEXT", 25000, "judge context length (tokens); the FLIP authors' run's", minimum=1
    )
    judge_timeout: float = knob(
        "JUDGE_TIMEOUT",
        3600,
        "seconds per judge request; the FLIP authors' run's, as a whole fleet's requests queue at one judge (the "
        "judge client's default, 60, is `flip-reward train`'s)",
        **judge_rule("timeout"),
    )
    judge_temperature: float = knob(
        "JUDGE_TEMPERATURE",
        1.0,
        "judge sampling temperature; the FLIP authors' run's (`flip-reward train` keeps the judge client's 0.0)",
        **judge_rule("temperature"),
    )
    judge_gpus: str = knob("JUDGE_GPUS", "7", "GPU ids of a judge started here, e.g. 7 or 6,7")
    judge_port: int = knob("JUDGE_PORT", 8001, "port of the judge (or its router) started here", minimum=1)
    judge_host: str = knob(
        "JUDGE_HOST", "127.0.0.1", "address a judge started here listens on (0.0.0.0: other nodes reach it)"
    )
    judge_advertise_host: str = knob(
        "JUDGE_ADVERTISE_HOST", "", "address the trainer reaches a 0.0.0.0 judge at", shown="this host's first address"
    )
    judge_server: str = knob("JUDGE_SERVER", "vllm", "judge server program", choices=SERVERS)
    judge_server_args: str = knob(
        "JUDGE_SERVER_ARGS",
        lambda s: f"--max-model-len {s.judge_max_context}",
        "more judge server arguments",
        shown="--max-model-len JUDGE_MAX_CONTEXT",
    )
    judge_start_timeout: int = knob("JUDGE_START_TIMEOUT", 1800, "seconds to wait for a judge started here", minimum=1)
    judge_shares_gpus: bool = knob("JUDGE_SHARES_GPUS", False, "the trainer uses the judge's GPUs too")
    judge_replicas: int = knob(
        "JUDGE_REPLICAS", 1, "judge servers started here (> 1: behind vllm-router, JUDGE_GPUS split evenly)", minimum=1
    )
    judge_router_policy: str = knob("JUDGE_ROUTER_POLICY", "power_of_two", "vllm-router's --policy")
    judge_router_args: str = knob(
        "JUDGE_ROUTER_ARGS",
        lambda s: f"--request-timeout-secs {math.ceil(s.judge_timeout)}",
        "more vllm-router arguments",
        shown="--request-timeout-secs JUDGE_TIMEOUT",
    )

    @property
    def judge_urls(self) -> list[str]:
        """The running judges of JUDGE_BASE_URL (none: the judge is started here)."""
        return [url for url in self.judge_base_url.replace(" ", "").split(",") if url]

    @property
    def starts_judge(self) -> bool:
        return not self.judge_urls

    def check_judge(self) -> None:
        """SettingsError for judge knobs that cannot work together (called by the trainers' __post_init__)."""
        if self.starts_judge:
            if not self.judge_model.startswith("hosted_vllm/"):
                raise SettingsError(
                    f"JUDGE_MODEL {self.judge_model!r} is not hosted_vllm/...: set JUDGE_BASE_URL, or use a "
                    "hosted_vllm/ model to serve"
                )
            if not GPU_IDS.match(self.judge_gpus):
                raise SettingsError(f"JUDGE_GPUS must be GPU ids like 7 or 6,7, got {self.judge_gpus!r}")
            if len(self.judge_gpus.split(",")) % self.judge_replicas:
                raise SettingsError(
                    f"JUDGE_GPUS ({self.judge_gpus}) does not split evenly over JUDGE_REPLICAS={self.judge_replicas} "
                    "judge servers"
                )
        elif self.judge_replicas != 1:
            raise SettingsError(
                "JUDGE_REPLICAS is for judges started here; for running judges list their URLs in JUDGE_BASE_URL"
            )
        elif len(self.judge_urls) > 1 and any(split_credentials(url)[1] for url in self.judge_urls):
            raise SettingsError(
                "JUDGE_BASE_URL: a judge URL holds credentials (user:password@), which vllm-router (put in front of "
                "several judges) cannot send: give the judges' URLs without them (see docs/judge-servers.md)"
            )


@dataclass(frozen=True)
class RunKnobs(JudgeKnobs):
    """What every trainer's run has: the policy, the data mix, the run's name and outputs, one node's GPUs."""

    model_name_or_path: str = knob("MODEL_NAME_OR_PATH", "Qwen/Qwen3-4B", "policy (hub name or directory)")
    datasets: str = knob(
        "DATASETS",
        "yikeee/rlvr_general_chat_flip 1.0",
        "training mix 'NAME AMOUNT [NAME AMOUNT ...]': hub datasets or local .jsonl/.parquet files (RLVR rows)",
    )
    dataset_splits: str = knob("DATASET_SPLITS", "train", "one split, or one per dataset")
    exp_name: str = knob("EXP_NAME", "grpo", "run name")
    output_dir: str = knob("OUTPUT_DIR", lambda s: f"output/{s.exp_name}", "where outputs go", shown="output/EXP_NAME")
    seed: int = knob("SEED", 1, "training seed")
    num_gpus: int = knob("NUM_GPUS", 8, "GPUs per node", minimum=1)
    train_gpus: str = knob(
        "TRAIN_GPUS", "", "CUDA_VISIBLE_DEVICES of the trainer", shown="the node's GPUs minus the judge's"
    )

    def training_gpus(self) -> list[int]:
        """TRAIN_GPUS, else GPUs 0..NUM_GPUS-1 without those of a judge started here (unless JUDGE_SHARES_GPUS)."""
        if self.train_gpus:
            if not GPU_IDS.match(self.train_gpus):
                raise SettingsError(f"TRAIN_GPUS must be GPU ids like 0,1,2, got {self.train_gpus!r}")
            return [int(gpu) for gpu in self.train_gpus.split(",")]
        taken = set()
        if self.starts_judge and not self.judge_shares_gpus:
            taken = {int(gpu) for gpu in self.judge_gpus.split(",")}
        return [gpu for gpu in range(self.num_gpus) if gpu not in taken]

    def splits(self, count: int) -> list[str]:
        """DATASET_SPLITS for ``count`` datasets: one split for all, or one each."""
        splits = self.dataset_splits.split() or ["train"]
        if len(splits) == 1:
            return splits * count
        if len(splits) != count:
            raise SettingsError(f"DATASET_SPLITS: {len(splits)} splits ({self.dataset_splits!r}) for {count} datasets")
        return splits


@dataclass(frozen=True)
class GrpoKnobs:
    """The GRPO shape of a run, for the launchers that render it on their trainer's command line or config (verl,
    OpenRLHF, slime, SkyRL, NeMo-RL, AReaL, ROLL), listed first among the bases so that these knobs come after
    RunKnobs'."""

    max_prompt_length: int = knob("MAX_PROMPT_LENGTH", 2048, "prompt budget (tokens)", minimum=1)
    response_length: int = knob("RESPONSE_LENGTH", 8192, "response budget (tokens)", minimum=1)
    prompts_per_step: int = knob("PROMPTS_PER_STEP", 28, "prompts per step", minimum=1)
    samples_per_prompt: int = knob("SAMPLES_PER_PROMPT", 8, "responses per prompt (the GRPO group)", minimum=1)
    learning_rate: float = knob("LEARNING_RATE", 1e-6, "learning rate")
    temperature: float = knob("TEMPERATURE", 1.0, "policy sampling temperature", minimum=0)


@dataclass(frozen=True)
class TrackingKnobs:
    """Logging to Weights & Biases, for the launchers that put it on their trainer's command line (listed first among
    the bases, so that these knobs come after the others)."""

    with_tracking: bool = knob("WITH_TRACKING", False, "log to Weights & Biases")
    wandb_project: str = knob("WANDB_PROJECT", "flip-reward", "Weights & Biases project (WITH_TRACKING)")
