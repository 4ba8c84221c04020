"""FLIP as a ROLL reward worker: in a pipeline YAML, a reward domain with
``worker_cls: flip_reward.integrations.roll.FlipRewardWorker`` (ROLL from its repository, alibaba/ROLL 8eb27cc).

How ROLL calls it: the pipeline builds one ``Cluster`` per entry of ``rewards``; the Cluster imports the
``worker_cls`` path, wraps the class in ``ray.remote`` and starts ``world_size`` actors, each constructed with its
``RewardConfig`` (a ``WorkerConfig``), and binds the methods marked by ROLL's ``@register``: ``initialize
(pipeline_config)`` once on every actor (``Dispatch.ONE_TO_ALL``), then ``compute_rewards(data: DataProto) ->
DataProto`` for batches split across the actors (``Dispatch.DP_MP_COMPUTE``) or, in the per-prompt rollout loop,
for one prompt's responses at a time. ``compute_rewards`` is ``async``, so ROLL makes the actor an async Ray actor
(``max_concurrency`` 1000 unless the config sets it) and many prompts are judged at once on its event loop, bounded
by the judge client's concurrency (``FLIP_CONCURRENCY``). The class must be a ROLL ``Worker`` (the Cluster calls the
base's rank, address and device methods), so this module imports ROLL and runs only where ROLL does; the batch's
translation (``flip_reward.integrations.roll_batch``) needs no ROLL.

The judge: the domain's ``judge_model_name`` (a litellm model string, e.g. ``hosted_vllm/Qwen/Qwen3-4B``),
``judge_api_url`` and ``judge_api_key`` when set, else ``FLIP_JUDGE_MODEL`` and ``HOSTED_VLLM_API_BASE``; every other
option from the ``FLIP_*`` variables (set them in the domain's ``system_envs``, which ROLL puts in each actor's
environment). The tokenizer that decodes the responses comes from the domain's ``model_args`` (the policy's model,
as for ROLL's rule workers); the messages column is the actor's ``data_args.messages``. See ``roll_batch`` for what
reaches the reward and what the worker answers.
"""

from __future__ import annotations

from typing import Any

from roll.distributed.executor.worker import Worker
from roll.distributed.scheduler.decorator import Dispatch, register
from roll.distributed.scheduler.protocol import DataProto
from roll.models.model_providers import default_tokenizer_provider

from flip_reward.integrations.roll_batch import MESSAGES_KEY, score_batch

# RewardConfig's judge fields -> FlipReward keywords (over the FLIP_* settings)
JUDGE_FIELDS = {"judge_model_name": "judge_model", "judge_api_url": "api_base", "judge_api_key": "api_key"}


def judge_options(worker_config: Any) -> dict[str, Any]:
    """The FlipReward keywords a reward domain's config gives (its ``judge_*`` fields that are set)."""
    options = {option: getattr(worker_config, name, None) for name, option in JUDGE_FIELDS.items()}
    return {option: value for option, value in options.items() if value}


def message_key(pipeline_config: Any) -> str:
    """The dataset column of the chat (``actor_train.data_args.messages``, ROLL's default ``messages``)."""
    data_args = getattr(getattr(pipeline_config, "actor_train", None), "data_args", None)
    return getattr(data_args, "messages", None) or MESSAGES_KEY


class FlipRewardWorker(Worker):
    """A ROLL reward worker whose reward is FLIP's (see the module docstring)."""

    def __init__(self, worker_config: Any):
        super().__init__(worker_config=worker_config)
        self.rank_info.dp_rank = self.rank_info.rank
        self.rank_info.dp_size = self.rank_info.world_size
        self.tokenizer = None
        self.options: dict[str, Any] = {}
        self.message_key = MESSAGES_KEY

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def initialize(self, pipeline_config: Any) -> None:
        super().initialize(pipeline_config)
        self.tokenizer = default_tokenizer_provider(model_args=self.worker_config.model_args)
        self.options = judge_options(self.worker_config)
        self.message_key = message_key(pipeline_config)

    @register(dispatch_mode=Dispatch.DP_MP_COMPUTE, clear_cache=False)
    async def compute_rewards(self, data: DataProto) -> DataProto:
        rewards = await score_batch(data, self.tokenizer, self.options, self.message_key)
        return DataProto.from_dict(tensors=rewards.tensors, meta_info=rewards.meta_info)
