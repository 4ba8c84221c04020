"""AReaL's GRPO with FLIP rewards, the script AReaL runs an experiment from: ``python -m
flip_reward.integrations.areal_train [--reward-timeout-s S] [--reward-workers N] [--enable-thinking] --config YAML
[key=value ...]`` (what ``flip-reward launch areal`` runs).

How AReaL 1.0.4 runs an experiment: a script loads its config with ``load_expr_config(argv, GRPOConfig)`` (the YAML
composed by Hydra with the ``key=value`` overrides, checked against AReaL's config classes), builds the training
dataset itself and calls ``PPOTrainer(config, train_dataset=...).train(workflow=..., workflow_kwargs=...)``; with
``scheduler.type=local`` this process is the controller that starts AReaL's workers on this machine. Here the rows
are the JSON-lines file ``train_dataset.path`` (rows with ``messages``, each row reaching ``flip_reward_fn`` as
keywords), prompts longer than ``train_dataset.max_length`` tokens are left out (said in one line), rows that do not
fill one batch stop the script (exit 2) before AReaL starts its workers to take no step, and the workflow
is ``FlipRLVRWorkflow`` with this script's three options (the reward pool's timeout and size; the policy's
thinking, as RLVRWorkflow's ``enable_thinking``). Needs AReaL and its GPU stack; nothing else imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flip_reward.exit_codes import EXIT_INVALID_INPUT

WORKFLOW = "flip_reward.integrations.areal_workflow.FlipRLVRWorkflow"


def own_arguments(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """This script's options, and the rest for AReaL's ``load_expr_config`` (``--config`` and the overrides)."""
    parser = argparse.ArgumentParser(prog="python -m flip_reward.integrations.areal_train", allow_abbrev=False)
    parser.add_argument("--reward-timeout-s", type=float, help="seconds per reward (default: the judge's budget)")
    parser.add_argument("--reward-workers", type=int, help="reward pool processes (default: AReaL's)")
    parser.add_argument("--enable-thinking", action="store_true", help="RLVRWorkflow's enable_thinking")
    return parser.parse_known_args(list(argv))


def training_rows(path: str, tokenizer: object, max_length: int | None, enable_thinking: bool) -> object:
    """The rows of ``path`` as a ``datasets.Dataset``, without those whose templated prompt is over ``max_length``
    tokens (counted, said)."""
    from areal.utils.hf_utils import apply_chat_template
    from datasets import load_dataset

    rows = load_dataset("json", data_files=path, split="train")
    if max_length is None:
        return rows

    def fits(row: dict) -> bool:
        ids = apply_chat_template(
            tokenizer, row["messages"], add_generation_prompt=True, enable_thinking=enable_thinking
        )
        return len(ids) <= max_length

    kept = rows.filter(fits)
    if len(kept) < len(rows):
        print(f"flip-reward: {len(rows) - len(kept)} of {len(rows)} rows of {path} have prompts over "
              f"{max_length} tokens (train_dataset.max_length) and are left out", flush=True)  # fmt: skip
    return kept


def training_steps(rows: object, dataset_config: object) -> int:
    """Steps of one epoch over ``rows``, as AReaL's own dataloader makes them (``create_dataloader``: batches of
    ``train_dataset.batch_size``, the last incomplete one dropped unless ``drop_last`` is off)."""
    from areal.utils.dataloader import create_dataloader

    return len(create_dataloader(rows, rank=0, world_size=1, dataset_config=dataset_config))


def main(argv: Sequence[str]) -> None:
    """The experiment: AReaL's config loaded, the rows read and filtered, PPOTrainer trained with FlipRLVRWorkflow."""
    from areal import PPOTrainer
    from areal.api.cli_args import GRPOConfig, load_expr_config
    from areal.utils.hf_utils import load_hf_tokenizer

    own, rest = own_arguments(argv)
    config, _ = load_expr_config(rest, GRPOConfig)
    tokenizer = load_hf_tokenizer(config.tokenizer_path)
    dataset = config.train_dataset
    rows = training_rows(dataset.path, tokenizer, dataset.max_length, own.enable_thinking)
    if training_steps(rows, dataset) == 0:  # AReaL would start every worker and then take no step
        print(f"flip-reward: error: {len(rows)} training rows do not fill one batch of train_dataset.batch_size="
              f"{dataset.batch_size} prompts: AReaL would take no step", file=sys.stderr, flush=True)  # fmt: skip
        sys.exit(EXIT_INVALID_INPUT)
    workflow_kwargs = {
        "gconfig": config.gconfig,
        "tokenizer": config.tokenizer_path,
        "enable_thinking": own.enable_thinking,
        "reward_timeout_s": own.reward_timeout_s,
        "reward_workers": own.reward_workers,
    }
    with PPOTrainer(config, train_dataset=rows, valid_dataset=None) as trainer:
        trainer.train(workflow=WORKFLOW, workflow_kwargs=workflow_kwargs)


if __name__ == "__main__":
    main(sys.argv[1:])
