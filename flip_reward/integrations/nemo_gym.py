"""FLIP as a NeMo Gym resources server: ``FlipResourcesServer`` answers ``POST /verify`` with the FLIP reward.

How NeMo Gym 0.7 runs it (``ng_run``, and NeMo-RL's ``NemoGym`` environment through the same ``RunHelper``): the
Gym config holds an instance ``<name>: {resources_servers: {flip: {entrypoint: app.py, ...}}}``; Gym finds the
folder ``resources_servers/flip`` under ``NEMO_GYM_EXTRA_ROOTS`` (or the working directory), builds its venv from
its ``requirements.txt`` and runs ``python app.py`` there, with the whole parsed config in ``NEMO_GYM_CONFIG_DICT``
and the instance's name in ``NEMO_GYM_CONFIG_PATH``. ``app.py`` (``flip_reward.launch.nemo_rl`` writes it) calls
``FlipResourcesServer.run_webserver()``, which validates the instance's keys as ``FlipResourcesServerConfig`` and
serves the app on uvicorn. The simple agent then POSTs ``/verify`` once per rollout with the dataset row (its
``responses_create_params`` and any other fields) and ``response``, the policy's Responses API answer, and returns
the JSON it gets back (``reward`` and every other field) to the trainer.

What reaches the reward: the prompt is ``responses_create_params.input`` (a string is the user's message; messages
keep their roles, their content a string or ``input_text`` parts; tool calls and their outputs become ``assistant``
and ``tool`` turns of the history; reasoning items are left out), and FLIP's instruction is its last user message.
The response is the text of the ``output_text`` parts of the last assistant message of ``response.output``: the
reasoning items are not the response, nor are tool calls.

Options (the instance's keys): ``judge_model`` and ``reward_options`` (FlipReward keywords: ``api_base``,
``timeout``, ``retries``, ``max_concurrency``, ...) over the ``FLIP_*`` environment and ``HOSTED_VLLM_API_BASE``
(``flip_reward.core.settings.FlipSettings``). The server runs one process (``num_workers`` unset or 1), so every
``/verify`` shares one FlipReward: its judge client's concurrency bound is the limit shared by all rollouts.

Nothing fails a rollout: a failure is ``reward`` 0.0 with ``error`` and ``error_type`` in the answer, and, as NeMo
Gym's verify contract asks, ``failure_kind``/``failure_reason``; a judge that could not answer (or a reward that
could not be set up) also sets ``mask_sample``, at the top level (Gym's metrics leave the sample out) and in
``instance_config`` (where NeMo-RL's GRPO reads it, as Gym's own ``judge_failsafe`` writes it), so that NeMo-RL
leaves the sample out of the loss rather than learn from a reward that measured nothing. With ``FLIP_SAMPLE_LOG`` the
server traces its samples (``flip-reward inspect`` reads them).
"""

# No `from __future__ import annotations`: FastAPI reads verify's annotations through NeMo Gym's wrapper.
import json
from collections.abc import Mapping, Sequence
from typing import Any

from nemo_gym.base_resources_server import (
    BaseResourcesServerConfig,
    BaseVerifyRequest,
    BaseVerifyResponse,
    SimpleResourcesServer,
)
from nemo_gym.config_types import Domain
from pydantic import ConfigDict, Field, field_validator

from flip_reward.core.results import ErrorType
from flip_reward.core.reward import FlipResult
from flip_reward.integrations.process_reward import result_info, score_sample

# NeMo Gym's failure vocabulary (nemo_gym.failure_kinds) for each error type, and whether the reward measured nothing.
FAILURE_KINDS: dict[ErrorType, tuple[str | None, bool]] = {
    ErrorType.INPUT: (None, False),  # an empty response is the policy's doing: a valid 0.0
    ErrorType.PARSE: ("judge_unparseable", False),  # the judge answered: a wrong answer, not an outage
    ErrorType.JUDGE: ("judge_failed", True),
    ErrorType.CONFIG: ("verifier_error", True),
    ErrorType.INTERNAL: ("verifier_error", True),
}


