"""Is a judge usable before a run starts: it answers at its base URL and serves the model the run will request.

A wrong model name does not fail a request loudly enough: every judgment becomes a counted 404 and a training run
goes on with reward 0.0 for every sample. So the training scripts' dry run, their launch and ``flip-reward train``
all ask ``GET /v1/models`` first and stop with one line naming what is served; ``flip-reward serve`` asks at start
and warns. A probe takes the judge's ``Endpoint``, so it sends exactly what the judge requests send (a user name and
password in the base URL as basic authentication, never shown; else the key).
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request

from flip_reward.judge.transport import Endpoint
from flip_reward.judge.urls import redact
from flip_reward.net import asked_directly, open_url

PROVIDER_PREFIXES = ("hosted_vllm/", "openai/")
OPENAI_COMPATIBLE = tuple(prefix.rstrip("/") for prefix in PROVIDER_PREFIXES)  # litellm providers that list /models


class JudgeProbeError(RuntimeError):
    """The judge cannot be used: unreachable, not an OpenAI-compatible server, or serving other models. The message
    is ``url`` then ``reason``; ``reason`` alone names no URL (for callers that show the judge their own way)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url} {reason}")
        self.reason = reason


def served_name(model: str) -> str:
    """The model name the server knows for a litellm model string (its provider prefix removed)."""
    for prefix in PROVIDER_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix) :]
    return model


def vllm_endpoint(base_url: str, model: str = "") -> Endpoint:
    """The judge at ``base_url`` as a ``hosted_vllm/`` judge's requests reach it (its key from
    ``HOSTED_VLLM_API_KEY``, as litellm resolves it), for callers that have a URL and maybe a model but no Judge."""
    return Endpoint.at(base_url, model, api_key=os.environ.get("HOSTED_VLLM_API_KEY"))


def served_models(endpoint: Endpoint, timeout: float = 5.0) -> list[str]:
    """The model ids ``GET {api_base}/models`` lists, asked with the headers every judge request of ``endpoint``
    sends (``Endpoint.headers``: its URL's credentials as basic auth, else its key); JudgeProbeError when it does not
    answer with them. No message shows the credentials. A loopback judge is asked directly, any other through the
    environment's proxy unless NO_PROXY names it (``flip_reward.net.asked_directly``), as the trainer's HTTP client
    asks it."""
    base = (endpoint.api_base or "").rstrip("/")
    url = (endpoint.shown_base or base).rstrip("/") + "/models"
    request = urllib.request.Request(base + "/models", headers=endpoint.headers())
    try:
        with open_url(request, timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        hint = " (does the base URL end in /v1?)" if error.code == 404 and not base.endswith("/v1") else ""
        raise JudgeProbeError(url, f"answered HTTP {error.code}{hint}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        via = " through the proxy of the environment (NO_PROXY may name its host)" if not asked_directly(base) else ""
        raise JudgeProbeError(url, f"is not reachable{via} ({redact(str(error), *endpoint.secrets())})") from None
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise JudgeProbeError(url, "did not answer an OpenAI model list")
    return [str(entry.get("id")) for entry in entries if isinstance(entry, dict)]


def check_serves(endpoint: Endpoint, timeout: float = 5.0) -> list[str]:
    """The models served at ``endpoint``; JudgeProbeError unless its model (a litellm string) is one of them."""
    served = served_models(endpoint, timeout)
    model = endpoint.model
    if served_name(model) not in served:
        listed = ", ".join(served) or "no model"
        raise JudgeProbeError(endpoint.shown_base, f"serves {listed}, not {served_name(model)!r} (from {model})")
    return served
