"""One judge model served by several OpenAI-compatible endpoints, load-balanced with litellm's Router.

``RouterTransport`` has ``transport.Transport``'s interface (``send(messages, params) -> Completion``) and sends
through ``litellm.Router.acompletion``: the Router picks an endpoint by its ``routing_strategy`` and cools down one
that keeps failing, so traffic goes around it. The Judge still owns retries, the deadline, the circuit breaker,
dedup and the cache, so the Router runs with no retries of its own. A Router holds HTTP clients bound to an event
loop, so one is built per loop and none is pickled. ``Judge`` uses it when ``JudgeConfig.api_bases`` names two or
more servers.
"""

from __future__ import annotations

from collections.abc import Sequence

import openai

from flip_reward.judge.loops import loop_scoped
from flip_reward.judge.transport import Completion, Endpoint, completion_from

ROUTER_MODEL = "flip-judge"
_ALL_COOLING_DOWN = "No deployments available"


class EndpointsUnreachableError(openai.APIConnectionError):
    """Every endpoint of the group is cooling down after failures: counted by the circuit breaker and retried like
    a dropped connection. (One dead endpoint among live ones is not this: the Router routes around it, and its
    connection errors, which litellm reports as 500s, are retried without touching the breaker.)"""

    def __init__(self, message: str):
        import httpx

        super().__init__(message=message, request=httpx.Request("POST", "http://router.invalid/v1/chat/completions"))


def is_unreachable_router_error(error: BaseException) -> bool:
    """True when the Router has no endpoint left to try (all of them cooling down)."""
    return not isinstance(error, openai.APIConnectionError) and _ALL_COOLING_DOWN in str(error)


class RouterTransport:
    """Sends each request to one of ``api_bases`` (all serving ``endpoint.model``) through a litellm Router."""

    def __init__(
        self,
        endpoint: Endpoint,
        api_bases: Sequence[str],
        timeout: float,
        routing_strategy: str = "simple-shuffle",
        allowed_fails: int = 3,
        cooldown_time: float = 30.0,
    ):
        if not api_bases:
            raise ValueError("RouterTransport needs at least one api_base")
        self.endpoint = endpoint
        self.api_bases = tuple(api_bases)
        self.timeout = timeout
        self.routing_strategy = routing_strategy
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown_time
        self._token = object()  # this transport's key in the per-loop registry

    def __getstate__(self) -> dict:
        return {
            "endpoint": self.endpoint,
            "api_bases": self.api_bases,
            "timeout": self.timeout,
            "routing_strategy": self.routing_strategy,
            "allowed_fails": self.allowed_fails,
            "cooldown_time": self.cooldown_time,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def model_list(self) -> list[dict]:
        """The Router's deployments: one per base URL, all under the same model group name."""
        deployments = []
        for api_base in self.api_bases:
            params: dict = {
                "model": self.endpoint.model,
                "api_base": api_base,
                "timeout": self.timeout,
                "max_retries": 0,
            }
            if self.endpoint.api_key:
                params["api_key"] = self.endpoint.api_key
            deployments.append({"model_name": ROUTER_MODEL, "litellm_params": params})
        return deployments

    def _router(self):
        def create():
            import litellm

            return litellm.Router(
                model_list=self.model_list(),
                routing_strategy=self.routing_strategy,
                num_retries=0,
                allowed_fails=self.allowed_fails,
                cooldown_time=self.cooldown_time,
                timeout=self.timeout,
            )

        return loop_scoped(("router", self._token), create)

    @staticmethod
    def is_unreachable(error: BaseException) -> bool:
        """Only every endpoint cooling down means the judge is down; one dead endpoint is routed around."""
        return isinstance(error, EndpointsUnreachableError)

    async def send(self, messages: list[dict], params: dict) -> Completion:
        try:
            response = await self._router().acompletion(model=ROUTER_MODEL, messages=messages, **params)
        except Exception as error:
            if is_unreachable_router_error(error):
                raise EndpointsUnreachableError(str(error)[:300]) from error
            raise
        return completion_from(response)
