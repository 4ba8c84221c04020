"""The scoring and evaluation demos (``make score-demo``, ``make eval-demo``): the bundled samples judged by a tiny
random chat model built locally (no download) and served for the length of the run.

``python -m flip_reward.launch.demos {score,eval} [--run-dir DIR]`` (scripts/score_demo.sh, scripts/eval_demo.sh)
builds the judge in RUN_DIR/judge-model, serves it with ``ManagedJudgeServer`` (transformers serve on CPU, vLLM on a
GPU; RUN_DIR/judge.log) and runs, against it, ``flip-reward score`` on the scoring sample (``score``), or ``flip-reward
eval`` (FLIP and the three LLM-as-a-judge baselines) on the RewardBench-2-shaped sample and ``flip-reward rerank`` on
the best-of-N sample (``eval``). The judge is stopped when the run ends, however it ends. The tiny judge writes
gibberish, so most judgments end as counted parse failures: the run shows the whole path (server, client, parsing,
outputs, summaries), not FLIP's quality; point ``--judge``/``--api-base`` of those commands at a real judge for that.

Each command runs as ``python -m flip_reward ...`` in its own process group (``Supervisor.run_trainer``): Ctrl-C
or TERM stops it (SIGINT first), then the judge. Exit status: 0 when every command succeeded, else the first failing
command's (docs/reference.md#exit-codes); 1 when the judge does not start, 130 on Ctrl-C (143 on TERM).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flip_reward.data.mixes import sample_path
from flip_reward.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED
from flip_reward.serving.judge_server import JudgeServerError, ManagedJudgeServer
from flip_reward.serving.process_signals import exit_on_signals
from flip_reward.serving.processes import Supervisor

OFFLINE = {"HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
MAX_TOKENS = {"score": "48", "eval": "32"}


def judge_arguments(demo: str, model_dir: Path, url: str) -> list[str]:
    """The options that point a command at the tiny judge served at ``url``."""
    arguments = ["--judge", f"hosted_vllm/{model_dir}", "--api-base", url, "--max-tokens", MAX_TOKENS[demo]]
    arguments += ["--max-context-length", "4096", "--tokenizer", str(model_dir)]
    return arguments + (["--concurrency", "8"] if demo == "eval" else [])


def commands(demo: str, run_dir: Path, model_dir: Path, url: str) -> tuple[list[list[str]], str]:
    """The ``flip-reward`` commands of ``demo`` and the line that says where their outputs are."""
    judge = judge_arguments(demo, model_dir, url)
    if demo == "score":
        scored = run_dir / "scored.jsonl"
        return [["score", str(sample_path("sample_scoring.jsonl")), "--output", str(scored), *judge]], (
            f"scored rows: {scored}"
        )
    evaluation, reranked = run_dir / "eval", run_dir / "reranked.jsonl"
    return [
        ["eval", str(sample_path("sample_rewardbench2.jsonl")), "--output-dir", str(evaluation),
         "--methods", "flip,pointwise,pairwise,listwise", "--seed", "0", *judge],
        ["rerank", str(sample_path("sample_rerank.jsonl")), "--output", str(reranked), "--method", "flip", *judge],
    ], f"report: {evaluation}/report.md; best-of-N: {reranked}"  # fmt: skip


def say(message: str) -> None:
    print(f"demos: {message}", file=sys.stderr, flush=True)


def run(demo: str, run_dir: Path) -> int:
    """Build and serve the tiny judge, run the demo's commands against it (each a process group), stop the judge."""
    from flip_reward.training.tiny_model import build_tiny_chat_model

    run_dir.mkdir(parents=True, exist_ok=True)
    model_dir = build_tiny_chat_model(run_dir / "judge-model")
    with ManagedJudgeServer(str(model_dir), run_dir) as server:
        steps, outputs = commands(demo, run_dir, model_dir, server.url)
        for step in steps:
            say(f"running: flip-reward {' '.join(step)}")
            with Supervisor(None, 0, say) as child:
                status = child.run_trainer([sys.executable, "-m", "flip_reward", *step], {})
            if status != EXIT_OK:
                return status
    print(outputs)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="demos", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("demo", choices=("score", "eval"), help="score: flip-reward score; eval: eval and rerank")
    parser.add_argument("--run-dir", type=Path, help="where everything goes (default: runs/score_demo, runs/eval-demo)")
    args = parser.parse_args(argv)
    run_dir = (args.run_dir or Path("runs", "score_demo" if args.demo == "score" else "eval-demo")).resolve()
    os.environ.update(OFFLINE)
    exit_on_signals()
    try:
        return run(args.demo, run_dir)
    except JudgeServerError as error:
        print(f"demos: error: {error}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
