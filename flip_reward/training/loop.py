"""The TRL side of ``flip-reward train``: the reward function, the GRPO configuration and the training run itself.

Kept apart from ``train.py`` (options, judge lifecycle) so that torch, transformers and TRL load only when a run
starts. One optimizer step is one generation batch: ``prompts_per_step x num_generations`` completions, generated
in ``per_device_batch_size`` chunks (gradient accumulation covers the rest), judged, and logged as one
metrics.jsonl row.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from flip_reward.data.samples import SAMPLES_FILE, SampleWriter
from flip_reward.data.writing import OutputError, write_errors
from flip_reward.exit_codes import EXIT_WRITE_FAILED
from flip_reward.integrations.trl import (
    JudgeRewardFunction,
    flip_reward_function,
    pointwise_reward_function,
)
from flip_reward.judge.loops import cancel_pending_tasks, close_clients
from flip_reward.os_errors import reason
from flip_reward.training.config import TrainSettings
from flip_reward.training.monitor import (
    MetricsFileCallback,
    ProgressBarCallback,
    plot_reward_curve,
    summary_lines,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase
    from trl import GRPOConfig


def make_reward(
    s: TrainSettings, judge_model: str, api_base: str, tokenizer: str | None, samples: SampleWriter | None
) -> JudgeRewardFunction:
    """The run's reward function (FLIP or pointwise) with the judge settings of ``s``, tracing into ``samples``."""
    options = {
        "max_concurrency": s.judge_concurrency,
        "timeout": s.judge_timeout,
        "retries": s.judge_retries,
        "temperature": s.judge_temperature,
        "max_tokens": s.judge_max_tokens,
        "max_context_length": s.judge_max_context,
        "tokenizer": tokenizer,
        "cache_dir": s.judge_cache,
        "structured_output": s.judge_structured_output,
        "disable_thinking": s.judge_no_thinking,
    }
    if s.reward == "flip":
        reward = flip_reward_function(
            judge_model, api_base, reward_metric=s.reward_metric, restatement_guard=s.restatement_guard, **options
        )
    else:
        reward = pointwise_reward_function(judge_model, api_base, **options)
    reward.samples = samples
    return reward


def prompt_length(tokenizer: PreTrainedTokenizerBase, prompt: list[dict], template_kwargs: dict) -> int:
    encoded = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, **template_kwargs)
    return len(encoded["input_ids"] if isinstance(encoded, Mapping) else encoded)


def fitting_prompts(
    rows: list[dict], tokenizer: PreTrainedTokenizerBase, max_length: int, template_kwargs: dict
) -> tuple[list[dict], int]:
    """The rows whose templated prompt has at most ``max_length`` tokens (open-instruct drops longer prompts
    too), and how many were left out."""
    kept = [row for row in rows if prompt_length(tokenizer, row["prompt"], template_kwargs) <= max_length]
    return kept, len(rows) - len(kept)


def grpo_config(s: TrainSettings, output_dir: Path, template_kwargs: dict) -> GRPOConfig:
    from trl import GRPOConfig

    per_step = s.prompts_per_step * s.num_generations
    bf16 = not s.use_cpu and _bf16_supported()
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=s.steps,
        seed=s.seed,
        use_cpu=s.use_cpu,
        bf16=bf16,
        num_generations=s.num_generations,
        per_device_train_batch_size=s.per_device_batch_size,
        gradient_accumulation_steps=per_step // s.per_device_batch_size,
        max_completion_length=s.max_completion_length,
        learning_rate=s.learning_rate,
        beta=s.beta,
        temperature=s.temperature,
        chat_template_kwargs=template_kwargs or None,
        gradient_checkpointing=s.gradient_checkpointing,
        use_vllm=s.use_vllm,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=s.vllm_gpu_memory_utilization,
        logging_steps=1,
        report_to=_trackers(s.report_to),
        run_name=s.exp_name,
        save_strategy="no",
        disable_tqdm=False,
        log_completions=False,
    )


def _trackers(report_to: str) -> list[str]:
    names = [name.strip() for name in report_to.split(",") if name.strip()]
    return [] if names in ([], ["none"]) else names


def _bf16_supported() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def log(message: str) -> None:
    print(f"train: {message}", file=sys.stderr, flush=True)


def stop_judge_calls(trainer: object) -> None:
    """Cancel the judge calls still running on the event loop TRL awaits async reward functions on (those of a step
    that Ctrl-C or a signal interrupted) and close its judge connections, before the judge this command started is
    stopped: a call left running would fail against the stopped judge and log a judge failure after the run's own
    orderly stop. TRL has such a loop only when a reward function is async."""
    loop = getattr(trainer, "async_loop", None)
    if loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(_cancel_and_close(), loop).result(timeout=10)


