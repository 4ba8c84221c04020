"""ROLL's reward batch scored with FLIP, without ROLL: the samples of a ``DataProto`` as ROLL's RLVR pipeline fills
it, and the tensors and ``meta_info`` a ROLL reward worker answers with. ``flip_reward.integrations.roll`` (the
worker, which needs ROLL) calls ``score_batch``; nothing here imports ROLL, so its shapes are tested everywhere.

What ROLL hands a reward worker (alibaba/ROLL 8eb27cc, ``roll/pipeline/rlvr``): ``data.batch["responses"]``, the
policy's response token ids (right-padded), and ``data.non_tensor_batch``, numpy object arrays of the dataset row's
columns: ``messages`` (the chat the policy saw: a JSON string, as ROLL's own data files hold it, or a list of
messages; the column is ``data_args.messages``), ``ground_truth``, ``tag``, ``domain``, ``id``. The prompt FLIP
scores against is the row's messages (the last user message is the instruction, earlier turns its context); a
batch without that column falls back to ``ground_truth``, which the launcher's rows fill with the instruction. The
response is decoded without special tokens (padding and end-of-turn tokens dropped), as ROLL's LLM judge does.

What it answers (the schema every reward domain of a ROLL run shares, since ROLL concatenates their outputs):
``token_level_rewards`` (zeros shaped like the responses: ROLL places ``response_level_rewards`` on the last token
itself), ``response_level_rewards`` and ``scores`` (the FLIP reward), at float32 so that the reward is the exact F1
(ROLL's own workers use float16, which rounds it). ``meta_info["metrics"]`` holds per-sample lists, which ROLL
averages into its logged metrics (``flip/f1``, ``flip/failed``, ``flip/restatement_masked``);
``meta_info["flip_results"]`` holds ``result_info`` per sample (the error and its type, the inferred instruction):
the samples of the actor that answered (when ROLL splits a batch over several actors, it keeps the first one's
``meta_info``; ``FLIP_SAMPLE_LOG`` traces every sample). Not ``non_tensor_batch``: ROLL concatenates the answers of
all its reward domains, and a column only FLIP's had would no longer line up with the rows. Nothing raises into
ROLL: a sample that cannot be read or judged scores 0.0 with its error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult
from flip_reward.integrations.process_reward import process_trace, result_info, score_samples

logger = logging.getLogger("flip_reward.integrations")
MESSAGES_KEY = "messages"  # ROLL's default data_args.messages
REWARD_DTYPE = torch.float32  # exact F1 (ROLL's own workers use float16)


@dataclass(frozen=True)
class RewardBatch:
    """A ROLL reward worker's answer: its ``DataProto`` tensors and ``meta_info``."""

    tensors: dict[str, torch.Tensor]
    meta_info: dict[str, Any]


class UnreadableRow(ValueError):
    """A row of the batch that cannot be scored (its reward is 0.0 with this error); ``value`` is what it held."""

    def __init__(self, message: str, value: object = None):
        super().__init__(message)
        self.value = value


def row_prompt(non_tensor_batch: Any, index: int, message_key: str = MESSAGES_KEY) -> object:
    """The prompt of row ``index``: its messages (a JSON string or a list), else its ``ground_truth`` instruction.

    >>> import numpy as np
    >>> row_prompt({"messages": np.array(['[{"role": "user", "content": "Hi"}]'], dtype=object)}, 0)
    [{'role': 'user', 'content': 'Hi'}]
    """
    if message_key in non_tensor_batch:
        return messages_of(non_tensor_batch[message_key][index], message_key)
    if "ground_truth" in non_tensor_batch:
        return plain(non_tensor_batch["ground_truth"][index])
    raise UnreadableRow(f"the batch has neither {message_key!r} nor 'ground_truth'")


def messages_of(value: object, key: str) -> object:
    """A row's messages: a JSON string parsed (as ROLL's dataset encoding does), a list or array as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise UnreadableRow(f"{key}: not a JSON list of messages ({error})", value) from None
    return plain(value)


def plain(value: object) -> object:
    """``value`` with numpy arrays (as parquet lists arrive) turned into lists."""
    return value.tolist() if hasattr(value, "tolist") and not isinstance(value, (str, bytes)) else value


def decoded_responses(response_ids: Any, tokenizer: Any) -> list[str]:
    """The batch's responses as text, special tokens (padding, end of turn) dropped."""
    return tokenizer.batch_decode(response_ids, skip_special_tokens=True)


def input_failure(prompt: object, response: object, error: Exception) -> FlipResult:
    """The result of a row that cannot be scored, traced under ``FLIP_SAMPLE_LOG`` like the judged ones."""
    result = FlipResult(error=str(error), error_type=ErrorType.INPUT)
    trace = process_trace()
    if trace is not None:
        trace.record(prompt, response, result)
    return result


async def score_batch(
    data: Any, tokenizer: Any, options: Mapping[str, Any] | None = None, message_key: str = MESSAGES_KEY
) -> RewardBatch:
    """The FLIP rewards of every row of ``data`` (a ROLL ``DataProto`` or anything of its shape), judged
    concurrently; never raises. ``options`` are FlipReward keywords over the ``FLIP_*`` environment."""
    size = len(data)
    try:
        response_ids = data.batch["responses"]
        responses = decoded_responses(response_ids, tokenizer)
    except Exception as error:  # noqa: BLE001  (a batch ROLL could not have made: every sample says why)
        failure = UnreadableRow(f"responses: {type(error).__name__}: {error}")
        return reward_batch((size, 0), [input_failure(None, None, failure) for _ in range(size)])
    prompts: dict[int, object] = {}
    results: dict[int, FlipResult] = {}
    for index in range(size):
        try:
            prompts[index] = row_prompt(data.non_tensor_batch, index, message_key)
        except UnreadableRow as error:
            results[index] = input_failure(error.value, responses[index], error)
    judged = await score_samples([(prompts[index], responses[index]) for index in prompts], options)
    results.update(zip(prompts, judged))
    return reward_batch(tuple(response_ids.shape), [results[index] for index in range(size)])


def reward_batch(response_shape: tuple[int, ...], results: list[FlipResult]) -> RewardBatch:
    """The tensors and ``meta_info`` of ``results``, one per response (see the module docstring)."""
    rewards = torch.tensor([float(result.reward) for result in results], dtype=REWARD_DTYPE)
    infos = [result_info(result) for result in results]
    failed = [info for info in infos if info["error"]]
    if failed:
        logger.warning(
            "FLIP: %d of %d rewards are 0.0 for an error (first: %s: %s)",
            len(failed),
            len(infos),
            failed[0]["error_type"],
            failed[0]["error"],
        )
    metrics = {
        "flip/f1": [info["f1"] for info in infos],
        "flip/failed": [float(bool(info["error"])) for info in infos],
        "flip/restatement_masked": [float(info["restatement_masked"]) for info in infos],
    }
    return RewardBatch(
        tensors={
            "token_level_rewards": torch.zeros(response_shape, dtype=REWARD_DTYPE),
            "response_level_rewards": rewards,
            "scores": rewards.clone(),
        },
        meta_info={"metrics": metrics, "flip_results": infos},
    )