class FlipResourcesServerConfig(BaseResourcesServerConfig):
    """The FLIP server's keys in the Gym config: the judge, FlipReward keywords, and Gym's own (entrypoint, ...)."""

    domain: Domain | None = Domain.RLHF
    judge_model: str | None = Field(default=None, description="litellm model string (default FLIP_JUDGE_MODEL)")
    reward_options: dict[str, Any] = Field(default_factory=dict, description="FlipReward keywords over FLIP_*")

    @field_validator("num_workers")
    @classmethod
    def _one_process(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("num_workers must be 1: every /verify shares one judge client and its concurrency bound")
        return value

    def options(self) -> dict[str, Any]:
        """The options of ``score_sample``: ``reward_options`` and, when set, ``judge_model``."""
        judge = {"judge_model": self.judge_model} if self.judge_model else {}
        return {**self.reward_options, **judge}


class FlipVerifyRequest(BaseVerifyRequest):
    """The simple agent's ``/verify`` body: the row (any extra field kept) and the policy's ``response``."""

    model_config = ConfigDict(extra="allow")


class FlipVerifyResponse(BaseVerifyResponse):
    """The request echoed, ``reward``, and what FLIP reports beside it (``result_info``: same keys every time)."""

    model_config = ConfigDict(extra="allow")

    f1: float
    inferred_instruction: str
    error: str
    error_type: str
    restatement_masked: int


def input_turn(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """One item of a Responses API ``input`` as a chat turn (None for a reasoning item, which is not content)."""
    kind = item.get("type")
    if "role" in item:
        return {"role": item["role"], "content": item.get("content", "")}
    if kind == "reasoning":
        return None
    if kind == "function_call":
        return {"role": "assistant", "content": f"{item.get('name')}({item.get('arguments', '')})"}
    if kind == "function_call_output":
        output = item.get("output", "")
        return {"role": "tool", "content": output if isinstance(output, (str, list)) else json.dumps(output)}
    return {"role": str(kind), "content": json.dumps({key: value for key, value in item.items() if key != "type"})}


def gym_prompt(responses_create_params: Mapping[str, Any]) -> object:
    """The prompt FLIP scores against: ``input`` as chat messages (see the module docstring); the last user message
    is the instruction (NeMo Gym has validated its shape: a string or a list of items)."""
    source = responses_create_params.get("input")
    if isinstance(source, str):
        return [{"role": "user", "content": source}]
    return [turn for turn in map(input_turn, source) if turn is not None]


def gym_response(output: Sequence[Mapping[str, Any]]) -> str:
    """The response FLIP judges: the ``output_text`` of the last assistant message of ``response.output`` ("" when
    there is none: FlipReward reports the empty response)."""
    messages = [item for item in output if item.get("type") == "message" and item.get("role") == "assistant"]
    if not messages:
        return ""
    parts = messages[-1].get("content") or []
    return "\n".join(part["text"] for part in parts if part.get("type") == "output_text")


def verify_response(body: BaseVerifyRequest, result: FlipResult) -> FlipVerifyResponse:
    """The answer to ``/verify`` for ``result``: the request, the reward, the FLIP fields and Gym's failure fields."""
    info = result_info(result)
    kind, measured_nothing = FAILURE_KINDS[result.error_type] if result.error_type else (None, False)
    failure = {"mask_sample": measured_nothing, "failure_kind": kind, "failure_reason": info["error"] or None}
    echoed = body.model_dump()
    if measured_nothing:
        # NeMo-RL's GRPO reads the flag from `instance_config` (its rollouts' _extract_mask_sample_flags); Gym's own
        # judge_failsafe writes it there too, beside the top-level field that Gym's metrics read.
        row_config = echoed.get("instance_config")
        failure["instance_config"] = {**(row_config if isinstance(row_config, dict) else {}), "mask_sample": True}
    # The row's own fields are echoed, ours win (a row holding a `reward` or `error` key cannot break the answer).
    return FlipVerifyResponse.model_validate({**echoed, "reward": float(result.reward), **info, **failure})


class FlipResourcesServer(SimpleResourcesServer):
    """NeMo Gym resources server whose ``/verify`` is the FLIP reward (see the module docstring)."""

    ray_enabled = False
    config: FlipResourcesServerConfig

    async def verify(self, body: FlipVerifyRequest) -> FlipVerifyResponse:
        """The FLIP reward of the rollout's answer to its row's last user message; never raises."""
        dumped = body.model_dump(mode="json")
        prompt = gym_prompt(dumped["responses_create_params"])
        result = await score_sample(prompt, gym_response(dumped["response"]["output"]), self.config.options())
        return verify_response(body, result)
