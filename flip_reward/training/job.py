"""One local GRPO run: build or find the models, get a judge (started here unless given), train, report.

The policy trains with ``trl.GRPOTrainer`` (CPU when no CUDA, else one GPU); rewards come from a judge over HTTP
through ``flip_reward.integrations.trl`` (the one reward path). The judge is ``--judge-base-url`` when given, else a
server started here (``ManagedJudgeServer``: vLLM on a GPU, transformers serve on CPU) and stopped on exit,
failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flip_reward.data.samples import SAMPLES_FILE, SampleWriter
from flip_reward.judge.urls import redact_url
from flip_reward.training.config import TrainSettings, tiny_seed

if TYPE_CHECKING:
    from flip_reward.integrations.trl import RewardStats

RUN_FILES = ("metrics.jsonl", SAMPLES_FILE, f"{SAMPLES_FILE}.1", "reward_curve.png", "inspect.json", "inspect.png")
"""The files a run writes (or replaces) in its output directory, besides the folders model, models and judge."""


def log(message: str) -> None:
    print(f"train: {message}", file=sys.stderr, flush=True)


def materialize(name: str, models_dir: Path, role: str) -> str:
    """A model name or directory the trainer/server can load: ``tiny:N`` is built under ``models_dir``."""
    seed = tiny_seed(name)
    if seed is None:
        return name
    from flip_reward.training.tiny_model import build_tiny_chat_model

    return str(build_tiny_chat_model(models_dir / f"{role}-tiny-{seed}", seed=seed).resolve())


class JudgeUnusable(RuntimeError):
    """The judge given by URL does not answer, or does not serve the model the run would request."""


def served_judge_model(s: TrainSettings, judge_target: str = "tiny-judge") -> str:
    """The litellm model string of the run's judge: ``hosted_vllm/`` + the built directory for ``tiny:N``."""
    return f"hosted_vllm/{judge_target}" if tiny_seed(s.judge) is not None else s.judge


def given_judge(s: TrainSettings) -> str:
    """The base URL of the judge given with --judge-base-url (the first of several), checked to serve --judge: a
    wrong name would otherwise train every step on 100 % judge errors. JudgeUnusable says what is served."""
    from flip_reward.judge.transport import Endpoint
    from flip_reward.serving.probe import JudgeProbeError, check_serves

    api_base = s.judge_base_url.split(",")[0].strip()
    if "," in s.judge_base_url:
        log(f"several judge URLs given: the local trainer uses the first, {redact_url(api_base)}")
    try:
        check_serves(Endpoint.resolve(s.judge, api_base), timeout=10.0)
    except JudgeProbeError as error:
        raise JudgeUnusable(f"judge: {error}") from None
    return api_base


def run_job(s: TrainSettings, rows: list[dict]) -> int:
    """Build or find the models, get a judge (started here unless given), train, report."""
    from flip_reward.serving.judge_server import ManagedJudgeServer, served_model
    from flip_reward.training.loop import make_reward, train

    output_dir = Path(s.output_dir)  # made by the command once its checks passed
    quiet_libraries()
    with contextlib.ExitStack() as stack:
        judge_target = materialize(s.judge, output_dir / "models", "judge")
        judge_model = served_judge_model(s, judge_target)
        tokenizer = s.judge_tokenizer or (judge_target if tiny_seed(s.judge) is not None else None)
        if s.judge_base_url:
            api_base = given_judge(s)
        else:
            server = ManagedJudgeServer(
                served_model(judge_model),
                output_dir / "judge",
                s.judge_port,
                s.judge_server_args,
                s.judge_start_timeout,
            )
            log(f"starting the judge {server.model} (log: {server.log_file})")
            api_base = stack.enter_context(server).url
            tokenizer = tokenizer or server.model  # loaded from local files only (context guard), else estimated
        log(f"judge: {judge_model} at {redact_url(api_base)}")
        reward = make_reward(s, judge_model, api_base, tokenizer, fresh_samples(output_dir))
        policy = materialize(s.model, output_dir / "models", "policy")
        code = train(s, policy, rows, reward, output_dir)
    check_judged(reward.totals)
    return code


def check_judged(totals: RewardStats) -> None:
    """JudgeUnusable when every judge request of the run failed (its outputs are written by then): a run that
    learned from nothing but 0.0 rewards must not look like a success to the job that launched it."""
    sent = totals.samples - totals.input_errors
    if sent and totals.judge_errors == sent:
        raise JudgeUnusable(f"every one of the {sent} judge requests of this run failed (judge errors above)")


def fresh_samples(output_dir: Path) -> SampleWriter:
    """The run's trace writer (OUTPUT_DIR/samples.jsonl), with the traces of an earlier run in the same directory
    removed."""
    path = output_dir / SAMPLES_FILE
    for old in (path, path.with_name(path.name + ".1")):
        old.unlink(missing_ok=True)
    return SampleWriter(path)


def quiet_libraries() -> None:
    """Keep the run's own progress bar the only one: no weight-loading bars, warnings only."""
    import transformers

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