async def _cancel_and_close() -> None:
    await cancel_pending_tasks()
    await close_clients()


def inspection_lines(output_dir: Path) -> list[str]:
    """The run's ``flip-reward inspect`` report (inspect.png, inspect.json in ``output_dir``) as summary lines; a run
    that traced nothing, or traces that cannot be read, cost a note, never the run's outputs. OutputError when a file
    of the report cannot be written."""
    from flip_reward.evaluation.inspection import write_inspection

    if not (output_dir / SAMPLES_FILE).is_file():
        return ["inspect: no samples were traced"]
    try:
        return write_inspection(output_dir)
    except OutputError:
        raise
    except (OSError, ValueError) as error:
        return [f"inspect: no report ({type(error).__name__}: {error})"]


def train(s: TrainSettings, policy: str, rows: list[dict], reward: JudgeRewardFunction, output_dir: Path) -> int:
    """Run GRPO; whatever happens, write the metrics file, the reward curve and the summary for the steps done. An
    output that could not be written (a full disk) does not stop training: its error line ends the run, after the
    summary, and the exit status is EXIT_WRITE_FAILED."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from transformers.trainer_callback import ProgressCallback
    from trl import GRPOTrainer

    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
    template_kwargs = {"enable_thinking": False} if s.policy_no_thinking else {}
    tokenizer = AutoTokenizer.from_pretrained(policy, padding_side="left", truncation_side="left")
    rows, dropped = fitting_prompts(rows, tokenizer, s.max_prompt_length, template_kwargs)
    if dropped:
        log(f"left out {dropped} prompt(s) longer than {s.max_prompt_length} tokens")
    if not rows:
        log(f"error: no prompt fits in {s.max_prompt_length} tokens (--max-prompt-length)")
        return 2
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=grpo_config(s, output_dir, template_kwargs),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.remove_callback(ProgressCallback)
    metrics = MetricsFileCallback(output_dir / "metrics.jsonl")
    trainer.add_callback(metrics)
    progress = ProgressBarCallback(f"GRPO {s.reward}")
    trainer.add_callback(progress)
    produced = [metrics.path.name, "reward_curve.png", SAMPLES_FILE]  # listed in the summary when they exist
    started = time.perf_counter()
    finished = False
    unwritten: list[OSError] = []
    try:
        trainer.train()
        finished = True
        if s.save_model:
            with collecting(unwritten):
                save_policy(trainer, output_dir / "model")
                produced.append("model")
    finally:
        stop_judge_calls(trainer)
        progress.close()
        metrics.close()
        if not finished:
            log(f"stopped after {len(metrics.rows)} of {s.steps} step(s)")
        reward.samples.flush()
        seconds = time.perf_counter() - started
        title = f"GRPO with {s.reward} reward: {s.exp_name}"
        report = write_reports(metrics, reward.samples, output_dir, title, unwritten)
        outputs = [str(output_dir / name) for name in produced if (output_dir / name).exists()]
        print("\n".join(summary_lines(metrics.rows, seconds, reward.totals.samples, outputs) + report), flush=True)
        for error in unwritten:
            print(f"error: {error}", file=sys.stderr, flush=True)
    return EXIT_WRITE_FAILED if unwritten else 0


@contextlib.contextmanager
def collecting(unwritten: list[OSError]) -> Iterator[None]:
    """Around the writing of one output of the run: an OutputError (a full disk) goes to ``unwritten`` instead of
    stopping the run; the run ends with a line for each."""
    try:
        yield
    except OutputError as error:
        unwritten.append(error)


def save_policy(trainer: object, path: Path) -> None:
    """The trained policy and its tokenizer in ``path``; OutputError when they cannot be written."""
    try:
        trainer.save_model(str(path))
    except write_errors() as error:
        raise OutputError(f"could not write {path}: {reason(error)}; the model there is incomplete") from error


def write_reports(
    metrics: MetricsFileCallback, samples: SampleWriter, output_dir: Path, title: str, unwritten: list[OSError]
) -> list[str]:
    """Write the reward curve and the inspect report of the steps done; returns the report's summary lines. Adds to
    ``unwritten`` the errors (each naming its file) of the outputs that could not be written, in the order they
    happened: the metrics file and the sample log (which stopped during training) first, the curve and the report
    last."""
    unwritten[:0] = [failure for failure in (metrics.failure, samples.failure) if isinstance(failure, OSError)]
    with collecting(unwritten):
        plot_reward_curve(metrics.rows, output_dir / "reward_curve.png", title)
    report: list[str] = []
    with collecting(unwritten):
        report = inspection_lines(output_dir)
    return report
